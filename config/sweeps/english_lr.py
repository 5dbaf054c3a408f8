# The reference comparison, version 2, step 1 (reference/english_mix/): each architecture with its own
# real tokenizer on the mixed English corpus (config/english_llama.py, config/english_gpt2.py: one pass
# over the same documents), at 4 learning rates a factor 2 apart x 2 seeds, then eval_bpb.py on every
# validation document. The summary picks each one's best learning rate by compare.py's rule; steps 2 and 3
# (config/sweeps/english_compare.py) run the seeds at those rates.
#
#     python data/english_mix_llama/prepare.py && python data/english_mix_gpt2/prepare.py
#     python sweep.py config/sweeps/english_lr.py --parallel=8
#     python sweep.py config/sweeps/english_lr.py --summarize=True
#
# 2 configs x 4 rates x 2 seeds = 16 runs.
out_dir = 'out-english-lr'
configs = {
    'gpt2': 'config/english_gpt2.py',
    'llama': 'config/english_llama.py',
}
grid = {'learning_rate': [1e-3, 2e-3, 4e-3, 8e-3], 'seed': [1, 2]}
min_lr_ratio = 0.1
tuned = 'learning_rate'
eval_bpb = True
comparisons = 'gpt2:llama'
