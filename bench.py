"""
Throughput, MFU and peak memory of train.py's own training step, on synthetic tokens.

    python bench.py config/full_llama_1.36b.py
    python bench.py config/full_gpt2_1.36b.py --batch_size=12 --bench_iters=5
    python bench.py config/full_llama_1.36b.py --bench_sweep=True   # the largest micro-batch that fits
    python bench.py config/full_llama_1.36b.py --bench_out=bench_results.jsonl   # record it in the repo

The model, optimizer, torch.compile, precision and gradient accumulation are train.py's (setup()
and train_step()), not copies; only the batches are random tokens made on the device. The vocabulary
is vocab_size, or without it the config's dataset's (its meta.pkl). Prints a summary and appends one
JSON line to bench_out (GPU, torch version, config, micro-batch, accumulation, tokens/s, MFU, step
time, peak memory): by default bench_results.local.jsonl, which git ignores; the repo's record of
measurements is bench_results.jsonl, written only when named.
"""

import json
import subprocess
import sys
import time
from datetime import datetime

import torch

import train
from configurator import UserError, run_cli
from loader import load_meta, resolve_dataset

BENCH_DEFAULTS = dict(
    bench_iters=5,          # timed optimizer steps
    bench_warmup=2,         # untimed optimizer steps first (compilation, allocator warm-up)
    bench_sweep=False,      # try micro-batches upward until one does not fit, each in a fresh process
    bench_sweep_sizes='1,2,4,6,8,10,12,16,20,24,32',
    bench_out='bench_results.local.jsonl',  # untracked; --bench_out=bench_results.jsonl records in the repo
    bench_profile=False,    # after timing, profile one optimizer step: the top kernels by GPU time
)


class SyntheticBatches:
    """Uniform random tokens made on the device: the same shapes as the loader's batches (a
    loader.Batches, without evaluation batches: bench.py never evaluates)."""

    def __init__(self, c, mconf):
        self.c, self.vocab_size = c, mconf.vocab_size
        self.generator = torch.Generator(device=c.device)
        self.generator.manual_seed(c.seed)

    def batch(self, split, iteration, micro_step):
        xy = torch.randint(0, self.vocab_size, (self.c.batch_size, self.c.block_size + 1),
                           device=self.c.device, generator=self.generator)
        return xy[:, :-1], xy[:, 1:].contiguous()

    eval_batch = None  # bench.py never evaluates


def synchronize(c):
    if c.device.startswith('cuda'):
        torch.cuda.synchronize()


def dataset_vocab_size(c):
    """The vocabulary of the config's dataset (its meta.pkl), for a config that leaves vocab_size unset."""
    try:
        return load_meta(resolve_dataset(c.dataset))['vocab_size']
    except UserError as e:
        raise UserError(f"bench.py needs vocab_size (its tokens are synthetic): pass --vocab_size=N, or prepare the "
                        f"config's dataset so that its meta.pkl gives it ({e})") from None


def run(c):
    if c.vocab_size is None:
        c.vocab_size = dataset_vocab_size(c)
    c.init_from, c.overwrite = "scratch", True  # bench.py reads and writes no checkpoint
    s = train.setup(c, make_batches=SyntheticBatches)  # a train.Trainer
    tokens_per_iter = c.gradient_accumulation_steps * c.batch_size * c.block_size
    flops_per_token = s.raw_model.flops_per_token(c.block_size)
    lr = train.get_lr(c.warmup_iters, c)
    for group in s.optimizer.param_groups:
        group['lr'] = lr
    step = lambda it: train.train_step(s, it)

    t0 = time.time()
    for it in range(c.bench_warmup):
        loss, _, _ = step(it)
    synchronize(c)
    warmup_seconds = time.time() - t0
    if c.device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats(c.device)
    t0 = time.time()
    for it in range(c.bench_warmup, c.bench_warmup + c.bench_iters):
        loss, _, _ = step(it)
    synchronize(c)
    step_time = (time.time() - t0) / c.bench_iters
    tokens_per_sec = tokens_per_iter / step_time
    mfu = (flops_per_token * tokens_per_sec / (s.peak_tflops * 1e12 * s.ranks.world_size)
           if s.peak_tflops else None)
    peak_mem = torch.cuda.max_memory_allocated(c.device) / 2**30 if c.device.startswith('cuda') else None
    reserved = torch.cuda.max_memory_reserved(c.device) / 2**30 if c.device.startswith('cuda') else None
    result = dict(
        date=datetime.now().isoformat(timespec='seconds'),
        device=torch.cuda.get_device_name(c.device) if c.device.startswith('cuda') else c.device,
        world_size=s.ranks.world_size, torch=torch.__version__, config=c.bench_config, arch=c.arch,
        parameters=s.raw_model.num_params(), vocab_size=s.raw_model.config.vocab_size, batch_size=c.batch_size,
        block_size=c.block_size,
        gradient_accumulation_steps=c.gradient_accumulation_steps, dtype=s.device.dtype, compile=c.compile,
        activation_checkpointing=c.activation_checkpointing, use_zero1=c.use_zero1, use_fsdp=c.use_fsdp,
        tokens_per_iter=tokens_per_iter, step_time=step_time, tokens_per_sec=tokens_per_sec,
        flops_per_token=flops_per_token, mfu=mfu, peak_tflops=s.peak_tflops, peak_mem_gib=peak_mem,
        peak_reserved_gib=reserved, warmup_seconds=warmup_seconds, loss=loss.item(),
        command='python bench.py ' + ' '.join(c.argv))
    if c.bench_profile and s.ranks.master:
        profile(step, c)
    if s.ranks.master:
        print(f"{result['device']} | {c.arch} {result['parameters'] / 1e9:.2f}B | micro-batch {c.batch_size} x "
              f"{c.gradient_accumulation_steps} x {c.block_size} | {step_time * 1000:.0f} ms/step | "
              f"{tokens_per_sec:,.0f} tok/s" + (f" | MFU {100 * mfu:.1f}%" if mfu is not None else "")
              + (f" | peak mem {peak_mem:.1f} GiB (reserved {reserved:.1f})" if peak_mem is not None else ""))
        with open(c.bench_out, 'a') as f:
            f.write(json.dumps(result) + '\n')
    return result


def profile(step, c):
    """GPU time by kernel over one optimizer step, grouped: matmuls, attention, the rest."""
    from torch.profiler import ProfilerActivity, profile as torch_profile
    with torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
        step(10**6)
        synchronize(c)
    events = [e for e in prof.key_averages() if e.device_type.name == 'CUDA' or getattr(e, 'self_device_time_total', 0) > 0]
    rows = sorted(((e.self_device_time_total, e.count, e.key) for e in events), reverse=True)
    total = sum(r[0] for r in rows)
    groups = {}
    for t, _, key in rows:
        k = key.lower()
        group = ('matmul' if any(w in k for w in ('gemm', 'sm90_xmma', 'cutlass', 'nvjet', 'matmul')) else
                 'attention' if any(w in k for w in ('flash', 'fmha', 'attention', 'cudnn')) else
                 'optimizer' if 'adam' in k else 'other')
        groups[group] = groups.get(group, 0) + t
    print(f"profile of one optimizer step: {total / 1e3:.0f} ms of GPU kernels")
    for group, t in sorted(groups.items(), key=lambda g: -g[1]):
        print(f"  {group:10s} {t / 1e3:8.1f} ms  {100 * t / total:5.1f}%")
    for t, count, key in rows[:25]:
        print(f"  {t / 1e3:8.1f} ms {count:6d}x  {key[:110]}")


def sweep(c):
    """Each micro-batch in a fresh process, so an out-of-memory leaves nothing behind."""
    largest = None
    base = [a for a in c.argv if not a.startswith(('--bench_sweep', '--batch_size'))]
    for size in [int(x) for x in c.bench_sweep_sizes.split(',')]:
        cmd = [sys.executable, __file__, *base, f'--batch_size={size}']
        proc = subprocess.run(cmd, capture_output=True, text=True)
        tail = (proc.stdout + proc.stderr).strip().splitlines()
        print(f"micro-batch {size}: " + (tail[-1] if tail else f"exit {proc.returncode}"))
        if proc.returncode != 0:
            break
        largest = size
    print(f"largest micro-batch that fits: {largest}")
    return largest


def main(argv):
    c = train.parse_config(argv, BENCH_DEFAULTS)
    c.argv = argv
    c.bench_config = next((a for a in argv if not a.startswith('--')), None)
    if c.bench_sweep:
        return 0 if sweep(c) else 1
    try:
        run(c)
    except torch.OutOfMemoryError:
        print(f"out of memory at micro-batch {c.batch_size}", file=sys.stderr)
        return 3
    return 0


if __name__ == '__main__':
    run_cli(main)
