# The fairer study before the 1.36B budget (TRAINING_GUIDE.md, section 11): LLaMA and GPT-2 at ~350M
# parameters, the same depth and width (config/sweep_llama_350m.py, config/sweep_gpt2_350m.py), 1.05B
# tokens a run, 3 learning rates x 2 seeds each, then eval_bpb.py on 2,000 validation documents.
#
#     python sweep.py config/sweeps/sweep_350m.py                # one run at a time on one GPU
#     python sweep.py config/sweeps/sweep_350m.py --gpus=0,1,2,3 # one run per GPU
#     python sweep.py config/sweeps/sweep_350m.py --summarize=True
#
# 2 configs x 3 rates x 2 seeds = 12 runs; add seeds at each one's best rate for an interval.
out_dir = 'out-sweep-350m'
configs = {
    'gpt2': 'config/sweep_gpt2_350m.py',
    'llama': 'config/sweep_llama_350m.py',
}
grid = {'learning_rate': [3e-4, 6e-4, 1.2e-3], 'seed': [1, 2]}
min_lr_ratio = 0.1
tuned = 'learning_rate'
eval_bpb = True
eval_args = {'max_docs': 2000}
comparisons = 'gpt2:llama'
