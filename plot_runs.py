"""
Run logs -> PNG figures: loss against iterations, tokens and wall time; learning rate; tokens/s and
MFU; and, when the runs hold more than one architecture, a LLaMA vs GPT-2 comparison of val loss
against tokens and training FLOPs with the loss two scaling-law fits predict drawn in.

    python plot_runs.py out-llama-1.36b --out plots
    python plot_runs.py out-llama-1.36b out-gpt2-1.36b --out plots
    python plot_runs.py out-llama-1.36b/run_20250101_120000.json --out plots

Reads train.py's run log out_dir/run_YYYYMMDD_HHMMSS.json (see RunLog in train.py); an out_dir
stands for its newest run log. Headless: figures are drawn on matplotlib's Agg canvas, no display.
"""

import argparse
import glob
import json
import os
import sys

from configurator import UserError, run_cli

REPO_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(REPO_DIR, 'flops_parameter_counting'))
from detailed_cost_analysis import SCALING_LAWS, predicted_loss  # noqa: E402  the one copy of the fits

LAW_NAMES = {'hoffmann': 'Hoffmann et al. 2022', 'besiroglu': 'Besiroglu et al. 2024'}
LAW_STYLES = {'hoffmann': '--', 'besiroglu': ':'}
PREDICTION_NOTE = ("Scaling-law lines: L(N, D) = E + A/N^alpha + B/D^beta with N = the run's parameters, D = "
                   "tokens; Hoffmann et al. 2022 (approach 3) and Besiroglu et al. 2024.\nThe fits are in nats "
                   "per token on MassiveText with its own tokenizer: reference lines, not targets; absolute "
                   "losses across tokenizers (and between these runs' vocabularies) are not directly comparable.")


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
        self.iters, self.evals = data['iters'], data['evals']
        for records in (self.iters, self.evals):
            add_wall_time(records)


def add_wall_time(records):
    """'wall': seconds since the run first started. A record's 'time' counts from its own process's
    start, so it falls back to ~0 after a resume; later segments continue from the last record before."""
    offset, previous = 0.0, None
    for record in records:
        t = record.get('time')
        if t is None:
            continue
        if previous is not None and t < previous:
            offset += previous
        record['wall'] = offset + t
        previous = t


def resolve_log(path):
    """A run log's path from a run_*.json file, its .jsonl twin, or an out_dir (its newest run log)."""
    if not os.path.exists(path):
        raise UserError(f"{path} does not exist: give a run log (out_dir/run_*.json) or an out_dir holding one")
    if os.path.isdir(path):
        logs = sorted(glob.glob(os.path.join(path, 'run_*.json')))  # run_YYYYMMDD_HHMMSS: newest last
        if not logs:
            raise UserError(f"{path} holds no run log (run_*.json): is it a train.py out_dir?")
        return logs[-1]
    if path.endswith('.jsonl'):  # the JSON-lines twin lacks the header (config, env): read the .json
        twin = path[:-len('.jsonl')] + '.json'
        if not os.path.isfile(twin):
            raise UserError(f"{path} is a run log's JSON-lines twin and its {os.path.basename(twin)} is missing: "
                            f"pass the .json run log")
        return twin
    return path


def load_run(path):
    log_path = resolve_log(path)
    try:
        with open(log_path) as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read {log_path}: {e}") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{log_path} is not valid JSON ({e}): give a run log written by train.py") from None
    if not isinstance(data, dict):
        raise UserError(f"{log_path} is not a train.py run log (not a JSON object)")
    missing = [key for key in ('env', 'iters', 'evals') if key not in data]
    if missing or not isinstance(data['env'], dict) or not all(isinstance(data[k], list) for k in ('iters', 'evals')):
        raise UserError(f"{log_path} is not a train.py run log (it lacks {', '.join(missing) or 'a valid env, iters or evals'})")
    return Run(log_path, data)


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
    fig, (ax,) = new_figure()
    color = colors(runs)
    scale, unit = time_unit(runs) if x == 'wall' else (1, None)
    for run in runs:
        for records, key, name, style in ((run.iters, 'loss', 'train', dict(linewidth=1, alpha=0.6)),
                                          (run.evals, 'train_loss', 'train (eval)', dict(marker='x', linestyle='--')),
                                          (run.evals, 'val_loss', 'val', dict(marker='o', linewidth=2))):
            xs, ys = series(records, x, key)
            if xs:
                ax.plot([v / scale for v in xs], ys, color=color[run.path], label=f"{run.label} {name}", **style)
    ax.set_xlabel(f"wall time ({unit})" if unit else xlabel)
    ax.set_ylabel('loss (nats per token)')
    ax.set_title(f"train and val loss against {xlabel if not unit else 'wall time'}")
    finish(ax)
    return fig


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
    fig, (ax_tps, ax_mfu) = new_figure(rows=2, height=7)
    color = colors(runs)
    any_mfu = False
    for run in runs:
        xs, ys = series(run.iters, 'iter', 'tokens_per_sec')
        if xs:
            ax_tps.plot(xs, ys, color=color[run.path], label=run.label)
        xs, ys = series(run.iters, 'iter', 'mfu')
        if xs:
            ax_mfu.plot(xs, [100 * v for v in ys], color=color[run.path], label=run.label)
            any_mfu = True
    ax_tps.set_ylabel('tokens / s (all GPUs)')
    ax_tps.set_title('throughput')
    ax_mfu.set_ylabel('MFU (%)')
    ax_mfu.set_xlabel('iteration')
    if not any_mfu:
        ax_mfu.text(0.5, 0.5, 'no MFU logged: the device peak is unknown (set --peak_tflops)',
                    ha='center', va='center', transform=ax_mfu.transAxes)
    for ax in (ax_tps, ax_mfu):
        finish(ax)
    return fig


def comparison_runs(runs):
    """The runs the comparison can draw (val losses at D > 0 and a parameter count), or [] when they
    hold fewer than two architectures."""
    usable = [run for run in runs if run.parameters and any(t > 0 for t in series(run.evals, 'tokens', 'val_loss')[0])]
    return usable if len({run.arch for run in usable}) >= 2 else []


def comparison_figure(runs):
    """Val loss against tokens and against training FLOPs (flops_per_token x tokens), with each run's
    predicted L(N, D) under both fits over the plotted token range."""
    fig, (ax_tokens, ax_flops) = new_figure(cols=2, width=14, height=6.5)
    color = colors(runs)
    measured = {run.path: [(t, v) for t, v in zip(*series(run.evals, 'tokens', 'val_loss')) if t > 0] for run in runs}
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
    for ax, xlabel in ((ax_tokens, 'tokens'), (ax_flops, 'training FLOPs (flops_per_token x tokens)')):
        ax.set_xscale('log')
        ax.set_ylim(low - pad, high + pad)
        ax.set_xlabel(xlabel)
        ax.set_ylabel('val loss (nats per token)')
        finish(ax, fontsize='x-small')
        if len(shown) < len(predicted_at_end):
            ax.text(0.98, 0.98, 'some predictions lie above this range (see the legend)', ha='right', va='top',
                    transform=ax.transAxes, fontsize='small')
    ax_tokens.set_title('val loss against tokens')
    ax_flops.set_title('val loss against training compute')
    fig.suptitle(' vs '.join(sorted({run.arch for run in runs})) + ': val loss and scaling-law predictions')
    fig.text(0.5, -0.01, PREDICTION_NOTE, ha='center', va='top', fontsize='small', wrap=True)
    return fig


def finish(ax, fontsize='small'):
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=fontsize)


def build_figures(runs):
    """{file name: Figure}. The comparison is there only when the runs hold two architectures."""
    figures = {
        'loss_vs_iter.png': loss_figure(runs, 'iter', 'iteration'),
        'loss_vs_tokens.png': loss_figure(runs, 'tokens', 'tokens'),
        'loss_vs_time.png': loss_figure(runs, 'wall', 'wall time'),
        'lr.png': lr_figure(runs),
        'throughput.png': throughput_figure(runs),
    }
    compared = comparison_runs(runs)
    if compared:
        figures['arch_comparison.png'] = comparison_figure(compared)
    return figures


# -----------------------------------------------------------------------------

def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog='plot_runs.py',
        description="Run logs of train.py -> PNG figures: loss against iterations, tokens and wall time; learning "
                    "rate; tokens/s and MFU; and a LLaMA vs GPT-2 comparison with scaling-law predictions.",
        epilog="An out_dir stands for its NEWEST run log (run_YYYYMMDD_HHMMSS.json, by name); to plot an "
               "older run of the same out_dir, pass its file. A resumed run continues in its original log. "
               "arch_comparison.png is drawn only when the runs hold two architectures; its scaling-law "
               "lines are predictions in nats per token for the fits' own data and tokenizer (MassiveText), "
               "reference lines rather than targets.")
    parser.add_argument('runs', nargs='+', metavar='RUN_LOG_OR_OUT_DIR',
                        help='a run_*.json file, or an out_dir (its newest run_*.json is taken)')
    parser.add_argument('--out', required=True, metavar='DIR', help='folder for the PNG files (created if missing)')
    parser.add_argument('--dpi', type=int, default=120, help='resolution of the PNG files (default 120)')
    return parser.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UserError("plot_runs.py needs matplotlib: pip install matplotlib") from None
    if args.dpi <= 0:
        raise UserError(f"--dpi must be positive, got {args.dpi}")
    runs = load_runs(args.runs)
    for run in runs:
        print(f"{run.label}: {run.path}, {len(run.iters)} iteration records, {len(run.evals)} evaluations")
    if not any(run.iters or run.evals for run in runs):
        raise UserError("the run logs hold no iteration or evaluation records yet: nothing to plot")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UserError(f"--out {args.out} is a file: give a folder")
    os.makedirs(args.out, exist_ok=True)
    figures = build_figures(runs)
    if 'arch_comparison.png' not in figures:
        print(f"no arch_comparison.png: it needs val losses of two architectures "
              f"(these runs: {', '.join(sorted({run.arch for run in runs}))})")
    print('wrote:')
    for name, fig in figures.items():
        path = os.path.join(args.out, name)
        fig.savefig(path, dpi=args.dpi, bbox_inches='tight')
        print(f"  {path}")
    return 0


if __name__ == '__main__':
    run_cli(main)
