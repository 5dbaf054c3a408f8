# The FP8 convergence check (perf/PERF_NOTES.md, "FP8"): a LLaMA of 154.7M parameters, trained twice from
# the same seed and data order, once in bf16 and once with --fp8=True, on the offline Python-source
# dataset (python data/python_stdlib/prepare.py: UTF-8 bytes; its size depends on the Python install,
# 10.7M training tokens where the check ran, whose Python had no test suite, up to ~28M with one).
# 12 layers x 1024 wide, 16 heads of 64, SwiGLU d_ff 2816 (every matmul dimension a multiple of 16,
# so all 48 block Linear layers train in FP8), RMSNorm, RoPE.
# 4,000 iterations of 8 x 1024 tokens = 32.8M tokens (3.2 passes over 10.7M tokens).
#
#     python train.py config/fp8_check_llama_150m.py --out_dir=out-fp8check-bf16
#     python train.py config/fp8_check_llama_150m.py --fp8=True --out_dir=out-fp8check-fp8
#     python plot_runs.py out-fp8check-bf16 out-fp8check-fp8 --out=plots-fp8check
out_dir = 'out-fp8check-bf16'
dataset = 'python_stdlib'

arch = 'llama'
n_layer = 12
n_head = 16
n_kv_head = 16
n_embd = 1024
d_ff = 2816
block_size = 1024
bias = False
dropout = 0.0
residual_dtype = 'compute'

batch_size = 8
gradient_accumulation_steps = 1
max_iters = 4000
learning_rate = 1e-3
min_lr = 1e-4
warmup_iters = 200
lr_decay_iters = 4000
weight_decay = 0.1
beta1 = 0.9
beta2 = 0.95
grad_clip = 1.0

eval_interval = 250
eval_iters = 40
log_interval = 20
device = 'cuda'
dtype = 'bfloat16'
compile = True
