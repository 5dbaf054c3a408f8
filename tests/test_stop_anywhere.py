"""
A stop (SIGINT) may land on any step, and a resumed run must end with the same files and the same
evaluations as the run that was never stopped: ckpt.pt the best weights, ckpt_last.pt the latest
where always_save_checkpoint=False keeps them apart, every evaluation made once. Each case stops a run
at one step (or at two, resuming in between) and compares the end state with the uninterrupted
run's, bit for bit (training on the CPU in float32 is deterministic, so a resume is exact).

The runs are train.main in this process (a real SIGINT to the process, caught by train.py's
handler), about 0.2 s each: every step of a 16-step and a 10-step run, and every pair of steps of an
8-step one.
Also here: what a resume does with a corrupt ckpt.pt beside an intact ckpt_last.pt, and the memory
check of a run that trains nothing.
"""
import contextlib
import io
import itertools
import os
import shutil
import signal

import numpy as np
import pytest
import torch

import helpers
import runlog
import train
from checkpoint import checkpoint_paths, load_checkpoint
from configurator import UserError

pytestmark = pytest.mark.slow  # a few hundred short training runs in-process


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """The tiny dataset, with a validation split that is the training pattern with 40% of its tokens
    replaced: the validation loss falls, then rises as the model learns the pattern too well, so the
    best evaluation falls in the middle of a run and later ones are worse (ckpt.pt and ckpt_last.pt
    then differ)."""
    folder = helpers.make_dataset(tmp_path_factory.mktemp('data'))
    val = np.fromfile(os.path.join(folder, 'train.bin'), dtype=np.uint16)[:4000].copy()
    rng = np.random.default_rng(5)
    noisy = rng.random(val.size) < 0.4
    val[noisy] = rng.integers(0, 256, noisy.sum())
    val.tofile(os.path.join(folder, 'val.bin'))
    return folder


def args(data, out, **overrides):
    settings = dict(max_iters=16, eval_interval=2, eval_iters=2, always_save_checkpoint=False, decay_lr=False,
                    learning_rate=0.01, dropout=0.1)
    settings.update(overrides)
    return helpers.train_args(data, out, **settings)


def run(argv, stop_at=None):
    """train.main(argv), with a SIGINT to this process during the step that ends at iteration
    stop_at. The signal handlers are put back afterwards; the console output is dropped."""
    real_step = train.train_step

    def step(t, iter_num):
        result = real_step(t, iter_num)
        if iter_num + 1 == stop_at:
            os.kill(os.getpid(), signal.SIGINT)
        return result

    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    train.train_step = step
    try:
        with contextlib.redirect_stdout(io.StringIO()) as console:
            code = train.main(argv)
    finally:
        train.train_step = real_step
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
    assert code == 0
    return console.getvalue()


def end_state(out, skip=()):
    """What a run leaves: each checkpoint file's iteration, best loss and weights, and the run log's
    evaluations (iteration, validation loss), in order."""
    files = {}
    for path in checkpoint_paths(out):
        if os.path.exists(path) and os.path.basename(path) not in skip:
            ckpt = load_checkpoint(path)
            files[os.path.basename(path)] = (ckpt['iter_num'], ckpt['best_val_loss'],
                                             {k: v.clone() for k, v in ckpt['model'].items()})
    _, log = runlog.read_run_log(out)
    return files, [(e['iter'], e['val_loss']) for e in log['evals']]


def assert_same_end(got, want, what):
    (files, evals), (want_files, want_evals) = got, want
    assert evals == want_evals, f"{what}: evaluations {evals}, uninterrupted {want_evals}"
    assert {k: v[:2] for k, v in files.items()} == {k: v[:2] for k, v in want_files.items()}, what
    for name, (_, _, weights) in files.items():
        assert all(torch.equal(weights[k], want_files[name][2][k]) for k in weights), f"{what}: {name} weights"


@pytest.fixture(scope='module')
def uninterrupted(data, tmp_path_factory):
    """The reference end states: always_save_checkpoint=False over 16 and 8 steps, True over 10."""
    ends = {}
    for always, max_iters in ((False, 16), (True, 10), (False, 8)):
        out = str(tmp_path_factory.mktemp('uninterrupted'))
        run(args(data, out, always_save_checkpoint=always, max_iters=max_iters))
        ends[always, max_iters] = end_state(out)
    # the scenario holds: with always_save_checkpoint=False the best is not the last evaluation
    files, evals = ends[False, 16]
    best = min(evals, key=lambda e: e[1])
    assert best[0] < 16 and files['ckpt.pt'][0] == best[0] and files['ckpt_last.pt'][0] == 16
    return ends


@pytest.mark.parametrize('always_save, max_iters', [(False, 16), (True, 10)], ids=['best-and-last', 'always-save'])
def test_one_stop_on_any_step_resumes_to_the_same_end(always_save, max_iters, data, uninterrupted, tmp_path):
    for stop_at in range(1, max_iters + 1):
        out = str(tmp_path / f'stop{stop_at}')
        settings = dict(always_save_checkpoint=always_save, max_iters=max_iters)
        console = run(args(data, out, **settings), stop_at=stop_at)
        assert f"stopped at iter {stop_at} by SIGINT" in console
        run(args(data, out, init_from='resume', **settings))
        assert_same_end(end_state(out), uninterrupted[always_save, max_iters], f"stopped at {stop_at}")


def test_two_stops_on_any_steps_resume_to_the_same_end(data, uninterrupted, tmp_path):
    for first, second in itertools.combinations(range(1, 9), 2):
        out = str(tmp_path / f'stop{first}-{second}')
        run(args(data, out, max_iters=8), stop_at=first)
        run(args(data, out, max_iters=8, init_from='resume'), stop_at=second)
        run(args(data, out, max_iters=8, init_from='resume'))
        assert_same_end(end_state(out), uninterrupted[False, 8], f"stopped at {first}, then at {second}")
        shutil.rmtree(out)


def test_resuming_a_finished_run_changes_nothing(data, tmp_path):
    out = str(tmp_path / 'out')
    run(args(data, out, max_iters=6))
    checkpoints = lambda: {k: v for k, v in helpers.snapshot(out).items() if k.endswith('.pt')}
    before = checkpoints()
    console = run(args(data, out, max_iters=6, init_from='resume'))
    assert checkpoints() == before  # not written again
    assert "nothing to train: the checkpoint is at iter 6, max_iters is 6" in console


# -----------------------------------------------------------------------------
# a corrupt ckpt.pt beside an intact ckpt_last.pt

def corrupt(path):
    with open(path, 'r+b') as f:
        f.truncate(os.path.getsize(path) // 2)


def test_resume_takes_the_intact_latest_when_the_best_is_corrupt(data, uninterrupted, tmp_path):
    out = str(tmp_path / 'out')
    run(args(data, out), stop_at=13)  # ckpt.pt at the best evaluation (12), ckpt_last.pt at 13
    best, last = checkpoint_paths(out)
    assert load_checkpoint(best)['iter_num'] == 12 and load_checkpoint(last)['iter_num'] == 13
    corrupt(best)
    torn = open(best, 'rb').read()
    console = run(args(data, out, init_from='resume'))
    assert (f"{best} is truncated or not a checkpoint (RuntimeError): resuming from {last}, the latest "
            f"state (iter 13)") in console
    assert "resuming from " + last in console
    # the best of the whole run (iteration 12) was never beaten, so ckpt.pt is left as it was found
    # for the user to restore; the run trained to the end from the latest state
    assert open(best, 'rb').read() == torn
    files, evals = end_state(out, skip=('ckpt.pt',))
    want_files, want_evals = uninterrupted[False, 16]
    assert evals == want_evals
    assert files['ckpt_last.pt'][0] == 16
    assert all(torch.equal(v, want_files['ckpt_last.pt'][2][k]) for k, v in files['ckpt_last.pt'][2].items())


def test_a_corrupt_latest_beside_an_intact_best_names_both_and_deletes_nothing(data, tmp_path):
    out = str(tmp_path / 'out')
    run(args(data, out), stop_at=13)
    best, last = checkpoint_paths(out)
    corrupt(last)
    before = helpers.snapshot(out)
    with pytest.raises(UserError) as e:
        run(args(data, out, init_from='resume'))
    message = str(e.value)
    assert "\n" not in message and last in message and best in message and "iter 12" in message
    assert "scratch" not in message and "overwrite" not in message  # never: throw the run away
    assert helpers.snapshot(out) == before


def test_a_corrupt_checkpoint_alone_is_never_advised_away(data, tmp_path):
    out = str(tmp_path / 'out')
    run(args(data, out, max_iters=4))
    corrupt(checkpoint_paths(out)[0])
    with pytest.raises(UserError) as e:
        run(args(data, out, max_iters=8, init_from='resume'))
    assert "scratch" not in str(e.value) and "overwrite" not in str(e.value)
    assert "restore it from a copy" in str(e.value)


# -----------------------------------------------------------------------------
# the memory check estimates what the run will do

def test_a_run_that_trains_nothing_is_not_refused_for_training_memory(data, tmp_path):
    """--max_iters=0 at a micro-batch whose training step could never fit this machine (the cost
    tool's estimate: far beyond its memory) trains nothing, so it is not refused: it writes the
    checkpoint of the initial weights."""
    big = dict(batch_size=2 ** 20, max_iters=0, always_save_checkpoint=True)
    physical = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')
    est = train.train_memory_estimate(train.ModelConfig(n_layer=2, n_head=4, n_embd=64, block_size=64,
                                                        vocab_size=helpers.VOCAB).to_dict(),
                                      big['batch_size'], 1, 'cpu', 'float32', compile=False)
    assert est['peak'] > physical
    out = str(tmp_path / 'out')
    run(args(data, out, **big))
    assert load_checkpoint(checkpoint_paths(out)[0])['iter_num'] == 0
    # the same micro-batch with a step to take is refused, in one line, before anything is written
    with pytest.raises(UserError, match=r"^estimated peak memory .* exceeds this machine's memory"):
        run(args(data, str(tmp_path / 'other'), batch_size=big['batch_size'], max_iters=1))
    assert not os.path.exists(tmp_path / 'other')
