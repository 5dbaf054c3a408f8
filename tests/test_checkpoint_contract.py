"""
checkpoint.py's resume contract in one process, on tiny models: what training_state gathers
(copies, never the live tensors), and that restore_training_state puts optimizer, GradScaler and RNG
back so that the next step is the same as without the round trip through a file; loading runs no
code of the file (weights only, numpy's RNG state allowed), which of ckpt.pt and ckpt_last.pt a
resume takes, what an older checkpoint's missing fields stand for, and README's way to open one.
"""
import os
import random
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

import checkpoint
import helpers
from checkpoint import load_checkpoint, restore_training_state, save_checkpoint, training_state
from configurator import UserError
from test_model import tiny_model


def step(model, optimizer, scaler, seed):
    x = torch.randint(0, model.config.vocab_size, (2, 16), generator=torch.Generator().manual_seed(seed))
    _, loss = model(x, x)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    return loss.item()


def fresh(state=None, weight_decay=0.1, **settings):
    torch.manual_seed(0)
    model = tiny_model('llama')
    if state is not None:
        model.load_state_dict(state)
    optimizer = torch.optim.AdamW(model.param_groups(weight_decay), **dict(dict(lr=1e-2, betas=(0.9, 0.95)), **settings))
    scaler = torch.amp.GradScaler('cpu', enabled=True, init_scale=2.0 ** 10, growth_interval=1)
    return model, optimizer, scaler


def test_round_trip_continues_like_the_uninterrupted_run(tmp_path):
    model, optimizer, scaler = fresh()
    for seed in range(3):
        step(model, optimizer, scaler, seed)
    path = str(tmp_path / 'ckpt.pt')
    state = training_state(model, optimizer, scaler, True, model_args=model.config.to_dict(), iter_num=3,
                           config={}, best_val_loss=1.0)
    assert state['scaler']['scale'] == scaler.get_scale() > 2.0 ** 10  # grew once a step
    save_checkpoint(state, path)
    random.random(), np.random.rand(), torch.rand(1)  # RNG moves on after the checkpoint
    expected = [step(model, optimizer, scaler, seed) for seed in (3, 4)]
    expected_weights = {k: v.clone() for k, v in model.state_dict().items()}

    ckpt = load_checkpoint(path)
    model, optimizer, scaler = fresh(ckpt['model'])
    restore_training_state(ckpt, optimizer, scaler)
    assert scaler.get_scale() == ckpt['scaler']['scale']
    assert torch.equal(torch.get_rng_state(), ckpt['rng']['torch'])
    assert [step(model, optimizer, scaler, seed) for seed in (3, 4)] == expected
    for name, value in model.state_dict().items():
        assert torch.equal(value, expected_weights[name]), name


def test_training_state_holds_copies():
    model, optimizer, scaler = fresh()
    step(model, optimizer, scaler, 0)
    state = training_state(model, optimizer, scaler, True, iter_num=1)
    live = {id(t) for t in model.state_dict().values()}
    live |= {id(v) for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v)}
    saved = list(state['model'].values())
    saved += [v for s in state['optimizer']['state'].values() for v in s.values() if torch.is_tensor(v)]
    assert not live & {id(t) for t in saved}
    assert not any(t.untyped_storage().data_ptr() == p.untyped_storage().data_ptr()
                   for t in saved for p in model.parameters())
    assert training_state(model, optimizer, scaler, False, iter_num=1) is None  # other ranks write nothing


def test_scaler_state_absent_when_not_float16():
    model, optimizer, _ = fresh()
    scaler = torch.amp.GradScaler('cpu', enabled=False)
    step(model, optimizer, scaler, 0)
    assert training_state(model, optimizer, scaler, True, iter_num=1)['scaler'] == {}


def test_configured_optimizer_settings_win_on_resume(tmp_path):
    """betas, weight_decay, eps and fused are this run's configuration, not the checkpoint's (a changed
    weight_decay was logged but not applied; a GPU-made checkpoint forced fused AdamW on a CPU resume)."""
    model, optimizer, scaler = fresh(fused=True)  # as a run on a GPU builds it
    step(model, optimizer, scaler, 0)
    ckpt = training_state(model, optimizer, scaler, True, iter_num=1)
    assert ckpt['optimizer']['param_groups'][0]['fused'] and ckpt['optimizer']['param_groups'][0]['weight_decay'] == 0.1
    _, optimizer, scaler = fresh(ckpt['model'], weight_decay=0.0, betas=(0.8, 0.99), eps=1e-6)
    restore_training_state(ckpt, optimizer, scaler)
    assert [g['weight_decay'] for g in optimizer.param_groups] == [0.0, 0.0]
    assert all(g['betas'] == (0.8, 0.99) and g['eps'] == 1e-6 and not g['fused'] for g in optimizer.param_groups)
    assert all(torch.equal(optimizer.state[p]['exp_avg'], ckpt['optimizer']['state'][i]['exp_avg'])
               for i, p in enumerate(p for g in optimizer.param_groups for p in g['params']))


def test_resumed_state_holds_no_tensor_of_the_file(tmp_path):
    """On CPU the optimizer keeps the tensors it is given: they must be copies, not views of the
    memory-mapped checkpoint, or the file's space stays in use after a later save replaces it."""
    model, optimizer, scaler = fresh()
    step(model, optimizer, scaler, 0)
    path = str(tmp_path / 'ckpt.pt')
    save_checkpoint(training_state(model, optimizer, scaler, True, model_args=model.config.to_dict(), iter_num=1,
                                   config={}), path)
    ckpt = load_checkpoint(path)
    _, optimizer, scaler = fresh(ckpt['model'])
    restore_training_state(ckpt, optimizer, scaler)
    del ckpt
    import gc
    gc.collect()
    with open('/proc/self/maps') as f:
        mapped = [line for line in f if path in line]
    assert not mapped, f"{path} is still mapped: {mapped[:2]}"

def test_zero1_gathers_and_loads_like_one_adamw(tmp_path):
    """ZeRO-1 in a one-rank gloo group: checkpoint.py's gather gives the plain AdamW's state dict
    (same indices, tensors and settings), and loading it keeps one copy of the state (the local
    AdamW's), not a second one in the wrapper."""
    import torch.distributed as dist
    from torch.distributed.optim import ZeroRedundancyOptimizer
    from checkpoint import full_optimizer_state, load_optimizer_state
    dist.init_process_group('gloo', init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        model, plain, scaler = fresh()
        step(model, plain, scaler, 0)
        want = plain.state_dict()
        zmodel, _, _ = fresh()
        zero = ZeroRedundancyOptimizer(zmodel.param_groups(0.1), optimizer_class=torch.optim.AdamW, lr=1e-2,
                                       betas=(0.9, 0.95))
        load_optimizer_state(zero, want)
        assert len(zero.state) == 0 and len(zero.optim.state) == len(want['state'])
        got = full_optimizer_state(zero)
        assert sorted(got['state']) == sorted(want['state'])
        for index, entry in want['state'].items():
            assert sorted(got['state'][index]) == sorted(entry)
            assert all(torch.equal(got['state'][index][k], v) for k, v in entry.items())
        assert [g['params'] for g in got['param_groups']] == [g['params'] for g in want['param_groups']]
        assert [{k: v for k, v in g.items() if k not in ('params', 'initial_lr')} for g in got['param_groups']] == \
               [{k: v for k, v in g.items() if k not in ('params', 'initial_lr')} for g in want['param_groups']]
    finally:
        dist.destroy_process_group()


# -----------------------------------------------------------------------------
# loading runs no code of the file

def saved_checkpoint(path, iter_num=2, **fields):
    """A checkpoint as training_state makes it (float16 GradScaler state, every RNG), written to path."""
    model, optimizer, scaler = fresh()
    for seed in range(iter_num):
        step(model, optimizer, scaler, seed)
    state = training_state(model, optimizer, scaler, True, model_args=model.config.to_dict(), iter_num=iter_num,
                           config={'seed': 1337, 'dataset': 'python_stdlib'}, best_val_loss=float('inf'),
                           **fields)
    save_checkpoint(state, str(path))
    return state


class Crafted:
    """Pickled as a call of open(path, 'w'): unpickling it creates the file."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (self.path, 'w')


def test_a_crafted_checkpoint_runs_no_code(tmp_path):
    path, marker = str(tmp_path / 'ckpt.pt'), str(tmp_path / 'created-by-loading')
    state = saved_checkpoint(path)
    torch.save(dict(state, run_log=Crafted(marker)), path)
    assert not os.path.exists(marker)
    with pytest.raises(UserError) as error:
        load_checkpoint(path)
    assert not os.path.exists(marker), "loading the checkpoint ran code from it"
    assert str(error.value) == (f"{path} is not a checkpoint of this project: it holds a Python object no checkpoint "
                                f"holds (io.open); it was not loaded, since loading it could run code from the file: "
                                f"restore it from a copy, or train anew in another out_dir")


def test_safe_globals_are_what_a_checkpoint_holds(tmp_path):
    """Every object a checkpoint holds beyond tensors and plain values is allowed, and each allowed
    one is needed (numpy's RNG state: an ndarray, its reconstruction, its dtype)."""
    path = str(tmp_path / 'ckpt.pt')
    state = saved_checkpoint(path)
    assert state['scaler'] and isinstance(state['rng']['numpy'][1], np.ndarray)
    allowed = [g for g in checkpoint.safe_globals() if not isinstance(g, tuple)]
    names = {f"{g.__module__}.{g.__qualname__}" for g in allowed}
    assert set(torch.serialization.get_unsafe_globals_in_checkpoint(path)) <= names
    ckpt = load_checkpoint(path)
    assert np.array_equal(ckpt['rng']['numpy'][1], state['rng']['numpy'][1]) and ckpt['scaler'] == state['scaler']
    assert ckpt['rng']['python'] == state['rng']['python']
    for left_out in allowed:
        with pytest.raises(Exception):
            with torch.serialization.safe_globals([g for g in allowed if g is not left_out]):
                torch.load(path, map_location='cpu', weights_only=True)


def test_readme_line_opens_a_checkpoint(tmp_path):
    """The README's command that opens a checkpoint, run as written (torch.load's own default refuses one)."""
    with open(os.path.join(helpers.REPO, 'README.md')) as f:
        [line] = [line for line in f if line.startswith('python -c "from checkpoint import load_checkpoint')]
    os.makedirs(tmp_path / 'out-quick-llama')
    saved_checkpoint(tmp_path / 'out-quick-llama' / 'ckpt.pt', iter_num=3)
    proc = subprocess.run([sys.executable, '-c', re.fullmatch(r'python -c "(.*)"\n', line).group(1)], cwd=tmp_path,
                          env=helpers.env(PYTHONPATH=helpers.REPO), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("3 2 ['best_val_loss', 'config', 'iter_num', 'model', 'model_args',"), proc.stdout


# -----------------------------------------------------------------------------
# which file a resume takes, and older checkpoints

def test_resume_takes_the_later_of_ckpt_and_ckpt_last(tmp_path):
    out = str(tmp_path)
    best, last = os.path.join(out, 'ckpt.pt'), os.path.join(out, 'ckpt_last.pt')
    with pytest.raises(UserError, match=f"no checkpoint at {best}: train with init_from='scratch' first"):
        checkpoint.load_latest(out)
    saved_checkpoint(last, iter_num=3)
    assert checkpoint.load_latest(out)[0] == last  # only the latest state (stopped before any improvement)
    saved_checkpoint(best, iter_num=2)
    path, ckpt = checkpoint.load_latest(out)
    assert (path, ckpt['iter_num']) == (last, 3)
    saved_checkpoint(best, iter_num=4)  # a best written later (ckpt_last.pt left by a kill before its removal)
    path, ckpt = checkpoint.load_latest(out)
    assert (path, ckpt['iter_num']) == (best, 4)


def test_older_checkpoint_fields(tmp_path):
    """What a checkpoint written before a field existed stands for, worked out in checkpoint.py alone."""
    older = dict(iter_num=5, config=dict(gradient_accumulation_steps=2, batch_size=3, block_size=8))
    assert checkpoint.windows_read(older) == 5 * 2 * 3
    assert checkpoint.tokens_trained(older) == 5 * 2 * 3 * 8
    assert checkpoint.best_val_loss(older) == float('inf')
    assert checkpoint.last_eval_iter(older) == 5
    newer = dict(older, windows=31, tokens=200, best_val_loss=1.5, last_eval_iter=4, tokenizer={'kind': 'bytes'})
    assert (checkpoint.windows_read(newer), checkpoint.tokens_trained(newer), checkpoint.best_val_loss(newer),
            checkpoint.last_eval_iter(newer), checkpoint.tokenizer_spec(newer)) == (31, 200, 1.5, 4, {'kind': 'bytes'})
    with pytest.raises(UserError, match='names neither a tokenizer nor a dataset'):
        checkpoint.tokenizer_spec(older)
    import train
    assert train.windows_read is checkpoint.windows_read and train.tokens_trained is checkpoint.tokens_trained
