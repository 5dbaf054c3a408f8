"""
The scaling ladder's check (README.md beside this file): each held-out run's final bits per byte
against the prediction that prediction.json recorded before it was trained; the ladder's table, and
the figure (bits per byte against training FLOPs: both ladders, the fit at each run, the held-out runs
and their predictions).

    python reference/scaling/check.py                      # the shipped runs (runs/ beside this file)
    python reference/scaling/check.py --runs out-scaling   # a fresh run.sh's

Writes results.json and results.md beside this file (and figure.png with matplotlib). The held-out run
of an architecture is its 7x448 run; the prediction for it, the query at its own N (each query is
predicted for every architecture: the one at the run's N and D is its prediction).
"""

import argparse
import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, REPO)
from configurator import UserError  # noqa: E402
from flops_parameter_counting.scaling_fit import non_embedding_parameters  # noqa: E402
from runlog import read_run_log  # noqa: E402

HELD_OUT = '7x448'
ARCHS = ('gpt2', 'llama')


def run_summary(folder):
    """What the table and the figure need of one run: its shape, N, D, FLOPs and final val_bpb."""
    where, log = read_run_log(folder)
    env, config, evals = log['env'], log['config'], log['evals']
    final = max((e for e in evals if e.get('val_bpb') is not None), key=lambda e: e['iter'])
    if final['iter'] != config['max_iters']:
        raise UserError(f"{where}: its last evaluation is at iter {final['iter']} of {config['max_iters']}: unfinished")
    tokens = final['tokens']
    return dict(name=os.path.basename(os.path.normpath(folder)), arch=log['model_args']['arch'],
                n_layer=config['n_layer'], n_embd=config['n_embd'], learning_rate=config['learning_rate'],
                max_iters=config['max_iters'], parameters=env['parameters'],
                N=non_embedding_parameters(log['model_args'], env['parameters'], where),
                tokens=tokens, D=tokens * env['train_bytes_per_token'], flops=env['flops_per_token'] * tokens,
                bpb=final['val_bpb'], device=env['device'], torch=env['torch'], started=env['started'])


def close(a, b):
    return abs(math.log(a / b)) < math.log(1.001)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--runs', default=os.path.join(HERE, 'runs'), help="the folder of the ladder's run folders")
    parser.add_argument('--prediction', default=os.path.join(HERE, 'prediction.json'))
    parser.add_argument('--out', default=HERE, help="where results.json, results.md and figure.png go")
    args = parser.parse_args(argv)
    with open(args.prediction) as f:
        prediction = json.load(f)
    names = sorted(n for n in os.listdir(args.runs) if os.path.isfile(os.path.join(args.runs, n, 'sweep_run.json')))
    runs = [run_summary(os.path.join(args.runs, n)) for n in names]
    fits = {label.split(' ')[0]: f for label, f in prediction['fits'].items()}
    fitted = {os.path.basename(os.path.normpath(p['run'])): p for f in fits.values() for p in f['points']}
    checks = []
    for run in runs:
        run['role'] = ('held out' if HELD_OUT in run['name'] else 'fitted' if run['name'] in fitted else 'rate check')
        if run['role'] == 'fitted':
            run['fit'] = fitted[run['name']]['fit']
        if run['role'] != 'held out':
            continue
        fit = fits[run['arch']]
        at = [i for i, q in enumerate(prediction['queries']) if close(q['N'], run['N']) and close(q.get('D', 0), run['D'])]
        if len(at) != 1:
            raise UserError(f"{run['name']}: no query of {args.prediction} is at its N = {run['N']:,} and D = {run['D']:.6g}")
        predicted = fit['predictions'][at[0]]
        low, high = predicted['interval']
        run['fit'] = predicted['bpb']
        checks.append(dict(arch=run['arch'], run=run['name'], N=run['N'], D=run['D'], predicted=predicted['bpb'],
                           interval=[low, high], actual=run['bpb'], error=run['bpb'] - predicted['bpb'],
                           relative_error=run['bpb'] / predicted['bpb'] - 1, inside=low <= run['bpb'] <= high,
                           largest_rung_N=max(r['N'] for r in runs if r['arch'] == run['arch'] and r['role'] == 'fitted')))
    results = dict(runs=runs, checks=checks,
                   fits={a: {k: f[k] for k in ('law', 'design', 'parameters', 'rms_residual', 'runs')} for a, f in fits.items()},
                   extrapolation=[dict(query=q, **{a: fits[a]['predictions'][i] for a in fits}) for i, q in
                                  enumerate(prediction['queries'])],
                   gaps=prediction['gaps'])
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, 'results.json'), 'w') as f:
        json.dump(results, f, indent=1)
        f.write('\n')
    text = markdown(results)
    with open(os.path.join(args.out, 'results.md'), 'w') as f:
        f.write(text)
    print(text)
    if figure(results, os.path.join(args.out, 'figure.png')):
        print(f"wrote {os.path.join(args.out, 'figure.png')}")
    return 0


def markdown(results):
    lines = ["| run | role | L x d | N (non-embedding) | tokens | bytes of text | training FLOPs | lr | val bpb | fit |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results['runs']:
        fit = f"{r['fit']:.4f}" if 'fit' in r else ""
        lines.append(f"| {r['name']} | {r['role']} | {r['n_layer']}x{r['n_embd']} | {r['N']:,} | {r['tokens'] / 1e6:.1f}M | "
                     f"{r['D'] / 1e6:.1f}MB | {r['flops'] / 1e15:.2f}P | {r['learning_rate']:g} | {r['bpb']:.4f} | {fit} |")
    lines += ["", "| architecture | held-out N | x largest rung | predicted bpb | 95% interval | measured | error | inside |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for c in results['checks']:
        lines.append(f"| {c['arch']} | {c['N']:,} | {c['N'] / c['largest_rung_N']:.2f} | {c['predicted']:.4f} | "
                     f"[{c['interval'][0]:.4f}, {c['interval'][1]:.4f}] | {c['actual']:.4f} | {c['error']:+.4f} "
                     f"({100 * c['relative_error']:+.1f}%) | {'yes' if c['inside'] else 'no'} |")
    return '\n'.join(lines) + '\n'


def figure(results, path):
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(8, 5.5))
    colors = {'gpt2': 'tab:blue', 'llama': 'tab:orange'}
    for arch in ARCHS:
        runs = [r for r in results['runs'] if r['arch'] == arch]
        fitted = [r for r in runs if r['role'] == 'fitted']
        ax.scatter([r['flops'] for r in fitted], [r['bpb'] for r in fitted], color=colors[arch], s=22,
                   label=f"{arch}: ladder runs")
        for budget in sorted({r['max_iters'] for r in fitted}):
            line = sorted((r for r in runs if r['max_iters'] == budget and 'fit' in r), key=lambda r: r['flops'])
            ax.plot([r['flops'] for r in line], [r['fit'] for r in line], color=colors[arch], lw=0.8, alpha=0.6)
        for c in (c for c in results['checks'] if c['arch'] == arch):
            run = next(r for r in runs if r['name'] == c['run'])
            ax.errorbar([run['flops']], [c['predicted']], yerr=[[c['predicted'] - c['interval'][0]],
                                                                 [c['interval'][1] - c['predicted']]],
                        fmt='o', mfc='none', color=colors[arch], capsize=4, label=f"{arch}: predicted (95%)")
            ax.scatter([run['flops']], [run['bpb']], marker='*', s=160, color=colors[arch], edgecolor='k',
                       label=f"{arch}: held-out run")
    ax.set_xscale('log')
    ax.set_xlabel('training FLOPs')
    ax.set_ylabel('validation bits per byte')
    ax.set_title('scaling ladders (lines: the fit at each budget) and the held-out size')
    ax.grid(alpha=0.3, which='both')
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


if __name__ == '__main__':
    try:
        sys.exit(main())
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
