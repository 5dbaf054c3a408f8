# The reference comparison, version 2, step 3b (reference/english_mix/): the ladder's two largest steps'
# rungs, RoPE and SwiGLU, of the component ladder (config/sweeps/english_ladder.py ran every rung at 2e-3, the two ends' best) at the rates either
# side of it, 1e-3 and 4e-3, with seeds 1 and 2, then eval_bpb.py. With the ladder's 2e-3 runs of the
# same seeds, reference/english_mix/ladder_lr.py picks each rung's own best rate by compare.py's rule and
# compares the rungs best against best. The two ends' rates were swept in step 1 (english_lr.py).
#
#     python sweep.py config/sweeps/english_ladder_lr.py --parallel=8
#     python reference/english_mix/ladder_lr.py --ladder_dir=out-english-compare --rates_dir=out-english-ladder-lr
#
# 2 configs x 2 rates x 2 seeds = 8 runs.
out_dir = 'out-english-ladder-lr'
configs = {
    'rope': 'config/ladder/l2_rope.py',
    'swiglu': 'config/ladder/l3_swiglu.py',
}
grid = {'learning_rate': [1e-3, 4e-3], 'seed': [1, 2]}
min_lr_ratio = 0.1
tuned = 'learning_rate'
eval_bpb = True
comparisons = 'rope:swiglu'
