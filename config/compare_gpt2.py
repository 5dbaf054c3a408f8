# The reference comparison (README.md, "The reference comparison"; reference/stdlib_comparison/run.sh runs
# it): gpt2 at the comparison's one small shape, 8 layers x 512 wide, 8 heads of 64, block 1024: 51,454,464
# parameters (50,930,176 in matmuls);
# GELU d_ff 2048, pre-norm LayerNorm, learned positions, tied embeddings, no biases; vocab_size 50304 = the tokenizer's 50257 padded to a multiple of 64.
# The same shape, recipe and bytes of text as config/compare_llama.py: only the architecture and its
# tokenizer differ. Data: data/stdlib_gpt2 (the Python standard library's sources, GPT-2's tokenizer; version 1 of the
# comparison, reference/stdlib_comparison, ran on stand-in tokenizers, and its max_iters with them).
# max_iters = 4 passes over the training split, so that both models read every training document 4
# times (the same bytes): ceil(4 x windows / 32) with Python 3.11.7's standard library (train.py prints
# the passes max_iters makes; another Python's library is another size: set max_iters to match).
# The runs pass --seed and --out_dir.
out_dir = 'out-compare-gpt2'
dataset = 'stdlib_gpt2'

arch = 'gpt2'
n_layer = 8
n_head = 8
n_kv_head = 8
n_embd = 512
d_ff = 2048
block_size = 1024
vocab_size = 50304
bias = False
dropout = 0.0

batch_size = 32
gradient_accumulation_steps = 1
max_iters = 1695
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
