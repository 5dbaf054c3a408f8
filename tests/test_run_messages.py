"""
What a run says about itself: a resume names its checkpoint, iteration and tokens; eval_only without
a checkpoint to evaluate is a one-line error that touches nothing; the effective backend is shown.
"""
import os
import shutil

import pytest

import helpers
from helpers import train, train_args

pytestmark = pytest.mark.slow  # python train.py runs


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    data = helpers.make_dataset(tmp_path_factory.mktemp('data'))
    out = str(tmp_path_factory.mktemp('run'))
    train(train_args(data, out, max_iters=4, batch_size=4, gradient_accumulation_steps=2))
    return data, out


def test_resume_says_where_it_continues(trained, tmp_path):
    data, first = trained
    out = str(tmp_path / 'out')
    shutil.copytree(first, out)
    proc = train(train_args(data, out, max_iters=6, lr_decay_iters=4, batch_size=4, gradient_accumulation_steps=2,
                            init_from='resume'))
    ckpt = os.path.join(out, 'ckpt.pt')
    lines = [line for line in proc.stdout.splitlines() if line.startswith('resuming from ')]
    assert len(lines) == 1, proc.stdout[-2000:]
    # 4 iterations of 2 micro-steps x 4 sequences x 64 tokens
    assert lines[0].startswith(f"resuming from {ckpt}: iter 4, 2,048 tokens trained, loaded in ")
    assert helpers.logged_iters(proc.stdout.splitlines()) == [5, 6]
    fresh = train(train_args(data, str(tmp_path / 'fresh'), max_iters=1))
    assert 'resuming from' not in fresh.stdout


def test_eval_only_without_resume_is_an_error_that_touches_nothing(trained, tmp_path):
    data, first = trained
    out = str(tmp_path / 'out')
    shutil.copytree(first, out)
    before = helpers.snapshot(out)
    proc = train(train_args(data, out, eval_only=True), check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: eval_only evaluates a checkpoint: add --init_from=resume to evaluate {os.path.join(out, 'ckpt.pt')}"]
    assert helpers.snapshot(out) == before  # no new run log beside the training run's, nothing rewritten


def test_effective_backend_is_shown(trained, tmp_path):
    data, _ = trained
    proc = train(train_args(data, str(tmp_path / 'out'), max_iters=1, gradient_accumulation_steps=2), nproc=2)
    line = next(l for l in proc.stdout.splitlines() if l[2:].startswith('backend '))
    assert line.split('=')[1].strip() == "'gloo'", line
