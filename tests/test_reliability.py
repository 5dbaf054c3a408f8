"""
What happens when things go wrong: signals (SIGTERM/SIGINT save and exit 0; SIGKILL loses at most
the steps since the last checkpoint and the resumed run is bit-identical to an uninterrupted one),
a torn checkpoint write, the overwrite guard, non-finite gradients, a full disk, and bad input,
which gets one short message, a non-zero exit, and changes nothing on disk.
"""
import builtins
import importlib.util
import os
import shutil
import signal
import subprocess
from types import SimpleNamespace

import pytest
import torch

import helpers
from helpers import load, train, train_args

pytestmark = pytest.mark.slow  # python train.py runs (kills, resumes, bad inputs)


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return helpers.make_dataset(tmp_path_factory.mktemp('data'))


def is_iter_line(line):
    return line.startswith('iter ') and ': loss ' in line


# -----------------------------------------------------------------------------
# signals

@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT], ids=['SIGTERM', 'SIGINT'])
def test_signal_saves_and_exits_cleanly(signum, data, tmp_path):
    out = str(tmp_path / 'out')
    max_iters = 100000
    proc = helpers.start('train.py', train_args(data, out, max_iters=max_iters))
    _, lines = helpers.wait_for_line(proc, is_iter_line)
    proc.send_signal(signum)
    code, rest = helpers.finish(proc)
    lines += rest
    assert code == 0, '\n'.join(lines[-20:])
    last_logged = helpers.logged_iters(lines)[-1]
    assert 1 <= last_logged < max_iters
    name = signal.Signals(signum).name
    assert f"stopped at iter {last_logged} by {name}; resume with the same command and --init_from=resume" in lines
    ckpt = load(out)
    assert ckpt['iter_num'] == last_logged
    log, _ = helpers.run_log(out)
    assert log['iters'][-1]['iter'] == last_logged
    assert log['events'][-1] == dict(iter=last_logged, event='checkpoint', reason=f'stopped by {name}')
    assert not os.path.exists(os.path.join(out, 'ckpt.pt.tmp'))


SIGKILL_ITERS = 80


@pytest.fixture(scope='module')
def killed(data, tmp_path_factory):
    """A run SIGKILLed after its first checkpoint, left with a torn ckpt.pt.tmp (as a kill during a
    later checkpoint write leaves it), then resumed; and the same run uninterrupted."""
    args = lambda out, **kw: train_args(data, out, max_iters=SIGKILL_ITERS, eval_interval=4, dropout=0.1, **kw)
    reference = str(tmp_path_factory.mktemp('uninterrupted'))
    train(args(reference))
    out = str(tmp_path_factory.mktemp('killed'))
    proc = helpers.start('train.py', args(out))
    helpers.wait_for_line(proc, lambda line: line.startswith('saved checkpoint at iter 4 '))
    proc.kill()
    code, _ = helpers.finish(proc)
    at_kill = load(out)
    ckpt_path = os.path.join(out, 'ckpt.pt')
    with open(ckpt_path, 'rb') as f:
        torn = f.read()[:os.path.getsize(ckpt_path) // 2]
    with open(ckpt_path + '.tmp', 'wb') as f:
        f.write(torn)
    resumed = train(args(out, init_from='resume'))
    return SimpleNamespace(out=out, reference=reference, code=code, at_kill=at_kill, resumed=resumed)


def test_sigkill_then_resume_is_bit_identical(killed):
    assert killed.code == -signal.SIGKILL
    assert killed.at_kill['iter_num'] < SIGKILL_ITERS  # the kill did interrupt the run
    final, reference = load(killed.out), load(killed.reference)
    assert final['iter_num'] == reference['iter_num'] == SIGKILL_ITERS
    helpers.assert_identical(final['model'], reference['model'])
    for index, state in reference['optimizer']['state'].items():
        assert torch.equal(final['optimizer']['state'][index]['exp_avg_sq'], state['exp_avg_sq'])


def test_torn_checkpoint_write_does_not_break_resume(killed):
    """A kill inside save_checkpoint can only leave ckpt.pt.tmp behind: ckpt.pt is the previous
    checkpoint, and resume reads it (the torn file is overwritten by the next save)."""
    iter_at_kill = killed.at_kill['iter_num']
    assert f"saved checkpoint at iter {iter_at_kill + 4} (eval)" in killed.resumed.stdout
    assert not os.path.exists(os.path.join(killed.out, 'ckpt.pt.tmp'))
    log, _ = helpers.run_log(killed.out)
    assert log['resumes'][0]['env']['start_iter'] == iter_at_kill


def test_resumed_run_log_holds_each_iteration_once(killed):
    """Records the killed run made past its last checkpoint are redone by the resumed run: the log
    keeps one record per iteration, equal to the uninterrupted run's, and says how many it dropped."""
    log, lines = helpers.run_log(killed.out)
    reference, _ = helpers.run_log(killed.reference)
    assert [r['iter'] for r in log['iters']] == [r['iter'] for r in reference['iters']]
    assert [r['loss'] for r in log['iters']] == [r['loss'] for r in reference['iters']]
    assert [r['iter'] for r in log['evals']] == [r['iter'] for r in reference['evals']]
    logged_past_checkpoint = sum(1 for r in lines if r['kind'] in ('iter', 'eval')
                                 and r['iter'] > killed.at_kill['iter_num']) - sum(
        1 for r in log['iters'] + log['evals'] if r['iter'] > killed.at_kill['iter_num'])
    assert log['resumes'][0]['dropped_records'] == logged_past_checkpoint


# -----------------------------------------------------------------------------
# the overwrite guard

@pytest.fixture(scope='module')
def finished(data, tmp_path_factory):
    """A finished 2-iteration run: its out_dir holds a checkpoint."""
    out = str(tmp_path_factory.mktemp('finished'))
    train(train_args(data, out, max_iters=2))
    return out


def test_scratch_run_into_a_checkpoint_is_refused(data, finished, tmp_path):
    out = str(tmp_path / 'out')
    shutil.copytree(finished, out)
    before = helpers.snapshot(out)
    proc = train(train_args(data, out, max_iters=3), check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: {out} already holds a checkpoint: resume it with --init_from=resume, choose another --out_dir, "
        f"or start over with --overwrite=True"]
    assert helpers.snapshot(out) == before

    proc = train(train_args(data, out, max_iters=3, overwrite=True))
    ckpt = load(out)
    assert ckpt['iter_num'] == 3 and ckpt['config']['overwrite'] is True
    assert helpers.snapshot(out)['ckpt.pt'] != before['ckpt.pt']
    assert len([f for f in os.listdir(out) if f.endswith('.json')]) == 2  # a new run log beside the old one
    run_logs = sorted(f for f in os.listdir(out) if f.endswith('.json'))
    assert ckpt['run_log'] == run_logs[-1]


# -----------------------------------------------------------------------------
# non-finite gradients

@pytest.fixture(scope='module')
def diverged(data, tmp_path_factory):
    """4 good iterations (checkpoint at 4), then resumed with learning_rate=1e30: the first step
    throws the weights to ~1e30, after which every forward overflows and the grad norm is inf."""
    out = str(tmp_path_factory.mktemp('diverged'))
    train(train_args(data, out, max_iters=4))
    good = helpers.snapshot(out)['ckpt.pt']
    proc = train(train_args(data, out, max_iters=40, eval_interval=3, learning_rate=1e30, init_from='resume'),
                 check=False)
    return SimpleNamespace(out=out, good=good, proc=proc)


def test_nonfinite_steps_are_skipped_and_counted(diverged):
    log, lines = helpers.run_log(diverged.out)
    skips = [e for e in log['events'] if e['event'] == 'nonfinite_skip']
    assert [e['in_row'] for e in skips] == [1, 2, 3, 4, 5]
    assert [e['iter'] for e in skips] == [5, 6, 7, 8, 9]
    assert log['nonfinite_steps'] == 5
    assert [line['in_row'] for line in lines if line.get('event') == 'nonfinite_skip'] == [1, 2, 3, 4, 5]
    for n, it in enumerate(range(5, 10), 1):
        assert f"iter {it}: non-finite grad norm, step skipped ({n} in a row)" in diverged.proc.stdout


def test_nonfinite_streak_stops_and_keeps_last_good_checkpoint(diverged):
    assert diverged.proc.returncode == 2
    assert 'Traceback' not in diverged.proc.stderr
    assert diverged.proc.stderr.strip().splitlines() == [
        f"error: 5 optimizer steps in a row had a non-finite gradient norm; stopped at iter 9, the last good "
        f"checkpoint in {diverged.out} is kept: lower learning_rate or check the data, then resume"]
    # evaluations inside the streak (iters 6 and 9) must not have saved the broken weights
    assert helpers.snapshot(diverged.out)['ckpt.pt'] == diverged.good
    ckpt = load(diverged.out)
    assert ckpt['iter_num'] == 4
    assert all(torch.isfinite(v).all() and v.abs().max() < 100 for v in ckpt['model'].values())


# -----------------------------------------------------------------------------
# a full disk

def test_failed_checkpoint_write_keeps_previous(tmp_path, monkeypatch):
    import checkpoint
    from configurator import UserError
    path = str(tmp_path / 'ckpt.pt')
    state = dict(version=checkpoint.CHECKPOINT_VERSION, model={'w': torch.arange(4.0)}, model_args={}, iter_num=7,
                 config={})
    with pytest.raises(UserError, match="no checkpoint was written"):
        with monkeypatch.context() as m:
            m.setattr(torch, 'save', lambda *a, **k: (_ for _ in ()).throw(OSError(28, 'No space left on device')))
            checkpoint.save_checkpoint(state, path)
    assert not os.path.exists(path) and not os.path.exists(path + '.tmp')

    checkpoint.save_checkpoint(state, path)
    before = helpers.snapshot(str(tmp_path))
    newer = dict(state, iter_num=8, model={'w': torch.zeros(1000)})
    with monkeypatch.context() as m:
        m.setattr(torch, 'save', lambda *a, **k: (_ for _ in ()).throw(OSError(28, 'No space left on device')))
        with pytest.raises(UserError) as error:
            checkpoint.save_checkpoint(newer, path)
    message = str(error.value)
    assert 'No space left on device' in message and 'the previous checkpoint there is intact' in message
    assert helpers.snapshot(str(tmp_path)) == before  # ckpt.pt unchanged, no ckpt.pt.tmp left
    assert checkpoint.load_checkpoint(path)['iter_num'] == 7

    if os.path.exists('/dev/full'):  # a real ENOSPC from the kernel, mid-write
        real_open = builtins.open
        with monkeypatch.context() as m:
            m.setattr(builtins, 'open', lambda p, *a, **k: real_open('/dev/full' if p == path + '.tmp' else p, *a, **k))
            with pytest.raises(UserError, match='No space left on device.*the previous checkpoint there is intact'):
                checkpoint.save_checkpoint(newer, path)
        assert helpers.snapshot(str(tmp_path)) == before


# -----------------------------------------------------------------------------
# bad input: one short message, non-zero exit, nothing changed on disk

def test_max_iters_0_saves_the_initial_weights(data, tmp_path):
    """max_iters=0 is no error (max_iters=-1 is): the initial weights, evaluated with eval_at_start."""
    out = str(tmp_path / 'out')
    proc = train(train_args(data, out, max_iters=0, eval_at_start=True))
    assert 'eval iter 0: train loss' in proc.stdout and 'saved checkpoint at iter 0 (end of training)' in proc.stdout
    assert load(out)['iter_num'] == 0 and [r['iter'] for r in helpers.run_log(out)[0]['evals']] == [0]


BAD_INPUTS = {
    # case: (extra arguments, dataset variant, out_dir prepared from the finished run?, expected in message)
    'unknown key': (['--n_layers=2'], 'good', False, "unknown config key 'n_layers'; did you mean 'n_layer'?"),
    'wrong type': (['--max_iters=ten'], 'good', False, "--max_iters: max_iters must be an integer, got 'ten'"),
    'missing config file': (['config/no_such.py'], 'good', False, "config file 'config/no_such.py' not found"),
    'missing dataset': ([], 'missing', False, "not found: expected data/"),
    'no val.bin': ([], 'no_val', False, "lacks val.bin: run its prepare.py"),
    'ids beyond vocab': (['--vocab_size=200'], 'vocab300', False,
                         "has token ids up to 299 but the model's vocab_size is 200"),
    'n_embd % n_head': (['--n_head=5', '--n_kv_head=5'], 'good', False,
                        "n_embd (64) must be divisible by n_head (5)"),
    'n_head % n_kv_head': (['--n_kv_head=3'], 'good', False, "n_head (4) must be divisible by n_kv_head (3)"),
    'block_size > split': ([], 'short_val', False, "val.bin holds 50 tokens, fewer than block_size + 1 = 65"),
    'batch_size 0': (['--batch_size=0'], 'good', False, "batch_size must be a positive integer, got 0"),
    'accumulation 0': (['--gradient_accumulation_steps=0'], 'good', False,
                       "gradient_accumulation_steps must be a positive integer, got 0"),
    'eval_interval 0': (['--eval_interval=0'], 'good', False, "eval_interval must be a positive integer, got 0"),
    'eval_iters 0': (['--eval_iters=0'], 'good', False, "eval_iters must be a positive integer, got 0"),
    'log_interval 0': (['--log_interval=0'], 'good', False, "log_interval must be a positive integer, got 0"),
    'memory budget 0': (['--activation_memory_budget=0'], 'good', False,
                        "activation_memory_budget is the fraction of activations kept, in (0, 1], got 0"),
    'memory budget, eager': (['--activation_memory_budget=0.5', '--compile=False'], 'good', False,
                             "activation_memory_budget < 1 works through torch.compile: add --compile=True"),
    'max_iters -1': (['--max_iters=-1'], 'good', False, "max_iters is the number of optimizer steps in all, 0 or more, got -1"),
    'truncated ckpt': (['--init_from=resume'], 'finished', 'truncated', "is truncated or not a checkpoint"),
    'foreign ckpt': (['--init_from=resume'], 'finished', 'foreign', "is not a checkpoint of this project"),
    # a pickle that would create a file (out_dir/pwned) when loaded: refused unloaded, nothing created
    'crafted ckpt': (['--init_from=resume'], 'finished', 'crafted',
                     "ckpt.pt is not a checkpoint of this project: it holds a Python object no checkpoint holds (io.open); "
                     "it was not loaded, since loading it could run code from the file"),
    'resume override': (['--init_from=resume', '--n_layer=3'], 'finished', 'copy',
                        "n_layer=3 (--n_layer) disagrees with the checkpoint's n_layer=2: resume with the run's own settings (--n_layer=2)"),
    # a value equal to train.py's own default is still the user's: it is compared too
    'resume override = default': (['--init_from=resume', '--n_layer=12'], 'finished', 'copy',
                                  "n_layer=12 (--n_layer) disagrees with the checkpoint's n_layer=2"),
    # the keys that fix the data order: another one would read some windows twice and skip as many
    'resume seed': (['--init_from=resume', '--seed=7'], 'finished', 'copy',
                    "seed=7 (--seed) disagrees with the checkpoint's seed=1337: resume with the run's own settings "
                    "(--seed=1337), or train a new run in another out_dir"),
    'resume data_order': (['--init_from=resume', '--data_order=random'], 'finished', 'copy',
                          "data_order='random' (--data_order) disagrees with the checkpoint's data_order='epoch': "
                          "resume with the run's own settings (--data_order='epoch')"),
    'resume dataset': (['--init_from=resume'], 'good', 'copy', "(--dataset) disagrees with the checkpoint's dataset="),
    # a scratch run into an out_dir whose only checkpoint is ckpt_last.pt (always_save_checkpoint=False)
    'scratch over ckpt_last.pt': ([], 'finished', 'last only', "already holds a checkpoint: resume it with --init_from=resume"),
}
# optional trackers asked for without their package (only where it is not installed)
for _package, _key in (('wandb', 'wandb_log'), ('tensorboard', 'tensorboard_log')):
    if importlib.util.find_spec(_package) is None:
        BAD_INPUTS[f'{_package} missing'] = ([f'--{_key}=True'], 'good', False,
                                             f"{_key}=True needs the {_package} package: pip install {_package}")


class Crafted:
    """Pickled as a call of open(path, 'w'): unpickling it creates the file."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (self.path, 'w')


@pytest.fixture(scope='module')
def bad_input_runs(finished, data, tmp_path_factory):
    """Every bad-input case, run in parallel (each one only imports torch and stops)."""
    root = tmp_path_factory.mktemp('bad')
    datasets = {
        'finished': data,  # the finished run's
        'good': helpers.make_dataset(root / 'good'),
        'missing': str(root / 'no_such_dataset'),
        'no_val': helpers.make_dataset(root / 'no_val', splits=('train',)),
        'vocab300': helpers.make_dataset(root / 'vocab300', meta_vocab_size=300),
        'short_val': helpers.make_dataset(root / 'short_val', val_tokens=50),
    }
    started = {}
    for case, (extra, variant, prepared, _) in BAD_INPUTS.items():
        out = str(root / case.replace(' ', '_').replace('%', 'mod').replace('>', 'gt') / 'out')
        if prepared:
            shutil.copytree(finished, out)
            ckpt_path = os.path.join(out, 'ckpt.pt')
            if prepared == 'truncated':
                with open(ckpt_path, 'r+b') as f:
                    f.truncate(os.path.getsize(ckpt_path) // 3)
            elif prepared == 'foreign':
                torch.save({'state_dict': {'weight': torch.zeros(3)}, 'epoch': 3}, ckpt_path)
            elif prepared == 'crafted':
                torch.save(dict(torch.load(ckpt_path, weights_only=False), run_log=Crafted(os.path.join(out, 'pwned'))),
                           ckpt_path)
            elif prepared == 'last only':
                os.rename(ckpt_path, os.path.join(out, 'ckpt_last.pt'))
        args = train_args(datasets[variant], out) + extra
        if case == 'missing config file':
            args = ['config/no_such.py', *args[1:]]
        watched = [out, datasets[variant]]
        before = {folder: helpers.snapshot(folder) for folder in watched}
        started[case] = (subprocess.Popen(helpers.command('train.py', args), cwd=helpers.REPO, env=helpers.env(),
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
                         watched, before, out)
    results = {}
    for case, (proc, watched, before, out) in started.items():
        try:
            stdout, stderr = proc.communicate(timeout=helpers.TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate(timeout=30)
        results[case] = SimpleNamespace(code=proc.returncode, stdout=stdout, stderr=stderr, before=before,
                                        after={folder: helpers.snapshot(folder) for folder in watched}, out=out)
    return results


@pytest.mark.parametrize('case', list(BAD_INPUTS))
def test_bad_input(case, bad_input_runs):
    r = bad_input_runs[case]
    expected = BAD_INPUTS[case][3]
    assert r.code == 2, f"exit {r.code}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    assert 'Traceback' not in r.stderr and 'Traceback' not in r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), r.stderr
    assert expected in lines[0], lines[0]
    assert len(lines[0]) < 400
    assert r.after == r.before  # nothing written, nothing touched
    if not BAD_INPUTS[case][2]:
        assert r.after[r.out] is None  # out_dir not even created
    assert not os.path.exists(os.path.join(r.out, 'pwned'))
