# A small gpt2 that trains on 2 CPU cores in a few minutes, on the offline default dataset
# (data/python_stdlib: the Python standard library's sources as bytes). The quick start:
#   python data/python_stdlib/prepare.py && python train.py config/quick_gpt2.py && python sample.py --out_dir=out-quick-gpt2
out_dir = 'out-quick-gpt2'
dataset = 'python_stdlib'
arch = 'gpt2'
n_layer = 4
n_head = 4
n_embd = 128
block_size = 128
dropout = 0.0

batch_size = 16
gradient_accumulation_steps = 1
max_iters = 600
learning_rate = 2e-3
min_lr = 2e-4
warmup_iters = 50
lr_decay_iters = 600
weight_decay = 0.1

eval_interval = 200
eval_iters = 20
log_interval = 20
device = 'cpu'
dtype = 'float32'
compile = False
