# The component ladder from GPT-2 to LLaMA (config/ladder/README.md): each rung at its own best learning
# rate (4 rates a factor 2 apart x 3 seeds), then eval_bpb.py on every validation document. All rungs
# train on data/stdlib_gpt2 (one tokenizer) with the same seeds, so the same seed reads the same
# batches in every rung and the differences between rungs are paired.
#
#     python data/stdlib_gpt2/prepare.py
#     python sweep.py config/sweeps/ladder.py --parallel=4        # one GPU, four runs at a time
#     python sweep.py config/sweeps/ladder.py --summarize=True
#
# 7 configs x 4 rates x 3 seeds = 84 runs of 28.5M tokens each.
out_dir = 'out-sweep-ladder'
configs = {
    'gpt2': 'config/ladder/l0_gpt2.py',
    'untied': 'config/ladder/l1_untied.py',
    'rope': 'config/ladder/l2_rope.py',
    'swiglu': 'config/ladder/l3_swiglu.py',
    'llama': 'config/ladder/l4_llama.py',
    'llama_params': 'config/ladder/llama_params.py',
    'llama_flops': 'config/ladder/llama_flops.py',
}
grid = {'learning_rate': [5e-4, 1e-3, 2e-3, 4e-3], 'seed': [1, 2, 3]}
min_lr_ratio = 0.1
tuned = 'learning_rate'
eval_bpb = True
# each step of the ladder, the whole ladder, and GPT-2 against the two matched LLaMAs
comparisons = 'gpt2:untied,untied:rope,rope:swiglu,swiglu:llama,gpt2:llama,gpt2:llama_params,gpt2:llama_flops'
