"""
Shared by test_train.py, test_distributed.py and test_reliability.py: a tiny dataset built on the
spot, the real command lines (python train.py ..., torchrun ... train.py ...) run as subprocesses
with bounded timeouts, and checkpoint comparisons.
"""
import hashlib
import json
import os
import pickle
import subprocess
import sys
import time

import numpy as np
import torch

import runlog

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

VOCAB = 257  # byte tokens: 0..255, 256 ends a document
# a 2-layer, 64-wide model on CPU in fp32; the architecture comes from the config file
TINY_MODEL = ['--n_layer=2', '--n_head=4', '--n_kv_head=4', '--n_embd=64', '--d_ff=None', '--block_size=64',
              f'--vocab_size={VOCAB}', '--device=cpu', '--compile=False', '--dtype=float32']
CONFIGS = {'llama': 'config/full_llama_1.36b.py', 'gpt2': 'config/full_gpt2_1.36b.py'}
TIMEOUT = 180  # seconds, for any one subprocess: nothing may hang the suite


def make_dataset(folder, vocab_size=VOCAB, meta_vocab_size=None, train_tokens=20000, val_tokens=4000,
                 pattern_length=97, seed=0, splits=('train', 'val')):
    """train.bin / val.bin / meta.pkl as a prepare.py writes them: a random pattern repeated, so that
    a model learns it in a few steps and the loss falls fast. Returns the folder."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    pattern = rng.integers(0, min(vocab_size, 256), size=pattern_length)
    for split, n in (('train', train_tokens), ('val', val_tokens)):
        if split in splits:
            np.resize(pattern, n).astype(np.uint16).tofile(os.path.join(folder, f'{split}.bin'))
    meta_vocab = meta_vocab_size or vocab_size
    meta = {'vocab_size': meta_vocab, 'tokenizer': {'kind': 'bytes', 'name': 'bytes'}, 'bos_id': None,
            'eos_id': meta_vocab - 1, 'dtype': 'uint16'}
    with open(os.path.join(folder, 'meta.pkl'), 'wb') as f:
        pickle.dump(meta, f)
    return str(folder)


def train_args(dataset, out_dir, arch='llama', **overrides):
    """The argument list of a tiny training run: the production config file, shrunk."""
    settings = dict(max_iters=10, batch_size=4, gradient_accumulation_steps=1, eval_interval=1000,
                    eval_iters=2, log_interval=1, warmup_iters=2, learning_rate=3e-3, min_lr=3e-4,
                    lr_decay_iters=None, dataset=dataset, out_dir=out_dir)
    settings.update(overrides)
    if settings['lr_decay_iters'] is None:
        settings['lr_decay_iters'] = settings['max_iters']
    return [CONFIGS[arch], *TINY_MODEL, *(f'--{k}={v}' for k, v in settings.items())]


def env(**extra):
    """One thread per process (2 ranks share 2 cores) and no inherited torchrun variables."""
    e = {k: v for k, v in os.environ.items()
         if k not in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'LOCAL_WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')}
    e.update(OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1', PYTHONDONTWRITEBYTECODE='1')
    e.update(extra)
    return e


def command(script, args, nproc=None):
    launcher = [sys.executable]
    if nproc:
        launcher += ['-m', 'torch.distributed.run', '--standalone', f'--nproc_per_node={nproc}']
    return launcher + [script, *map(str, args)]


def run(script, args, nproc=None, timeout=TIMEOUT, check=None):
    """Run a script of the repo to completion; check=True asserts exit 0 and shows the output if not."""
    proc = subprocess.run(command(script, args, nproc), cwd=REPO, env=env(), capture_output=True, text=True,
                          timeout=timeout)
    if check:
        assert proc.returncode == 0, f"{script} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def train(args, nproc=None, **kwargs):
    return run('train.py', args, nproc=nproc, check=kwargs.pop('check', True), **kwargs)


def start(script, args, nproc=None):
    """A training process in the background, its output (stdout and stderr) read line by line."""
    return subprocess.Popen(command(script, args, nproc), cwd=REPO, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)


def wait_for_line(proc, predicate, timeout=TIMEOUT):
    """Read proc's output until a line satisfies predicate; returns (that line, all lines so far).
    Fails (and kills proc) if the process ends or the time runs out first."""
    import selectors
    lines = []
    deadline = time.monotonic() + timeout
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        while time.monotonic() < deadline:
            if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                break
            line = proc.stdout.readline()
            if not line:
                break  # the process ended
            lines.append(line.rstrip('\n'))
            if predicate(lines[-1]):
                return lines[-1], lines
    finally:
        sel.unregister(proc.stdout)
    proc.kill()
    proc.wait(timeout=30)
    raise AssertionError("expected line never came; output was:\n" + '\n'.join(lines[-40:]))


def finish(proc, timeout=TIMEOUT):
    """The rest of a background process's output and its exit status."""
    try:
        rest, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=30)
        raise
    return proc.returncode, rest.splitlines()


def load(out_dir):
    return torch.load(os.path.join(out_dir, 'ckpt.pt'), map_location='cpu', weights_only=False)


def max_weight_diff(a, b):
    """Max abs difference between two model state dicts (which must have the same keys and shapes)."""
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


def assert_identical(a, b):
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"tensors differ: {different[:5]} (max abs diff {max_weight_diff(a, b):.3g})"


def run_log(out_dir):
    """The run log of out_dir (there must be exactly one) and its JSON-lines twin, parsed."""
    names = sorted(f for f in os.listdir(out_dir) if f.startswith('run_') and f.endswith('.json'))
    assert len(names) == 1, names
    path, data = runlog.read_run_log(os.path.join(out_dir, names[0]))
    with open(path[:-len('.json')] + '.jsonl') as f:
        lines = [json.loads(line) for line in f]
    return data, lines


def snapshot(folder):
    """{relative path: (size, mtime_ns, sha256)} of every file under folder; None if it does not exist."""
    if not os.path.exists(folder):
        return None
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, 'rb') as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            st = os.stat(path)
            out[os.path.relpath(path, folder)] = (st.st_size, st.st_mtime_ns, digest)
    return out


def logged_iters(lines):
    """The iteration numbers of the console's 'iter N: loss ...' lines."""
    return [int(line.split()[1].rstrip(':')) for line in lines if line.startswith('iter ') and ': loss ' in line]


def stand_in_tokenizers():
    """data/stand_in_tokenizers.py as a module: the offline Llama-2-style and GPT-2-style tokenizers."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('stand_in_tokenizers',
                                                  os.path.join(REPO, 'data', 'stand_in_tokenizers.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
