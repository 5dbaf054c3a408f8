"""
Train a LLaMA- or GPT-2-style model, on one process or under torchrun (DDP, ZeRO-1, FSDP2).

    python train.py config/quick_llama.py
    python train.py config/full_llama_1.36b.py --batch_size=4 --max_iters=5000
    torchrun --standalone --nproc_per_node=4 train.py config/full_gpt2_1.36b.py --use_zero1=True
    python train.py config/full_llama_1.36b.py --init_from=resume --eval_only=True

The globals below are the defaults; a config file and --key=value overrides replace them
(configurator.py). Read top to bottom: defaults, setup (distributed, device, data, model,
optimizer), the training step, checkpoints and logs, the loop. How the model is spread over devices
(DDP, ZeRO-1, FSDP2, torch.compile, FP8, activation checkpointing) is parallelize.py's; the run
log's format is runlog.py's; the checkpoint's is checkpoint.py's.

Two names recur: `c` is the effective configuration (parse_config: a namespace of the keys below),
and `t` is a Training (setup()'s result: c, the ranks, device, data, model and optimizer).
A micro-step is one forward and backward of batch_size rows; gradient_accumulation_steps of them,
summed over all ranks, make one optimizer step (an iteration).
"""

import contextlib
import math
import os
import resource
import signal
import time
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Optional


# fewer, growable CUDA memory segments: less fragmentation (reserved closer to allocated)
os.environ.setdefault('PYTORCH_CUDA_ALLOC_CONF', 'expandable_segments:True')
import torch  # noqa: E402  (after the allocator setting, which is read when CUDA starts)

import bpb
from checkpoint import (best_val_loss, checkpoint_paths, last_eval_iter, load_latest, load_model_state,
                        restore_training_state, resume_fields, save_checkpoint, tokens_trained, training_state,
                        windows_read)
from configurator import (COMPILE_MODES, DEVICE, DTYPES, Configurator, UserError, annotation_types, check_device,
                          format_config, run_cli)
from flops_parameter_counting.detailed_cost_analysis import train_memory_estimate
from gpu_specs import peak_tflops as gpu_peak_tflops
from loader import ORDERS, Batches, TokenBatches, check_vocabulary, load_meta, resolve_dataset
from model import MODEL_FIELDS, ModelConfig, Transformer
from model_config import CHOICES as MODEL_CHOICES
from parallelize import build_optimizer, check_fp8, fp8_scales_after_step, parallelize
from runlog import RunLog

# -----------------------------------------------------------------------------
# defaults: every key here can be set by a config file or --key=value
# I/O
out_dir = 'out'              # folder of ckpt.pt and the run logs (run_*.json)
eval_interval = 2000         # evaluate, and save a checkpoint, every this many iterations
log_interval = 1             # a log line every this many iterations
eval_iters = 200             # batches per split in each evaluation, shared over the ranks
eval_only = False            # load (init_from), evaluate train and val, print and log, write no checkpoint
eval_at_start = False        # evaluate before the first step (as nanoGPT does at iteration 0)
always_save_checkpoint = True  # save at every evaluation; False: ckpt.pt keeps the best, the latest state goes to ckpt_last.pt
init_from = 'scratch'        # 'scratch' | 'resume' (from out_dir/ckpt.pt, or ckpt_last.pt where that is later)
overwrite = False            # allow a scratch run to replace a run whose out_dir holds a checkpoint
# logging
wandb_log = False            # log to Weights & Biases (pip install wandb)
wandb_project = 'llm-pretrain'  # the W&B project the run goes to
wandb_run_name = 'run'       # the W&B run's name
tensorboard_log = False      # event files under out_dir/tensorboard
# data
dataset = 'python_stdlib'    # a folder under data/, or a path to a folder with train.bin, val.bin, meta.pkl
gradient_accumulation_steps = 1  # micro-steps per optimizer step, summed over all ranks (nanoGPT's meaning)
batch_size = 12              # micro-batch size per rank
data_order = 'epoch'         # 'epoch': each pass reads every training window once, in a seeded order; 'random': with replacement
# model (every ModelConfig field; None = the arch preset's value; vocab_size None = the dataset's)
arch = 'llama'               # 'llama' | 'gpt2': the preset that fills the model keys left at None
n_layer = 12                 # Transformer blocks
n_head = 12                  # attention heads (head size n_embd / n_head)
n_kv_head = None             # None = n_head; fewer = grouped-query attention
n_embd = 768                 # model width: the residual stream's size
d_ff = None                  # MLP hidden size; None = the preset's rule
block_size = 1024            # context length in tokens: each training row is block_size targets
vocab_size = None            # None = the dataset's (meta.pkl); larger pads it (50257 -> 50304)
bias = None                  # biases in linear layers and LayerNorm
dropout = 0.0                # dropout on attention and residual branches (0 for pretraining)
norm = None                  # 'rmsnorm' | 'layernorm'
norm_eps = None              # the norms' epsilon
norm_placement = None        # 'pre' | 'post'
position = None              # 'rope' | 'learned'
rope_theta = None            # RoPE's base (position='rope')
mlp = None                   # 'swiglu' | 'gelu'
tie_embeddings = None        # the output layer shares the input embedding's matrix
residual_dtype = None        # 'float32' (preset) | 'compute': the residual stream in autocast's dtype
# AdamW
learning_rate = 6e-4         # peak learning rate, after warmup
max_iters = 600000           # optimizer steps in all
weight_decay = 0.1           # AdamW decay of the matmul weights (not norms, biases or untied embeddings)
beta1 = 0.9                  # AdamW's first-moment decay
beta2 = 0.95                 # AdamW's second-moment decay
grad_clip = 1.0              # 0 disables clipping (the norm is still measured and logged)
# learning rate schedule: linear warmup, then cosine decay to min_lr at lr_decay_iters
decay_lr = True              # False: learning_rate throughout, no warmup or decay
warmup_iters = 2000          # iterations of linear warmup to learning_rate
lr_decay_iters = None        # None = max_iters
min_lr = 6e-5                # the learning rate at lr_decay_iters and after
# system
backend = 'nccl'             # process group backend on GPU; off the GPU it is always gloo
device = 'cuda'              # 'cuda', 'cuda:1', 'cpu', 'mps'
dtype = 'bfloat16'           # autocast dtype on GPU: 'bfloat16' | 'float16' (GradScaler) | 'float32'
compile = True               # torch.compile the model
compile_mode = 'default'     # torch.compile mode: 'default' | 'max-autotune-no-cudagraphs' | 'max-autotune' | 'reduce-overhead'
seed = 1337                  # initial weights and the order of the batches
use_zero1 = False            # shard AdamW state across ranks (ZeroRedundancyOptimizer)
use_fsdp = False             # shard parameters, gradients and optimizer state (FSDP2 fully_shard)
activation_checkpointing = False  # recompute each block in backward: less memory, ~1/3 more compute
activation_memory_budget = 1.0    # with compile, below 1: torch.compile keeps about this fraction of the activations and recomputes the cheapest rest (pointwise first) in backward
fp8 = False                  # the blocks' Linear layers in FP8 (torchao float8, tensorwise scaling): Hopper/Ada GPUs, pip install torchao
attention_backend = 'auto'   # SDPA kernel on GPU: 'auto' (PyTorch's choice) | 'flash' | 'cudnn' | 'efficient' | 'math'
peak_tflops = None           # the device's dense peak in TFLOP/s, for MFU on GPUs the table lacks
max_nonfinite_steps = 5      # stop after this many optimizer steps in a row with a non-finite grad norm
memory_check = True          # refuse a run whose estimated peak memory (the cost tool's model) exceeds the device's
# -----------------------------------------------------------------------------
DEFAULTS = {k: v for k, v in dict(globals()).items()
            if not k.startswith('_') and isinstance(v, (int, float, bool, str, type(None)))}
assert set(MODEL_FIELDS) <= set(DEFAULTS), "every ModelConfig field is a config key"
KEY_TYPES = {**annotation_types(ModelConfig), 'vocab_size': int, 'lr_decay_iters': int, 'peak_tflops': float}
# the allowed values of the string keys, checked as the configuration is read (out_dir, dataset and the
# W&B names are free text); the model's are model_config.py's
CHOICES = {**MODEL_CHOICES, 'init_from': ('scratch', 'resume'), 'data_order': ORDERS, 'backend': ('nccl', 'gloo'),
           'device': DEVICE, 'dtype': DTYPES, 'compile_mode': COMPILE_MODES,
           'attention_backend': ('auto', 'flash', 'cudnn', 'efficient', 'math')}


def parse_config(argv, extra_defaults=None):
    """The effective configuration as a namespace, and the keys the user set. extra_defaults: keys
    of a script that shares train.py's (bench.py)."""
    defaults = {**DEFAULTS, **(extra_defaults or {})}
    configurator = Configurator(defaults, KEY_TYPES, CHOICES)
    c = SimpleNamespace(**configurator.parse(argv))
    c.user_set = dict(configurator.assigned)  # key -> where: a config file or --key=value, even at the default
    return c


# -----------------------------------------------------------------------------
# setup

@dataclass
class Ranks:
    """The processes of this run: torchrun sets RANK/WORLD_SIZE/LOCAL_RANK; without them, one."""
    enabled: bool = False    # under torchrun (a process group exists)
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    local_micro_steps: int = 1  # this rank's share of the micro-steps (gradient_accumulation_steps / world_size)

    @property
    def master(self):        # rank 0 logs and writes
        return self.rank == 0


@dataclass
class Device:
    """Where and in what precision the model trains."""
    type: str                # 'cuda' | 'cpu' | 'mps'
    dtype: str               # the training precision in effect: 'float32' | 'bfloat16' | 'float16'
    ptdtype: torch.dtype
    autocast: object         # the context every forward runs in


def setup_ranks(c):
    ranks = Ranks(enabled='RANK' in os.environ and 'LOCAL_RANK' in os.environ)
    if c.use_zero1 and c.use_fsdp:
        raise UserError("use_zero1 and use_fsdp are exclusive: FSDP2 already shards the optimizer state")
    if ranks.enabled:
        ranks.rank, ranks.local_rank = int(os.environ['RANK']), int(os.environ['LOCAL_RANK'])
        ranks.world_size = int(os.environ['WORLD_SIZE'])
    if c.gradient_accumulation_steps % ranks.world_size:
        raise UserError(f"gradient_accumulation_steps ({c.gradient_accumulation_steps}) must be divisible by the "
                        f"number of processes ({ranks.world_size}): it counts micro-steps over all ranks, e.g. "
                        f"--gradient_accumulation_steps={ranks.world_size * max(1, c.gradient_accumulation_steps // ranks.world_size)}")
    ranks.local_micro_steps = c.gradient_accumulation_steps // ranks.world_size
    return ranks


def setup_device(c, ranks):
    check_device(c.device)  # one line where this machine lacks it (no CUDA GPU, cuda:N past the GPUs, no MPS)
    device_type = 'cuda' if c.device.startswith('cuda') else c.device.split(':')[0]
    if c.fp8:
        check_fp8(c, device_type)
    if device_type != 'cuda':
        c.backend = 'gloo'  # off the GPU; the effective configuration shows the backend in use
    if ranks.enabled:
        if device_type == 'cuda':
            c.device = f'cuda:{ranks.local_rank}'
            torch.cuda.set_device(c.device)
        torch.distributed.init_process_group(backend=c.backend)
    train_dtype = c.dtype if device_type == 'cuda' else 'float32'  # fp32 off the GPU
    if device_type == 'cuda' and c.attention_backend in ('flash', 'cudnn') and train_dtype == 'float32':
        raise UserError(f"attention_backend={c.attention_backend!r} runs only in bfloat16 or float16: use "
                        f"--dtype=bfloat16, or --attention_backend=auto for float32")
    if device_type == 'cuda' and c.attention_backend != 'auto':  # only the chosen kernel may run
        torch.backends.cuda.enable_flash_sdp(c.attention_backend == 'flash')
        torch.backends.cuda.enable_cudnn_sdp(c.attention_backend == 'cudnn')
        torch.backends.cuda.enable_mem_efficient_sdp(c.attention_backend == 'efficient')
        torch.backends.cuda.enable_math_sdp(c.attention_backend == 'math')
    if device_type == 'cuda':
        torch.backends.cuda.matmul.allow_tf32 = True  # fp32 matmuls that remain (outside autocast) use TF32
        torch.backends.cudnn.allow_tf32 = True
        if train_dtype == 'bfloat16' and not torch.cuda.is_bf16_supported():
            raise UserError("this GPU does not support bfloat16: use --dtype=float16")
    ptdtype = {'float32': torch.float32, 'bfloat16': torch.bfloat16, 'float16': torch.float16}[train_dtype]
    # autocast keeps fp32 master weights and runs matmuls in bf16/fp16; the model is never cast wholesale
    autocast = (contextlib.nullcontext() if train_dtype == 'float32'
                else torch.autocast(device_type=device_type, dtype=ptdtype))
    return Device(type=device_type, dtype=train_dtype, ptdtype=ptdtype, autocast=autocast)


def model_config(c, ckpt_args=None, dataset_vocab=None):
    """ModelConfig from the config's model keys; on resume the checkpoint's, which keys the user set
    must agree with."""
    if ckpt_args is not None:
        resolved = ModelConfig(**ckpt_args)
        for key in MODEL_FIELDS:
            if key in c.user_set and getattr(c, key) is not None and getattr(c, key) != getattr(resolved, key):
                raise UserError(f"{key}={getattr(c, key)!r} ({c.user_set[key]}) disagrees with the checkpoint's "
                                f"{key}={getattr(resolved, key)!r}: resume with the run's own settings (--{key}="
                                f"{getattr(resolved, key)!r}), or train a new run in another out_dir")
        return resolved
    args = {k: getattr(c, k) for k in MODEL_FIELDS}
    if args['vocab_size'] is None:
        args['vocab_size'] = dataset_vocab
    try:
        return ModelConfig(**args)
    except ValueError as e:
        raise UserError(str(e)) from None


RUN_KEYS = ('seed', 'data_order', 'dataset')  # with the model's: what fixes the windows a run reads, and when


def resume_settings(c, done):
    """On resume, the keys that fix the run's data order, against the checkpoint's configuration
    (done): one the user set must agree with it (with another seed, data order or dataset the rest of
    a pass would read some windows twice and skip as many), even at train.py's default; one left unset
    takes the checkpoint's value. eval_only trains nothing: there the user's values stand."""
    for key in RUN_KEYS:
        if key not in done:
            continue
        if key not in c.user_set:
            setattr(c, key, done[key])
            continue
        agrees = getattr(c, key) == done[key] or (key == 'dataset' and same_dataset(c.dataset, done[key]))
        if not agrees and not c.eval_only:
            raise UserError(f"{key}={getattr(c, key)!r} ({c.user_set[key]}) disagrees with the checkpoint's "
                            f"{key}={done[key]!r}: resume with the run's own settings (--{key}={done[key]!r}), "
                            f"or train a new run in another out_dir")


def same_dataset(a, b):
    """Two names of one dataset folder ('python_stdlib' and data/python_stdlib)."""
    try:
        return os.path.realpath(resolve_dataset(a)) == os.path.realpath(resolve_dataset(b))
    except UserError:
        return False


def check_memory(c, mconf, ranks, dev, start_iter=0):
    """Refuse a training run whose estimated peak memory per process (the cost tool's model of this
    step) exceeds the device's, before anything is built or written: a run too big for the CPU would
    otherwise run until the kernel kills it. The device's memory: the whole GPU's (not what is free
    now: the GPU may be shared); on the CPU the machine's physical memory, shared by its processes (a
    fixed bound: MemAvailable would refuse runs that fit once other work ends). mps, a size not known,
    a model the tool does not count, a run with no training step (eval_only, max_iters at or below the
    iteration it starts from: it evaluates at most, which needs no gradients, optimizer states or
    saved activations): no check."""
    if not c.memory_check or c.eval_only or c.max_iters <= start_iter or dev.type not in ('cuda', 'cpu'):
        return
    est = train_memory_estimate(mconf.to_dict(), c.batch_size, ranks.world_size, dev.type, dev.dtype, c.use_zero1,
                                c.use_fsdp, c.activation_checkpointing, c.activation_memory_budget, c.compile)
    if est is None:
        return
    if dev.type == 'cuda':
        total, where, procs = (torch.cuda.get_device_properties(c.device).total_memory,
                               f"the memory of {torch.cuda.get_device_name(c.device)}", 1)
    else:
        try:
            total = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')
        except (AttributeError, ValueError, OSError):  # not known here (Windows, an unusual Unix)
            return
        where, procs = "this machine's memory", int(os.environ.get('LOCAL_WORLD_SIZE', 1))
    if est['peak'] * procs <= total:
        return
    gib = 2 ** 30
    if est['activations'] >= est['weights and optimizer']:
        biggest = f"activations {est['activations'] / gib:.1f} GiB"
        fix = f"lower --batch_size ({c.batch_size}) or --block_size ({mconf.block_size})" + (
            "" if c.activation_checkpointing else ", or add --activation_checkpointing=True")
    else:
        biggest = f"weights, gradients and optimizer state {est['weights and optimizer'] / gib:.1f} GiB"
        fix = "shard them with --use_fsdp=True over more GPUs (torchrun), or train a smaller model"
    raise UserError(f"estimated peak memory {est['peak'] / gib:.1f} GiB per process"
                    + (f" x {procs} processes" if procs > 1 else "")
                    + f" ({biggest}) exceeds {where} ({total / gib:.1f} GiB): {fix}; "
                    f"--memory_check=False runs it anyway")


def get_lr(it, c):
    """Linear warmup for warmup_iters, then cosine decay to min_lr at lr_decay_iters."""
    if not c.decay_lr:
        return c.learning_rate
    decay_iters = c.lr_decay_iters or c.max_iters
    if it < c.warmup_iters:
        return c.learning_rate * (it + 1) / (c.warmup_iters + 1)
    if it >= decay_iters:
        return c.min_lr
    ratio = (it - c.warmup_iters) / max(1, decay_iters - c.warmup_iters)
    return c.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (c.learning_rate - c.min_lr)


# -----------------------------------------------------------------------------
# the training step, shared with bench.py

def train_step(t, iter_num):
    """One optimizer step: t.ranks.local_micro_steps forward/backward passes on this rank, clip, step.
    Returns (mean loss over this rank's micro-steps, grad norm, stepped), the first two as device
    tensors: nothing here waits for the GPU except the finiteness check of the grad norm."""
    c, ranks, model, scaler = t.config, t.ranks, t.model, t.scaler
    loss_sum = torch.zeros((), device=c.device)
    # rank r reads global micro-steps r, r + W, r + 2W, ...: the same set of batches for any W
    steps = [ranks.rank + k * ranks.world_size for k in range(ranks.local_micro_steps)]
    x, y = t.batches.batch('train', iter_num, steps[0])
    for k in range(ranks.local_micro_steps):
        last = k == ranks.local_micro_steps - 1
        # DDP: no gradient all-reduce until the last micro-step; the context covers forward and backward
        sync = contextlib.nullcontext() if last or not hasattr(model, 'no_sync') else model.no_sync()
        with sync:
            with t.device.autocast:
                _, loss = model(x, y, return_logits=False)
                loss = loss / ranks.local_micro_steps
            if not last:  # fetch the next micro-batch while the GPU works on this one
                x, y = t.batches.batch('train', iter_num, steps[k + 1])
            scaler.scale(loss).backward()
        loss_sum += loss.detach()
    scaler.unscale_(t.optimizer)
    # measured before the gradients are cleared; with grad_clip 0 the norm is only measured
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), c.grad_clip if c.grad_clip > 0 else float('inf'))
    if hasattr(grad_norm, 'full_tensor'):  # FSDP2: a replicated DTensor
        grad_norm = grad_norm.full_tensor()
    # the same on every rank: the norm is of the reduced gradients
    stepped = bool(torch.isfinite(grad_norm).item())
    if t.device.dtype == 'float16':
        scaler.step(t.optimizer)  # skips the step itself on inf/nan, and lowers the scale
        scaler.update()
    elif stepped:
        t.optimizer.step()
    if c.fp8 and c.use_fsdp:
        fp8_scales_after_step(model)
    t.optimizer.zero_grad(set_to_none=True)
    return loss_sum, grad_norm, stepped


@torch.no_grad()
def evaluate(t):
    """Mean loss on the fixed evaluation batches of each split (loader.py: eval_iters batches of the
    training split; a sample of distinct validation windows, each counted once) and, where the dataset
    has a byte table, the validation split's bits per byte, overall and per source. The batches are
    shared over the ranks, and every rank runs the same number of forward passes (FSDP2 gathers
    weights in each one, so the ranks must agree): surplus passes, and the padding rows of a short last
    batch, count zero.

    Bits per byte as bpb.py defines them (targets of 0 bytes, the special tokens, left out); the loss
    per token counts every target."""
    c, ranks, model = t.config, t.ranks, t.model
    model.eval()
    out = {}
    names = t.batches.source_names()
    for split in ('train', 'val'):
        batches = t.batches.eval_batches(split)
        rounds = -(-batches // ranks.world_size)
        total = torch.zeros(2, device=c.device, dtype=torch.float64)  # loss sum, targets
        per_byte = bpb.zeros(len(names), c.device)  # nats, bytes, tokens of each source
        scored = split == 'val' and t.batches.byte_table() is not None
        for index in range(ranks.rank, rounds * ranks.world_size, ranks.world_size):
            x, y, rows = t.batches.eval_batch(split, min(index, batches - 1))
            rows = rows if index < batches else 0
            with t.device.autocast:
                _, nll = model(x, y, return_logits=False, reduction='none')
            nll = nll.double().view(x.shape[0], -1)[:rows].reshape(-1)
            total[0] += nll.sum()
            total[1] += rows * x.shape[1]
            if scored:
                nbytes, source = (v[:rows] for v in t.batches.eval_targets(split, min(index, batches - 1)))
                bpb.accumulate(per_byte, nll, nbytes, source)
        if ranks.enabled:
            torch.distributed.all_reduce(total)
            torch.distributed.all_reduce(per_byte)
        out[split] = (total[0] / total[1]).item()
        if scored:
            out.update(bpb.summary(per_byte, names))
    model.train()
    return out


# -----------------------------------------------------------------------------
# logs

def open_trackers(c, config_dict, master):
    """Optional W&B and TensorBoard; a missing package is a clear message, checked before any work."""
    trackers = []
    if c.wandb_log:
        try:
            import wandb
        except ImportError:
            raise UserError("wandb_log=True needs the wandb package: pip install wandb (or --wandb_log=False)") from None
        if master:
            wandb.init(project=c.wandb_project, name=c.wandb_run_name, config=config_dict)
            trackers.append(lambda record, step: wandb.log(record, step=step))
    if c.tensorboard_log:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UserError("tensorboard_log=True needs the tensorboard package: pip install tensorboard") from None
        if master:
            writer = SummaryWriter(os.path.join(c.out_dir, 'tensorboard'))
            def log_tb(record, step):
                for key, value in record.items():
                    if isinstance(value, (int, float)) and key != 'iter':
                        writer.add_scalar(key, value, step)
                writer.flush()
            trackers.append(log_tb)
    return trackers


class StopRequest:
    """SIGTERM / SIGINT: finish the optimizer step in flight, save, exit 0."""

    def __init__(self):
        self.signal = None
        signal.signal(signal.SIGTERM, self.handle)
        signal.signal(signal.SIGINT, self.handle)

    def handle(self, signum, frame):
        self.signal = signal.Signals(signum).name

    def requested(self, ranks, dev):
        if not ranks.enabled:
            return self.signal is not None
        flag = torch.tensor([1.0 if self.signal else 0.0], device=dev.type if dev.type == 'cuda' else 'cpu')
        torch.distributed.all_reduce(flag)  # every rank stops at the same step
        return flag.item() > 0


def format_duration(seconds):
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


# -----------------------------------------------------------------------------

@dataclass
class Training:
    """One run's parts, as setup() builds them and every later step uses them; `t` in this file and
    bench.py (its `c` is t.config, the configuration namespace)."""
    config: SimpleNamespace  # the effective configuration: the keys at the top of this file, and user_set
    ranks: Ranks
    device: Device
    mconf: ModelConfig
    meta: dict               # the dataset's meta.pkl (bench.py: the vocabulary alone)
    batches: Batches
    raw_model: Transformer   # the plain model: its state dict is the checkpoint's
    model: torch.nn.Module   # what trains: compiled, wrapped in DDP, or sharded by FSDP2
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    ckpt_path: str
    ckpt: Optional[dict]     # the small fields of the checkpoint resumed from (no tensors), or None
    load_seconds: Optional[float]
    peak_tflops: Optional[float]

    @property
    def tokens_per_iter(self):
        c = self.config
        return c.gradient_accumulation_steps * c.batch_size * c.block_size


@dataclass
class RunState:
    """What changes as the loop runs (iter_num and best_val_loss are saved in the checkpoint)."""
    iter_num: int
    best_val_loss: float
    start_iter: int
    tokens: int = 0           # tokens of the optimizer steps taken: the batch may change on resume
    last_eval_iter: int = -1  # a run stopped on an evaluation iteration before evaluating resumes with it
    nonfinite_in_row: int = 0
    nonfinite_total: int = 0
    written: set = field(default_factory=set)  # the checkpoint files this process wrote


def setup(c, make_batches=None):
    """Everything before the loop. Validates all input before anything is written to disk.
    make_batches(c, mconf): bench.py's synthetic batches instead of the config's dataset."""
    for key in ('batch_size', 'gradient_accumulation_steps', 'eval_interval', 'eval_iters', 'log_interval'):
        if getattr(c, key) < 1:
            raise UserError(f"{key} must be a positive integer, got {getattr(c, key)}")
    if c.max_iters < 0:  # 0 trains nothing: the checkpoint of the initial weights, evaluated with eval_at_start
        raise UserError(f"max_iters is the number of optimizer steps in all, 0 or more, got {c.max_iters}")
    if not 0 < c.activation_memory_budget <= 1:
        raise UserError(f"activation_memory_budget is the fraction of activations kept, in (0, 1], got "
                        f"{c.activation_memory_budget}")
    if c.activation_memory_budget < 1 and not c.compile:
        raise UserError("activation_memory_budget < 1 works through torch.compile: add --compile=True, or use "
                        "--activation_checkpointing=True without compile")
    ranks = setup_ranks(c)
    dev = setup_device(c, ranks)
    if c.init_from not in ('scratch', 'resume'):
        raise UserError(f"init_from must be 'scratch' or 'resume', got {c.init_from!r}")
    ckpt_path, ckpt = checkpoint_paths(c.out_dir)[0], None
    if c.eval_only and c.init_from != 'resume':
        raise UserError(f"eval_only evaluates a checkpoint: add --init_from=resume to evaluate {ckpt_path}")
    t_load = time.time()
    if c.init_from == 'resume':  # the latest state: ckpt_last.pt where it is newer than ckpt.pt (checkpoint.py)
        ckpt_path, ckpt = load_latest(c.out_dir, log=print if ranks.master else lambda *a: None)
        resume_settings(c, ckpt['config'])
    elif any(os.path.exists(path) for path in checkpoint_paths(c.out_dir)) and not c.overwrite and not c.eval_only:
        raise UserError(f"{c.out_dir} already holds a checkpoint: resume it with --init_from=resume, choose "
                        f"another --out_dir, or start over with --overwrite=True")
    if make_batches is None:  # the dataset named by the config
        data_dir = resolve_dataset(c.dataset)
        meta = load_meta(data_dir)
    else:
        data_dir, meta = None, {'vocab_size': c.vocab_size}
    mconf = model_config(c, ckpt['model_args'] if ckpt else None, meta['vocab_size'])
    for key in MODEL_FIELDS:  # the effective configuration shows the resolved model
        setattr(c, key, getattr(mconf, key))
    check_memory(c, mconf, ranks, dev, ckpt['iter_num'] if ckpt else 0)
    if make_batches is None:
        if ckpt is not None:  # the checkpoint fixes the model's vocabulary: the dataset must fit it
            check_vocabulary(data_dir, meta['vocab_size'], mconf.vocab_size, ckpt['config'].get('dataset') or '')
        batches = TokenBatches(data_dir, c.batch_size, mconf.block_size, c.seed, c.device, mconf.vocab_size, meta=meta,
                               order=c.data_order, micro_steps=c.gradient_accumulation_steps, eval_iters=c.eval_iters)
        if ckpt is not None:
            batches.start(ckpt['iter_num'], windows_read(ckpt))
    else:
        batches = make_batches(c, mconf)

    torch.manual_seed(c.seed)  # the same initial weights on every rank
    raw_model = Transformer(mconf)
    if ckpt is not None:
        load_model_state(raw_model, ckpt['model'], ckpt_path)
    raw_model.to(c.device)
    model = parallelize(raw_model, c, ranks, dev)
    optimizer = build_optimizer(raw_model, c, dev)
    scaler = torch.amp.GradScaler(dev.type, enabled=dev.dtype == 'float16')
    if ranks.rank:  # dropout: each rank its own random stream (the weights above are the same everywhere)
        torch.manual_seed(c.seed + ranks.rank)
    if ckpt is not None:
        restore_training_state(ckpt, optimizer, scaler, ranks.rank, ranks.world_size, c.seed)
        ckpt = resume_fields(ckpt)
    peak = c.peak_tflops or (gpu_peak_tflops(torch.cuda.get_device_name(c.device)) if dev.type == 'cuda' else None)
    return Training(config=c, ranks=ranks, device=dev, mconf=mconf, meta=meta, batches=batches, raw_model=raw_model,
                   model=model, optimizer=optimizer, scaler=scaler, ckpt_path=ckpt_path, ckpt=ckpt,
                   load_seconds=time.time() - t_load if ckpt is not None else None, peak_tflops=peak)


# -----------------------------------------------------------------------------
# what the loop calls: the run's description, evaluation, checkpoints, progress

def describe_run(t, config_dict, log):
    c, dev = t.config, t.device
    log(format_config(config_dict, DEFAULTS))
    log(f"model: {c.arch}, {t.raw_model.num_params():,} parameters ({t.raw_model.num_matmul_params():,} in matmuls)")
    log(f"tokens per iteration: {t.tokens_per_iter:,} = {c.gradient_accumulation_steps} micro-steps x "
        f"{c.batch_size} x {c.block_size} over {t.ranks.world_size} process(es); "
        f"FLOPs per token: {t.raw_model.flops_per_token(c.block_size) / 1e9:.3f} GFLOP (6N + 12LHQT)")
    log(f"device: {device_name(t)} x {t.ranks.world_size}, {dev.dtype}, peak "
        + (f"{t.peak_tflops:g} TFLOP/s dense bf16 per device" if t.peak_tflops else "unknown (no MFU; set peak_tflops)")
        + (f" (dtype {c.dtype} applies on GPU; {dev.type} trains in float32)" if dev.dtype != c.dtype else ""))
    if c.data_order == 'epoch':
        n = t.batches.num_windows('train')
        log(f"data: one pass over the training split = {n:,} windows of {c.block_size} targets = "
            f"{-(-n // (c.gradient_accumulation_steps * c.batch_size)):,} iterations, read in a seeded order"
            + (f"; max_iters makes {t.batches.epochs(c.max_iters):.2f} passes" if c.max_iters and not c.eval_only else ""))
    if t.ckpt:
        log(f"resuming from {t.ckpt_path}: iter {t.ckpt['iter_num']}, {tokens_trained(t.ckpt):,} tokens trained, "
            f"loaded in {t.load_seconds:.1f}s")


def train_bytes_per_token(meta):
    """UTF-8 bytes of text per token of the training split (meta.pkl's stats), or None: the factor
    from tokens seen to bytes of text seen."""
    every = ((meta.get('stats') or {}).get('train') or {}).get('all') or {}
    return every['bytes'] / every['tokens'] if every.get('tokens') else None


def device_name(t):
    return torch.cuda.get_device_name(t.config.device) if t.device.type == 'cuda' else t.config.device


def open_run_log(t, config_dict, start_iter):
    """Rank 0's run log: the checkpoint's, continued, on resume; a new one otherwise."""
    c = t.config
    os.makedirs(c.out_dir, exist_ok=True)
    name = (t.ckpt or {}).get('run_log') or datetime.now().strftime('run_%Y%m%d_%H%M%S.json')
    header = dict(config=config_dict, model_args=t.mconf.to_dict(),
                  env=dict(torch=torch.__version__, device=device_name(t), device_type=t.device.type,
                           world_size=t.ranks.world_size, peak_tflops=t.peak_tflops, start_iter=start_iter,
                           started=datetime.now().isoformat(timespec='seconds'),
                           parameters=t.raw_model.num_params(), tokens_per_iter=t.tokens_per_iter,
                           flops_per_token=t.raw_model.flops_per_token(c.block_size),
                           train_bytes_per_token=train_bytes_per_token(t.meta),
                           windows_per_epoch=t.batches.num_windows('train') if c.data_order == 'epoch' else None))
    return RunLog(c.out_dir, name, header)


def run_evaluation(t, state, run_log, trackers, log, t_start):
    t0 = time.time()
    losses = evaluate(t)
    state.last_eval_iter = state.iter_num
    bpb, sources = losses.get('val_bpb'), losses.get('val_bpb_sources') or {}
    log(f"eval iter {state.iter_num}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}"
        + (f", val {bpb:.4f} bits per byte" if bpb is not None else "")
        + (f" ({', '.join(f'{name} {value:.4f}' for name, value in sources.items())})" if sources else ""))
    if run_log is not None:
        run_log.add('evals', dict(iter=state.iter_num, train_loss=losses['train'], val_loss=losses['val'],
                                  val_bpb=bpb, val_bytes=losses.get('val_bytes'), val_bpb_sources=sources or None,
                                  tokens=state.tokens, time=time.time() - t_start,
                                  unix_time=time.time(), eval_seconds=time.time() - t0))
        run_log.write()
        scalars = {'eval/train_loss': losses['train'], 'eval/val_loss': losses['val'], 'eval/val_bpb': bpb,
                   **{f'eval/val_bpb_{name}': value for name, value in sources.items()}}
        for track in trackers:
            track({k: v for k, v in scalars.items() if v is not None}, state.iter_num)
    return losses


def save_training(t, state, run_log, config_dict, reason, log, best=True):
    """Save the run's state (a collective: every rank calls it; rank 0 writes): into ckpt.pt, or, with
    always_save_checkpoint=False and a state that is not the best (best=False), into ckpt_last.pt
    beside the best (checkpoint.py's docstring). Weights that gave a non-finite gradient never
    replace the last good checkpoint."""
    best_path, last_path = checkpoint_paths(t.config.out_dir)
    path = best_path if best or t.config.always_save_checkpoint else last_path
    other = last_path if path == best_path else best_path
    if state.nonfinite_in_row:
        log(f"no checkpoint at iter {state.iter_num} ({reason}): the last {state.nonfinite_in_row} step(s) had a "
            f"non-finite grad norm; {t.config.out_dir} keeps the last good one")
        return
    t0 = time.time()
    ckpt = training_state(t.raw_model, t.optimizer, t.scaler, t.ranks.master, model_args=t.mconf.to_dict(),
                          iter_num=state.iter_num, tokens=state.tokens, best_val_loss=state.best_val_loss,
                          windows=t.batches.windows_before(state.iter_num),
                          last_eval_iter=state.last_eval_iter, config=config_dict,
                          run_log=os.path.basename(run_log.path) if run_log is not None else None,
                          tokenizer=t.meta.get('tokenizer'))
    if t.ranks.master:
        if t.ckpt is None and other not in state.written and os.path.exists(other):
            os.remove(other)  # an earlier run's (a scratch run with overwrite=True): a resume must not take it
        save_checkpoint(ckpt, path)
        state.written.add(path)
        if path == best_path and os.path.exists(other):
            os.remove(other)  # ckpt.pt holds the latest state again: ckpt_last.pt is older
        log(f"saved checkpoint at iter {state.iter_num} ({reason}) to {path} in {time.time() - t0:.1f}s "
            f"(host memory peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.1f} GiB)")
        run_log.add('events', dict(iter=state.iter_num, event='checkpoint', reason=reason))
        run_log.write()


def skip_nonfinite_step(t, state, run_log, log):
    """A step whose gradient norm was not finite was skipped: count it, and stop after too many."""
    state.nonfinite_in_row += 1
    state.nonfinite_total += 1
    log(f"iter {state.iter_num}: non-finite grad norm, step skipped ({state.nonfinite_in_row} in a row)")
    if run_log is not None:
        run_log.add('events', dict(iter=state.iter_num, event='nonfinite_skip', in_row=state.nonfinite_in_row))
        run_log.data['nonfinite_steps'] = state.nonfinite_total
        run_log.write()
    if state.nonfinite_in_row >= t.config.max_nonfinite_steps:
        raise UserError(f"{state.nonfinite_in_row} optimizer steps in a row had a non-finite gradient norm; "
                        f"stopped at iter {state.iter_num}, the last good checkpoint in {t.config.out_dir} is kept: "
                        f"lower learning_rate or check the data, then resume")


class Progress:
    """The losses and time since the last log line; log() writes one line and one run-log record."""

    def __init__(self, t):
        self.t = t
        self.restart()

    def restart(self):
        self.since, self.iters, self.loss_sum = time.time(), 0, torch.zeros((), device=self.t.config.device)

    def add(self, loss):
        self.iters += 1
        self.loss_sum += loss

    def log(self, state, lr, grad_norm, run_log, trackers, log, t_start):
        t, c = self.t, self.t.config
        if t.ranks.enabled:  # the mean loss over all ranks (only at log intervals)
            torch.distributed.all_reduce(self.loss_sum)
            self.loss_sum /= t.ranks.world_size
        mean_loss = self.loss_sum.item() / self.iters  # the only read-back of the loss
        dt = (time.time() - self.since) / self.iters
        tokens_per_sec = t.tokens_per_iter / dt
        flops_per_token = t.raw_model.flops_per_token(c.block_size)
        mfu = (flops_per_token * tokens_per_sec / (t.peak_tflops * 1e12 * t.ranks.world_size)
               if t.peak_tflops else None)
        mem = torch.cuda.max_memory_allocated(c.device) / 2**30 if t.device.type == 'cuda' else None
        eta = (c.max_iters - state.iter_num) * dt
        record = dict(iter=state.iter_num, loss=mean_loss, lr=lr, grad_norm=grad_norm.item(), step_time=dt,
                      tokens_per_sec=tokens_per_sec, mfu=mfu, peak_mem_gib=mem,
                      tokens=state.tokens, epoch=t.batches.epochs(state.iter_num) if c.data_order == 'epoch' else None,
                      time=time.time() - t_start, unix_time=time.time())
        log(f"iter {state.iter_num}: loss {mean_loss:.4f}, lr {lr:.3e}, grad norm {record['grad_norm']:.3f}, "
            f"{dt * 1000:.0f} ms, {tokens_per_sec:,.0f} tok/s"
            + (f", MFU {100 * mfu:.1f}%" if mfu is not None else "")
            + (f", peak mem {mem:.1f} GiB" if mem is not None else "") + f", ETA {format_duration(eta)}")
        if run_log is not None:
            run_log.add('iters', record)
            run_log.write()
            for track in trackers:
                track({k: v for k, v in record.items() if v is not None}, state.iter_num)
        self.restart()


# -----------------------------------------------------------------------------
# the loop

def main(argv):
    c = parse_config(argv)
    t = setup(c)
    master = t.ranks.master
    log = print if master else (lambda *a, **k: None)
    config_dict = {k: getattr(c, k) for k in DEFAULTS}
    trackers = open_trackers(c, config_dict, master)
    describe_run(t, config_dict, log)
    start = t.ckpt['iter_num'] if t.ckpt else 0
    state = RunState(iter_num=start, start_iter=start, best_val_loss=best_val_loss(t.ckpt) if t.ckpt else float('inf'),
                     tokens=tokens_trained(t.ckpt) if t.ckpt else 0,
                     last_eval_iter=last_eval_iter(t.ckpt) if t.ckpt else -1)
    # stopped on an evaluation iteration before its evaluation ran: the resumed run evaluates first
    eval_pending = bool(t.ckpt) and start % c.eval_interval == 0 and state.last_eval_iter < start
    run_log = open_run_log(t, config_dict, start) if master else None
    if run_log is not None:
        log(f"run log: {run_log.path}")
    t_start = time.time()
    if c.eval_only:
        run_evaluation(t, state, run_log, trackers, log, t_start)
        return 0

    stop = StopRequest()
    progress = Progress(t)
    while state.iter_num < c.max_iters:
        if state.iter_num % c.eval_interval == 0 and (state.iter_num > start or c.eval_at_start or eval_pending):
            losses = run_evaluation(t, state, run_log, trackers, log, t_start)
            if losses['val'] < state.best_val_loss or c.always_save_checkpoint:
                state.best_val_loss = min(state.best_val_loss, losses['val'])
                # as the run that was never stopped saves here; not the state just loaded, re-evaluated
                if state.iter_num > start or eval_pending:
                    save_training(t, state, run_log, config_dict, 'eval', log)
            progress.since = time.time()  # evaluation and checkpoint time stay out of the step time

        lr = get_lr(state.iter_num, c)
        for group in t.optimizer.param_groups:
            group['lr'] = lr
        loss, grad_norm, stepped = train_step(t, state.iter_num)
        if not stepped:
            skip_nonfinite_step(t, state, run_log, log)
            state.iter_num += 1  # the iteration's batches are skipped with it
            continue
        state.nonfinite_in_row = 0
        state.iter_num += 1
        state.tokens += t.tokens_per_iter
        progress.add(loss)
        if state.iter_num % c.log_interval == 0 or state.iter_num == c.max_iters:
            progress.log(state, lr, grad_norm, run_log, trackers, log, t_start)

        if stop.requested(t.ranks, t.device):  # a state after the last evaluation: not known to be the best
            save_training(t, state, run_log, config_dict, f'stopped by {stop.signal or "signal"}', log, best=False)
            log(f"stopped at iter {state.iter_num} by {stop.signal or 'a signal'}; resume with the same command "
                f"and --init_from=resume")
            if t.ranks.enabled:
                torch.distributed.barrier()
            return 0

    # the final evaluation: after training, or still owed by a run stopped during its last step
    final_eval = state.last_eval_iter < state.iter_num and (state.iter_num > start or c.eval_at_start
                                                            or t.ckpt is not None)
    if t.ckpt is not None and not final_eval and state.iter_num == start:
        log(f"nothing to train: the checkpoint is at iter {start}, max_iters is {c.max_iters}; "
            f"raise --max_iters to train on")
        return 0
    improved = False
    if final_eval:
        losses = run_evaluation(t, state, run_log, trackers, log, t_start)
        improved = losses['val'] < state.best_val_loss
        state.best_val_loss = min(state.best_val_loss, losses['val'])
    # the final weights: into ckpt.pt, or with always_save_checkpoint=False, there only if they are the best
    save_training(t, state, run_log, config_dict, 'end of training', log, best=improved)
    if t.ranks.enabled:
        torch.distributed.barrier()  # no rank tears down the process group while rank 0 still writes
    return 0


if __name__ == '__main__':
    run_cli(main)
