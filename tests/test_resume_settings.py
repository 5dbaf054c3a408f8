"""
What a resumed run keeps and what it takes from its configuration: the configured weight_decay
applies, the checkpoint's file is not kept mapped, tokens are counted across a change of batch, a
run stopped on an evaluation iteration evaluates first when it resumes, and float16 counts a step
the GradScaler skipped as skipped (so the non-finite guard and the checkpoint guard see it).
Tiny models on CPU: train.py in-process (setup, train_step) and as a process.
"""
import gc
import os
import signal

import torch

import helpers
import train


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
