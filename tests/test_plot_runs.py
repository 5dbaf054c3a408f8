"""
plot_runs.py on the run logs of two real tiny training runs (LLaMA and GPT-2, CPU): the PNG files are
there and are real figures, the lines hold the logs' own numbers, the scaling-law lines follow the
published fits, an out_dir stands for its newest log, and user mistakes are one line and exit 2.
"""
import json
import math
import os
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
import plot_runs  # noqa: E402

VOCAB = 256
ALL_FIGURES = ['loss_vs_iter.png', 'loss_vs_tokens.png', 'loss_vs_time.png', 'lr.png', 'throughput.png']
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
PEAK_TFLOPS = 0.01  # any peak: on CPU train.py logs MFU only when the config gives one


def make_dataset(folder):
    """Bytes of this repo's sources as tokens, with the meta.pkl a byte-level prepare.py writes."""
    os.makedirs(folder)
    text = b''.join(open(os.path.join(REPO, name), 'rb').read() for name in ('model.py', 'loader.py'))
    tokens = np.frombuffer(text, dtype=np.uint8).astype(np.uint16)
    split = int(0.9 * len(tokens))
    tokens[:split].tofile(os.path.join(folder, 'train.bin'))
    tokens[split:].tofile(os.path.join(folder, 'val.bin'))
    meta = {'vocab_size': VOCAB, 'tokenizer': {'kind': 'bytes', 'name': 'bytes'}, 'bos_id': None,
            'eos_id': VOCAB - 1, 'dtype': 'uint16'}
    with open(os.path.join(folder, 'meta.pkl'), 'wb') as f:
        pickle.dump(meta, f)


def start_training(dataset, out_dir, arch, *extra):
    cmd = [sys.executable, 'train.py', f'--dataset={dataset}', '--device=cpu', '--compile=False', f'--arch={arch}',
           '--n_layer=2', '--n_head=4', '--n_embd=64', '--block_size=64', '--batch_size=4', '--max_iters=20',
           '--eval_interval=10', '--eval_iters=2', '--log_interval=2', '--warmup_iters=5', f'--out_dir={out_dir}',
           *extra]
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def plot(*args):
    return subprocess.run([sys.executable, 'plot_runs.py', *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """{arch: out_dir} of two finished 20-iteration runs."""
    root = tmp_path_factory.mktemp('plot_runs')
    dataset = str(root / 'data')
    make_dataset(dataset)
    out = {'llama': str(root / 'out-llama'), 'gpt2': str(root / 'out-gpt2')}
    jobs = [start_training(dataset, out['llama'], 'llama', f'--peak_tflops={PEAK_TFLOPS}'),
            start_training(dataset, out['gpt2'], 'gpt2')]  # side by side: the test stays short
    for job in jobs:
        _, stderr = job.communicate(timeout=120)
        assert job.returncode == 0, stderr[-2000:]
    return out


def the_log(out_dir):
    (name,) = [n for n in os.listdir(out_dir) if n.startswith('run_') and n.endswith('.json')]
    with open(os.path.join(out_dir, name)) as f:
        return json.load(f)


def lines_by_label(fig):
    return {line.get_label(): line for ax in fig.axes for line in ax.get_lines()}


def assert_real_png(path):
    with open(path, 'rb') as f:
        assert f.read(8) == PNG_SIGNATURE, path
    assert os.path.getsize(path) > 20_000, path
    import matplotlib.image
    image = matplotlib.image.imread(path)
    height, width = image.shape[:2]
    assert 400 <= height <= 3000 and 600 <= width <= 4000, (path, image.shape)
    rgb = image[..., :3].reshape(-1, 3)
    assert rgb.std() > 0.05, path  # not a blank canvas
    assert len(np.unique(np.round(rgb * 255).astype(int), axis=0)) > 50, path  # coloured lines, text, grid


def test_two_architectures_give_every_figure(runs, tmp_path):
    out = tmp_path / 'plots'
    result = plot(runs['llama'], runs['gpt2'], '--out', str(out))
    assert result.returncode == 0, result.stderr
    expected = ALL_FIGURES + ['arch_comparison.png']
    assert sorted(os.listdir(out)) == sorted(expected)
    for name in expected:
        assert str(out / name) in result.stdout  # the list of files written
        assert_real_png(out / name)


def test_one_run_gets_all_but_the_comparison(runs, tmp_path):
    out = tmp_path / 'plots'
    result = plot(runs['gpt2'], '--out', str(out))
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(out)) == sorted(ALL_FIGURES)
    assert 'no arch_comparison.png' in result.stdout
    for name in ALL_FIGURES:
        assert_real_png(out / name)


def test_lines_hold_the_logged_numbers(runs):
    loaded = plot_runs.load_runs([runs['llama'], runs['gpt2']])
    figures = plot_runs.build_figures(loaded)
    for arch, out_dir in runs.items():
        log = the_log(out_dir)
        iters, evals = log['iters'], log['evals']
        assert [r['iter'] for r in iters] == list(range(2, 21, 2)) and [e['iter'] for e in evals] == [10, 20]
        label = f"{arch} ({os.path.basename(out_dir)})"
        for name, x in (('loss_vs_iter.png', 'iter'), ('loss_vs_tokens.png', 'tokens'), ('loss_vs_time.png', 'time')):
            lines = lines_by_label(figures[name])
            # wall time: 'time' itself in a run that never resumed, drawn in seconds for runs this short
            assert list(lines[f'{label} train'].get_xdata()) == pytest.approx([r[x] for r in iters])
            assert list(lines[f'{label} train'].get_ydata()) == pytest.approx([r['loss'] for r in iters])
            assert list(lines[f'{label} val'].get_xdata()) == pytest.approx([e[x] for e in evals])
            assert list(lines[f'{label} val'].get_ydata()) == pytest.approx([e['val_loss'] for e in evals])
            assert list(lines[f'{label} train (eval)'].get_ydata()) == pytest.approx([e['train_loss'] for e in evals])
        lr = lines_by_label(figures['lr.png'])[label]
        assert list(lr.get_ydata()) == pytest.approx([r['lr'] for r in iters])
        assert max(lr.get_ydata()) == pytest.approx(log['config']['learning_rate'], rel=0.05)  # warmup, then decay
        throughput = figures['throughput.png'].axes
        tokens_per_sec = {line.get_label(): line for line in throughput[0].get_lines()}[label]
        assert list(tokens_per_sec.get_ydata()) == pytest.approx([r['tokens_per_sec'] for r in iters])
        mfu_lines = {line.get_label(): line for line in throughput[1].get_lines()}
        if arch == 'llama':  # MFU = flops_per_token x tokens/s / peak, drawn in percent
            expected = [100 * log['env']['flops_per_token'] * r['tokens_per_sec'] / (PEAK_TFLOPS * 1e12) for r in iters]
            assert list(mfu_lines[label].get_ydata()) == pytest.approx(expected)
        else:
            assert label not in mfu_lines and all(r['mfu'] is None for r in iters)


def published_loss(law, n, d):
    # the fits as published, written out here rather than read from the cost tool
    E, A, B, alpha, beta = {'hoffmann': (1.69, 406.4, 410.7, 0.34, 0.28),
                            'besiroglu': (1.8172, 482.01, 2085.43, 0.3478, 0.3658)}[law]
    return E + A / n ** alpha + B / d ** beta


def test_comparison_draws_val_loss_and_both_fits(runs):
    loaded = plot_runs.load_runs([runs['llama'], runs['gpt2']])
    fig = plot_runs.build_figures(loaded)['arch_comparison.png']
    ax_tokens, ax_flops = fig.axes
    assert ax_tokens.get_xscale() == 'log' and ax_flops.get_xscale() == 'log'
    assert 'not directly comparable' in ' '.join(text.get_text() for text in fig.texts)
    token_range = [min(e['tokens'] for r in runs.values() for e in the_log(r)['evals']),
                   max(e['tokens'] for r in runs.values() for e in the_log(r)['evals'])]
    for arch, out_dir in runs.items():
        log = the_log(out_dir)
        label = f"{arch} ({os.path.basename(out_dir)})"
        n, flops_per_token = log['env']['parameters'], log['env']['flops_per_token']
        tokens = [e['tokens'] for e in log['evals']]
        for ax, per_token in ((ax_tokens, 1), (ax_flops, flops_per_token)):
            lines = {line.get_label(): line for line in ax.get_lines()}
            val = lines[f'{label} val']
            assert list(val.get_xdata()) == pytest.approx([t * per_token for t in tokens])
            assert list(val.get_ydata()) == pytest.approx([e['val_loss'] for e in log['evals']])
            for law, name in (('hoffmann', 'Hoffmann et al. 2022'), ('besiroglu', 'Besiroglu et al. 2024')):
                (key,) = [k for k in lines if k.startswith(f'{label} {name}, N = {n:,}')]
                xs, ys = lines[key].get_xdata(), lines[key].get_ydata()
                assert [xs[0], xs[-1]] == pytest.approx([d * per_token for d in token_range])
                for x, y in zip(xs, ys):
                    assert y == pytest.approx(published_loss(law, n, x / per_token))
                assert f'{published_loss(law, n, token_range[1]):.2f} at' in key
                assert all(math.isfinite(y) for y in ys)


def test_out_dir_means_its_newest_log_and_jsonl_means_its_twin(runs, tmp_path):
    out_dir = tmp_path / 'out-llama'
    shutil.copytree(runs['llama'], out_dir)
    (old,) = [n for n in os.listdir(out_dir) if n.endswith('.json')]
    newer = the_log(out_dir)
    newer['evals'][-1]['val_loss'] = 1.25
    (out_dir / 'run_29991231_235959.json').write_text(json.dumps(newer))
    (run,) = plot_runs.load_runs([str(out_dir)])
    assert os.path.basename(run.path) == 'run_29991231_235959.json' and run.evals[-1]['val_loss'] == 1.25
    (run,) = plot_runs.load_runs([str(out_dir / old.replace('.json', '.jsonl'))])
    assert os.path.basename(run.path) == old
    a, b = plot_runs.load_runs([str(out_dir / old), str(out_dir)])  # one out_dir twice: told apart
    assert a.label != b.label


def test_resumed_run_wall_time_keeps_counting():
    records = [{'time': 1.0}, {'time': 2.0}, {'time': 0.5}, {'time': 1.5}, {'time': 0.2}]
    plot_runs.add_wall_time(records)
    assert [r['wall'] for r in records] == pytest.approx([1.0, 2.0, 2.5, 3.5, 3.7])


def test_user_mistakes_are_one_line_and_exit_2(runs, tmp_path):
    empty = tmp_path / 'empty'
    empty.mkdir()
    bad_json = tmp_path / 'run_bad.json'
    bad_json.write_text('{"config": {}, "iters": [')
    not_a_log = tmp_path / 'run_other.json'
    not_a_log.write_text('{"loss": [1, 2]}')
    orphan = tmp_path / 'run_orphan.jsonl'
    orphan.write_text('{"kind": "iter", "iter": 1}\n')
    a_file = tmp_path / 'a_file'
    a_file.write_text('')
    cases = [
        ([str(tmp_path / 'missing')], 'does not exist'),
        ([str(empty)], 'holds no run log'),
        ([str(bad_json)], 'is not valid JSON'),
        ([str(not_a_log)], 'is not a train.py run log'),
        ([str(orphan)], 'JSON-lines twin'),
        ([runs['gpt2'], str(empty)], 'holds no run log'),
    ]
    for paths, message in cases:
        result = plot(*paths, '--out', str(tmp_path / 'plots'))
        assert result.returncode == 2, (paths, result.stderr)
        assert result.stderr.startswith('error: ') and message in result.stderr, result.stderr
        assert 'Traceback' not in result.stderr and result.stderr.count('\n') == 1, result.stderr
    assert not (tmp_path / 'plots').exists()  # nothing written before the input is checked
    result = plot(runs['gpt2'], '--out', str(a_file))
    assert result.returncode == 2 and 'is a file' in result.stderr and 'Traceback' not in result.stderr
