"""
The reference comparison's table, from its runs' run logs and evaluations.

From the runs' out_dirs (run log, eval_bpb.py's and
eval_downstream.py's JSON), per run and per architecture over its seeds, written as results.json
and printed as the Markdown table README.md shows.

    python reference/stdlib_comparison/summarize.py out-compare-llama-s1 out-compare-llama-s2 \
        out-compare-gpt2-s1 out-compare-gpt2-s2 --out reference/stdlib_comparison/results.json

Per run: the final validation bits per byte of eval_bpb.py (every validation document scored whole:
the same documents and bytes for both tokenizers), overall and per source; the last in-training
evaluation's val_bpb (the loader's windows); tokens, bytes of text and FLOPs of training
(tokens x flops_per_token, 6N + 12LHQT); tokens/s and MFU as the mean of the iteration records after
the first (which holds the compilation); the training's wall time; downstream accuracy
(eval_downstream.py, whose JSON also holds eval_bpb.py's result: where it exists, eval_bpb.py's own
JSON is not needed). Per
architecture: the mean over seeds and the spread (max - min).
"""
import argparse
import glob
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # the repo root
from configurator import run_cli  # noqa: E402
from runlog import read_run_log  # noqa: E402  the run log's one reader


def newest(pattern):
    paths = sorted(glob.glob(pattern), key=os.path.getmtime)
    if not paths:
        sys.exit(f"error: nothing matches {pattern}: run the comparison first (reference/stdlib_comparison/run.sh)")
    return paths[-1]


def load(path):
    with open(path) as f:
        return json.load(f)


def run_summary(out_dir):
    _, log = read_run_log(out_dir)
    env, config = log['env'], log['config']
    last_iter = log['iters'][-1]
    steady = log['iters'][1:] or log['iters']
    tokens = last_iter['tokens']
    # eval_downstream.py scores the validation documents as eval_bpb.py does, and keeps that result
    downstream_path = sorted(glob.glob(os.path.join(out_dir, 'downstream_iter*.json')), key=os.path.getmtime)
    downstream = load(downstream_path[-1]) if downstream_path else {}
    bpb = downstream.get('bpb') or load(newest(os.path.join(out_dir, 'bpb_val_iter*.json')))
    downstream = downstream.get('tasks', {})
    return dict(
        out_dir=os.path.basename(os.path.normpath(out_dir)), arch=config['arch'], seed=config['seed'],
        dataset=config['dataset'], parameters=env['parameters'], device=env['device'], torch=env['torch'],
        iterations=last_iter['iter'], tokens=tokens, bytes_seen=round(tokens * env['train_bytes_per_token']),
        train_bytes_per_token=env['train_bytes_per_token'], flops=tokens * env['flops_per_token'],
        epochs=last_iter.get('epoch'), train_seconds=last_iter['time'],
        tokens_per_sec=statistics.mean(r['tokens_per_sec'] for r in steady),
        mfu=statistics.mean(r['mfu'] for r in steady) if all(r.get('mfu') for r in steady) else None,
        peak_mem_gib=last_iter.get('peak_mem_gib'),
        train_val_bpb=log['evals'][-1].get('val_bpb'), train_val_loss=log['evals'][-1]['val_loss'],
        val_bpb=bpb['overall']['bpb'], val_bytes=bpb['overall']['bytes'], val_documents=bpb['overall']['documents'],
        val_bpb_sources={name: e['bpb'] for name, e in bpb['per_source'].items()},
        downstream={task: {k: v for k, v in metrics.items()} for task, metrics in downstream.items()})


def run_speed(out_dir):
    """A run's speed alone (its run log): tokens/s and MFU as run_summary has them."""
    _, log = read_run_log(out_dir)
    steady = log['iters'][1:] or log['iters']
    return dict(out_dir=os.path.basename(os.path.normpath(out_dir)), arch=log['config']['arch'],
                dataset=log['config']['dataset'],
                tokens_per_sec=statistics.mean(r['tokens_per_sec'] for r in steady),
                mfu=statistics.mean(r['mfu'] for r in steady) if all(r.get('mfu') for r in steady) else None,
                train_seconds=log['iters'][-1]['time'])


def spread(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return dict(mean=statistics.mean(values), min=min(values), max=max(values), spread=max(values) - min(values),
                n=len(values))


def group(run):
    """A row of the table: the architecture and the dataset (its tokenizer) of a run."""
    return f"{run['arch']} / {run['dataset']}"


def arch_summary(runs, speed_runs):
    """The mean and spread over an architecture's runs; tokens/s and MFU over speed_runs (the runs of
    that architecture that had the GPU to themselves)."""
    first = runs[0]
    tasks = [t for t in first['downstream'] if all(t in r['downstream'] for r in runs)]  # scored in every run
    out = dict(runs=[r['out_dir'] for r in runs], seeds=[r['seed'] for r in runs], parameters=first['parameters'],
               tokens=spread([r['tokens'] for r in runs]), bytes_seen=spread([r['bytes_seen'] for r in runs]),
               flops=spread([r['flops'] for r in runs]), val_bpb=spread([r['val_bpb'] for r in runs]),
               train_val_bpb=spread([r['train_val_bpb'] for r in runs]),
               tokens_per_sec=spread([r['tokens_per_sec'] for r in speed_runs]),
               mfu=spread([r['mfu'] for r in speed_runs]), speed_runs=[r['out_dir'] for r in speed_runs],
               train_seconds=spread([r['train_seconds'] for r in speed_runs]))
    out['val_bpb_sources'] = {name: spread([r['val_bpb_sources'].get(name) for r in runs])
                              for name in first['val_bpb_sources']}
    out['downstream'] = {task: {metric: spread([r['downstream'].get(task, {}).get(metric) for r in runs])
                                for metric in first['downstream'][task] if not metric.endswith('_stderr')}
                         for task in tasks}
    return out


def table(archs):
    def pm(s, digits=4, scale=1.0):
        if s is None:
            return 'n/a'
        mean = f"{s['mean'] * scale:,.{digits}f}"
        return mean if s['n'] == 1 else f"{mean} ± {s['spread'] * scale / 2:,.{digits}f}"
    sources = sorted({name for a in archs.values() for name in a['val_bpb_sources']})
    tasks = sorted({task for a in archs.values() for task, m in a['downstream'].items() if 'acc' in m})
    head = (['arch / data', 'parameters', 'runs', 'val bpb'] + [f'{s} bpb' for s in sources] + [f'{t} acc' for t in tasks]
            + ['tokens', 'PFLOP', 'tokens/s', 'MFU'])
    lines = ['| ' + ' | '.join(head) + ' |', '|' + ' --- |' * len(head)]
    for arch, a in archs.items():
        row = [arch, f"{a['parameters'] / 1e6:.1f}M", str(len(a['runs'])), pm(a['val_bpb'])]
        row += [pm(a['val_bpb_sources'].get(s)) for s in sources]
        row += [pm(a['downstream'].get(t, {}).get('acc'), 3) for t in tasks]
        row += [f"{a['tokens']['mean'] / 1e6:.1f}M", f"{a['flops']['mean'] / 1e15:.1f}", pm(a['tokens_per_sec'], 0),
                pm(a['mfu'], 1, 100.0) + ('%' if a['mfu'] else '')]
        lines.append('| ' + ' | '.join(row) + ' |')
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description="the reference comparison's table from its runs' out_dirs")
    parser.add_argument('out_dirs', nargs='+', help='the runs (out_dir of each)')
    parser.add_argument('--speed_runs', nargs='+', default=None, metavar='OUT_DIR',
                        help='take tokens/s and MFU from these runs (each alone on its GPU) instead of the runs above')
    parser.add_argument('--out', default=None, help='write the summary JSON here')
    args = parser.parse_args(argv)
    runs = [run_summary(d) for d in args.out_dirs]
    speed = [run_speed(d) for d in args.speed_runs] if args.speed_runs else runs
    archs = {}  # one row per (architecture, dataset): the dataset fixes the tokenizer
    for key in dict.fromkeys(group(r) for r in runs):
        archs[key] = arch_summary([r for r in runs if group(r) == key], [r for r in speed if group(r) == key])
    text = table(archs)
    print(text)
    print("(mean ± half the spread over the runs; val bpb: every validation document scored whole, as eval_bpb.py does)")
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(runs=runs, archs=archs, table=text), f, indent=1)
        print(f"wrote {args.out}")
    return 0


if __name__ == '__main__':
    run_cli(main)
