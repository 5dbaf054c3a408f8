# The scaling ladder's held-out size (config/sweeps/scaling.py; reference/scaling/): 7 layers x 448 wide
# (7 heads of 64), 16.9M non-embedding parameters (12 L d^2), 2.7x the ladder's largest (5x320), one pass
# over the training split, at the ladder's learning-rate rule (1.87e-3) and recipe. Its bits per byte are
# predicted from the ladder alone, and the prediction committed, before it is trained.
#
#     python sweep.py config/sweeps/scaling_heldout.py --parallel=2
out_dir = 'out-scaling'
configs = {
    'gpt2-7x448-p1': ('config/english_gpt2.py', {'n_layer': 7, 'n_head': 7, 'n_kv_head': 7, 'n_embd': 448,
                                                  'd_ff': 1792, 'max_iters': 1007, 'warmup_iters': 101,
                                                  'learning_rate': 1.87e-3, 'min_lr': 1.87e-4}),
    'llama-7x448-p1': ('config/english_llama.py', {'n_layer': 7, 'n_head': 7, 'n_kv_head': 7, 'n_embd': 448,
                                                    'd_ff': 1184, 'max_iters': 884, 'warmup_iters': 88,
                                                    'learning_rate': 1.87e-3, 'min_lr': 1.87e-4}),
}
grid = {'seed': [1]}
tuned = ''
eval_bpb = False
metric = 'val_bpb'
