# The reference comparison, version 2, step 2 (reference/english_mix/): at the best learning rate of step
# 1's sweep (config/sweeps/english_lr.py: 2e-3 for both architectures, bracketed), 3 seeds of each
# architecture with each real tokenizer: GPT-2 and LLaMA on GPT-2's (data/english_mix_gpt2, one pass =
# 1007 iterations; config/ladder/'s first and last rungs) and on Llama-2's (data/english_mix_llama, 884
# iterations), the same documents in both. On one tokenizer the same seed reads the same batches, so
# those differences are paired. Then eval_bpb.py on every validation document. Step 3, the component
# ladder, is config/sweeps/english_ladder.py: it shares this out_dir and its two end rungs' runs.
#
#     python data/english_mix_llama/prepare.py && python data/english_mix_gpt2/prepare.py
#     python sweep.py config/sweeps/english_compare.py --parallel=6
#     python sweep.py config/sweeps/english_compare.py --summarize=True
#
# 4 configs x 3 seeds = 12 runs.
out_dir = 'out-english-compare'
configs = {
    'gpt2': 'config/ladder/l0_gpt2.py',
    'llama': 'config/ladder/l4_llama.py',
    'gpt2+llamatok': ('config/english_gpt2.py', {'dataset': 'english_mix_llama', 'vocab_size': 32000, 'max_iters': 884}),
    'llama+llamatok': 'config/english_llama.py',
}
overrides = {'learning_rate': 2e-3}
grid = {'seed': [1, 2, 3]}
min_lr_ratio = 0.1
tuned = ''
eval_bpb = True
# the architectures on each tokenizer (paired); each architecture's tokenizer effect, and each with its own
# tokenizer, the founding document's comparison (unpaired: two datasets order their windows differently)
comparisons = 'gpt2:llama,gpt2+llamatok:llama+llamatok,gpt2:gpt2+llamatok,llama:llama+llamatok,gpt2:llama+llamatok'
