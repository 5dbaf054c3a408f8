# LLaMA 1.36B on SlimPajama-6B (LLaMA-2 tokenizer): 18 layers x 2304 wide, 18 heads of 128,
# SwiGLU d_ff 6144, RMSNorm, RoPE, untied embeddings: 1,294,159,104 parameters (config/ARCH_LLAMA.md).
# One optimizer step = batch_size x gradient_accumulation_steps x block_size = 8 x 16 x 2048
# = 262,144 tokens, whatever the GPU count; 25,000 iterations = 6.55B tokens, about one pass over
# SlimPajama-6B (data_order 'epoch': every training window once a pass; train.py prints the passes).
#   python train.py config/full_llama_1.36b.py
#   torchrun --standalone --nproc_per_node=4 train.py config/full_llama_1.36b.py
out_dir = 'out-llama-1.36b'
dataset = 'slimpajama_6b_llama'

arch = 'llama'
n_layer = 18
n_head = 18
n_kv_head = 18
n_embd = 2304
d_ff = 6144
block_size = 2048
vocab_size = 32000
bias = False
dropout = 0.0
# the residual stream in bf16 under autocast (Megatron-LM's default); fp32 master weights and fp32
# norm arithmetic stay. Measured on one H100: +1.4 MFU points and 2.5 GiB less peak memory (perf/PERF_NOTES.md).
residual_dtype = 'compute'

batch_size = 8
gradient_accumulation_steps = 16
max_iters = 25000
learning_rate = 3e-4
min_lr = 3e-5
warmup_iters = 2000
lr_decay_iters = 25000
weight_decay = 0.1
beta1 = 0.9
beta2 = 0.95
grad_clip = 1.0

eval_interval = 1000
eval_iters = 100
log_interval = 10
dtype = 'bfloat16'
compile = True
