"""
train.py's memory check (memory_check): a run whose estimated peak memory per process (the cost
tool's train_memory_estimate) exceeds the device's is refused in one line before anything is built
or written; memory_check=False skips the check; and the estimate is what a real CPU run's peak RSS
measures.

Every train.py run here has its address space capped (RLIMIT_AS, address_cap), so that a run the
check lets through by mistake fails at the cap instead of swapping until the kernel kills it.
"""
import functools
import math
import os
import re
import resource
import subprocess
import sys
import time

import pytest

import helpers
import train
from configurator import UserError

pytestmark = pytest.mark.skipif(sys.platform != 'linux', reason="RLIMIT_AS and ru_maxrss in KiB: Linux")

QUICK = 'config/quick_llama.py'
GIB = 2 ** 30
SHORT = ['--max_iters=2', '--eval_iters=1', '--eval_interval=1000', '--log_interval=1', '--warmup_iters=1',
         '--lr_decay_iters=2']


@functools.cache
def address_cap():
    """The address space each run gets: what importing torch maps (a CUDA build maps more than a CPU
    one) plus 3 GiB, enough for the runs that fit and far below the impossible one."""
    proc = subprocess.run([sys.executable, '-c', "import torch; print(open('/proc/self/status').read())"],
                          capture_output=True, text=True, timeout=helpers.TIMEOUT, env=helpers.env())
    return int(re.search(r'^VmPeak:\s+(\d+) kB', proc.stdout, re.M).group(1)) * 1024 + 3 * GIB


def machine_memory():
    return os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')


def impossible_batch():
    """The micro-batch at which quick_llama at block_size 100000 cannot fit this machine: the config's
    16 (about 93 GiB estimated, 5.8 GiB a sequence), or more on a machine of over 64 GiB."""
    return 16 * max(1, math.ceil(machine_memory() / (64 * GIB)))


def estimate(*argv):
    """train_memory_estimate of `python train.py config/quick_llama.py ARGV` on this CPU, vocabulary
    helpers.VOCAB (the tiny dataset's)."""
    from flops_parameter_counting.detailed_cost_analysis import train_memory_estimate  # after the run it checks
    c = train.parse_config([os.path.join(helpers.REPO, QUICK), *argv])
    mconf = train.model_config(c, None, helpers.VOCAB)
    return train_memory_estimate(mconf.to_dict(), c.batch_size, 1, 'cpu', 'float32', compile=c.compile)


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """Longer than block_size 100000 in both splits: without the check, that run would start training."""
    return helpers.make_dataset(tmp_path_factory.mktemp('data'), train_tokens=250_000, val_tokens=110_000)


def run_capped(args, timeout=helpers.TIMEOUT):
    """python train.py ARGS, its address space capped: (exit status, stdout, stderr, seconds)."""
    limit = address_cap()
    cap = lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit))  # noqa: E731
    start = time.monotonic()
    proc = subprocess.Popen(helpers.command('train.py', args), cwd=helpers.REPO, env=helpers.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=cap)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return proc.returncode, out, err, time.monotonic() - start


def peak_rss(args, timeout=helpers.TIMEOUT):
    """Peak RSS in bytes of `python train.py ARGS` (its address space capped), read with wait4 from a
    small parent process of its own, so that no other child of this test process counts."""
    script = ("import os, resource, subprocess, sys\n"
              f"cap = lambda: resource.setrlimit(resource.RLIMIT_AS, ({address_cap()}, {address_cap()}))\n"
              "p = subprocess.Popen(sys.argv[1:], preexec_fn=cap)\n"
              "_, status, usage = os.wait4(p.pid, 0)\n"
              "print(os.waitstatus_to_exitcode(status), usage.ru_maxrss * 1024)\n")
    proc = subprocess.run([sys.executable, '-c', script, *helpers.command('train.py', args)], cwd=helpers.REPO,
                          env=helpers.env(), capture_output=True, text=True, timeout=timeout)
    code, rss = map(int, proc.stdout.strip().splitlines()[-1].split())
    assert code == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return rss


@pytest.mark.slow  # python train.py runs
def test_impossible_run_is_refused_in_one_line_before_anything_is_written(data, tmp_path):
    """`python train.py config/quick_llama.py --block_size=100000` on the CPU used to train until
    the kernel killed it, leaving a run log; now it stops within seconds, naming the estimate."""
    out = tmp_path / 'out'
    batch = impossible_batch()
    code, stdout, stderr, seconds = run_capped([QUICK, '--block_size=100000', f'--batch_size={batch}',
                                                f'--dataset={data}', f'--out_dir={out}'])
    assert code == 2, (code, stdout[-2000:], stderr[-3000:])
    assert 'Traceback' not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    est = estimate('--block_size=100000', f'--batch_size={batch}')
    assert est['peak'] > machine_memory()
    assert re.fullmatch(
        rf"error: estimated peak memory {est['peak'] / GIB:.1f} GiB per process \(activations "
        rf"{est['activations'] / GIB:.1f} GiB\) exceeds this machine's memory \({machine_memory() / GIB:.1f} GiB\): "
        rf"lower --batch_size \({batch}\) or --block_size \(100000\), or add --activation_checkpointing=True; "
        r"--memory_check=False runs it anyway\n", stderr), stderr
    assert not out.exists()  # no run log, no checkpoint, not even the folder
    assert seconds < 60, seconds


@pytest.mark.slow
def test_memory_check_false_lets_the_run_start(data, tmp_path):
    """With --memory_check=False the same run gets past setup and starts training (its run log is
    written), and then fails at the address-space cap: the check, not the cap, refused it above."""
    out = tmp_path / 'out'
    code, stdout, stderr, _ = run_capped([QUICK, '--block_size=100000', f'--batch_size={impossible_batch()}',
                                          f'--dataset={data}', f'--out_dir={out}', '--memory_check=False'])
    assert code != 0 and 'estimated peak memory' not in stderr, stderr[-2000:]
    assert 'tokens per iteration' in stdout and 'run log: ' in stdout, stdout[-2000:]
    assert "can't allocate memory" in stderr, stderr[-2000:]
    assert [f for f in os.listdir(out) if f.startswith('run_') and f.endswith('.json')]


def test_check_memory_refuses_only_what_exceeds_the_machine():
    """train.check_memory in the process: quick_llama as configured passes; at block_size 100000 it
    raises the one-line UserError, which memory_check=False skips."""
    def check(*argv):
        c = train.parse_config([os.path.join(helpers.REPO, QUICK), *argv])
        ranks = train.setup_ranks(c)
        dev = train.setup_device(c, ranks)
        return train.check_memory(c, train.model_config(c, None, helpers.VOCAB), ranks, dev)
    assert check() is None
    impossible = ['--block_size=100000', f'--batch_size={impossible_batch()}']
    with pytest.raises(UserError, match=r"^estimated peak memory [\d.]+ GiB per process \(activations "):
        check(*impossible)
    assert check(*impossible, '--memory_check=False') is None


# Peak RSS of short real runs of config/quick_llama.py on the CPU against the estimate (tiny dataset,
# vocabulary 257, 2 optimizer steps, one thread). The estimate is the live bytes at the peak plus the
# process (CPU_PROCESS_GIB); glibc keeps freed blocks of up to 32 MiB in its heap, so peak RSS runs
# 1.0-1.25x the estimate (measured: 1.05 at quick_llama's own 16 x 128, 1.16 at 16 x 1024, 1.21 at
# 16 x 2048; with MALLOC_MMAP_THRESHOLD_=65536, which returns every freed block, 0.97-0.99).
RSS_SHAPES = [('16 x 128 (the config)', []), ('16 x 1024', ['--block_size=1024'])]


@pytest.mark.slow
def test_estimate_matches_peak_rss_of_a_real_cpu_run(data, tmp_path):
    runs = {'tiny': ['--batch_size=1', '--block_size=8']} | dict(RSS_SHAPES)
    measured = {name: peak_rss([QUICK, *argv, f'--dataset={data}', f'--out_dir={tmp_path / str(i)}', *SHORT])
                for i, (name, argv) in enumerate(runs.items())}
    estimated = {name: estimate(*argv)['peak'] for name, argv in runs.items()}
    for name, _ in RSS_SHAPES:
        ratio = measured[name] / estimated[name]
        # what the training step adds over a tiny run of the same model: the baseline cancels
        added = (measured[name] - measured['tiny']) / (estimated[name] - estimated['tiny'])
        report = f"{name}: measured {measured[name] / GIB:.3f} GiB, estimated {estimated[name] / GIB:.3f} GiB"
        assert 0.9 <= ratio <= 1.4, (report, ratio)
        assert 0.9 <= added <= 1.5, (report, added)
