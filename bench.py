"""
Throughput, MFU and peak memory of train.py's own training step, on synthetic tokens.

    python bench.py config/full_llama_1.36b.py
    python bench.py config/full_gpt2_1.36b.py --batch_size=12 --bench_iters=5
    python bench.py config/full_llama_1.36b.py --bench_sweep=True   # the largest micro-batch that fits
    python bench.py config/full_llama_1.36b.py --bench_out=perf/bench_results.jsonl   # record it in the repo
    python bench.py config/full_llama_1.36b.py --bench_text=english_mix_llama   # and bytes of text/s on that corpus

The model, optimizer, torch.compile, precision and gradient accumulation are train.py's (setup()
and train_step()), not copies; only the batches are random tokens made on the device. The vocabulary
is vocab_size, or without it the config's dataset's (its meta.pkl). Prints a summary and appends one
JSON line to bench_out (GPU, torch version, config, micro-batch, accumulation, tokens/s, MFU, step
time, peak memory; with bench_text, bytes of text/s at that prepared dataset's bytes per token): by
default bench_results.local.jsonl, which git ignores; the repo's record of measurements is
perf/bench_results.jsonl, written only when named.

    python bench.py config/full_llama_1.36b.py --bench_baseline=hf    # Hugging Face's model, same harness
    python bench.py config/full_llama_1.36b.py --bench_baseline=all   # ours, then HF's, and their ratio
    python bench.py config/full_llama_1.36b.py --fp8=True --bench_baseline=bf16   # ours in fp8, then in bf16

Every run also measures the device's sustained matmul rate (bench_matmul_seconds of back-to-back
8192^3 bf16 matmuls on CUDA) before and after the timed steps, in the same process, with the SM clock
and NVML's throttle reasons: a run on a throttled GPU is marked so in its JSON line ('throttled').
With bench_baseline, Hugging Face's LlamaForCausalLM / GPT2LMHeadModel (SDPA attention), at the
config's shape and with our model's initial weights, runs through the same setup() and
train_step(): the same tokens, autocast, torch.compile, fused AdamW and weight-decay groups,
micro-steps and clipping (perf/PERF_NOTES.md, "Harness checks and baselines", says what still differs).
"""

import dataclasses
import gc
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from types import SimpleNamespace

import torch
import torch.nn as nn
import torch.nn.functional as F

import parallelize
import train
import configurator
from configurator import (HELP_FLAGS, Configurator, HelpRequested, Pattern, UserError, check_choices, defaults_docs,
                          run_cli)
from gpu_specs import gpu_model, usual_matmul_tflops
from loader import check_vocabulary, load_meta, resolve_dataset
from runlog import shown_path

BENCH_DEFAULTS = dict(
    bench_iters=5,          # timed optimizer steps
    bench_warmup=2,         # untimed optimizer steps first (compilation, allocator warm-up)
    bench_sweep=False,      # try micro-batches upward until one does not fit, each in a fresh process
    bench_sweep_sizes='1,2,4,6,8,10,12,16,20,24,32',  # the micro-batches bench_sweep tries, in order
    bench_out='bench_results.local.jsonl',  # untracked; --bench_out=perf/bench_results.jsonl records in the repo
    bench_profile=False,    # after timing, profile one optimizer step: the top kernels by GPU time
    bench_baseline='',      # '' = this project's model; 'hf' = Hugging Face's at the same shape; 'all' = both, and their ratio; 'bf16' (with fp8=True) = ours in fp8, then in bf16
    bench_matmul_seconds=20.0,  # matmul check before and after the timed steps, seconds each (CPU: at most 1); 0 skips it
    bench_text='',          # a prepared dataset (name or folder) of the model's tokenizer: its training split's bytes per token turns tokens/s into bytes of text/s
)
BENCH_CHOICES = dict(  # allowed values, checked as the arguments are read
    bench_baseline={'': "this project's model", 'hf': "Hugging Face's at the same shape", 'all': 'both, and their ratio',
                    'bf16': 'with fp8=True: fp8, then bf16'},
    bench_sweep_sizes=Pattern(r'\s*\d+\s*(,\s*\d+\s*)*', "micro-batch sizes separated by commas, e.g. '1,2,4,8'"),
)
# train.py's sections of keys that shape a benchmark, listed by --help right after bench.py's own
BENCH_SECTIONS = ('data', 'model', 'system')
BASELINES = {'': 'this project', 'hf': 'hf-transformers', 'all': 'this project, then hf-transformers',
             'bf16': 'this project with fp8=True, then with fp8=False'}
RUNS = {'': [''], 'hf': ['hf'], 'all': ['', 'hf'], 'bf16': ['', 'bf16']}  # the runs of each, in order


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

    def windows_before(self, iteration):
        return iteration * self.c.gradient_accumulation_steps * self.c.batch_size

    def byte_table(self):
        return None  # random tokens are no text

    def source_names(self):
        return ['all']

    eval_batch = eval_targets = None  # bench.py never evaluates


def synchronize(c):
    if c.device.startswith('cuda'):
        torch.cuda.synchronize()


def check_bench_out(path):
    """bench_out must be a file that can be appended to, in a folder that exists: checked before any
    work, so that a finished benchmark never loses its results to a wrong path."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UserError(f"bench_out={path!r} is a folder: name a file in it, e.g. --bench_out={os.path.join(path, 'bench.jsonl')}")
    if not os.path.isdir(folder):
        raise UserError(f"bench_out={path!r}: the folder {folder} does not exist: create it (mkdir -p {folder}) or "
                        f"choose another --bench_out")
    if not os.access(path if os.path.exists(path) else folder, os.W_OK):
        raise UserError(f"bench_out={path!r} cannot be written ({'the file' if os.path.exists(path) else 'the folder'} "
                        f"is not writable): choose another --bench_out")


def dataset_vocab_size(c):
    """The vocabulary of the config's dataset (its meta.pkl), for a config that leaves vocab_size unset."""
    try:
        return load_meta(resolve_dataset(c.dataset))['vocab_size']
    except UserError as e:
        raise UserError(f"bench.py needs vocab_size (its tokens are synthetic): pass --vocab_size=N, or prepare the "
                        f"config's dataset so that its meta.pkl gives it ({e})") from None


def text_bytes_per_token(c):
    """bench_text's bytes of text per token (its training split, meta.pkl's stats), with the dataset's
    folder; (None, None) without bench_text. Its ids must fit the model's vocabulary; that it is of the
    tokenizer the model is meant for is the user's to say (GPT-2 may train on Llama-2's tokens)."""
    if not c.bench_text:
        return None, None
    try:
        folder = resolve_dataset(c.bench_text)
        meta = load_meta(folder)
        check_vocabulary(folder, meta['vocab_size'], c.vocab_size)
    except UserError as e:
        raise UserError(f"bench_text: {e}") from None
    per_token = train.train_bytes_per_token(meta)
    if per_token is None:
        raise UserError(f"bench_text={c.bench_text!r}: {folder}/meta.pkl has no byte counts of its training split "
                        f"(prepared before they were recorded): prepare it again")
    return per_token, shown_path(folder)


def run(c, implementation=''):
    """Time one model: implementation '' = this project's as configured, 'hf' = Hugging Face's,
    'bf16' = this project's with fp8=False. Returns the result (the JSON line's fields, less the
    matmul check's); the Training is gone on return."""
    if implementation == 'bf16':
        c = SimpleNamespace(**{**vars(c), 'fp8': False})
    if c.vocab_size is None:
        c.vocab_size = dataset_vocab_size(c)
    c.init_from, c.overwrite = "scratch", True  # bench.py reads and writes no checkpoint
    s = train.setup(c, make_batches=SyntheticBatches)  # a train.Training: the run's parts
    if implementation == 'hf':
        s = with_hf_model(s)
        gc.collect()  # our model's copy on the device, released
    tokens_per_iter = c.gradient_accumulation_steps * c.batch_size * c.block_size
    flops_per_token = s.raw_model.flops_per_token(c.block_size)
    lr = train.get_lr(c.warmup_iters, c)
    for group in s.optimizer.param_groups:
        group['lr'] = lr
    step = lambda it: train.train_step(s, it)

    if s.ranks.master:  # torch.compile's first step can take minutes: say so before it starts
        print(f"warm-up: {c.bench_warmup} untimed step{'s' if c.bench_warmup != 1 else ''}"
              + (" (torch.compile compiles the model in the first)" if c.compile else ""), flush=True)
    t0 = time.time()
    for it in range(c.bench_warmup):
        loss, _, _ = step(it)
    synchronize(c)
    warmup_seconds = time.time() - t0
    if s.ranks.master:
        print(f"warm-up done in {warmup_seconds:.1f} s; timing {c.bench_iters} step{'s' if c.bench_iters != 1 else ''}",
              flush=True)
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
    label = s.raw_model.implementation if implementation == 'hf' else 'this project' + (', fp8' if c.fp8 else '')
    result = dict(
        date=datetime.now().isoformat(timespec='seconds'),
        device=torch.cuda.get_device_name(c.device) if c.device.startswith('cuda') else c.device,
        world_size=s.ranks.world_size, torch=torch.__version__, config=c.bench_config, arch=c.arch,
        implementation=label,
        parameters=s.raw_model.num_params(), vocab_size=s.mconf.vocab_size, batch_size=c.batch_size,
        block_size=c.block_size,
        gradient_accumulation_steps=c.gradient_accumulation_steps, dtype=s.device.dtype, compile=c.compile,
        activation_checkpointing=c.activation_checkpointing, use_zero1=c.use_zero1, use_fsdp=c.use_fsdp, fp8=c.fp8,
        tokens_per_iter=tokens_per_iter, step_time=step_time, tokens_per_sec=tokens_per_sec,
        flops_per_token=flops_per_token, mfu=mfu, peak_tflops=s.peak_tflops, peak_mem_gib=peak_mem,
        peak_reserved_gib=reserved, warmup_seconds=warmup_seconds, loss=loss.item(),
        command='python bench.py ' + ' '.join(c.argv))
    if implementation == 'hf':
        result['attention'] = s.raw_model.attention
    if c.bench_bytes_per_token:
        result.update(text=c.bench_text_folder, bytes_per_token=c.bench_bytes_per_token,
                      bytes_per_sec=tokens_per_sec * c.bench_bytes_per_token)
    if c.bench_profile and s.ranks.master:
        profile(step, c)
    if s.ranks.master:
        print(f"{result['device']} | {label} | {c.arch} {result['parameters'] / 1e9:.2f}B | micro-batch "
              f"{c.batch_size} x {c.gradient_accumulation_steps} x {c.block_size} | {step_time * 1000:.0f} ms/step | "
              f"{tokens_per_sec:,.0f} tok/s"
              + (f" ({result['bytes_per_sec'] / 1e3:,.0f} kB of text/s at {c.bench_bytes_per_token:.3f} bytes a token)"
                 if c.bench_bytes_per_token else "")
              + (f" | MFU {100 * mfu:.1f}%" if mfu is not None else "")
              + (f" | peak mem {peak_mem:.1f} GiB (reserved {reserved:.1f})" if peak_mem is not None else ""))
    return result


def release_device_memory(c):
    """After a run: its model, optimizer and compiled graphs freed, so that the next run (or the
    matmul check) starts from an empty device."""
    gc.collect()
    torch._dynamo.reset()
    if c.device.startswith('cuda'):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(c.device)


# -----------------------------------------------------------------------------
# the baseline: Hugging Face's model in the same harness

class HFCausalLM(nn.Module):
    """Hugging Face's LlamaForCausalLM / GPT2LMHeadModel behind model.Transformer's interface, so that
    parallelize.parallelize, parallelize.build_optimizer and train.train_step run it unchanged. forward(x, y)
    returns (logits or None, loss), the loss being ours: the mean cross entropy over all target
    tokens, on fp32 logits (y is already shifted; HF's own labels= loss would shift again)."""

    def __init__(self, hf_model, flops_per_token, seq_len):
        super().__init__()
        self.hf = hf_model
        self.flops = {seq_len: flops_per_token}  # our model's count at the same shape, for a comparable MFU
        import transformers
        self.implementation = f'hf-transformers {transformers.__version__}'
        self.attention = getattr(hf_model.config, '_attn_implementation', None)

    def forward(self, idx, targets=None, return_logits=True):
        logits = self.hf(input_ids=idx, use_cache=False).logits
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
            if not return_logits:
                logits = None
        return logits, loss

    def num_params(self):
        return sum(p.numel() for p in self.parameters())  # a tied embedding once, as ours

    def flops_per_token(self, seq_len):
        return self.flops[seq_len]

    def param_groups(self, weight_decay):
        """model.Transformer.param_groups' split: decay the matrices of the linear layers (GPT-2's
        Conv1D included, and the output layer, also when tied), not norms, biases, untied
        embeddings or learned positions."""
        matrices = {id(m.weight) for m in self.modules()
                    if isinstance(m, nn.Linear) or type(m).__name__ == 'Conv1D'}
        decay = [p for p in self.parameters() if id(p) in matrices]
        no_decay = [p for p in self.parameters() if id(p) not in matrices]
        return [{'params': decay, 'weight_decay': weight_decay}, {'params': no_decay, 'weight_decay': 0.0}]


def check_hf_baseline(c):
    """A configuration the baseline cannot run is a one-line error, before any work."""
    if c.use_fsdp or c.activation_checkpointing or c.fp8:
        raise UserError(f"bench_baseline={c.bench_baseline!r} runs without use_fsdp, activation_checkpointing and "
                        f"fp8 (train.py applies them to our model's blocks only): drop them to compare")
    if c.bench_baseline == 'all' and 'RANK' in os.environ:
        raise UserError("bench_baseline='all' runs in one process (each ratio from one GPU): run it without "
                        "torchrun, or --bench_baseline=hf under torchrun")
    parallelize.quiet_torchao_import()  # transformers' models import torchao where it is installed: noise here
    try:
        import transformers  # noqa: F401
        from hf_format import hf_arch
    except ImportError as e:
        raise UserError(f"bench_baseline={c.bench_baseline!r} needs transformers: pip install transformers ({e})") from None
    try:
        hf_arch(train.model_config(c, None, c.vocab_size))
    except ValueError as e:
        raise UserError(f"bench_baseline={c.bench_baseline!r}: {e}") from None


def check_bf16_baseline(c):
    """bench_baseline='bf16' compares an fp8 run with the same run in bf16, in one process."""
    if not c.fp8:
        raise UserError("bench_baseline='bf16' times fp8=True against the same run in bf16: add --fp8=True")
    parallelize.check_fp8(c, c.device.split(':')[0])  # before any work: a GPU with FP8 matmuls, torchao
    if 'RANK' in os.environ:
        raise UserError("bench_baseline='bf16' runs in one process (each ratio from one GPU): run it without torchrun")


def with_hf_model(s):
    """The Training with Hugging Face's model in place of ours: the same shape and initial weights
    (export_hf.to_hf), SDPA attention, then parallelize.py's parallelize (torch.compile, DDP) and
    build_optimizer (fused AdamW on CUDA) applied to it."""
    from hf_format import to_hf
    c = s.config
    hf = to_hf(s.raw_model)  # fp32 on the CPU, our weights copied
    if hasattr(hf, 'set_attn_implementation'):
        hf.set_attn_implementation('sdpa')
    else:  # older transformers: the attention function is looked up from the config at each forward
        hf.config._attn_implementation = 'sdpa'
    hf.config.use_cache = False
    model = HFCausalLM(hf, s.raw_model.flops_per_token(c.block_size), c.block_size).to(c.device).train()
    s = dataclasses.replace(s, raw_model=model, model=None, optimizer=None)  # ours dropped
    return dataclasses.replace(s, model=parallelize.parallelize(model, c, s.ranks, s.device),
                               optimizer=parallelize.build_optimizer(model, c, s.device))


# -----------------------------------------------------------------------------
# the matmul check: is the device itself running at its usual speed?

# NVML's clocks-event (formerly "clocks throttle") reason bits, as nvidia-smi -q names them.
CLOCK_EVENT_REASONS = {0x1: 'gpu_idle', 0x2: 'applications_clocks_setting', 0x4: 'sw_power_cap',
                       0x8: 'hw_slowdown', 0x10: 'sync_boost', 0x20: 'sw_thermal_slowdown',
                       0x40: 'hw_thermal_slowdown', 0x80: 'hw_power_brake', 0x100: 'display_clock_setting'}
# the reasons that mark a run throttled. sw_power_cap is recorded but does not: a sustained large matmul
# holds an H100 at its power limit on a healthy machine (the usual rate is measured so); a lowered
# power limit shows in the rate, and in power_limit_w.
SLOWDOWN_REASONS = ('sw_thermal_slowdown', 'hw_thermal_slowdown', 'hw_slowdown', 'hw_power_brake')


def check_device(c):
    """The device the run will use (under torchrun, cuda:LOCAL_RANK, as train.setup_device chooses)."""
    if c.device.startswith('cuda') and 'RANK' in os.environ and 'LOCAL_RANK' in os.environ:
        return f"cuda:{os.environ['LOCAL_RANK']}"
    return c.device


def nvml_sample(device):
    """SM clock now and its maximum (MHz), temperature, power and its limit (W), and the active
    clocks-event reasons, through NVML (the pynvml module of nvidia-ml-py). What cannot be read is
    None: without pynvml, everything but torch.cuda.clock_rate's SM clock where it works."""
    sample = dict(sm_mhz=None, sm_max_mhz=None, temp_c=None, power_w=None, power_limit_w=None, reasons=None)
    try:
        import pynvml
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda._get_nvml_device_index(device))
    except Exception:
        try:
            sample['sm_mhz'] = torch.cuda.clock_rate(device)
        except Exception:
            pass
        return sample
    reasons_of = (getattr(pynvml, 'nvmlDeviceGetCurrentClocksEventReasons', None)
                  or pynvml.nvmlDeviceGetCurrentClocksThrottleReasons)
    reads = dict(sm_mhz=lambda: pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM),
                 sm_max_mhz=lambda: pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_SM),
                 temp_c=lambda: pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU),
                 power_w=lambda: pynvml.nvmlDeviceGetPowerUsage(handle) / 1000,
                 power_limit_w=lambda: pynvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000,
                 reasons=lambda: [name for bit, name in CLOCK_EVENT_REASONS.items() if reasons_of(handle) & bit])
    for key, read in reads.items():
        try:
            sample[key] = read()
        except Exception:
            pass
    try:
        pynvml.nvmlShutdown()
    except Exception:
        pass
    return sample


def matmul_check(device, seconds):
    """Sustained TFLOP/s of back-to-back square matmuls for about `seconds` (CUDA: 8192^3 in bf16,
    timed with CUDA events; elsewhere 512^3 in float32 for at most 1 s), and on CUDA the NVML samples
    taken halfway and at the end of the loop, while the GPU is busy. None, None when skipped."""
    if seconds <= 0 or (device.startswith('cuda') and not torch.cuda.is_available()):
        return None, None  # no CUDA: train.setup says so, in one line
    cuda = device.startswith('cuda')
    if cuda:
        n, dtype = 8192, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        sync = lambda: torch.cuda.synchronize(device)
    else:
        n, dtype, seconds = 512, torch.float32, min(seconds, 1.0)
        sync = lambda: None
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    out = torch.empty_like(a)
    samples = []

    def timed(count, sample=False):
        sync()
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
        t0 = time.perf_counter()
        for i in range(count):
            torch.mm(a, b, out=out)
            if sample and cuda and i == count // 2:  # the host runs ahead: the GPU is busy here
                samples.append(nvml_sample(device))
        if not cuda:
            return time.perf_counter() - t0
        end.record()
        if sample:
            samples.append(nvml_sample(device))
        end.synchronize()
        return start.elapsed_time(end) / 1000

    timed(3)  # cuBLAS's choice of kernel, clocks up
    each = timed(10) / 10
    count = max(10, round(seconds / each))
    tflops = 2 * n**3 * count / timed(count, sample=True) / 1e12
    a = b = out = None  # freed before empty_cache
    if cuda:
        torch.cuda.empty_cache()
    if not samples:
        return dict(rate=tflops, shape=f'{n}^3 {str(dtype)[6:]}'), None
    read = [s['reasons'] for s in samples if s['reasons'] is not None]  # halfway and at the end
    sample = dict(samples[-1], reasons=sorted({r for names in read for r in names}) if read else None)
    return dict(rate=tflops, shape=f'{n}^3 {str(dtype)[6:]}'), sample


def throttle_fields(c, before, after, clocks_before, clocks_after):
    """The JSON fields of the matmul check, and its verdict: throttled when a rate is under 90% of the
    GPU's usual one (gpu_specs.USUAL_MATMUL_TFLOPS), or, for a GPU the table lacks, when the rate
    fell more than 10% from before to after; or when NVML reported a thermal or hardware slowdown.
    Off CUDA, or with the check skipped, throttled is None (unknown)."""
    device = check_device(c)
    cuda = device.startswith('cuda') and torch.cuda.is_available()
    name = torch.cuda.get_device_name(device) if cuda else None
    usual = usual_matmul_tflops(name) if cuda else None
    rate_before, rate_after = (before or {}).get('rate'), (after or {}).get('rate')
    samples = [s for s in (clocks_before, clocks_after) if s is not None]
    read = [s['reasons'] for s in samples if s['reasons'] is not None]
    reasons = sorted({r for names in read for r in names}) if read else None
    throttled, why = verdict(rate_before, rate_after, usual, reasons, gpu_model(name)) if cuda else (None, None)
    return dict(matmul_shape=(before or after or {}).get('shape'), matmul_tflops_before=rate_before,
                matmul_tflops_after=rate_after, matmul_usual_tflops=usual,
                clocks=dict(before=clocks_before, after=clocks_after) if samples else None,
                throttle_reasons=reasons, throttled=throttled, throttled_why=why)


def verdict(rate_before, rate_after, usual, reasons, gpu=None):
    """(throttled, why) from the two rates (TFLOP/s or None), the GPU's usual rate (or None) and
    NVML's reasons (names, or None); (None, None) when no rate was measured."""
    if not (rate_before or rate_after):
        return None, None
    problems = []
    for when, rate in (('before', rate_before), ('after', rate_after)):
        if usual and rate is not None and rate < 0.9 * usual:
            problems.append(f"{rate:.0f} TFLOP/s {when}, under 90% of the usual {usual:.0f}" + (f" on {gpu}" if gpu else ""))
    if not usual and rate_before and rate_after and rate_after < 0.9 * rate_before:
        problems.append(f"the rate fell {100 * (1 - rate_after / rate_before):.0f}% from before to after")
    active = [r for r in SLOWDOWN_REASONS if r in (reasons or [])]
    if active:
        problems.append("NVML: " + ", ".join(active))
    return bool(problems), "; ".join(problems) or None


def describe_check(check, seconds):
    """One line: the check's result."""
    if check['matmul_shape'] is None:
        return "matmul check: skipped (bench_matmul_seconds=0); throttling unknown"
    rates = " and ".join(f"{check[f'matmul_tflops_{w}']:.3g} TFLOP/s {w}" for w in ('before', 'after')
                         if check[f'matmul_tflops_{w}'] is not None)
    line = f"matmul check ({check['matmul_shape']}, ~{seconds:g} s each): {rates}"
    if check['matmul_usual_tflops']:
        line += f" (usual {check['matmul_usual_tflops']:g})"
    last = (check['clocks'] or {}).get('after') or (check['clocks'] or {}).get('before')
    if last and last['sm_mhz']:
        line += f"; SM clock {last['sm_mhz']}" + (f"/{last['sm_max_mhz']}" if last['sm_max_mhz'] else "") + " MHz"
    if check['throttle_reasons']:
        line += f"; NVML reasons: {', '.join(check['throttle_reasons'])}"
    if check['throttled'] is None:
        return line + "; throttling unknown (not a CUDA GPU)"
    return line + (f"; THROTTLED: {check['throttled_why']}" if check['throttled'] else "; not throttled")


def ratio_fields(result, other):
    """This run against the other implementation's, from the same process and device."""
    ratio = lambda key: (result[key] / other[key] if result.get(key) and other.get(key) else None)
    return dict(implementation=other['implementation'], tokens_per_sec=ratio('tokens_per_sec'),
                peak_mem_gib=ratio('peak_mem_gib'))


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
    for size in [int(x) for x in c.bench_sweep_sizes.split(',')]:  # BENCH_CHOICES has checked them
        # the real limit, not the estimate's: train.py's memory check would stop at the estimate
        cmd = [sys.executable, __file__, *base, f'--batch_size={size}', '--memory_check=False']
        proc = subprocess.run(cmd, capture_output=True, text=True)
        tail = (proc.stdout + proc.stderr).strip().splitlines()
        print(f"micro-batch {size}: " + (tail[-1] if tail else f"exit {proc.returncode}"))
        if proc.returncode != 0:
            break
        largest = size
    print(f"largest micro-batch that fits: {largest}")
    return largest


def help_text():
    """--help: bench.py's keys first, then train.py's that shape the step timed (data, model, system),
    then the rest of train.py's (a benchmark never evaluates, logs a run or saves a checkpoint)."""
    sections = defaults_docs(train.__file__)
    shaping = [k for k in train.DEFAULTS if (sections.get(k, (None,))[0] or '').split(' ')[0] in BENCH_SECTIONS]
    order = [*BENCH_DEFAULTS, *shaping, *(k for k in train.DEFAULTS if k not in shaping)]
    defaults = {**train.DEFAULTS, **BENCH_DEFAULTS}
    return Configurator({k: defaults[k] for k in order}, train.KEY_TYPES).help_text([train.__file__, __file__])


def main(argv):
    if any(arg in HELP_FLAGS for arg in argv):
        raise HelpRequested(help_text())
    c = train.parse_config(argv, BENCH_DEFAULTS)
    check_choices(vars(c), BENCH_CHOICES, c.user_set)
    configurator.check_device(c.device)  # this machine has it
    c.argv = argv
    c.bench_config = next((a for a in argv if not a.startswith('--')), None)
    check_bench_out(c.bench_out)
    if c.bench_sweep:
        return 0 if sweep(c) else 1
    if c.vocab_size is None:
        c.vocab_size = dataset_vocab_size(c)
    c.bench_bytes_per_token, c.bench_text_folder = text_bytes_per_token(c)
    if c.bench_baseline == 'bf16':
        check_bf16_baseline(c)
    elif c.bench_baseline:
        check_hf_baseline(c)
    implementations = RUNS[c.bench_baseline]
    device = check_device(c)
    before, clocks_before = matmul_check(device, c.bench_matmul_seconds)
    results = []
    try:
        for implementation in implementations:
            results.append(run(c, implementation))
            release_device_memory(c)
    except torch.OutOfMemoryError:
        print(f"out of memory at micro-batch {c.batch_size}", file=sys.stderr)
        return 3
    after, clocks_after = matmul_check(device, c.bench_matmul_seconds)
    check = throttle_fields(c, before, after, clocks_before, clocks_after)
    if len(results) == 2:
        ours, theirs = results
        ours['ratio_vs'], theirs['ratio_vs'] = ratio_fields(ours, theirs), ratio_fields(theirs, ours)
    if int(os.environ.get('RANK', '0')) == 0:
        print(describe_check(check, c.bench_matmul_seconds if device.startswith('cuda') else min(c.bench_matmul_seconds, 1.0)))
        if len(results) == 2:
            r = ours['ratio_vs']
            print(f"{ours['implementation']} / {theirs['implementation']}: {r['tokens_per_sec']:.3f}x tokens/s"
                  + (f", {r['peak_mem_gib']:.3f}x peak memory" if r['peak_mem_gib'] else ""))
        with open(c.bench_out, 'a') as f:
            for result in results:
                f.write(json.dumps({**result, **check}) + '\n')
    return 0


if __name__ == '__main__':
    run_cli(main)
