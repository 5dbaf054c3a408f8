# LLaMA against GPT-2 at the reference comparison's shape (config/compare_llama.py, config/compare_gpt2.py),
# each at its own best learning rate (4 rates a factor 2 apart x 3 seeds), then eval_bpb.py on every
# validation document. Each architecture with its own tokenizer (llama, gpt2: the same 4 passes over the
# same documents), and LLaMA with GPT-2's (llama_gpt2tok: the same data as gpt2, so that the same seed
# reads the same batches and their difference is paired: the architecture alone).
#
#     python data/stdlib_llama/prepare.py && python data/stdlib_gpt2/prepare.py
#     python sweep.py config/sweeps/compare.py --parallel=4
#     python sweep.py config/sweeps/compare.py --summarize=True
#
# 3 configs x 4 rates x 3 seeds = 36 runs.
out_dir = 'out-sweep-compare'
configs = {
    'gpt2': 'config/compare_gpt2.py',
    'llama': 'config/compare_llama.py',
    'llama_gpt2tok': ('config/compare_llama.py', {'dataset': 'stdlib_gpt2', 'vocab_size': 50304, 'max_iters': 1695}),
}
grid = {'learning_rate': [5e-4, 1e-3, 2e-3, 4e-3], 'seed': [1, 2, 3]}
min_lr_ratio = 0.1
tuned = 'learning_rate'
eval_bpb = True
comparisons = 'gpt2:llama,gpt2:llama_gpt2tok'
