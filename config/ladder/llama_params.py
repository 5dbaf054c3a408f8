# The component ladder (config/ladder/README.md), LLaMA matched to GPT-2 (rung 0) in parameters: tied embeddings, and SwiGLU
# d_ff 1080, whose 6 x 3 x 384 x 1080 MLP weights come nearest GPT-2's 6 x 2 x 384 x 1536 plus its
# 1024 x 384 position table (README.md's table has the counts).
# Every rung: config/english_gpt2.py's shape and recipe (6 layers x 384 wide, 6 heads of 64, context
# 1024, no biases; one pass over data/english_mix_gpt2, 1007 iterations of 32 x 1024 tokens, learning
# rate 2e-3) on GPT-2's tokenizer for all, so only the architecture changes. config/sweeps/english_compare.py
# passes --learning_rate, --min_lr, --seed and --out_dir.
out_dir = 'out-ladder-llama_params'
dataset = 'english_mix_gpt2'

arch = 'llama'
n_layer = 6
n_head = 6
n_kv_head = 6
n_embd = 384
d_ff = 1080
block_size = 1024
vocab_size = 50304
bias = False
dropout = 0.0
norm = 'rmsnorm'
position = 'rope'
mlp = 'swiglu'
tie_embeddings = True

batch_size = 32
gradient_accumulation_steps = 1
max_iters = 1007
learning_rate = 2e-3
min_lr = 2e-4
warmup_iters = 100
weight_decay = 0.1
beta1 = 0.9
beta2 = 0.95
grad_clip = 1.0

eval_interval = 200
eval_iters = 32
log_interval = 20
always_save_checkpoint = True
dtype = 'bfloat16'
compile = True
