# GPT-2 ~356M for the learning-rate x seed sweep before the 1.36B runs (TRAINING_GUIDE.md, "Reading
# the comparison"): 24 layers x 1024 wide, 16 heads of 64, GELU d_ff 4096, pre-norm LayerNorm,
# learned positions, tied embeddings, no biases: 355,648,512 parameters, 302,039,040 of them in the
# blocks. The same depth and width as config/sweep_llama_350m.py, so that the two differ in their
# architecture choices and tokenizer, not in size. vocab_size 50304 = GPT-2's 50257 padded.
# 4,000 iterations of 8 x 16 x 2048 = 262,144 tokens = 1.05B tokens: about 85 minutes on one H100 at 55% MFU (an estimate, not measured).
# The sweep passes --learning_rate, --min_lr (a tenth of it), --seed and --out_dir.
out_dir = 'out-sweep-gpt2-350m'
dataset = 'slimpajama_6b_gpt2'

arch = 'gpt2'
n_layer = 24
n_head = 16
n_kv_head = 16
n_embd = 1024
d_ff = 4096
block_size = 2048
vocab_size = 50304
bias = False
dropout = 0.0
residual_dtype = 'compute'

batch_size = 8
gradient_accumulation_steps = 16
max_iters = 4000
learning_rate = 6e-4
min_lr = 6e-5
warmup_iters = 400
lr_decay_iters = 4000
weight_decay = 0.1
beta1 = 0.9
beta2 = 0.95
grad_clip = 1.0

eval_interval = 500
eval_iters = 100
log_interval = 10
dtype = 'bfloat16'
compile = True
