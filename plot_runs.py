"""
Run logs -> PNG figures of loss, bits per byte, learning rate, throughput; LLaMA vs GPT-2.

Loss against iterations, tokens and wall time (with val bits per byte on a
second axis, and epochs over the tokens, when the log has them); learning rate; tokens/s and MFU; val
bits per byte per source; and, when the runs hold more than one architecture, a LLaMA vs GPT-2
comparison.

    python plot_runs.py --out_dir=out-llama-1.36b                           # into plots/
    python plot_runs.py out-llama-1.36b out-gpt2-1.36b --out=plots-1.36b
    python plot_runs.py --out_dir=out-llama-1.36b,out-gpt2-1.36b --out=plots-1.36b --dpi=200
    python plot_runs.py out-llama-1.36b/run_20250101_120000.json

Arguments are --key=value, as for the other scripts (--help lists the keys); bare arguments name runs,
and the argparse spellings it once took (--out DIR, --dpi N) work too. An out_dir stands for its NEWEST
run log (by name); to plot an older run of the same out_dir, pass its file. A resumed run continues in
its original log.

The comparison is in bits per byte when the runs log val_bpb (a dataset prepared with byte
accounting): arch_comparison.png draws val bpb against bytes of text seen (tokens x the training
split's bytes per token) and against training FLOPs (tokens x flops_per_token), without scaling-law
lines, which were fitted in nats per token on another tokenizer; arch_comparison_per_token.png keeps
the loss per token against tokens and FLOPs with the Hoffmann and Besiroglu reference lines. Runs
without val_bpb (older logs, a dataset without a byte table) get the per-token figure as
arch_comparison.png, titled per token, and a printed note.

Reads train.py's run log out_dir/run_YYYYMMDD_HHMMSS.json (runlog.py); an out_dir
stands for its newest run log. Headless: figures are drawn on matplotlib's Agg canvas, no display.
"""

import os
import sys

from configurator import Configurator, UserError, run_cli
from runlog import add_wall_time, read_run_log

REPO_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(REPO_DIR, 'flops_parameter_counting'))
from detailed_cost_analysis import SCALING_LAWS, predicted_loss  # noqa: E402  the one copy of the fits

DEFAULTS = dict(
    out_dir='',                # the runs, separated by commas: an out_dir (its newest run_*.json) or a run log file
    out='plots',               # the folder for the PNG files (created if missing)
    dpi=120,                   # the PNG files' resolution
)

LAW_NAMES = {'hoffmann': 'Hoffmann et al. 2022', 'besiroglu': 'Besiroglu et al. 2024'}
LAW_STYLES = {'hoffmann': '--', 'besiroglu': ':'}
PREDICTION_NOTE = ("Scaling-law lines: L(N, D) = E + A/N^alpha + B/D^beta with N = the run's parameters, D = "
                   "tokens; Hoffmann et al. 2022 (approach 3) and Besiroglu et al. 2024.\nThe fits are in nats "
                   "per token on MassiveText with its own tokenizer: reference lines, not targets; absolute "
                   "losses across tokenizers (and between these runs' vocabularies) are not directly comparable.")
BPB_NOTE = ("Bits per byte: the NLL of the validation targets train.py scores at each evaluation, in bits, over the "
            "UTF-8 bytes those targets decode to; comparable across tokenizers.\nBytes of text seen = tokens x the "
            "training split's bytes per token. Each run scores its dataset's fixed sample of validation windows "
            "(eval_bpb.py scores the same whole documents for both). No scaling-law lines: the fits are in nats per token on another "
            "tokenizer (arch_comparison_per_token.png).")
NO_BPB_NOTE = ("bits per byte need a dataset prepared with byte accounting (its prepare.py writes token_bytes.npy "
               "and the byte counts in meta.pkl) and a run log with val_bpb")


# -----------------------------------------------------------------------------
# reading run logs

class Run:
    """One run log: its label, architecture, size and records, with a cumulative wall time added."""

    def __init__(self, path, data):
        self.path = path
        self.out_dir = os.path.basename(os.path.dirname(os.path.abspath(path)))
        model_args, config, env = data.get('model_args') or {}, data.get('config') or {}, data['env']
        self.arch = model_args.get('arch') or config.get('arch') or 'unknown arch'
        self.label = f"{self.arch} ({self.out_dir})"
        self.parameters = env.get('parameters')
        self.flops_per_token = env.get('flops_per_token')
        self.bytes_per_token = env.get('train_bytes_per_token')  # None in older logs and without byte counts
        self.iters, self.evals = data['iters'], data['evals']
        add_wall_time(data)  # both lists at once: a resumed process's evaluations and iterations on one axis


def load_run(path):
    return Run(*read_run_log(path))


def load_runs(paths):
    runs = [load_run(path) for path in paths]
    labels = [run.label for run in runs]
    for run in runs:  # two logs of one out_dir: tell them apart by their file names
        if labels.count(run.label) > 1:
            run.label += ' ' + os.path.splitext(os.path.basename(run.path))[0]
    return runs


# -----------------------------------------------------------------------------
# figures

def series(records, x, y):
    """(xs, ys) of the records holding both keys with a value."""
    pairs = [(r[x], r[y]) for r in records if r.get(x) is not None and r.get(y) is not None]
    return [p[0] for p in pairs], [p[1] for p in pairs]


# What one token is worth on each comparison axis: the run's factor, and the axis label
AXES = {
    'tokens': (lambda run: 1.0, 'tokens'),
    'bytes': (lambda run: run.bytes_per_token and run.bytes_per_token / 1e9,
              'bytes of text seen (GB: tokens x the training split\'s bytes per token)'),
    'flops': (lambda run: run.flops_per_token, 'training FLOPs (flops_per_token x tokens)'),
}


def eval_series(run, x, y, source=None):
    """(xs, ys) of the run's evaluations after some training (tokens > 0) that hold y, or val_bpb_sources[source]
    with a source. xs: tokens, bytes of text seen in GB (tokens x train_bytes_per_token / 1e9) or training FLOPs
    (tokens x flops_per_token), by x; ([], []) when the log lacks that factor."""
    factor = AXES[x][0](run)
    if not factor:
        return [], []
    pairs = [(r['tokens'] * factor, (r.get('val_bpb_sources') or {}).get(source) if source else r.get(y))
             for r in run.evals if (r.get('tokens') or 0) > 0]
    pairs = [(t, v) for t, v in pairs if v is not None]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def tokens_per_epoch(run):
    """Tokens in one pass over the run's training split, from its last iteration record with an epoch (None in
    older logs)."""
    pairs = [(r['tokens'], r['epoch']) for r in run.iters if r.get('epoch') and r.get('tokens')]
    return pairs[-1][0] / pairs[-1][1] if pairs else None


def sources(runs):
    return sorted({name for run in runs for r in run.evals for name in (r.get('val_bpb_sources') or {})})


def time_unit(runs):
    longest = max((r['wall'] for run in runs for r in run.iters + run.evals if 'wall' in r), default=0)
    return (3600, 'hours') if longest >= 3 * 3600 else (60, 'minutes') if longest >= 180 else (1, 'seconds')


def new_figure(rows=1, cols=1, width=9, height=5.5):
    # A bare Figure draws on the Agg canvas when saved: no pyplot, no display, no global state
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), layout='constrained')
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    return fig, axes


def colors(runs):
    from matplotlib import colormaps
    palette = colormaps['tab10'].colors
    return {run.path: palette[i % len(palette)] for i, run in enumerate(runs)}


def loss_figure(runs, x, xlabel):
    """Train and val loss per token; val bits per byte on a second y axis when logged; epochs over the
    tokens axis when the runs log them."""
    fig, (ax,) = new_figure()
    color = colors(runs)
    scale, unit = time_unit(runs) if x == 'wall' else (1, None)
    ax_bpb = None
    for run in runs:
        for records, key, name, style in ((run.iters, 'loss', 'train', dict(linewidth=1, alpha=0.6)),
                                          (run.evals, 'train_loss', 'train (eval)', dict(marker='x', linestyle='--')),
                                          (run.evals, 'val_loss', 'val', dict(marker='o', linewidth=2)),
                                          (run.evals, 'val_bpb', 'val bpb', dict(marker='s', linestyle=':'))):
            xs, ys = series(records, x, key)
            if not xs:
                continue
            if key == 'val_bpb':
                ax_bpb = ax_bpb or ax.twinx()
            (ax_bpb if key == 'val_bpb' else ax).plot([v / scale for v in xs], ys, color=color[run.path],
                                                      label=f"{run.label} {name}", **style)
    ax.set_xlabel(f"wall time ({unit})" if unit else xlabel)
    ax.set_ylabel('loss (nats per token)')
    if ax_bpb is not None:
        ax_bpb.set_ylabel('val bits per byte (dotted, squares)')
    if x == 'tokens':
        add_epochs(ax, runs)
    ax.set_title(f"train and val loss against {xlabel if not unit else 'wall time'}")
    finish(ax, twin=ax_bpb)
    return fig


def add_epochs(ax, runs):
    """Epochs on a top axis when every run's pass is the same number of tokens; otherwise each run's epochs
    at its last record in a corner."""
    per_epoch = [tokens_per_epoch(run) for run in runs]
    known = [v for v in per_epoch if v]
    if not known:
        return
    if len(known) == len(runs) and max(known) <= 1.001 * min(known):
        tokens = known[0]
        top = ax.secondary_xaxis('top', functions=(lambda t: t / tokens, lambda e: e * tokens))
        top.set_xlabel('epochs (passes over the training split)')
        return
    last = [f"{run.label} {series(run.iters, 'iter', 'epoch')[1][-1]:.3g}" for run, v in zip(runs, per_epoch) if v]
    ax.text(0.02, 0.02, 'epochs at the last record: ' + ', '.join(last), transform=ax.transAxes,
            fontsize='x-small', va='bottom')


def lr_figure(runs):
    fig, (ax,) = new_figure(height=4.5)
    color = colors(runs)
    for run in runs:
        xs, ys = series(run.iters, 'iter', 'lr')
        if xs:
            ax.plot(xs, ys, color=color[run.path], label=run.label)
    ax.set_xlabel('iteration')
    ax.set_ylabel('learning rate')
    ax.set_title('learning rate schedule')
    finish(ax)
    return fig


def throughput_figure(runs):
    """Tokens/s against iterations, and MFU below it when a run logs it (on a GPU the table knows, or with
    peak_tflops); each panel with its own x label."""
    color = colors(runs)
    any_mfu = any(series(run.iters, 'iter', 'mfu')[0] for run in runs)
    fig, axes = new_figure(rows=2 if any_mfu else 1, height=7 if any_mfu else 4.5)
    ax_tps = axes[0]
    for run in runs:
        xs, ys = series(run.iters, 'iter', 'tokens_per_sec')
        if xs:
            ax_tps.plot(xs, ys, color=color[run.path], label=run.label)
    ax_tps.set_ylabel('tokens/s (all processes)')
    ax_tps.set_xlabel('iteration')
    ax_tps.set_title('throughput')
    if any_mfu:
        ax_mfu = axes[1]
        for run in runs:
            xs, ys = series(run.iters, 'iter', 'mfu')
            if xs:
                ax_mfu.plot(xs, [100 * v for v in ys], color=color[run.path], label=run.label)
        ax_mfu.set_ylabel('MFU (%)')
        ax_mfu.set_xlabel('iteration')
    else:
        fig.text(0.5, -0.01, 'no MFU logged: the device peak is unknown (a CPU, or a GPU the table lacks: set '
                 '--peak_tflops)', ha='center', va='top', fontsize='small')
    for ax in axes:
        finish(ax)
    return fig


def comparison_runs(runs, y='val_loss'):
    """The runs the comparison in y can draw (y at tokens > 0; for the per-token val_loss also a parameter
    count, for the predictions), or [] when they hold fewer than two architectures."""
    usable = [run for run in runs if eval_series(run, 'tokens', y)[0] and (y != 'val_loss' or run.parameters)]
    return usable if len({run.arch for run in usable}) >= 2 else []


def archs(runs):
    return ' vs '.join(sorted({run.arch for run in runs}))


def comparison_figure(runs, fallback=False):
    """Val loss per token against tokens and against training FLOPs (flops_per_token x tokens), with each
    run's predicted L(N, D) under both fits over the plotted token range. fallback: this is the
    comparison because two architectures' val_bpb are not there, and its title says so."""
    fig, (ax_tokens, ax_flops) = new_figure(cols=2, width=14, height=6.5)
    color = colors(runs)
    measured = {run.path: list(zip(*eval_series(run, 'tokens', 'val_loss'))) for run in runs}
    d_min = min(t for points in measured.values() for t, _ in points)
    d_max = max(t for points in measured.values() for t, _ in points)
    d_max = max(d_max, d_min * 1.01)
    grid = [d_min * (d_max / d_min) ** (i / 99) for i in range(100)]
    y_values, predicted_at_end = [], []
    for run in runs:
        tokens, losses = [t for t, _ in measured[run.path]], [v for _, v in measured[run.path]]
        y_values += losses
        panels = [(ax_tokens, 1.0)] + ([(ax_flops, run.flops_per_token)] if run.flops_per_token else [])
        predicted_at_end += [predicted_loss(constants, run.parameters, d_max) for constants in SCALING_LAWS.values()]
        for ax, per_token in panels:
            ax.plot([t * per_token for t in tokens], losses, color=color[run.path], marker='o', linewidth=2,
                    label=f"{run.label} val")
            for law, constants in SCALING_LAWS.items():
                predictions = [predicted_loss(constants, run.parameters, d) for d in grid]
                ax.plot([d * per_token for d in grid], predictions, color=color[run.path],
                        linestyle=LAW_STYLES[law], linewidth=1.2,
                        label=f"{run.label} {LAW_NAMES[law]}, N = {run.parameters:,}: "
                              f"{predictions[-1]:.2f} at {d_max:.3g} tokens")
    # The predictions rise without bound at small D: the axes show the measured losses and the
    # predictions where they end, unless those lie far above (a tiny model or run, outside the fits)
    high = max(y_values)
    shown = [p for p in predicted_at_end if p <= 1.5 * high]
    y_values += shown
    low, high = min(y_values), max(y_values)
    pad = 0.08 * (high - low) or 0.1
    for ax, x in ((ax_tokens, 'tokens'), (ax_flops, 'flops')):
        ax.set_xscale('log')
        ax.set_ylim(low - pad, high + pad)
        ax.set_xlabel(AXES[x][1])
        ax.set_ylabel('val loss (nats per token)')
        finish(ax, fontsize='x-small')
        if len(shown) < len(predicted_at_end):
            ax.text(0.98, 0.98, 'some predictions lie above this range (see the legend)', ha='right', va='top',
                    transform=ax.transAxes, fontsize='small')
    ax_tokens.set_title('val loss per token against tokens')
    ax_flops.set_title('val loss per token against training compute')
    fig.suptitle(f"{archs(runs)}: val loss PER TOKEN (nats) and scaling-law reference lines"
                 + ("\nnot in bits per byte (val_bpb missing for two architectures): per-token losses do not "
                    "compare across tokenizers" if fallback else ''))
    fig.text(0.5, -0.01, PREDICTION_NOTE, ha='center', va='top', fontsize='small', wrap=True)
    return fig


def bpb_comparison_figure(runs):
    """Val bits per byte against bytes of text seen (GB) and against training FLOPs; no scaling-law lines."""
    fig, axes = new_figure(cols=2, width=14, height=6.5)
    color = colors(runs)
    for ax, x, title in zip(axes, ('bytes', 'flops'), ('per byte of text seen', 'per training FLOP')):
        absent = []
        for run in runs:
            xs, ys = eval_series(run, x, 'val_bpb')
            if xs:
                ax.plot(xs, ys, color=color[run.path], marker='o', linewidth=2, label=f"{run.label} val bpb")
            else:
                absent.append(run.label)
        ax.set_xscale('log')
        ax.set_xlabel(AXES[x][1])
        ax.set_ylabel('val bits per byte')
        ax.set_title(f"val bits per byte, {title}")
        if absent:
            factor = 'train_bytes_per_token' if x == 'bytes' else 'flops_per_token'
            ax.text(0.98, 0.98, f"not drawn (no {factor} in the log): {', '.join(absent)}", ha='right', va='top',
                    transform=ax.transAxes, fontsize='small')
        finish(ax)
    fig.suptitle(f"{archs(runs)}: val bits per byte")
    fig.text(0.5, -0.01, BPB_NOTE, ha='center', va='top', fontsize='small', wrap=True)
    return fig


def source_figure(runs):
    """Val bits per byte of each source in its own panel, one line a run, against bytes of text seen (tokens
    when a run's log lacks the bytes per token)."""
    names = sources(runs)
    drawn = [run for run in runs if any(r.get('val_bpb_sources') for r in run.evals)]
    x = 'bytes' if all(AXES['bytes'][0](run) for run in drawn) else 'tokens'
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    fig, axes = new_figure(rows=rows, cols=cols, width=5 * cols, height=3.8 * rows + 0.6)
    color = colors(runs)
    for ax, name in zip(axes, names):
        for run in drawn:
            xs, ys = eval_series(run, x, 'val_bpb', source=name)
            if xs:
                ax.plot(xs, ys, color=color[run.path], marker='o', label=run.label)
        ax.set_xscale('log')
        ax.set_xlabel(AXES[x][1] if x == 'tokens' else 'bytes of text seen (GB)', fontsize='small')
        ax.set_ylabel('val bits per byte')
        ax.set_title(name)
        finish(ax, fontsize='x-small')
    for ax in axes[len(names):]:
        ax.set_axis_off()
    fig.suptitle('val bits per byte per source')
    return fig


def finish(ax, fontsize='small', twin=None):
    ax.grid(True, alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if twin is not None:
        more = twin.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    if handles:
        ax.legend(handles, labels, fontsize=fontsize)


def build_figures(runs):
    """{file name: Figure}. The comparison is there only when the runs hold two architectures: in bits per
    byte when they log val_bpb (with the per-token figure beside it), per token otherwise; the per-source
    figure only when the runs log val_bpb_sources."""
    figures = {
        'loss_vs_iter.png': loss_figure(runs, 'iter', 'iteration'),
        'loss_vs_tokens.png': loss_figure(runs, 'tokens', 'tokens'),
        'loss_vs_time.png': loss_figure(runs, 'wall', 'wall time'),
        'lr.png': lr_figure(runs),
        'throughput.png': throughput_figure(runs),
    }
    per_token, in_bpb = comparison_runs(runs), comparison_runs(runs, 'val_bpb')
    if in_bpb:
        figures['arch_comparison.png'] = bpb_comparison_figure(in_bpb)
        if per_token:
            figures['arch_comparison_per_token.png'] = comparison_figure(per_token)
    elif per_token:
        figures['arch_comparison.png'] = comparison_figure(per_token, fallback=True)
    if sources(runs):
        figures['val_bpb_per_source.png'] = source_figure(runs)
    return figures


def comparison_notes(runs):
    """What the printed summary says about the comparison: why it is missing, per token, or leaves runs out."""
    per_token, in_bpb = comparison_runs(runs), comparison_runs(runs, 'val_bpb')
    if not (per_token or in_bpb):
        return [f"no arch_comparison.png: it needs val losses of two architectures "
                f"(these runs: {', '.join(sorted({run.arch for run in runs}))})"]
    if not in_bpb:
        with_bpb = [run.label for run in runs if eval_series(run, 'tokens', 'val_bpb')[0]]
        return [f"arch_comparison.png is per token (nats per token, which do not compare across tokenizers): "
                f"{NO_BPB_NOTE}" + (f"; only {', '.join(with_bpb)} logs it" if with_bpb else '')]
    left_out = [run.label for run in runs if run not in in_bpb]
    return [f"arch_comparison.png is in bits per byte; left out for lack of val_bpb: {', '.join(left_out)} "
            f"({NO_BPB_NOTE})"] if left_out else []


# -----------------------------------------------------------------------------

def main(argv):
    c = Configurator(DEFAULTS, positional='out_dir', argparse_spellings=True).parse(argv)
    paths = [p for p in c['out_dir'].split(',') if p]
    if not paths:
        raise UserError("no run to plot: name out_dirs or run logs (python plot_runs.py out-llama-1.36b "
                        "out-gpt2-1.36b, or --out_dir=out-llama-1.36b,out-gpt2-1.36b)")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UserError("plot_runs.py needs matplotlib: pip install matplotlib") from None
    if c['dpi'] <= 0:
        raise UserError(f"--dpi must be positive, got {c['dpi']}")
    runs = load_runs(paths)
    for run in runs:
        _, bpb = series(run.evals, 'iter', 'val_bpb')
        print(f"{run.label}: {run.path}, {len(run.iters)} iteration records, {len(run.evals)} evaluations"
              + (f", last val bpb {bpb[-1]:.4f}" if bpb else ''))
    if not any(run.iters or run.evals for run in runs):
        raise UserError("the run logs hold no iteration or evaluation records yet: nothing to plot")
    out = c['out']
    if os.path.exists(out) and not os.path.isdir(out):
        raise UserError(f"--out {out} is a file: give a folder")
    os.makedirs(out, exist_ok=True)
    figures = build_figures(runs)
    for note in comparison_notes(runs):
        print(note)
    print('wrote:')
    for name, fig in figures.items():
        path = os.path.join(out, name)
        fig.savefig(path, dpi=c['dpi'], bbox_inches='tight')
        print(f"  {path}")
    return 0


if __name__ == '__main__':
    run_cli(main)
