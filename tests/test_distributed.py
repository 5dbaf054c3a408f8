"""
torchrun --standalone --nproc_per_node=2 on CPU (gloo): DDP, ZeRO-1 and FSDP2 each train like one
process on the same global batch (4 micro-steps of 4 sequences per iteration, however many ranks),
checkpoints move between layouts and world sizes, and only rank 0 writes.
"""
import os
import signal
from types import SimpleNamespace

import pytest

import helpers
from helpers import load, train, train_args

pytestmark = pytest.mark.slow  # torchrun and python train.py runs

ITERS, HALF = 10, 5
TOLERANCE = 1e-4  # max abs weight difference; summation order differs between layouts, nothing else
LAYOUTS = {'ddp': [], 'zero1': ['--use_zero1=True'], 'fsdp2': ['--use_fsdp=True']}


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return helpers.make_dataset(tmp_path_factory.mktemp('data'))


@pytest.fixture(scope='module')
def runs(data, tmp_path_factory):
    """name -> out_dir, trained on demand, each once."""
    done = {}

    def get(name, layout=None, nproc=None, iters=ITERS, resume_from=None, extra=(), eval_interval=1000,
            eval_iters=2):
        if name not in done:
            out = str(tmp_path_factory.mktemp(name))
            if resume_from is not None:
                os.rmdir(out)
                os.makedirs(out)
                os.link(os.path.join(get(*resume_from), 'ckpt.pt'), os.path.join(out, 'ckpt.pt'))
            args = train_args(data, out, max_iters=iters, lr_decay_iters=ITERS, gradient_accumulation_steps=4,
                              batch_size=4, eval_interval=eval_interval, eval_iters=eval_iters,
                              **({'init_from': 'resume'} if resume_from else {}))
            proc = train(args + LAYOUTS.get(layout, []) + list(extra), nproc=nproc)
            done[name] = SimpleNamespace(out=out, proc=proc)
        return done[name].out

    get.proc = lambda name: done[name].proc
    return get


@pytest.mark.parametrize('layout', ['ddp', 'zero1', 'fsdp2'])
def test_compiled_layout_matches_one_process(layout, runs):
    """torch.compile with each layout (the whole model inside DDP and ZeRO-1, each block under FSDP2)
    trains like the eager single process, and the checkpoint keeps plain names."""
    reference = load(runs('single'))
    ckpt = load(runs(f'{layout}-compiled', layout, nproc=2, extra=['--compile=True']))
    assert ckpt['iter_num'] == ITERS and ckpt['config']['compile'] is True
    assert ckpt['model'].keys() == reference['model'].keys()  # no _orig_mod. or module. prefixes
    diff = helpers.max_weight_diff(ckpt['model'], reference['model'])
    assert diff < TOLERANCE, f"compiled {layout}: max abs weight difference {diff:.3g} after {ITERS} iterations"


@pytest.mark.parametrize('layout', ['ddp', 'zero1', 'fsdp2'])
def test_layout_matches_one_process(layout, runs):
    reference = load(runs('single'))
    ckpt = load(runs(layout, layout, nproc=2))
    assert ckpt['iter_num'] == ITERS
    diff = helpers.max_weight_diff(ckpt['model'], reference['model'])
    assert diff < TOLERANCE, f"{layout}: max abs weight difference {diff:.3g} after {ITERS} iterations"
    # the weights moved far more than the tolerance: the comparison is not vacuous
    import torch
    from model import ModelConfig, Transformer
    torch.manual_seed(1337)
    initial = Transformer(ModelConfig(**reference['model_args'])).state_dict()
    assert helpers.max_weight_diff(initial, reference['model']) > 100 * TOLERANCE
    # the optimizer state is saved as one process's AdamW, full (ZeRO-1 consolidated, FSDP2 gathered)
    state, ref_state = ckpt['optimizer']['state'], reference['optimizer']['state']
    assert state.keys() == ref_state.keys()
    for index in state:
        assert float(state[index]['step']) == ITERS
        for key in ('exp_avg', 'exp_avg_sq'):
            assert state[index][key].shape == ref_state[index][key].shape
            assert (state[index][key] - ref_state[index][key]).abs().max().item() < TOLERANCE
    log, _ = helpers.run_log(runs(layout))
    assert log['env']['world_size'] == 2 and log['env']['tokens_per_iter'] == 4 * 4 * 64
    ref_log, _ = helpers.run_log(runs('single'))
    for record, ref in zip(log['iters'], ref_log['iters']):  # the logged loss is the mean over ranks
        assert record['loss'] == pytest.approx(ref['loss'], abs=1e-4)


@pytest.mark.parametrize('layout', ['single', 'ddp', 'zero1', 'fsdp2'])
def test_mid_run_checkpoints_change_nothing(layout, runs):
    """A run that evaluates and checkpoints every 3 iterations (3, 6, 9, then the end) trains like
    the uninterrupted one-process run: taking a checkpoint leaves the training state as it was. Its
    3 evaluation batches do not divide over 2 ranks: every rank still runs the same forward passes."""
    nproc = None if layout == 'single' else 2
    out = runs(f'{layout}-checkpointing', layout, nproc=nproc, eval_interval=3, eval_iters=3)
    lines = runs.proc(f'{layout}-checkpointing').stdout.splitlines()
    assert sum(line.startswith('saved checkpoint at iter ') for line in lines) == 4
    assert sum(line.startswith('eval iter ') for line in lines) == 4
    ckpt, reference = load(out), load(runs('single'))
    assert ckpt['iter_num'] == ITERS
    diff = helpers.max_weight_diff(ckpt['model'], reference['model'])
    assert diff < TOLERANCE, f"{layout} checkpointing every 3 iterations: max abs weight difference {diff:.3g}"
    log, _ = helpers.run_log(out)
    ref_log, _ = helpers.run_log(runs('single'))
    assert [r['loss'] for r in log['iters']] == pytest.approx([r['loss'] for r in ref_log['iters']], abs=1e-4)


def test_uneven_evaluation_matches_one_process(runs):
    """3 evaluation batches over 2 ranks: the mean is over exactly the 3 batches one process sees."""
    for layout in ('single', 'fsdp2'):  # the runs of test_mid_run_checkpoints_change_nothing (made here if not yet)
        runs(f'{layout}-checkpointing', layout, nproc=None if layout == 'single' else 2, eval_interval=3, eval_iters=3)
    single = [line for line in runs.proc('single-checkpointing').stdout.splitlines() if line.startswith('eval iter')]
    fsdp2 = [line for line in runs.proc('fsdp2-checkpointing').stdout.splitlines() if line.startswith('eval iter')]
    assert len(single) == len(fsdp2) == 4
    for a, b in zip(single, fsdp2):
        la = [float(w.rstrip(',')) for w in a.split() if w[0].isdigit() and '.' in w]
        lb = [float(w.rstrip(',')) for w in b.split() if w[0].isdigit() and '.' in w]
        assert la == pytest.approx(lb, abs=2e-4), (a, b)


@pytest.mark.parametrize('first, then', [
    (('fsdp2', 2), ('single', None)),   # FSDP2 on 2 ranks -> one process
    (('zero1', 2), ('ddp', 2)),         # ZeRO-1 -> DDP
    (('single', None), ('fsdp2', 2)),   # one process -> FSDP2
], ids=['fsdp2-to-single', 'zero1-to-ddp', 'single-to-fsdp2'])
def test_resume_across_layouts(first, then, runs):
    (layout_a, nproc_a), (layout_b, nproc_b) = first, then
    half = f'{layout_a}_to_{HALF}'
    runs(half, layout_a, nproc=nproc_a, iters=HALF, eval_interval=2)  # checkpoints at 2 and 4 it trains past
    assert load(runs(half))['iter_num'] == HALF
    resumed = load(runs(f'{half}_then_{layout_b}', layout_b, nproc=nproc_b, resume_from=(half,)))
    assert resumed['iter_num'] == ITERS
    diff = helpers.max_weight_diff(resumed['model'], load(runs('single'))['model'])
    assert diff < TOLERANCE, f"{layout_a} -> {layout_b}: max abs weight difference {diff:.3g}"


def test_indivisible_accumulation_is_a_clear_error(data, tmp_path):
    out = str(tmp_path / 'out')
    proc = train(train_args(data, out, gradient_accumulation_steps=3), nproc=2, check=False)
    assert proc.returncode != 0
    message = ("error: gradient_accumulation_steps (3) must be divisible by the number of processes (2): it "
               "counts micro-steps over all ranks, e.g. --gradient_accumulation_steps=2")
    assert message in proc.stderr.splitlines(), proc.stderr[-2000:]
    assert not os.path.exists(out)


def test_only_rank_zero_writes(runs):
    out = runs('ddp', 'ddp', nproc=2)
    names = sorted(os.listdir(out))
    assert len(names) == 3 and names[0] == 'ckpt.pt', names
    assert names[1].startswith('run_') and names[1].endswith('.json') and names[2] == names[1] + 'l'
    log, lines = helpers.run_log(out)
    assert [r['iter'] for r in log['iters']] == list(range(1, ITERS + 1))  # each record once, not once a rank
    assert len([line for line in lines if line['kind'] == 'iter']) == ITERS
    stdout = runs.proc('ddp').stdout
    assert helpers.logged_iters(stdout.splitlines()) == list(range(1, ITERS + 1))
    assert stdout.count('saved checkpoint') == 1
    assert not any(key.startswith('module.') for key in load(out)['model'])


def test_sigterm_under_torchrun_saves(data, tmp_path):
    """torchrun passes SIGTERM to every rank; they agree on the step to stop at, and rank 0 saves it
    (torchrun itself then exits non-zero, reporting the signal: its behaviour, not train.py's)."""
    out = str(tmp_path / 'out')
    proc = helpers.start('train.py', train_args(data, out, max_iters=100000, gradient_accumulation_steps=2), nproc=2)
    _, lines = helpers.wait_for_line(proc, lambda line: line.startswith('iter 2: loss'))
    proc.send_signal(signal.SIGTERM)
    _, rest = helpers.finish(proc)
    lines += rest
    last_logged = helpers.logged_iters(lines)[-1]
    assert f"stopped at iter {last_logged} by SIGTERM; resume with the same command and --init_from=resume" in lines
    assert load(out)['iter_num'] == last_logged
    assert sum(line.startswith('saved checkpoint') for line in lines) == 1


def test_each_rank_has_its_own_random_stream_across_a_resume(data, tmp_path):
    """dropout > 0 under DDP: the ranks draw different masks (they shared one seed), each rank's RNG
    state is saved and taken back by that rank (every rank took rank 0's), so a resumed run
    continues like the uninterrupted one."""
    def args(out, iters, *extra):
        return train_args(data, out, max_iters=iters, lr_decay_iters=4, gradient_accumulation_steps=2, batch_size=4,
                          dropout=0.1) + list(extra)
    first, ref = str(tmp_path / 'first'), str(tmp_path / 'ref')
    train(args(first, 2), nproc=2)
    ckpt = load(first)
    states = [s['torch'] for s in ckpt.get('rng_ranks', [])]
    assert len(states) == 2 and not states[0].equal(states[1]), "the ranks share one random stream"
    train(args(first, 4, '--init_from=resume'), nproc=2)
    train(args(ref, 4), nproc=2)
    got, want = helpers.run_log(first)[0]['iters'], helpers.run_log(ref)[0]['iters']
    assert [r['loss'] for r in got] == [r['loss'] for r in want]
    assert helpers.max_weight_diff(load(first)['model'], load(ref)['model']) == 0.0
