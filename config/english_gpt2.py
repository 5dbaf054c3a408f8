# The reference comparison, version 2 (reference/english_mix/): gpt2 at a small shape on the mixed
# English corpus with the real GPT-2 tokenizer (data/english_mix_gpt2). 6 layers x 384 wide, 6 heads of
# 64, context 1024; GELU d_ff 1536 (4d), pre-norm LayerNorm, learned positions, tied embeddings, no
# biases; vocab_size 50304 = GPT-2's 50,257 ids padded to a multiple of 64. train.py prints the
# parameters and FLOPs a token.
# max_iters = one pass over the training split: ceil(32,195 windows / 32) = 1007 iterations, 33.0M
# tokens, every training document read once (data_order 'epoch').
# eval_iters 32 x 32 windows cover the whole validation split (997 windows): every evaluation scores it
# all. config/sweeps/english_lr.py passes --learning_rate, --min_lr, --seed and --out_dir.
out_dir = 'out-english-gpt2'
dataset = 'english_mix_gpt2'

arch = 'gpt2'
n_layer = 6
n_head = 6
n_kv_head = 6
n_embd = 384
d_ff = 1536
block_size = 1024
vocab_size = 50304
bias = False
dropout = 0.0

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
