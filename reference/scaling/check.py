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
from configurator import UserError, run_cli  # noqa: E402
from flops_parameter_counting.detailed_cost_analysis import (  # noqa: E402
    PROJECT_KEYS, count_parameters, palm_flops_per_token, resolve_shape, train_defaults)
from flops_parameter_counting.scaling_fit import non_embedding_parameters  # noqa: E402
from runlog import read_run_log  # noqa: E402
import sweep  # noqa: E402

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


def planned_runs(sweep_file):
    """The runs a sweep file plans, as far as the figure needs them before they are made: name, arch,
    N (non-embedding parameters, the cost tool's count) and training FLOPs (its 6N + 12LHQT a token,
    times the tokens of max_iters)."""
    out = []
    for run in sweep.plan(sweep.parse([sweep_file])):
        c = train_defaults()
        with open(os.path.join(REPO, run.config)) as f:
            exec(compile(f.read(), run.config, 'exec'), {}, c)
        for arg in run.train_args[1:]:
            key, _, value = arg[2:].partition('=')
            c[key] = type(c[key])(value) if isinstance(c.get(key), (int, float)) and not isinstance(c[key], bool) else value
        shape = resolve_shape(sweep_file, **{k: c[k] for k in PROJECT_KEYS if c.get(k) is not None})
        tokens = c['max_iters'] * c['batch_size'] * c['gradient_accumulation_steps'] * c['block_size']
        parts = count_parameters(shape)
        n = sum(parts.values()) - parts['token embedding'] - parts.get('position embedding', 0) - parts['lm_head']
        out.append(dict(name=run.name, arch=c['arch'], N=n, flops=palm_flops_per_token(shape, c['block_size']) * tokens))
    return out


def close(a, b):
    return abs(math.log(a / b)) < math.log(1.001)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--runs', default=os.path.join(HERE, 'runs'), help="the folder of the ladder's run folders")
    parser.add_argument('--prediction', default=os.path.join(HERE, 'prediction.json'))
    parser.add_argument('--out', default=HERE, help="where results.json, results.md and figure.png go")
    parser.add_argument('--second_prediction', default=os.path.join(HERE, 'prediction_onepass.json'),
                        help="a second recorded prediction (run.sh's predict_onepass), shown beside the first")
    parser.add_argument('--heldout', default='config/sweeps/scaling_heldout.py', help="the held-out runs' sweep file")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.prediction):
        raise UserError(f"no {args.prediction}: record the prediction first (reference/scaling/run.sh predict)")
    with open(args.prediction) as f:
        prediction = json.load(f)
    names = sorted(n for n in os.listdir(args.runs) if os.path.isfile(os.path.join(args.runs, n, 'sweep_run.json')))
    runs = [run_summary(os.path.join(args.runs, n)) for n in names]
    fits = {label.split(' ')[0]: f for label, f in prediction['fits'].items()}
    fitted = {os.path.basename(os.path.normpath(p['run'])): p for f in fits.values() for p in f['points']}
    second = None
    if args.second_prediction and os.path.isfile(args.second_prediction):
        with open(args.second_prediction) as f:
            second = json.load(f)

    def predicted_at(recorded, where, arch, n, d=None):
        """(bpb, [low, high]) that a recorded prediction gave for arch at N = n (and D = d)."""
        at = [i for i, q in enumerate(recorded['queries']) if close(q['N'], n) and (d is None or close(q['D'], d))]
        if len(at) != 1:
            raise UserError(f"{where}: no query of the recorded prediction is at N = {n:,}" +
                            (f" and D = {d:.6g}" if d is not None else ""))
        fit = {label.split(' ')[0]: f for label, f in recorded['fits'].items()}[arch]
        return fit['predictions'][at[0]]['bpb'], fit['predictions'][at[0]]['interval']

    largest = {a: max((r['N'] for r in runs if r['arch'] == a and r['name'] in fitted), default=None) for a in ARCHS}
    checks = []
    for run in runs:
        run['role'] = ('held out' if HELD_OUT in run['name'] else 'fitted' if run['name'] in fitted else 'rate check')
        if run['role'] == 'fitted':
            run['fit'] = fitted[run['name']]['fit']
        if run['role'] != 'held out':
            continue
        bpb, (low, high) = predicted_at(prediction, run['name'], run['arch'], run['N'], run['D'])
        run['fit'] = bpb
        check = dict(arch=run['arch'], run=run['name'], N=run['N'], D=run['D'], predicted=bpb, interval=[low, high],
                     actual=run['bpb'], error=run['bpb'] - bpb, relative_error=run['bpb'] / bpb - 1,
                     inside=low <= run['bpb'] <= high, largest_rung_N=largest[run['arch']])
        if second:
            bpb2, (low2, high2) = predicted_at(second, run['name'], run['arch'], run['N'], run['D'])
            check['second'] = dict(predicted=bpb2, interval=[low2, high2], error=run['bpb'] - bpb2,
                                   inside=low2 <= run['bpb'] <= high2)
        checks.append(check)
    made = {r['name'] for r in runs}
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        pending = [p for p in planned_runs(args.heldout) if p['name'] not in made]
    finally:
        os.chdir(cwd)
    for p in pending:  # not trained yet: the predictions alone, at the query of its architecture's held-out N
        p['predicted'], p['interval'] = predicted_at(prediction, p['name'], p['arch'], p['N'])
        p['largest_rung_N'] = largest[p['arch']]
        if second:
            bpb2, interval2 = predicted_at(second, p['name'], p['arch'], p['N'])
            p['second'] = dict(predicted=bpb2, interval=interval2)
    results = dict(runs=runs, checks=checks, pending=pending,
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
    lines += ["", "| architecture | held-out | N | x largest rung | predicted (all 24 runs) | 95% interval | "
              "predicted (one-pass runs) | 95% interval | measured | error (all 24; one-pass) |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for c in results['checks'] + results['pending']:
        two = c.get('second')
        measured = f"{c['actual']:.4f}" if 'actual' in c else "not yet trained"
        error = (f"{c['error']:+.4f} ({'inside' if c['inside'] else 'outside'}); " +
                 (f"{two['error']:+.4f} ({'inside' if two['inside'] else 'outside'})" if two else "")) if 'actual' in c else ""
        lines.append(f"| {c['arch']} | {c.get('run', c.get('name'))} | {c['N']:,} | {c['N'] / c['largest_rung_N']:.2f} | "
                     f"{c['predicted']:.4f} | [{c['interval'][0]:.4f}, {c['interval'][1]:.4f}] | "
                     + (f"{two['predicted']:.4f} | [{two['interval'][0]:.4f}, {two['interval'][1]:.4f}] | " if two else "| | ")
                     + f"{measured} | {error} |")
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
        made = {r['name']: r for r in runs}
        for c in [c for c in results['checks'] if c['arch'] == arch] + [p for p in results['pending'] if p['arch'] == arch]:
            x = made[c['run']]['flops'] if 'run' in c else c['flops']
            for shift, marker, which, entry in ((1.0, 'o', 'all 24 runs', c), (1.04, 's', 'the one-pass runs', c.get('second'))):
                if entry:
                    ax.errorbar([x * shift], [entry['predicted']], yerr=[[entry['predicted'] - entry['interval'][0]],
                                                                          [entry['interval'][1] - entry['predicted']]],
                                fmt=marker, mfc='none', color=colors[arch], capsize=4,
                                label=f"{arch}: predicted from {which} (95%)")
            if 'run' in c:
                ax.scatter([x], [c['actual']], marker='*', s=160, color=colors[arch], edgecolor='k',
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
    run_cli(main)
