"""
train.py's evaluations in bits per byte: the val_bpb (overall and per source), val_bytes and val_loss
a run records equal a direct computation with its final checkpoint over the windows evaluation reads
(the loader's sample of distinct validation windows, each counted once), for a bytes dataset and a tiktoken dataset; the console
line and the run log show them, and a dataset without byte accounting evaluates in nats per token only.
"""
import math
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import helpers
from checkpoint import load_checkpoint, model_from_checkpoint
from loader import TokenBatches, load_meta
from test_eval_bpb import SOURCES, runs  # noqa: F401  runs: the module's datasets and tiny trained models

pytestmark = pytest.mark.slow  # python train.py runs


def direct_eval(data, out):
    """(val loss per token, {source or 'all': [nats, bytes]}, windows) over the evaluation's windows: the
    loader's sample of min(eval_iters x batch_size, all) distinct windows of block_size targets."""
    ckpt = load_checkpoint(os.path.join(out, 'ckpt.pt'))
    model = model_from_checkpoint(ckpt).eval()
    c, T = ckpt['config'], model.config.block_size
    meta = load_meta(data)
    tokens = np.fromfile(os.path.join(data, 'val.bin'), dtype=np.uint16).astype(np.int64)
    docs = np.load(os.path.join(data, 'val.docs.npy'))
    table = np.load(os.path.join(data, 'token_bytes.npy'))
    n = (len(tokens) - 1) // T
    sample = TokenBatches(data, c['batch_size'], T, c['seed'], eval_iters=c['eval_iters']).val_sample()
    assert len(set(sample)) == len(sample) == min(n, c['eval_iters'] * c['batch_size'])
    loss_sum, count, sums = 0.0, 0, {}
    for window in sample:
        start = window * T
        x, y = torch.from_numpy(tokens[start:start + T]), torch.from_numpy(tokens[start + 1:start + T + 1])
        with torch.no_grad():
            nll = F.cross_entropy(model(x[None])[0][0], y, reduction='none').double()
        loss_sum, count = loss_sum + nll.sum().item(), count + T
        for i in range(T):
            position = start + 1 + i
            doc = next(d for d in docs if d[0] <= position < d[0] + d[1])
            nbytes = int(table[int(y[i])])
            if nbytes:
                for key in ('all', meta['sources'][doc[2]]):
                    s = sums.setdefault(key, [0.0, 0])
                    s[0] += nll[i].item()
                    s[1] += nbytes
    return loss_sum / count, sums, len(sample)


@pytest.mark.parametrize('kind', ['bytes', 'tiktoken'])
def test_training_evaluation_records_bits_per_byte(kind, runs):
    data, out = runs[kind]
    log = helpers.run_log(out)[0]
    last = log['evals'][-1]
    loss, sums, _ = direct_eval(data, out)
    assert last['val_loss'] == pytest.approx(loss, rel=1e-5)
    nats, nbytes = sums['all']
    assert last['val_bytes'] == nbytes
    assert last['val_bpb'] == pytest.approx(nats / (math.log(2) * nbytes), rel=1e-5)
    assert sorted(last['val_bpb_sources']) == sorted(SOURCES)
    for source in SOURCES:
        assert last['val_bpb_sources'][source] == pytest.approx(sums[source][0] / (math.log(2) * sums[source][1]),
                                                                rel=1e-5)
    bpt = log['env']['train_bytes_per_token']
    stats = load_meta(data)['stats']['train']['all']
    assert bpt == stats['bytes'] / stats['tokens'] and 0.9 < bpt < 5  # bytes: just under 1 (the EOS)
    assert log['iters'][-1]['epoch'] == pytest.approx(15 * 4 / log['env']['windows_per_epoch'])


def test_the_console_shows_bits_per_byte_and_passes(runs, tmp_path):
    data, _ = runs['bytes']
    out = str(tmp_path / 'out')
    proc = helpers.train(helpers.train_args(data, out, max_iters=3) + ['--vocab_size=None'])
    evals = [line for line in proc.stdout.splitlines() if line.startswith('eval iter 3:')]
    last = helpers.run_log(out)[0]['evals'][-1]
    sources = ', '.join(f"{name} {value:.4f}" for name, value in last['val_bpb_sources'].items())
    assert evals == [f"eval iter 3: train loss {last['train_loss']:.4f}, val loss {last['val_loss']:.4f}, "
                     f"val {last['val_bpb']:.4f} bits per byte ({sources})"]
    windows = helpers.run_log(out)[0]['env']['windows_per_epoch']
    assert f"data: one pass over the training split = {windows:,} windows of 64 targets" in proc.stdout


def test_a_dataset_without_byte_accounting_evaluates_per_token_only(tmp_path):
    data = helpers.make_dataset(tmp_path / 'data')
    out = str(tmp_path / 'out')
    proc = helpers.train(helpers.train_args(data, out, max_iters=2))
    last = helpers.run_log(out)[0]['evals'][-1]
    assert last['val_bpb'] is None and last['val_bpb_sources'] is None and last['val_loss'] > 0
    assert 'bits per byte' not in proc.stdout


def test_a_split_shorter_than_the_evaluation_is_scored_once(runs, tmp_path):
    """eval_iters x batch_size beyond the validation split's windows: each window counts once, so the
    scored bytes are at most the split's and the score does not depend on eval_iters."""
    data, _ = runs['bytes']
    scores = {}
    val_bytes = load_meta(data)['stats']['val']['all']['bytes']
    for eval_iters in (50, 80):
        out = str(tmp_path / f'out{eval_iters}')
        helpers.train(helpers.train_args(data, out, max_iters=2, eval_iters=eval_iters) + ['--vocab_size=None'])
        last = helpers.run_log(out)[0]['evals'][-1]
        assert last['val_bytes'] <= val_bytes
        scores[eval_iters] = (last['val_loss'], last['val_bpb'], last['val_bytes'])
    loss, sums, windows = direct_eval(data, out)
    assert windows < 50 * 4 and last['val_bytes'] == sums['all'][1]
    assert last['val_loss'] == pytest.approx(loss, rel=1e-5)
    assert scores[50] == scores[80]


def test_stale_byte_files_stop_the_run_before_it_writes(runs, tmp_path):
    """A meta.pkl without 'sources' over a multi-source document index (an older prepare.py rewrote
    meta.pkl over leftover files): one line at setup, exit 2, no run log, no checkpoint."""
    import pickle
    import shutil
    data = str(tmp_path / 'stale')
    shutil.copytree(runs['bytes'][0], data)
    meta = load_meta(data)
    del meta['sources']
    with open(os.path.join(data, 'meta.pkl'), 'wb') as f:
        pickle.dump(meta, f)
    out = str(tmp_path / 'out')
    proc = helpers.train(helpers.train_args(data, out, max_iters=4, eval_interval=2) + ['--vocab_size=None'],
                         check=False)
    assert proc.returncode == 2 and 'prepare.py again' in proc.stderr.strip().splitlines()[-1]
    assert 'Traceback' not in proc.stderr and not os.path.exists(out)
