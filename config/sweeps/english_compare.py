# The reference comparison, version 2, steps 2 and 3 (reference/english_mix/): at the best learning rate
# of step 1's sweep (config/sweeps/english_lr.py: 2e-3 for both architectures, bracketed), 3 seeds of
#   - each architecture with each real tokenizer: GPT-2 and LLaMA on GPT-2's (data/english_mix_gpt2, one
#     pass = 1007 iterations) and on Llama-2's (data/english_mix_llama, 884 iterations), the same documents
#     in both; on one tokenizer the same seed reads the same batches, so those differences are paired;
#   - the component ladder from GPT-2 to LLaMA on GPT-2's tokenizer (config/ladder/README.md): untied
#     embeddings, then RoPE, then SwiGLU at GELU's FLOPs, then RMSNorm (= LLaMA, the 'llama' group), and
#     LLaMA at GPT-2's parameters;
# then eval_bpb.py on every validation document.
#
#     python data/english_mix_llama/prepare.py && python data/english_mix_gpt2/prepare.py
#     python sweep.py config/sweeps/english_compare.py --parallel=8
#     python sweep.py config/sweeps/english_compare.py --summarize=True
#
# 8 configs x 3 seeds = 24 runs.
out_dir = 'out-english-compare'
configs = {
    'gpt2': 'config/ladder/l0_gpt2.py',
    'untied': 'config/ladder/l1_untied.py',
    'rope': 'config/ladder/l2_rope.py',
    'swiglu': 'config/ladder/l3_swiglu.py',
    'llama': 'config/ladder/l4_llama.py',
    'llama_params': 'config/ladder/llama_params.py',
    'gpt2+llamatok': ('config/english_gpt2.py', {'dataset': 'english_mix_llama', 'vocab_size': 32000, 'max_iters': 884}),
    'llama+llamatok': 'config/english_llama.py',
}
overrides = {'learning_rate': 2e-3}
grid = {'seed': [1, 2, 3]}
min_lr_ratio = 0.1
tuned = ''
eval_bpb = True
# each step of the ladder; the whole ladder and LLaMA at GPT-2's parameters; the architectures on Llama-2's
# tokenizer; each architecture's tokenizer effect; and each with its own tokenizer (unpaired: other data)
comparisons = ('gpt2:untied,untied:rope,rope:swiglu,swiglu:llama,gpt2:llama,gpt2:llama_params,'
               'gpt2+llamatok:llama+llamatok,gpt2:gpt2+llamatok,llama:llama+llamatok,gpt2:llama+llamatok')
