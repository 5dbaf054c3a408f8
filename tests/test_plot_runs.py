"""
plot_runs.py on the run logs of two real tiny training runs (LLaMA and GPT-2, CPU): the PNG files are
there and are real figures, the lines hold the logs' own numbers, the scaling-law lines follow the
published fits, an out_dir stands for its newest log, and user mistakes are one line and exit 2.
And on run logs written here in train.py's format with bits per byte (val_bpb, val_bpb_sources,
val_bytes per evaluation; train_bytes_per_token in the header; epoch per iteration record): the
comparison is in bits per byte against bytes of text seen and FLOPs, with no scaling-law line on a
bits-per-byte axis, and logs without those fields still plot, per token.
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

import plot_runs
import runlog

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

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


def figures_for_bytes(logs):
    """The figures beyond ALL_FIGURES and arch_comparison.png that logs with bits per byte add."""
    evals = [e for log in logs for e in log['evals']]
    return (['arch_comparison_per_token.png'] if any(e.get('val_bpb') is not None for e in evals) else []) + \
           (['val_bpb_per_source.png'] if any(e.get('val_bpb_sources') for e in evals) else [])


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


@pytest.mark.slow  # the `runs` fixture trains two models (python train.py)
def test_two_architectures_give_every_figure(runs, tmp_path):
    out = tmp_path / 'plots'
    result = plot(runs['llama'], runs['gpt2'], '--out', str(out))
    assert result.returncode == 0, result.stderr
    logs = [the_log(out_dir) for out_dir in runs.values()]
    expected = ALL_FIGURES + ['arch_comparison.png'] + figures_for_bytes(logs)
    assert sorted(os.listdir(out)) == sorted(expected)
    for name in expected:
        assert str(out / name) in result.stdout  # the list of files written
        assert_real_png(out / name)


@pytest.mark.slow
def test_one_run_gets_all_but_the_comparison(runs, tmp_path):
    out = tmp_path / 'plots'
    result = plot(runs['gpt2'], '--out', str(out))
    assert result.returncode == 0, result.stderr
    expected = ALL_FIGURES + [n for n in figures_for_bytes([the_log(runs['gpt2'])]) if 'comparison' not in n]
    assert sorted(os.listdir(out)) == sorted(expected)
    assert 'no arch_comparison.png' in result.stdout
    for name in expected:
        assert_real_png(out / name)


@pytest.mark.slow
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


@pytest.mark.slow
def test_comparison_draws_val_loss_and_both_fits(runs):
    loaded = plot_runs.load_runs([runs['llama'], runs['gpt2']])
    figures = plot_runs.build_figures(loaded)
    # the per-token figure: the comparison itself without val_bpb, beside the bits-per-byte one with it
    fig = figures.get('arch_comparison_per_token.png') or figures['arch_comparison.png']
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


@pytest.mark.slow
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
    runlog.add_wall_time(records)
    assert [r['wall'] for r in records] == pytest.approx([1.0, 2.0, 2.5, 3.5, 3.7])


@pytest.mark.slow
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


# -----------------------------------------------------------------------------
# run logs in train.py's format with bits per byte, written here

SOURCES = ['RedPajamaArXiv', 'RedPajamaC4', 'RedPajamaGithub', 'RedPajamaWikipedia']
SHAPES = {  # arch: (parameters, flops_per_token, tokens_per_iter, train_bytes_per_token, train tokens, bpb at the end)
    'llama': (1_294_159_104, 8.342e9, 8192, 3.7, 2_000_000, 0.95),
    'gpt2': (1_404_968_832, 9.476e9, 12288, 4.1, 1_800_000, 1.02),
}


def hand_log(arch, with_bytes=True):
    """A run log as RunLog writes it: header {config, model_args, env}, then iters, evals, events; 100
    iterations, an iteration record every 10, evaluations at 0 (eval_at_start), 50 and 100. Without
    with_bytes: an older log (no val_bpb, val_bpb_sources, val_bytes, train_bytes_per_token, epoch)."""
    parameters, flops_per_token, tokens_per_iter, bytes_per_token, train_tokens, bpb_end = SHAPES[arch]
    env = dict(torch='2.5.1', device='cpu', device_type='cpu', world_size=1, peak_tflops=None, start_iter=0,
               started='2025-01-01T12:00:00', parameters=parameters, tokens_per_iter=tokens_per_iter,
               flops_per_token=flops_per_token)
    iters = [dict(iter=i, loss=6.0 - 0.03 * i, lr=3e-4, grad_norm=1.0, step_time=0.5,
                  tokens_per_sec=tokens_per_iter / 0.5, mfu=None, peak_mem_gib=None, tokens=i * tokens_per_iter,
                  time=0.5 * i, unix_time=1.7e9 + 0.5 * i)
             for i in range(10, 101, 10)]
    evals = [dict(iter=i, train_loss=5.5 - 0.02 * i, val_loss=5.6 - 0.02 * i, tokens=i * tokens_per_iter,
                  time=0.5 * i + 0.1, unix_time=1.7e9 + 0.5 * i, eval_seconds=0.1) for i in (0, 50, 100)]
    if with_bytes:
        env['train_bytes_per_token'] = bytes_per_token
        for r in iters:
            r['epoch'] = r['tokens'] / train_tokens
        for k, r in enumerate(evals):
            r['val_bpb'] = bpb_end + 0.4 * (2 - k)
            r['val_bpb_sources'] = {name: r['val_bpb'] + 0.1 * j - 0.15 for j, name in enumerate(SOURCES)}
            r['val_bytes'] = 30_000
    return dict(config=dict(arch=arch, learning_rate=3e-4, max_iters=100), model_args=dict(arch=arch), env=env,
                iters=iters, evals=evals, events=[])


def write_log(root, name, log):
    out_dir = os.path.join(str(root), name)
    os.makedirs(out_dir)
    with open(os.path.join(out_dir, 'run_20250101_120000.json'), 'w') as f:
        json.dump(log, f, indent=1)
    return out_dir


def axis_lines(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def axes_text(fig):
    return ' '.join([fig.get_suptitle()] + [t.get_text() for t in fig.texts] +
                    [t for ax in fig.axes for t in (ax.get_xlabel(), ax.get_ylabel(), ax.get_title())])


@pytest.fixture
def bpb_logs(tmp_path):
    """{arch: (out_dir, log)} of two logs with bits per byte."""
    return {arch: (write_log(tmp_path, f'out-{arch}', hand_log(arch)), hand_log(arch)) for arch in SHAPES}


@pytest.mark.slow  # plot_runs.py as a process, rendering every figure
def test_bpb_logs_give_the_comparison_in_bits_per_byte(bpb_logs, tmp_path):
    out = tmp_path / 'plots'
    result = plot(*[out_dir for out_dir, _ in bpb_logs.values()], '--out', str(out))
    assert result.returncode == 0, result.stderr
    expected = ALL_FIGURES + ['arch_comparison.png', 'arch_comparison_per_token.png', 'val_bpb_per_source.png']
    assert sorted(os.listdir(out)) == sorted(expected)
    for name in expected:
        assert_real_png(out / name)
    assert 'last val bpb 0.9500' in result.stdout and 'last val bpb 1.0200' in result.stdout
    assert 'per token' not in result.stdout  # no fallback note


def test_bpb_comparison_axes_hold_bytes_seen_and_flops(bpb_logs):
    runs = plot_runs.load_runs([out_dir for out_dir, _ in bpb_logs.values()])
    figures = plot_runs.build_figures(runs)
    ax_bytes, ax_flops = figures['arch_comparison.png'].axes
    for run, (arch, (out_dir, log)) in zip(runs, bpb_logs.items()):
        trained = [e for e in log['evals'] if e['tokens'] > 0]  # a log axis: the evaluation at 0 tokens is left out
        bpb = [e['val_bpb'] for e in trained]
        assert len(trained) == 2 and bpb[-1] == SHAPES[arch][5]
        bytes_gb = [e['tokens'] * log['env']['train_bytes_per_token'] / 1e9 for e in trained]
        flops = [e['tokens'] * log['env']['flops_per_token'] for e in trained]
        # iteration 100 of the LLaMA log: 819,200 tokens x 3.7 bytes = 3,031,040 bytes; x 8.342e9 FLOPs
        if arch == 'llama':
            assert bytes_gb[-1] == pytest.approx(0.00303104) and flops[-1] == pytest.approx(6.8337664e15)
        assert plot_runs.eval_series(run, 'bytes', 'val_bpb') == (pytest.approx(bytes_gb), bpb)
        assert plot_runs.eval_series(run, 'flops', 'val_bpb') == (pytest.approx(flops), bpb)
        for ax, xs in ((ax_bytes, bytes_gb), (ax_flops, flops)):
            line = axis_lines(ax)[f'{run.label} val bpb']
            assert list(line.get_xdata()) == pytest.approx(xs) and list(line.get_ydata()) == bpb
    for ax in (ax_bytes, ax_flops):
        assert ax.get_ylabel() == 'val bits per byte' and ax.get_xscale() == 'log'
        assert len(ax.get_lines()) == 2  # the two runs' measurements and nothing else
        assert not [label for label in axis_lines(ax) if 'Hoffmann' in label or 'Besiroglu' in label]
    assert 'bytes of text seen (GB' in ax_bytes.get_xlabel() and 'FLOPs' in ax_flops.get_xlabel()
    assert 'nats per token' in axes_text(figures['arch_comparison.png'])  # only in the note: why no fits here
    assert 'Hoffmann' not in axes_text(figures['arch_comparison.png'])


def test_per_token_figure_keeps_the_fits_and_says_per_token(bpb_logs):
    runs = plot_runs.load_runs([out_dir for out_dir, _ in bpb_logs.values()])
    fig = plot_runs.build_figures(runs)['arch_comparison_per_token.png']
    for ax in fig.axes:
        assert ax.get_ylabel() == 'val loss (nats per token)' and 'per token' in ax.get_title()
        laws = [label for label in axis_lines(ax) if 'Hoffmann' in label or 'Besiroglu' in label]
        assert len(laws) == 4  # two fits for each run
    assert 'PER TOKEN' in fig.get_suptitle() and 'val_bpb missing' not in fig.get_suptitle()
    assert 'not directly comparable' in axes_text(fig)
    for run, (_, log) in zip(runs, bpb_logs.values()):
        val = axis_lines(fig.axes[0])[f'{run.label} val']
        assert list(val.get_xdata()) == [e['tokens'] for e in log['evals'] if e['tokens'] > 0]
        assert list(val.get_ydata()) == [e['val_loss'] for e in log['evals'] if e['tokens'] > 0]


def test_per_source_figure_one_panel_a_source(bpb_logs):
    runs = plot_runs.load_runs([out_dir for out_dir, _ in bpb_logs.values()])
    fig = plot_runs.build_figures(runs)['val_bpb_per_source.png']
    panels = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title() for ax in panels] == SOURCES  # 4 panels in a 2 x 3 grid, the rest switched off
    for ax, name in zip(panels, SOURCES):
        assert ax.get_ylabel() == 'val bits per byte' and ax.get_xlabel() == 'bytes of text seen (GB)'
        for run, (_, log) in zip(runs, bpb_logs.values()):
            trained = [e for e in log['evals'] if e['tokens'] > 0]
            line = axis_lines(ax)[run.label]
            assert list(line.get_xdata()) == pytest.approx([e['tokens'] * SHAPES[run.arch][3] / 1e9 for e in trained])
            assert list(line.get_ydata()) == [e['val_bpb_sources'][name] for e in trained]


def test_single_run_figures_show_bpb_and_epochs(bpb_logs):
    out_dir, log = bpb_logs['llama']
    (run,) = plot_runs.load_runs([out_dir])
    figures = plot_runs.build_figures([run])
    assert 'arch_comparison.png' not in figures and 'val_bpb_per_source.png' in figures
    for name, x in (('loss_vs_iter.png', 'iter'), ('loss_vs_tokens.png', 'tokens'), ('loss_vs_time.png', 'time')):
        ax_loss, ax_bpb = figures[name].axes  # the bits per byte on a second y axis
        assert ax_loss.get_ylabel() == 'loss (nats per token)' and 'bits per byte' in ax_bpb.get_ylabel()
        line = axis_lines(ax_bpb)[f'{run.label} val bpb']
        assert list(line.get_xdata()) == pytest.approx([e[x] for e in log['evals']])
        assert list(line.get_ydata()) == [e['val_bpb'] for e in log['evals']]
        assert f'{run.label} val bpb' in [t.get_text() for t in ax_loss.get_legend().get_texts()]
    # one pass over the LLaMA log's training split: 2,000,000 tokens, on a top axis of the tokens figure
    assert plot_runs.tokens_per_epoch(run) == pytest.approx(2_000_000)
    ax_tokens = figures['loss_vs_tokens.png'].axes[0]
    (top,) = ax_tokens.child_axes
    assert top.get_xlabel() == 'epochs (passes over the training split)'


def test_runs_with_other_passes_name_their_epochs(bpb_logs):
    runs = plot_runs.load_runs([out_dir for out_dir, _ in bpb_logs.values()])
    fig = plot_runs.build_figures(runs)['loss_vs_tokens.png']
    assert not fig.axes[0].child_axes  # 2,000,000 and 1,800,000 tokens a pass: no one epoch axis
    # gpt2: 100 iterations x 12,288 tokens over 1,800,000 tokens a pass
    assert 'gpt2 (out-gpt2) 0.683' in axes_text(fig) + ' '.join(t.get_text() for t in fig.axes[0].texts)


@pytest.mark.slow
def test_old_logs_plot_per_token_with_a_note(tmp_path):
    dirs = [write_log(tmp_path, f'out-{arch}', hand_log(arch, with_bytes=False)) for arch in SHAPES]
    out = tmp_path / 'plots'
    result = plot(*dirs, '--out', str(out))
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(out)) == sorted(ALL_FIGURES + ['arch_comparison.png'])
    for name in ALL_FIGURES + ['arch_comparison.png']:
        assert_real_png(out / name)
    assert 'arch_comparison.png is per token' in result.stdout and 'byte accounting' in result.stdout
    runs = plot_runs.load_runs(dirs)
    figures = plot_runs.build_figures(runs)
    fig = figures['arch_comparison.png']
    assert 'PER TOKEN' in fig.get_suptitle() and 'val_bpb missing' in fig.get_suptitle()
    assert all(ax.get_ylabel() == 'val loss (nats per token)' for ax in fig.axes)
    assert len(figures['loss_vs_tokens.png'].axes) == 1 and not figures['loss_vs_tokens.png'].axes[0].child_axes
    assert plot_runs.tokens_per_epoch(runs[0]) is None
    assert plot_runs.eval_series(runs[0], 'bytes', 'val_bpb') == ([], [])


def test_a_log_without_bpb_is_left_out_of_the_bpb_comparison(bpb_logs, tmp_path):
    old = write_log(tmp_path, 'out-gpt2-old', hand_log('gpt2', with_bytes=False))
    runs = plot_runs.load_runs([out_dir for out_dir, _ in bpb_logs.values()] + [old])
    fig = plot_runs.build_figures(runs)['arch_comparison.png']
    assert 'gpt2 (out-gpt2-old) val bpb' not in axis_lines(fig.axes[0]) and len(fig.axes[0].get_lines()) == 2
    (note,) = plot_runs.comparison_notes(runs)
    assert 'left out for lack of val_bpb: gpt2 (out-gpt2-old)' in note
    # only one architecture with bits per byte: the comparison falls back to per token, all three runs
    runs = plot_runs.load_runs([bpb_logs['llama'][0], old])
    fig = plot_runs.build_figures(runs)['arch_comparison.png']
    assert 'val_bpb missing' in fig.get_suptitle()
    (note,) = plot_runs.comparison_notes(runs)
    assert 'is per token' in note and note.endswith('; only llama (out-llama) logs it')


def test_bpb_without_bytes_per_token_draws_flops_only(tmp_path):
    logs = {arch: hand_log(arch) for arch in SHAPES}
    logs['gpt2']['env']['train_bytes_per_token'] = None  # meta.pkl without byte statistics
    runs = plot_runs.load_runs([write_log(tmp_path, f'out-{arch}', log) for arch, log in logs.items()])
    figures = plot_runs.build_figures(runs)
    ax_bytes, ax_flops = figures['arch_comparison.png'].axes
    assert [label for label in axis_lines(ax_bytes)] == ['llama (out-llama) val bpb']
    assert len(ax_flops.get_lines()) == 2
    assert 'no train_bytes_per_token in the log): gpt2 (out-gpt2)' in ' '.join(t.get_text() for t in ax_bytes.texts)
    source_panel = figures['val_bpb_per_source.png'].axes[0]
    assert source_panel.get_xlabel() == 'tokens'  # bytes unknown for one run: all against tokens
