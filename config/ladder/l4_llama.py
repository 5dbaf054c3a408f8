# The component ladder (config/ladder/README.md), rung 4: rung 3 with RMSNorm instead of LayerNorm, which
# makes it LLaMA (the llama preset at d_ff 1344 instead of its rule's 1536): 76,423,680 parameters,
# 0.3543 GFLOP a token (0.44% below GPT-2's).
# Every rung: 8 layers x 512 wide, 8 heads of 64, context 1024, no biases, on data/stdlib_gpt2 (one
# tokenizer for all: only the architecture changes) with config/compare_gpt2.py's recipe (871 iterations
# of 32 x 1024 tokens, 4 passes). config/sweeps/ladder.py passes --learning_rate, --min_lr, --seed, --out_dir.
out_dir = 'out-ladder-llama'
dataset = 'stdlib_gpt2'

arch = 'llama'
n_layer = 8
n_head = 8
n_kv_head = 8
n_embd = 512
d_ff = 1344
block_size = 1024
vocab_size = 50304
bias = False
dropout = 0.0
norm = 'rmsnorm'
position = 'rope'
mlp = 'swiglu'
tie_embeddings = False

batch_size = 32
gradient_accumulation_steps = 1
max_iters = 871
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
