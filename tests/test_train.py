"""
train.py through its real command line, on CPU, with the production config files shrunk to a
2-layer, 64-wide model: the loss falls for both architectures, the run log holds what it promises,
a resumed run is bit-identical to an uninterrupted one (dropout on, so the RNG restore counts),
eval_only writes no checkpoint, sample.py prints text, the lr schedule, config errors, the
checkpoint's contents (bench.py: test_bench.py).
"""
import math
import os
import re
import shutil
from types import SimpleNamespace

import pytest
import torch

import helpers
from helpers import REPO, VOCAB, load, run, train, train_args

pytestmark = pytest.mark.slow  # python train.py runs

ITERS = 20


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return helpers.make_dataset(tmp_path_factory.mktemp('data'))


@pytest.fixture(scope='module')
def straight(data, tmp_path_factory):
    """llama, 20 iterations straight, dropout on, evaluated at 10 and 20."""
    out = str(tmp_path_factory.mktemp('straight'))
    proc = train(train_args(data, out, max_iters=ITERS, lr_decay_iters=ITERS, eval_interval=10, dropout=0.1))
    return SimpleNamespace(out=out, proc=proc)


@pytest.fixture(scope='module')
def gpt2_run(data, tmp_path_factory):
    out = str(tmp_path_factory.mktemp('gpt2'))
    proc = train(train_args(data, out, arch='gpt2', max_iters=ITERS, eval_interval=10, dropout=0.1))
    return SimpleNamespace(out=out, proc=proc)


@pytest.fixture(scope='module')
def resumed(data, tmp_path_factory):
    """The same run stopped at 10 (its own end of training), then resumed to 20."""
    out = str(tmp_path_factory.mktemp('resumed'))
    first = train(train_args(data, out, max_iters=10, lr_decay_iters=ITERS, eval_interval=10, dropout=0.1))
    at_10 = load(out)
    second = train(train_args(data, out, max_iters=ITERS, lr_decay_iters=ITERS, eval_interval=10, dropout=0.1,
                              init_from='resume'))
    return SimpleNamespace(out=out, first=first, second=second, at_10=at_10)


# -----------------------------------------------------------------------------
# the loss falls, and the run log says so

@pytest.mark.parametrize('arch', ['llama', 'gpt2'])
def test_loss_falls(arch, straight, gpt2_run):
    r = straight if arch == 'llama' else gpt2_run
    log, _ = helpers.run_log(r.out)
    losses = [record['loss'] for record in log['iters']]
    assert len(losses) == ITERS
    assert losses[0] == pytest.approx(math.log(VOCAB), abs=0.3)  # the initial loss is ~ln(vocab)
    assert losses[-1] < losses[0] - 1.5, losses
    evals = log['evals']
    assert [e['iter'] for e in evals] == [10, 20]
    assert evals[1]['val_loss'] < evals[0]['val_loss'] < math.log(VOCAB) - 1.0
    assert log['model_args']['arch'] == arch
    assert f"model: {arch}" in r.proc.stdout


@pytest.mark.parametrize('arch', ['llama', 'gpt2'])
def test_run_log_contents(arch, straight, gpt2_run):
    r = straight if arch == 'llama' else gpt2_run
    log, lines = helpers.run_log(r.out)
    config = log['config']
    assert config['arch'] == arch and config['n_layer'] == 2 and config['n_embd'] == 64
    assert config['max_iters'] == ITERS and config['dropout'] == 0.1
    assert log['env']['torch'] == torch.__version__
    assert log['env']['device'] == 'cpu' and log['env']['world_size'] == 1
    assert [record['iter'] for record in log['iters']] == list(range(1, ITERS + 1))
    for record in log['iters']:
        assert {'iter', 'loss', 'lr', 'tokens_per_sec', 'mfu'} <= record.keys()
        assert record['tokens_per_sec'] > 0 and math.isfinite(record['loss'])
        assert record['mfu'] is None  # a CPU has no known peak: no MFU rather than a made-up one
        assert record['tokens'] == record['iter'] * 4 * 64
    assert log['iters'][0]['lr'] == pytest.approx(3e-3 / 3)  # warmup: (it + 1) / (warmup_iters + 1)
    for record in log['evals']:
        assert {'iter', 'train_loss', 'val_loss'} <= record.keys()
    # the JSON-lines twin holds the same records, one a line
    assert [{k: v for k, v in line.items() if k != 'kind'} for line in lines if line['kind'] == 'iter'] == log['iters']
    assert [{k: v for k, v in line.items() if k != 'kind'} for line in lines if line['kind'] == 'eval'] == log['evals']
    # the console shows the same numbers
    assert f"eval iter 20: train loss {log['evals'][-1]['train_loss']:.4f}, val loss {log['evals'][-1]['val_loss']:.4f}" \
        in r.proc.stdout


def test_mfu_with_given_peak(data, tmp_path):
    """peak_tflops from the config gives an MFU equal to flops_per_token x tokens/s / peak."""
    out = str(tmp_path / 'out')
    train(train_args(data, out, max_iters=2, peak_tflops=1.0))
    log, _ = helpers.run_log(out)
    flops_per_token = log['env']['flops_per_token']
    for record in log['iters']:
        assert record['mfu'] == pytest.approx(flops_per_token * record['tokens_per_sec'] / 1e12)


# -----------------------------------------------------------------------------
# exact resume

def test_resume_is_bit_identical(straight, resumed):
    assert resumed.at_10['iter_num'] == 10
    a, b = load(straight.out), load(resumed.out)
    assert a['iter_num'] == b['iter_num'] == ITERS
    helpers.assert_identical(a['model'], b['model'])
    for (ka, sa), (kb, sb) in zip(sorted(a['optimizer']['state'].items()), sorted(b['optimizer']['state'].items())):
        assert ka == kb
        for key in sa:
            assert torch.equal(torch.as_tensor(sa[key]), torch.as_tensor(sb[key])), (ka, key)
    # the same losses printed, iteration by iteration
    straight_log, _ = helpers.run_log(straight.out)
    resumed_log, _ = helpers.run_log(resumed.out)
    assert [r['loss'] for r in resumed_log['iters']] == [r['loss'] for r in straight_log['iters']]
    assert resumed_log['evals'][-1]['val_loss'] == straight_log['evals'][-1]['val_loss']
    # the resumed run appended to its run's log
    assert [r['iter'] for r in resumed_log['iters']] == list(range(1, ITERS + 1))
    assert len(resumed_log['resumes']) == 1 and resumed_log['resumes'][0]['env']['start_iter'] == 10


def test_rng_restore_matters(data, straight, resumed, tmp_path):
    """The same resume from a checkpoint stripped of its RNG states differs (dropout's masks do):
    so the bit-identity above proves the RNG restore, not only the weights and optimizer."""
    out = str(tmp_path / 'out')
    os.makedirs(out)
    ckpt = dict(resumed.at_10)
    del ckpt['rng'], ckpt['rng_ranks']
    torch.save(ckpt, os.path.join(out, 'ckpt.pt'))
    train(train_args(data, out, max_iters=ITERS, lr_decay_iters=ITERS, eval_interval=10, dropout=0.1,
                     init_from='resume'))
    assert helpers.max_weight_diff(load(out)['model'], load(straight.out)['model']) > 1e-6


# -----------------------------------------------------------------------------
# eval_only, checkpoint contents, sample.py

def test_eval_only_leaves_checkpoint(straight, tmp_path):
    out = str(tmp_path / 'out')
    shutil.copytree(straight.out, out)
    ckpt_path = os.path.join(out, 'ckpt.pt')
    before = helpers.snapshot(out)['ckpt.pt']
    proc = train(train_args(load(out)['config']['dataset'], out, init_from='resume', eval_only=True, dropout=0.1))
    assert helpers.snapshot(out)['ckpt.pt'] == before  # size, mtime and sha256
    assert not os.path.exists(ckpt_path + '.tmp')
    log, _ = helpers.run_log(straight.out)
    final = log['evals'][-1]
    # the same weights on the same fixed evaluation batches: the same losses
    assert f"eval iter {ITERS}: train loss {final['train_loss']:.4f}, val loss {final['val_loss']:.4f}" in proc.stdout
    assert 'saved checkpoint' not in proc.stdout
    assert 'one pass over the training split' in proc.stdout and 'passes' not in proc.stdout  # it trains nothing


def test_checkpoint_contents(straight):
    ckpt = torch.load(os.path.join(straight.out, 'ckpt.pt'), map_location='cpu', weights_only=False)
    for key in ('model', 'optimizer', 'iter_num', 'best_val_loss', 'config', 'model_args', 'rng', 'run_log'):
        assert key in ckpt, key
    assert not [k for k in ckpt['model'] if k.startswith(('_orig_mod.', 'module.')) or '._orig_mod.' in k]
    assert all(v.dtype == torch.float32 and v.device.type == 'cpu' for v in ckpt['model'].values())
    from model import ModelConfig, Transformer
    model = Transformer(ModelConfig(**ckpt['model_args']))
    model.load_state_dict(ckpt['model'])  # strict: every key, every shape
    assert ckpt['model_args']['n_layer'] == 2 and ckpt['model_args']['vocab_size'] == VOCAB
    assert ckpt['iter_num'] == ITERS
    log, _ = helpers.run_log(straight.out)
    assert ckpt['best_val_loss'] == min(e['val_loss'] for e in log['evals'])
    assert ckpt['config'] == log['config']
    assert ckpt['run_log'] == next(f for f in os.listdir(straight.out) if f.endswith('.json'))
    assert {'torch', 'numpy', 'python'} <= ckpt['rng'].keys()
    optimizer = torch.optim.AdamW(model.param_groups(0.1))
    optimizer.load_state_dict(ckpt['optimizer'])  # a plain single-process AdamW's state
    assert len(ckpt['optimizer']['state']) == len(list(model.parameters()))
    assert all(float(s['step']) == ITERS for s in ckpt['optimizer']['state'].values())


def test_sample_prints_text(straight):
    if not os.path.exists(os.path.join(REPO, 'dataprep.py')):
        pytest.skip('dataprep.py (the tokenizers) is not in this checkout yet')
    proc = run('sample.py', [f'--out_dir={straight.out}', '--device=cpu', '--num_samples=2', '--max_new_tokens=40',
                             '--start=hello'], check=True, timeout=120)
    samples = re.split(r'^--- sample \d+ of 2 ---\n', proc.stdout, flags=re.M)
    assert len(samples) == 3 and samples[0] == ''
    for text in samples[1:]:
        assert len(text.strip()) > 0
    # greedy decoding is deterministic; a seed makes sampling repeatable
    again = run('sample.py', [f'--out_dir={straight.out}', '--device=cpu', '--num_samples=2', '--max_new_tokens=40',
                              '--start=hello'], check=True, timeout=120)
    assert again.stdout == proc.stdout


# -----------------------------------------------------------------------------
# lr schedule

def test_lr_schedule():
    import train as train_module
    c = SimpleNamespace(decay_lr=True, learning_rate=1e-3, min_lr=1e-4, warmup_iters=10, lr_decay_iters=110,
                        max_iters=200)
    get_lr = train_module.get_lr
    # linear warmup from lr/(w+1), never 0, to lr at the end of warmup
    assert get_lr(0, c) == pytest.approx(1e-3 / 11)
    assert get_lr(9, c) == pytest.approx(1e-3 * 10 / 11)
    warmup = [get_lr(i, c) for i in range(10)]
    assert all(b > a for a, b in zip(warmup, warmup[1:]))
    assert get_lr(10, c) == pytest.approx(1e-3)  # the peak
    assert get_lr(60, c) == pytest.approx((1e-3 + 1e-4) / 2)  # cosine: halfway at mid-decay
    assert get_lr(35, c) == pytest.approx(1e-4 + 0.5 * (1 + math.cos(math.pi * 0.25)) * 9e-4)
    decay = [get_lr(i, c) for i in range(10, 111)]
    assert all(b < a for a, b in zip(decay, decay[1:]))
    assert get_lr(110, c) == pytest.approx(1e-4) and get_lr(199, c) == 1e-4  # min_lr after lr_decay_iters
    c.lr_decay_iters = None  # None = max_iters
    assert get_lr(200, c) == 1e-4 and get_lr(199, c) > 1e-4
    c.decay_lr = False
    assert {get_lr(i, c) for i in (0, 5, 100, 1000)} == {1e-3}


# -----------------------------------------------------------------------------
# config errors: one line on stderr, 'error:' first, exit 2

def config_error(args, tmp_path):
    out = str(tmp_path / 'out')
    proc = run('train.py', [*args, f'--out_dir={out}'], timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), proc.stderr
    assert not os.path.exists(out)
    return lines[0]


def test_unknown_key_on_command_line(tmp_path):
    message = config_error(['config/full_llama_1.36b.py', '--n_layers=2'], tmp_path)
    assert "'n_layers'" in message and "did you mean 'n_layer'" in message


def test_unknown_key_in_config_file(tmp_path):
    config = tmp_path / 'my_config.py'
    config.write_text("n_layer = 2\nlearning_rte = 1e-3\n")
    message = config_error([str(config)], tmp_path)
    assert 'my_config.py' in message and "'learning_rte'" in message and "did you mean 'learning_rate'" in message


def test_wrong_type(tmp_path):
    message = config_error(['config/full_llama_1.36b.py', '--batch_size=four'], tmp_path)
    assert 'batch_size' in message and 'integer' in message and "'four'" in message


def test_missing_config_file(tmp_path):
    message = config_error(['config/no_such_config.py'], tmp_path)
    assert 'config/no_such_config.py' in message and 'not found' in message
