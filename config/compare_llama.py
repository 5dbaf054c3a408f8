# The reference comparison (README.md, "The reference comparison"; reference/stdlib_comparison/run.sh runs
# it): llama at the comparison's one small shape, 8 layers x 512 wide, 8 heads of 64, block 1024: 60,039,680
# parameters (43,655,680 in matmuls);
# SwiGLU d_ff 1536 (8/3 x 512 rounded up to a multiple of 256), RMSNorm, RoPE, untied embeddings.
# The same shape, recipe and bytes of text as config/compare_gpt2.py: only the architecture and its
# tokenizer differ. Data: data/stdlib_llama (the Python standard library's sources, Llama-2's tokenizer; version 1 of the
# comparison, reference/stdlib_comparison, ran on stand-in tokenizers, and its max_iters with them).
# max_iters = 4 passes over the training split, so that both models read every training document 4
# times (the same bytes): ceil(4 x windows / 32) with Python 3.11.7's standard library (train.py prints
# the passes max_iters makes; another Python's library is another size: set max_iters to match).
# The runs pass --seed and --out_dir.
out_dir = 'out-compare-llama'
dataset = 'stdlib_llama'

arch = 'llama'
n_layer = 8
n_head = 8
n_kv_head = 8
n_embd = 512
d_ff = 1536
block_size = 1024
vocab_size = 32000
bias = False
dropout = 0.0

batch_size = 32
gradient_accumulation_steps = 1
max_iters = 1142
learning_rate = 1e-3
min_lr = 1e-4
warmup_iters = 100
weight_decay = 0.1
beta1 = 0.9
beta2 = 0.95
grad_clip = 1.0

eval_interval = 100
eval_iters = 16             # 16 x 32 windows cover the whole validation split: every run scores all of it
log_interval = 10
always_save_checkpoint = True
dtype = 'bfloat16'
compile = True
