# The reference comparison, version 2, step 3 (reference/english_mix/): the component ladder from GPT-2 to
# LLaMA (config/ladder/README.md), all on GPT-2's tokenizer at step 1's best rate 2e-3: untied embeddings,
# then RoPE, then SwiGLU at GELU's FLOPs, then RMSNorm (= LLaMA), and LLaMA at GPT-2's parameters; 5
# seeds a rung, then eval_bpb.py. It shares config/sweeps/english_compare.py's out_dir: the two end
# rungs' seeds 1 to 3 are that sweep's 'gpt2' and 'llama' runs (the same arguments), run once for both.
#
#     python sweep.py config/sweeps/english_ladder.py --parallel=6
#     python sweep.py config/sweeps/english_ladder.py --summarize=True
#
# 6 configs x 5 seeds = 30 runs, 6 of them english_compare.py's.
out_dir = 'out-english-compare'
summary_dir = 'summary-ladder'
configs = {
    'gpt2': 'config/ladder/l0_gpt2.py',
    'untied': 'config/ladder/l1_untied.py',
    'rope': 'config/ladder/l2_rope.py',
    'swiglu': 'config/ladder/l3_swiglu.py',
    'llama': 'config/ladder/l4_llama.py',
    'llama_params': 'config/ladder/llama_params.py',
}
overrides = {'learning_rate': 2e-3}
grid = {'seed': [1, 2, 3, 4, 5]}
min_lr_ratio = 0.1
tuned = ''
eval_bpb = True
# each step of the ladder, the whole ladder, and LLaMA at GPT-2's parameters against each end (all paired)
comparisons = 'gpt2:untied,untied:rope,rope:swiglu,swiglu:llama,gpt2:llama,gpt2:llama_params,llama:llama_params'
