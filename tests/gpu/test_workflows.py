"""
The real workflows on one CUDA GPU, run as a user runs them (python train.py ..., torchrun ...,
sample.py, export_hf.py, bench.py, with real files): training across mid-run checkpoints, resuming,
every precision and layout, evaluation, sampling, export and SIGTERM.

What "matches" means here. Each check compares a run to the uninterrupted run of the same
configuration on the same GPU: the per-iteration losses of the run log and the final weights of
ckpt.pt. float32 without compile is deterministic, and its resumed run must be bit-identical. The
bf16/fp16 compiled runs are not: kernels that accumulate with atomic adds (the compiled embedding
backward, the flash-attention backward) change the last bits of the gradients from run to run, and
AdamW's normalized update then moves a weight whose gradient is near zero by up to ~lr per step in
either direction. So for those runs the max weight difference is bounded by the sum of the
learning rates over the steps (about 1.2e-2 in the quick runs here, 1e-3 in the 1.36B ones), and on one
H100 (torch 2.11) the quick LLaMA resume check measured 7.4e-4 in one run of the suite and 5.6e-3
in the next. The per-iteration losses, which a lost optimizer state, RNG or data position would move by
1e-2 or more, are the sharp check there (measured differences <= 2.6e-4 in one process, 1.8e-3
across torchrun layouts). results.jsonl records every measured difference.

    python -m pytest -q -n 7 --dist loadgroup tests/gpu    # pytest-xdist: 7 groups side by side

The groups (xdist_group) keep the runs that share a reference in one worker; the GPU is mostly idle
in these small runs (their time is process start, compilation and checkpoint files), so the seven
groups share it well. Without -n it runs serially.
"""
import contextlib
import importlib.util
import math
import os
import re
import shutil
import signal
import sys

import numpy as np
import pytest
import torch

import helpers
from helpers import load

GPU_TIMEOUT = 900  # seconds for any one process (the 1.36B runs compile and write 16 GB checkpoints)
QUICK = {'llama': 'config/quick_llama.py', 'gpt2': 'config/quick_gpt2.py'}
FULL = {'llama': ('config/full_llama_1.36b.py', 32000), 'gpt2': ('config/full_gpt2_1.36b.py', 50257)}
# max abs differences accepted against the uninterrupted run (see the module docstring)
LOSS_TOL = 1e-3                                                    # measured <= 2.6e-4
WEIGHT_TOL = {'bfloat16': 1.5e-2, 'float16': 1.5e-2, 'float32': 0.0}  # measured <= 5.6e-3, 7.1e-3, 0.0
# under torchrun the compiled graph differs from one process's: DDP splits it at its buckets, FSDP2
# compiles each block and computes with bf16 parameters
LAYOUT_LOSS_TOL, LAYOUT_WEIGHT_TOL = 5e-3, 1.5e-2                   # measured <= 1.8e-3, 8.1e-3
# the 1.36B runs (random tokens, loss ~11): LLaMA loss 3.7e-4, 7.3e-4, 6.3e-4, 1.03e-3 and weights
# <= 1.3e-3 over four runs of the suite; GPT-2 loss <= 1.1e-4, weights <= 1.2e-3
FULL_LOSS_TOL, FULL_WEIGHT_TOL = 2e-3, 5e-3
EVAL_TOL = 1e-3  # eval_only against the training run's own final evaluation of the same weights


def gpu_args(config, out, dataset='python_stdlib', **overrides):
    settings = dict(device='cuda', dtype='bfloat16', compile=True, max_iters=8, lr_decay_iters=8, warmup_iters=2,
                    eval_interval=1000, eval_iters=2, log_interval=1, dataset=dataset, out_dir=out)
    settings.update(overrides)
    return [config, *(f'--{k}={v}' for k, v in settings.items())]


def train(args, nproc=None, check=True):
    return helpers.run('train.py', args, nproc=nproc, timeout=GPU_TIMEOUT, check=check)


def losses(out):
    """{iter: loss} of out_dir's run log."""
    log, _ = helpers.run_log(out)
    return {r['iter']: r['loss'] for r in log['iters']}


def loss_diff(a, b, iters):
    return max(abs(a[i] - b[i]) for i in iters)


def saved_lines(proc):
    return [line for line in proc.stdout.splitlines() if line.startswith('saved checkpoint at iter ')]


@pytest.fixture(scope='session', autouse=True)
def gpu_environment():
    if torch.cuda.is_available():  # what the training processes inherit: one GPU, multicast off
        os.environ.setdefault('NCCL_NVLS_ENABLE', '0')


@pytest.fixture(scope='session')
def stdlib():
    """The quick configs' dataset (conftest.py prepares it once, as the README says)."""
    return 'python_stdlib'


@pytest.fixture(scope='session')
def runs(stdlib, tmp_path_factory):
    """name -> (out_dir, process), each run once: the uninterrupted runs others compare to."""
    done = {}

    def get(name, args_of_out, nproc=None):
        if name not in done:
            out = str(tmp_path_factory.mktemp(name))
            done[name] = (out, train(args_of_out(out), nproc=nproc))
        return done[name]
    return get


def reference(runs, arch, **overrides):
    """The uninterrupted quick run to 8 iterations: no checkpoint before the end."""
    key = f"ref-{arch}-" + '-'.join(f'{k}{v}' for k, v in sorted(overrides.items()))
    return runs(key, lambda out: gpu_args(QUICK[arch], out, **overrides))


def checkpoint_then_resume(config, out, record, nproc=None, layout=(), resume_layout=None, first_iters=6,
                           **overrides):
    """Train to first_iters checkpointing every 2 iterations (mid-run checkpoints at 2, 4, ...), then
    --init_from=resume to 8. Returns (first process, resumed process)."""
    first = train(gpu_args(config, out, max_iters=first_iters, eval_interval=2, **overrides) + list(layout),
                  nproc=nproc)
    assert len(saved_lines(first)) == first_iters // 2, first.stdout[-3000:]
    assert load(out)['iter_num'] == first_iters
    resume_layout = layout if resume_layout is None else resume_layout
    resumed = train(gpu_args(config, out, init_from='resume', eval_interval=2, **overrides) + list(resume_layout),
                    nproc=nproc)
    assert any(line.startswith(f"resuming from {out}/ckpt.pt: iter {first_iters}, ")
               for line in resumed.stdout.splitlines()), resumed.stdout[-3000:]
    assert helpers.logged_iters(resumed.stdout.splitlines()) == list(range(first_iters + 1, 9))
    return first, resumed


def compare(out, ref_out, record, loss_tol, weight_tol):
    got, want = losses(out), losses(ref_out)
    assert sorted(got) == list(range(1, 9)) == sorted(want)
    ldiff = loss_diff(got, want, range(1, 9))
    wdiff = helpers.max_weight_diff(load(out)['model'], load(ref_out)['model'])
    record('max_loss_diff', ldiff)
    record('max_weight_diff', wdiff)
    assert ldiff <= loss_tol, f"losses differ from the uninterrupted run by up to {ldiff:.3g}"
    assert wdiff <= weight_tol, f"final weights differ from the uninterrupted run by up to {wdiff:.3g}"
    assert want[8] < want[1], "the reference did not learn: the comparison would be vacuous"


# -----------------------------------------------------------------------------
# the quick configs, bf16 + compile: across mid-run checkpoints, then resume

@pytest.mark.parametrize('arch', [pytest.param('llama', marks=pytest.mark.xdist_group('llama')),
                                  pytest.param('gpt2', marks=pytest.mark.xdist_group('gpt2'))])
def test_quick_config_checkpoints_and_resume(arch, runs, tmp_path, record_property):
    ref_out, ref_proc = reference(runs, arch)
    assert len(saved_lines(ref_proc)) == 1
    out = str(tmp_path / 'out')
    checkpoint_then_resume(QUICK[arch], out, record_property)
    compare(out, ref_out, record_property, LOSS_TOL, WEIGHT_TOL['bfloat16'])


# -----------------------------------------------------------------------------
# other precisions and compile off

@pytest.mark.xdist_group('precision')
@pytest.mark.parametrize('dtype, compile', [('float16', True), ('float32', False)],
                         ids=['float16-compiled', 'float32-eager'])
def test_precision_checkpoints_and_resume(dtype, compile, runs, tmp_path, record_property):
    ref_out, _ = reference(runs, 'llama', dtype=dtype, compile=compile)
    out = str(tmp_path / 'out')
    checkpoint_then_resume(QUICK['llama'], out, record_property, dtype=dtype, compile=compile)
    ckpt = load(out)
    if dtype == 'float16':  # the GradScaler's state travels with the checkpoint
        assert ckpt['scaler'] and ckpt['scaler']['scale'] > 0, ckpt.get('scaler')
        record_property('grad_scale', float(ckpt['scaler']['scale']))
    else:
        assert ckpt['scaler'] == {}
    compare(out, ref_out, record_property, LOSS_TOL, WEIGHT_TOL[dtype])


# -----------------------------------------------------------------------------
# torchrun --nproc_per_node=1 (NCCL): DDP, ZeRO-1, FSDP2, and a resume into another layout

LAYOUTS = {'ddp': [], 'zero1': ['--use_zero1=True'], 'fsdp2': ['--use_fsdp=True']}


@pytest.mark.xdist_group('layouts')
@pytest.mark.parametrize('layout, then', [('ddp', 'fsdp2'), ('zero1', 'ddp'), ('fsdp2', 'zero1')],
                         ids=['ddp-then-fsdp2', 'zero1-then-ddp', 'fsdp2-then-zero1'])
def test_torchrun_layout_checkpoints_and_resume(layout, then, runs, tmp_path, record_property):
    ref_out, _ = reference(runs, 'llama')
    out = str(tmp_path / 'out')
    first, _ = checkpoint_then_resume(QUICK['llama'], out, record_property, nproc=1, layout=LAYOUTS[layout],
                                      resume_layout=LAYOUTS[then])
    backend = next(line for line in first.stdout.splitlines() if line[2:].startswith('backend '))
    assert backend.split('=')[1].strip() == "'nccl'", backend
    compare(out, ref_out, record_property, LAYOUT_LOSS_TOL, LAYOUT_WEIGHT_TOL)


@pytest.mark.xdist_group('tools')
@pytest.mark.parametrize('residual', ['float32', 'compute'])
def test_fsdp2_keeps_the_configured_residual_dtype(residual, stdlib):
    """FSDP2's mixed precision casts each block's inputs to bf16 unless told not to: the residual
    stream and RoPE's tables must stay in the configured dtype, as in one process."""
    import json
    proc = helpers.run('tests/gpu/residual_probe.py', gpu_args(QUICK['llama'], 'unused', compile=False,
                                                               residual_dtype=residual) + ['--use_fsdp=True'],
                       nproc=1, timeout=GPU_TIMEOUT, check=True)
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen['blocks'] > 0 and seen['rope'] == ['torch.float32'], seen
    assert seen['residual'] == (['torch.float32'] if residual == 'float32' else ['torch.bfloat16']), seen


# the cost tool's activation model against what the compiled block saves

@pytest.mark.xdist_group('tools')
@pytest.mark.parametrize('arch', ['llama', 'gpt2'])
def test_cost_tool_activations_are_what_the_compiled_block_saves(arch):
    """flops_parameter_counting's per-block activation bytes for the 1.36B shape at micro-batch 8 equal
    what torch.compile's forward hands to backward for one block (tests/gpu/saved_probe.py, blocks 1
    and 2): a torch whose partitioner saves other tensors fails here, not in a user's out-of-memory."""
    import json
    from flops_parameter_counting import detailed_cost_analysis as cost
    config = FULL[arch][0]
    proc = helpers.run('tests/gpu/saved_probe.py', [config, '--batch=8'], timeout=GPU_TIMEOUT, check=True)
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    _, model = cost.load_model_config(config)  # the config file itself, as the cost tool reads it
    predicted = sum(cost.activation_terms(cost.shape_from_config(model)).values())
    assert seen['bytes_per_token_per_block'] == predicted, (seen, predicted, proc.stdout[-2000:])
    assert seen['weight_copies_saved']


# fp8 (torchao float8, tensorwise) against bf16: a run that changes its matmul precision mid-way
FP8_LOSS_TOL = 0.1  # nats, fp8 run (resumed in bf16) against the bf16 reference over 8 steps of the quick config
# relative (norm) error of one forward / backward against bf16, at initialization. Measured on an H100
# (torch 2.11, torchao 0.17): logits 0.173, the worst block weight gradient 0.256. e4m3 keeps 3 mantissa
# bits (about 3.6% RMS rounding a value, both operands of each matmul rounded), and at initialization the
# blocks' outputs, not the exact embedding, make most of the residual stream: four blocks of FP8 matmuls
# compound to ~17%. The first bound, 0.1, was set before any measurement and failed on that run.
FP8_LOGITS_TOL, FP8_GRAD_TOL = 0.25, 0.35


def needs_torchao():
    if importlib.util.find_spec('torchao') is None:
        pytest.skip("fp8 needs torchao (pip install torchao)")


@pytest.mark.xdist_group('precision')
def test_fp8_trains_checkpoints_and_resumes_in_bf16(runs, tmp_path, record_property):
    """--fp8=True on the quick LLaMA config (compiled): mid-run checkpoints at 2, 4 and 6, then a resume
    with fp8 off to 8. The checkpoints are plain fp32 state dicts; the losses follow the bf16 run's."""
    needs_torchao()
    out = str(tmp_path / 'out')
    first, _ = checkpoint_then_resume(QUICK['llama'], out, record_property, layout=['--fp8=True'],
                                      resume_layout=['--fp8=False'])
    assert '* fp8 ' in first.stdout
    fp8_run_follows_bf16(out, runs, record_property)


def fp8_run_follows_bf16(out, runs, record_property):
    """An fp8 run's checkpoint holds plain fp32 tensors, and its losses follow the bf16 run's."""
    assert all(type(v) is torch.Tensor and v.dtype == torch.float32 for v in load(out)['model'].values())
    ref_out, _ = reference(runs, 'llama')
    ldiff = loss_diff(losses(out), losses(ref_out), range(1, 9))
    record_property('max_loss_diff_vs_bf16', ldiff)
    assert ldiff <= FP8_LOSS_TOL, f"fp8 losses differ from bf16 by up to {ldiff:.3g}"
    assert losses(out)[8] < losses(out)[1]


@pytest.mark.xdist_group('layouts')
def test_fp8_under_fsdp2_gathers_fp8_and_resumes_under_ddp(runs, tmp_path, record_property):
    """torchrun (NCCL) with FSDP2 and fp8=True: the FP8 layers' weight shards are torchao's FP8-gathered
    tensors, the run checkpoints at 2, 4 and 6 (plain fp32 state dicts), resumes under DDP still in fp8,
    and its losses follow the bf16 run's."""
    needs_torchao()
    import json
    probe = helpers.run('tests/gpu/residual_probe.py', gpu_args(QUICK['llama'], 'unused', fp8=True) + ['--use_fsdp=True'],
                        nproc=1, timeout=GPU_TIMEOUT, check=True)
    seen = json.loads(probe.stdout.strip().splitlines()[-1])
    assert seen['fp8_weights'] == ['WeightWithDynamicFloat8CastTensor'], seen
    out = str(tmp_path / 'out')
    checkpoint_then_resume(QUICK['llama'], out, record_property, nproc=1, layout=['--use_fsdp=True', '--fp8=True'],
                           resume_layout=['--fp8=True'])
    fp8_run_follows_bf16(out, runs, record_property)


@pytest.mark.xdist_group('tools')
def test_bench_fp8_against_bf16_on_gpu(stdlib, tmp_path):
    """bench.py --fp8=True --bench_baseline=bf16: one process, the fp8 run then the same in bf16, the
    same tokens and initial weights (so nearly the same loss), and their ratio."""
    needs_torchao()
    import json
    out = tmp_path / 'bench.jsonl'
    proc = helpers.run('bench.py', ['config/quick_llama.py', '--device=cuda', '--dtype=bfloat16', '--compile=True',
                                    '--vocab_size=257', '--bench_iters=3', '--bench_warmup=2', '--fp8=True',
                                    '--bench_baseline=bf16', '--bench_matmul_seconds=2', f'--bench_out={out}'],
                       timeout=GPU_TIMEOUT, check=True)
    fp8, bf16 = [json.loads(line) for line in out.read_text().splitlines()]
    assert (fp8['implementation'], fp8['fp8']) == ('this project, fp8', True)
    assert (bf16['implementation'], bf16['fp8']) == ('this project', False)
    assert fp8['ratio_vs']['tokens_per_sec'] == pytest.approx(fp8['tokens_per_sec'] / bf16['tokens_per_sec'])
    assert fp8['loss'] == pytest.approx(bf16['loss'], abs=0.05) and fp8['throttled'] is not None
    assert "this project, fp8 / this project: " in proc.stdout


@pytest.mark.xdist_group('precision')
def test_fp8_layers_match_bf16(record_property):
    """One forward and backward of a 4-layer LLaMA at 1.36B width (2304, d_ff 6144) with the blocks'
    Linear layers in FP8 against the same model in bf16 autocast: logits and every block weight's
    gradient within the stated relative (norm) errors."""
    needs_torchao()
    import copy
    import parallelize
    from model import ModelConfig, Transformer
    torch.manual_seed(0)
    plain = Transformer(ModelConfig(arch='llama', n_layer=4, n_head=18, n_embd=2304, d_ff=6144, block_size=1024,
                                    vocab_size=32000)).cuda()
    fp8 = parallelize.convert_to_fp8(copy.deepcopy(plain))
    x = torch.randint(0, 32000, (4, 1025), device='cuda', generator=torch.Generator('cuda').manual_seed(1))
    out = {}
    for name, model in (('bf16', plain), ('fp8', fp8)):
        with torch.autocast('cuda', dtype=torch.bfloat16):
            logits, _ = model(x[:, :-1])
            loss = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), x[:, 1:].flatten())
        loss.backward()
        out[name] = (logits.float(), loss.item(),
                     {n: p.grad.float() for n, p in model.named_parameters() if n.startswith('blocks.')})

    def rel(a, b):
        return ((a - b).norm() / b.norm()).item()
    logits_err = rel(out['fp8'][0], out['bf16'][0])
    grad_err = max(rel(out['fp8'][2][n], out['bf16'][2][n]) for n in out['bf16'][2])
    record_property('logits_rel_err', logits_err)
    record_property('max_grad_rel_err', grad_err)
    record_property('loss_diff', abs(out['fp8'][1] - out['bf16'][1]))
    assert len(parallelize.fp8_layers(plain)) == 16 and type(fp8.blocks[0].mlp.fc).__name__ == 'Float8Linear'
    assert logits_err <= FP8_LOGITS_TOL and grad_err <= FP8_GRAD_TOL, (logits_err, grad_err)


@pytest.mark.xdist_group('gpt2')
def test_activation_memory_budget_recomputes_and_trains_the_same(stdlib, tmp_path, record_property):
    """activation_memory_budget below 1: torch.compile saves fewer activations (lower peak memory) and
    recomputes them in backward, which changes no loss beyond rounding."""
    shape = dict(batch_size=32, block_size=256)  # activations well above the weights and AdamW state
    outs, peak = {}, {}
    for budget in (1.0, 0.3):
        outs[budget] = str(tmp_path / f'budget{budget}')
        train(gpu_args(QUICK['llama'], outs[budget], activation_memory_budget=budget, **shape))
        log, _ = helpers.run_log(outs[budget])
        peak[budget] = max(r['peak_mem_gib'] for r in log['iters'])
    ldiff = loss_diff(losses(outs[0.3]), losses(outs[1.0]), range(1, 9))
    record_property('peak_mem_gib', peak)
    record_property('max_loss_diff', ldiff)
    assert peak[0.3] < 0.9 * peak[1.0], peak
    assert ldiff <= LOSS_TOL, f"losses differ by up to {ldiff:.3g}"


@pytest.mark.xdist_group('precision')
def test_float16_divergence_stops_and_keeps_the_last_good_checkpoint(runs, tmp_path):
    """float16: steps the GradScaler skips count as non-finite, so a run that diverges stops after
    max_nonfinite_steps with a one-line error and does not overwrite the last good checkpoint (it
    counted every step as taken: the run went on to max_iters and saved the diverged weights)."""
    out = str(tmp_path / 'out')
    train(gpu_args(QUICK['llama'], out, dtype='float16', compile=False, max_iters=2))
    before = helpers.snapshot(out)['ckpt.pt']
    proc = train(gpu_args(QUICK['llama'], out, dtype='float16', compile=False, init_from='resume', max_iters=40,
                          learning_rate=1e30, min_lr=1e30, max_nonfinite_steps=20), check=False)
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert 'optimizer steps in a row had a non-finite gradient norm' in proc.stderr, proc.stderr[-2000:]
    assert helpers.snapshot(out)['ckpt.pt'] == before


@pytest.mark.xdist_group('tools')
def test_flash_attention_in_float32_is_a_configuration_error(stdlib, tmp_path):
    proc = train(gpu_args(QUICK['llama'], str(tmp_path / 'out'), dtype='float32', compile=False,
                          attention_backend='flash'), check=False)
    assert proc.returncode == 2 and "attention_backend='flash' runs only in bfloat16 or float16" in proc.stderr, \
        proc.stderr[-2000:]
    assert not os.path.exists(tmp_path / 'out')


# -----------------------------------------------------------------------------
# both 1.36B configs, on random tokens of their vocabulary

@pytest.fixture(scope='module')
def random_tokens(tmp_path_factory):
    """A dataset of uniform random tokens for each 1.36B vocabulary (4M tokens of train, 1M of val)."""
    made = {}

    def get(vocab):
        if vocab not in made:
            made[vocab] = helpers.make_dataset(tmp_path_factory.mktemp(f'random{vocab}'), vocab_size=vocab)
            rng = np.random.default_rng(0)
            for split, n in (('train', 4_000_000), ('val', 1_000_000)):
                rng.integers(0, vocab, size=n).astype(np.uint16).tofile(os.path.join(made[vocab], f'{split}.bin'))
        return made[vocab]
    return get


@contextlib.contextmanager
def scratch_folder(tmp_path):
    """Where a 1.36B check's checkpoints go: a RAM disk with room for two of them (a save writes ~16 GB
    beside the previous file) for the first check that claims it, else tmp_path: the two checks run
    side by side, and two on the RAM disk beside their processes' host memory would not fit in 128 GB.
    Only the suite's time depends on it. Removed at the end."""
    claim = os.path.join('/dev/shm', 'gpu-suite-claim')
    folder = None
    if os.path.isdir('/dev/shm') and shutil.disk_usage('/dev/shm').free > 40e9:
        try:
            os.close(os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            folder = os.path.join('/dev/shm', 'gpu-suite-' + os.path.basename(str(tmp_path)))
            os.makedirs(folder, exist_ok=True)
        except FileExistsError:
            pass
    try:
        yield type(tmp_path)(folder) if folder else tmp_path
    finally:
        if folder:
            shutil.rmtree(folder, ignore_errors=True)
            os.remove(claim)


def seconds_in(line, before):
    """The number of seconds in a log line, after the text `before`."""
    return float(line.split(before)[1].split('s')[0])


@pytest.mark.parametrize('arch', [pytest.param('llama', marks=pytest.mark.xdist_group('full-llama')),
                                  pytest.param('gpt2', marks=pytest.mark.xdist_group('full-gpt2'))])
def test_full_config_checkpoints_and_resume(arch, random_tokens, tmp_path, record_property):
    """Mid-run checkpoints at 1 and 2, the end at 3, a resume to 4, against the uninterrupted run to
    4. Records checkpoint write and load times and the host memory peak while saving. Each 1.36B
    checkpoint is ~16 GB: the folders are removed as soon as they have been compared."""
    config, vocab = FULL[arch]
    data = random_tokens(vocab)
    with scratch_folder(tmp_path) as folder:
        small = dict(dataset=data, batch_size=2, gradient_accumulation_steps=2, max_iters=4, lr_decay_iters=4,
                     warmup_iters=1, eval_iters=1)
        out = str(folder / 'out')
        first = train(gpu_args(config, out, **dict(small, max_iters=3, eval_interval=1)))
        saves = saved_lines(first)
        assert len(saves) == 3, first.stdout[-3000:]
        record_property('checkpoint_write_seconds', [seconds_in(line, ' in ') for line in saves])
        record_property('host_memory_peak_gib', float(saves[-1].split('host memory peak ')[1].split(' GiB')[0]))
        record_property('checkpoint_gb', round(os.path.getsize(os.path.join(out, 'ckpt.pt')) / 1e9, 2))
        resumed = train(gpu_args(config, out, **dict(small, init_from='resume', eval_interval=1)))
        line = next(line for line in resumed.stdout.splitlines() if line.startswith('resuming from'))
        record_property('checkpoint_load_seconds', seconds_in(line, 'loaded in '))
        assert helpers.logged_iters(resumed.stdout.splitlines()) == [4]
        got_losses, got = losses(out), load(out)['model']
        shutil.rmtree(out)
        ref_out = str(folder / 'ref')
        train(gpu_args(config, ref_out, **dict(small, eval_interval=1000)))
        want_losses = losses(ref_out)
        ldiff = loss_diff(got_losses, want_losses, range(1, 5))
        wdiff = helpers.max_weight_diff(got, load(ref_out)['model'])
        shutil.rmtree(ref_out)
        record_property('checkpoint_storage', 'RAM disk' if str(folder).startswith('/dev/shm') else 'disk')
        record_property('max_loss_diff', ldiff)
        record_property('max_weight_diff', wdiff)
        # uniform random tokens: the loss stays near ln(vocab), above it by half the variance of the initial
        # logits (GPT-2's tied embedding gives ln(50257) + ~0.5: 11.31-11.34 measured on an H100)
        assert all(abs(want_losses[i] - math.log(vocab)) < 1.0 for i in (1, 2)), want_losses
        assert ldiff <= FULL_LOSS_TOL, f"losses differ from the uninterrupted run by up to {ldiff:.3g}"
        assert wdiff <= FULL_WEIGHT_TOL, f"final weights differ from the uninterrupted run by up to {wdiff:.3g}"


# -----------------------------------------------------------------------------
# eval_only, sample.py, export_hf.py, bench.py, SIGTERM

@pytest.mark.xdist_group('llama')
def test_eval_only_on_gpu(runs, tmp_path, record_property):
    ref_out, _ = reference(runs, 'llama')
    out = str(tmp_path / 'out')
    shutil.copytree(ref_out, out)
    before = helpers.snapshot(out)['ckpt.pt']
    proc = train(gpu_args(QUICK['llama'], out, init_from='resume', eval_only=True))
    assert helpers.snapshot(out)['ckpt.pt'] == before
    final = helpers.run_log(ref_out)[0]['evals'][-1]
    line = next(line for line in proc.stdout.splitlines() if line.startswith('eval iter 8: '))
    got = [float(line.split(' loss ')[k].split(',')[0]) for k in (1, 2)]
    diff = max(abs(got[0] - final['train_loss']), abs(got[1] - final['val_loss']))
    record_property('max_loss_diff', diff)
    # the same weights on the same batches; the compiled bf16 forward of another process matched to the
    # printed 4 decimals in two runs of the suite and differed by 2e-4 (val) in a third (one H100)
    assert diff <= EVAL_TOL, (line, final)
    # bits per byte of the same validation targets (python_stdlib has a byte table): the same bytes, and
    # the same value within the same bound
    logged = helpers.run_log(out)[0]['evals'][-1]
    assert final['val_bpb'] is not None and logged['val_bytes'] == final['val_bytes'] > 0, (logged, final)
    record_property('bpb_diff', abs(logged['val_bpb'] - final['val_bpb']))
    assert abs(logged['val_bpb'] - final['val_bpb']) <= EVAL_TOL, (logged, final)
    assert f"val {logged['val_bpb']:.4f} bits per byte" in line


@pytest.mark.xdist_group('llama')
def test_sample_on_gpu(runs):
    ref_out, _ = reference(runs, 'llama')
    args = [f'--out_dir={ref_out}', '--device=cuda', '--num_samples=2', '--max_new_tokens=64', '--start=def ']
    proc = helpers.run('sample.py', args, timeout=GPU_TIMEOUT, check=True)
    samples = re.split(r'^--- sample \d+ of 2 ---\n', proc.stdout, flags=re.M)
    assert len(samples) == 3 and samples[0] == '' and all(s.strip() for s in samples[1:]), proc.stdout[-2000:]
    assert helpers.run('sample.py', args, timeout=GPU_TIMEOUT, check=True).stdout == proc.stdout  # seeded


@pytest.mark.parametrize('arch', [pytest.param('llama', marks=pytest.mark.xdist_group('llama')),
                                  pytest.param('gpt2', marks=pytest.mark.xdist_group('gpt2'))])
def test_export_hf_of_gpu_checkpoint(arch, runs, tmp_path, record_property):
    """export_hf.py of a GPU-trained checkpoint: transformers' model gives the same logits on the GPU."""
    from transformers import AutoModelForCausalLM
    from checkpoint import load_checkpoint, model_from_checkpoint
    ref_out, _ = reference(runs, arch)
    folder = str(tmp_path / 'hf')
    helpers.run('export_hf.py', ['--ckpt', os.path.join(ref_out, 'ckpt.pt'), '--out', folder], timeout=GPU_TIMEOUT,
                check=True)
    ours = model_from_checkpoint(load_checkpoint(os.path.join(ref_out, 'ckpt.pt'))).cuda().eval()
    theirs = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).cuda().eval()
    idx = torch.randint(0, ours.config.vocab_size, (2, ours.config.block_size), device='cuda',
                        generator=torch.Generator(device='cuda').manual_seed(0))
    with torch.no_grad():
        a, b = ours(idx)[0].float(), theirs(idx).logits.float()
    diff = (a - b).abs().max().item()
    record_property('max_logit_diff', diff)
    assert diff < 1e-3 * max(1.0, a.abs().max().item()), f"logits differ by {diff:.3g}"


@pytest.mark.xdist_group('tools')
def test_bench_on_gpu(stdlib, tmp_path):
    out = tmp_path / 'bench.jsonl'
    proc = helpers.run('bench.py', ['config/quick_llama.py', '--device=cuda', '--dtype=bfloat16', '--compile=True',
                                    '--vocab_size=257', '--bench_iters=3', '--bench_warmup=2', f'--bench_out={out}'],
                       timeout=GPU_TIMEOUT, check=True)
    import json
    result = json.loads(out.read_text().splitlines()[-1])
    assert result['tokens_per_sec'] > 0 and math.isfinite(result['loss']) and result['peak_mem_gib'] > 0
    assert f"{result['tokens_per_sec']:,.0f} tok/s" in proc.stdout


@pytest.mark.xdist_group('tools')
def test_sigterm_saves_and_resume_continues(stdlib, tmp_path):
    out = str(tmp_path / 'out')
    args = gpu_args(QUICK['llama'], out, max_iters=100000, lr_decay_iters=100000)
    proc = helpers.start('train.py', args)
    _, lines = helpers.wait_for_line(proc, lambda line: line.startswith('iter 3: loss'), timeout=GPU_TIMEOUT)
    proc.send_signal(signal.SIGTERM)
    code, rest = helpers.finish(proc, timeout=GPU_TIMEOUT)
    lines += rest
    assert code == 0, '\n'.join(lines[-30:])
    stopped = helpers.logged_iters(lines)[-1]
    assert f"stopped at iter {stopped} by SIGTERM; resume with the same command and --init_from=resume" in lines
    assert load(out)['iter_num'] == stopped
    resumed = train(gpu_args(QUICK['llama'], out, max_iters=stopped + 3, lr_decay_iters=100000, init_from='resume'))
    assert helpers.logged_iters(resumed.stdout.splitlines()) == [stopped + 1, stopped + 2, stopped + 3]
    assert load(out)['iter_num'] == stopped + 3


if __name__ == '__main__':
    sys.exit(pytest.main([__file__, '-q']))
