"""
What a resumed run keeps and what it takes from its configuration: the configured weight_decay
applies, the checkpoint's file is not kept mapped, tokens are counted across a change of batch, a
run stopped on an evaluation iteration evaluates first when it resumes, float16 counts a step the
GradScaler skipped as skipped (so the non-finite guard and the checkpoint guard see it), the keys
that fix the data order (seed, data_order, dataset) come from the checkpoint, and with
always_save_checkpoint=False ckpt.pt keeps the best while the latest state goes to ckpt_last.pt.
Tiny models on CPU: train.py in-process (setup, train_step) and as a process.
"""
import gc
import os
import re
import shutil
import signal

import pytest
import torch

import checkpoint

import helpers
import train

pytestmark = pytest.mark.slow  # python train.py runs, stopped and resumed


def tiny_run(tmp_path, **overrides):
    data = helpers.make_dataset(tmp_path / 'data')
    out = str(tmp_path / 'out')
    return data, out, helpers.train_args(data, out, **overrides)


def mapped(path):
    with open('/proc/self/maps') as f:
        return [line.strip() for line in f if path in line]


def test_resume_applies_configured_weight_decay_and_releases_the_file(tmp_path):
    data, out, args = tiny_run(tmp_path, max_iters=3)
    helpers.train(args)
    t = train.setup(train.parse_config(args + ['--init_from=resume', '--max_iters=6', '--weight_decay=0.0']))
    assert [g['weight_decay'] for g in t.optimizer.param_groups] == [0.0, 0.0]
    assert t.optimizer.state, "the optimizer state was not loaded"
    assert not any(torch.is_tensor(v) for v in t.ckpt.values()), sorted(t.ckpt)
    gc.collect()
    path = os.path.join(out, 'ckpt.pt')
    assert not mapped(path), f"the resumed run keeps {path} mapped: {mapped(path)[:2]}"


def test_tokens_are_counted_across_a_change_of_batch(tmp_path):
    data, out, args = tiny_run(tmp_path, max_iters=5, batch_size=4)
    helpers.train(args)
    resumed = helpers.train(args + ['--init_from=resume', '--max_iters=7', '--lr_decay_iters=7', '--batch_size=8'])
    assert f"resuming from {out}/ckpt.pt: iter 5, {5 * 4 * 64:,} tokens trained" in resumed.stdout
    records = {r['iter']: r['tokens'] for r in helpers.run_log(out)[0]['iters']}
    assert records[5] == 5 * 4 * 64 and records[6] == 5 * 4 * 64 + 8 * 64 and records[7] == 5 * 4 * 64 + 2 * 8 * 64
    assert helpers.load(out)['tokens'] == records[7]


def test_stop_on_an_evaluation_iteration_evaluates_on_resume(tmp_path):
    """eval_interval=1: every iteration evaluates first, so a SIGTERM stop always lands on one whose
    evaluation has not run yet; the resumed run must run it before its first step."""
    data, out, args = tiny_run(tmp_path, max_iters=100000, lr_decay_iters=100000, eval_interval=1)
    proc = helpers.start('train.py', args)
    helpers.wait_for_line(proc, lambda line: line.startswith('iter 1: loss'))
    proc.send_signal(signal.SIGTERM)
    code, lines = helpers.finish(proc)
    assert code == 0, lines[-20:]
    ckpt = helpers.load(out)
    stopped = ckpt['iter_num']
    assert ckpt['last_eval_iter'] < stopped  # the evaluation of iteration `stopped` had not run
    resumed = helpers.train(args + ['--init_from=resume', f'--max_iters={stopped + 1}']).stdout.splitlines()
    first_eval = next(i for i, line in enumerate(resumed) if line.startswith(f'eval iter {stopped}:'))
    first_step = next(i for i, line in enumerate(resumed) if line.startswith(f'iter {stopped + 1}: loss'))
    assert first_eval < first_step
    evals = [r['iter'] for r in helpers.run_log(out)[0]['evals']]
    assert evals.count(stopped) == 1, evals


def test_float16_step_skipped_by_the_scaler_counts_as_skipped(tmp_path):
    """Under float16 the GradScaler skips a step with inf/nan gradients inside its step(); train_step
    must say so (it said 'stepped' for every step: a diverged run never stopped and kept saving)."""
    data, out, args = tiny_run(tmp_path)
    t = train.setup(train.parse_config(args))
    # float16 as on a GPU: the GradScaler's path of train_step, on CPU
    t.device = train.Device(type='cpu', dtype='float16', ptdtype=torch.float16, autocast=t.device.autocast)
    t.scaler = torch.amp.GradScaler('cpu', enabled=True)
    assert train.train_step(t, 0)[2] is True
    for group in t.optimizer.param_groups:
        group['lr'] = 1e30
    results = [train.train_step(t, it) for it in range(1, 6)]
    assert not all(torch.isfinite(norm) for _, norm, _ in results), "the run did not diverge"
    assert all(stepped == bool(torch.isfinite(norm)) for _, norm, stepped in results), \
        [(norm.item(), stepped) for _, norm, stepped in results]



def test_a_key_set_to_its_default_counts_as_set(tmp_path):
    """The keys a resume compares with the checkpoint are the keys the user wrote, whatever their value:
    --n_layer=12 (train.py's default) and a config file's n_layer = 12 count; untouched keys do not."""
    config = tmp_path / 'cfg.py'
    config.write_text("n_layer = 12\n_helper = 3\nif _helper:\n    n_head = 12\n")
    assert train.parse_config(['--n_layer=12']).user_set == {'n_layer': '--n_layer'}
    c = train.parse_config([str(config), '--dropout=0.0'])
    assert c.user_set == {'n_layer': f"config file '{config}'", 'n_head': f"config file '{config}'", 'dropout': '--dropout'}
    assert 'n_embd' not in train.parse_config(['--n_layer=3']).user_set


# -----------------------------------------------------------------------------
# the keys that fix the data order: the checkpoint's

def test_resume_takes_seed_data_order_and_dataset_from_the_checkpoint(tmp_path):
    """A resume that leaves seed, data_order and dataset unset goes on with the checkpoint's (it took
    train.py's defaults: another order, or the default dataset): bit-identical to the uninterrupted run."""
    data = helpers.make_dataset(tmp_path / 'data')
    settings = [*helpers.TINY_MODEL, '--batch_size=4', '--eval_interval=1000', '--eval_iters=2', '--warmup_iters=2',
                '--learning_rate=3e-3', '--lr_decay_iters=8']
    run_keys = [f'--dataset={data}', '--seed=5', '--data_order=epoch']
    straight, stopped = str(tmp_path / 'straight'), str(tmp_path / 'stopped')
    helpers.train([*settings, *run_keys, '--max_iters=8', f'--out_dir={straight}'])
    helpers.train([*settings, *run_keys, '--max_iters=4', f'--out_dir={stopped}'])
    resumed = helpers.train([*settings, '--max_iters=8', f'--out_dir={stopped}', '--init_from=resume'])
    shown = dict(re.findall(r'^[* ] (\w+) += (.*)$', resumed.stdout, flags=re.M))  # the effective configuration
    assert (shown['dataset'], shown['seed'], shown['data_order']) == (repr(data), '5', "'epoch'")
    final, reference = helpers.load(stopped), helpers.load(straight)
    assert final['iter_num'] == reference['iter_num'] == 8 and final['windows'] == reference['windows'] == 8 * 4
    assert final['config']['seed'] == 5 and final['config']['dataset'] == data
    helpers.assert_identical(final['model'], reference['model'])


def test_resume_with_the_same_dataset_under_another_name(tmp_path):
    """The checkpoint's dataset by a path, and the same folder by another path: one dataset."""
    data, out, args = tiny_run(tmp_path, max_iters=2)
    helpers.train(args)
    other_name = os.path.join(str(tmp_path), '.', 'data')
    assert other_name != data
    helpers.train(helpers.train_args(other_name, out, max_iters=3, init_from='resume'))
    assert helpers.load(out)['iter_num'] == 3


# -----------------------------------------------------------------------------
# always_save_checkpoint=False: ckpt.pt keeps the best, ckpt_last.pt the latest

def documented_keys():
    """The keys checkpoint.py's docstring lists under Contents, the format's one description."""
    doc = checkpoint.__doc__
    return set(re.findall(r'^    (\w+) ', doc[doc.index('\nContents'):doc.index('\nOlder checkpoints')], flags=re.M))


def saved_to(stdout):
    return re.findall(r'^saved checkpoint at iter (\d+) \(([^)]*)\) to (\S+) ', stdout, flags=re.M)


def test_keep_best_writes_the_latest_state_beside_the_best(tmp_path):
    data, out, args = tiny_run(tmp_path, max_iters=4, eval_interval=2, always_save_checkpoint=False)
    first = helpers.train(args)
    assert [(int(i), why) for i, why, _ in saved_to(first.stdout)] == [(2, 'eval'), (4, 'end of training')]
    best = helpers.load(out)
    assert best['iter_num'] == 4 and not os.path.exists(os.path.join(out, 'ckpt_last.pt'))
    assert set(best) == documented_keys()
    best_file = helpers.snapshot(out)['ckpt.pt']
    stale = str(tmp_path / 'stale')

    # a learning rate of 5 wrecks the weights: the end of training is far worse than the best
    worse = helpers.train(helpers.train_args(data, out, max_iters=6, eval_interval=2, always_save_checkpoint=False,
                                             learning_rate=5, min_lr=5, init_from='resume'))
    final_eval = helpers.run_log(out)[0]['evals'][-1]
    assert final_eval['iter'] == 6 and final_eval['val_loss'] > best['best_val_loss'] + 1
    assert saved_to(worse.stdout) == [('6', 'end of training', os.path.join(out, 'ckpt_last.pt'))]
    assert helpers.snapshot(out)['ckpt.pt'] == best_file  # the best, untouched
    last = torch.load(os.path.join(out, 'ckpt_last.pt'), map_location='cpu', weights_only=False)
    assert last['iter_num'] == 6 and last['best_val_loss'] == best['best_val_loss']  # the best's loss, not this state's
    assert checkpoint.load_latest(out)[0] == os.path.join(out, 'ckpt_last.pt')
    shutil.copytree(out, stale)

    # the resume goes on from the latest; once ckpt.pt holds the latest state again, ckpt_last.pt goes
    resumed = helpers.train(helpers.train_args(data, out, max_iters=7, init_from='resume'))
    assert f"resuming from {out}/ckpt_last.pt: iter 6, " in resumed.stdout
    assert saved_to(resumed.stdout) == [('7', 'end of training', os.path.join(out, 'ckpt.pt'))]
    assert sorted(f for f in os.listdir(out) if f.startswith('ckpt')) == ['ckpt.pt']
    assert helpers.load(out)['iter_num'] == 7

    # a scratch run with overwrite=True over a run with both files leaves no ckpt_last.pt of the old run
    helpers.train(helpers.train_args(data, stale, max_iters=2, overwrite=True))
    assert sorted(f for f in os.listdir(stale) if f.startswith('ckpt')) == ['ckpt.pt']
    assert checkpoint.load_latest(stale)[1]['iter_num'] == 2


def test_keep_best_stop_by_signal_saves_beside_the_best(tmp_path):
    data, out, args = tiny_run(tmp_path, max_iters=100000, lr_decay_iters=100000, eval_interval=2,
                               always_save_checkpoint=False)
    proc = helpers.start('train.py', args)
    helpers.wait_for_line(proc, lambda line: line.startswith('saved checkpoint at iter 2 (eval)'))
    helpers.wait_for_line(proc, lambda line: line.startswith('iter 3: loss'))
    proc.send_signal(signal.SIGTERM)
    code, lines = helpers.finish(proc)
    assert code == 0, lines[-20:]
    [(stopped, why, path)] = saved_to('\n'.join(line for line in lines if 'SIGTERM' in line))
    assert why == 'stopped by SIGTERM' and path == os.path.join(out, 'ckpt_last.pt')
    best = helpers.load(out)
    assert best['iter_num'] < int(stopped) and best['iter_num'] % 2 == 0  # an evaluated state
    assert checkpoint.load_latest(out)[1]['iter_num'] == int(stopped)


def test_a_dataset_prepared_again_with_a_larger_vocabulary_is_refused_on_resume(tmp_path):
    """The run's own dataset, prepared again with more ids than the checkpoint's model has: the
    message must not suggest a vocab_size (the checkpoint fixes it; a resume would refuse it next)."""
    import pickle
    data, out, args = tiny_run(tmp_path, max_iters=2)
    helpers.train(args)
    with open(os.path.join(data, 'meta.pkl'), 'rb') as f:
        meta = pickle.load(f)
    meta['vocab_size'] = 300
    with open(os.path.join(data, 'meta.pkl'), 'wb') as f:
        pickle.dump(meta, f)
    proc = helpers.train(args + ['--init_from=resume', '--max_iters=4'],
                         check=False)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr
    assert "has token ids up to 299 but the checkpoint's model has a vocabulary of 257" in last
    assert 'vocab_size' not in last.split('257', 1)[1] and 'prepare' in last, last
