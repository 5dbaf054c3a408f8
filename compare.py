"""
A sweep's runs and the comparison made from them: the run folder's record, when a run is finished,
the statistics (Student's t, written out here: no scipy), the choice of each group's best setting,
results.json, the Markdown table and the figures. sweep.py runs the grid and calls summarize().

A sweep's out_dir holds one folder per run, train.py's out_dir (ckpt.pt, run_*.json, eval_bpb.py's
bpb_val_iterN.json) with two files of the sweep's:

    sweep_run.json   the run's record (RECORD): name, group, config file, its grid settings, the
                     exact train.py and eval_bpb.py arguments, and its status (written atomically)
    console.log      everything train.py and eval_bpb.py printed, each process headed by its command

A run is finished when its run log (runlog.py; the newest run_*.json of the folder) shows the last
process's max_iters reached, the final evaluation at it, and the checkpoint of the end of training
saved after it (training_finished); with eval_bpb.py in the sweep, also when bpb_val_iter<max_iters>.json
is written.

Best against best. The metric of a run is its final validation number, lower is better:
'val_bpb' (train.py's last evaluation: the fixed validation windows, bits per byte), 'eval_bpb'
(eval_bpb.py: every validation document scored whole) or 'val_loss' (nats per token; for datasets
without a byte table, and only between runs of one tokenizer). A group is one config of the sweep
(with any grid key that is neither tuned nor the seed). THE RULE (RULE below, written into results.json):
for each group, the setting of the tuned keys (the learning rate) with the lowest mean metric over
its seeds, among the settings whose every seed finished with a finite metric (a setting with a
failed, diverged or missing seed is not eligible); equal means go to the smaller tuned value, the
lower learning rate (in the grid's key order). A best setting at the smallest or largest value of
its grid is warned about: the sweep did not bracket the optimum, and a wider grid may find a better
one. The choice and the intervals come from the same seeds; a fresh set of seeds at the chosen
settings removes the small bias that picking the best of several brings.

Intervals. Over n >= 2 seeds: the mean +- t_{0.975, n-1} s / sqrt(n), s the sample standard
deviation. Differences between two groups at their best settings (B - A: negative means B is
better): paired over the seeds both ran, when the runs read the same data in the same order (same
seed, dataset, block_size, batch_size, gradient_accumulation_steps and data_order: loader.py's batch
is a pure function of these), the mean of the per-seed differences with its t-interval (n - 1
degrees of freedom); and always unpaired, Welch's interval (Welch-Satterthwaite degrees of freedom).
p: two-sided, from the same t distribution.

Speed, from the run log's iteration records (the first record of each process left out: it holds
compilation): tokens/s = the tokens of those iterations / their summed step time, bytes of text/s =
tokens/s x env.train_bytes_per_token. Runs that shared a GPU (sweep.py --parallel > 1) share its
speed: compare speed from runs that had their device alone.
"""

import json
import math
import os
import statistics

from configurator import UserError
from runlog import add_wall_time, read_run_log

RECORD = 'sweep_run.json'
CONSOLE = 'console.log'
METRICS = ('val_bpb', 'eval_bpb', 'val_loss')
LEVEL = 0.95
RULE = ("per group, the tuned setting with the lowest mean final {metric} over its seeds, among the settings "
        "whose every seed finished with a finite {metric}; equal means go to the smaller tuned value (the lower "
        "learning rate); a best setting at the edge of its grid is warned about (the optimum was not bracketed)")
PAIRING_KEYS = ('dataset', 'block_size', 'batch_size', 'gradient_accumulation_steps', 'data_order')


# -----------------------------------------------------------------------------
# a run folder: the sweep's record, the run log, eval_bpb.py's result

def read_record(folder):
    """The folder's sweep_run.json, or None where there is none."""
    path = os.path.join(folder, RECORD)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"cannot read {path} ({e}): restore it, or move the run's folder away") from None


def write_record(folder, record):
    """sweep_run.json, written under a temporary name and renamed: never half written."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, RECORD)
    with open(path + '.tmp', 'w') as f:
        json.dump(record, f, indent=1)
    os.replace(path + '.tmp', path)


def last_header(log):
    """The header (config, env) of the run log's latest process: the resumed one's, where it was resumed."""
    return (log.get('resumes') or [log])[-1]


def training_finished(log):
    """(finished, final iteration, max_iters) from a parsed run log: finished when the latest process's
    max_iters is reached, evaluated at, and the end-of-training checkpoint was saved after that
    evaluation (train.py adds the checkpoint event only once the file is written). A run stopped by a
    signal, or killed, is not finished; train.py exits 0 after a signal, so its exit status does not tell."""
    max_iters = (last_header(log).get('config') or log.get('config') or {}).get('max_iters')
    last = log['iters'][-1]['iter'] if log['iters'] else 0
    evaluated = any(e.get('iter') == max_iters for e in log['evals'])
    saved = any(e.get('event') == 'checkpoint' and e.get('iter') == max_iters and e.get('reason') == 'end of training'
                for e in log.get('events') or [])
    return max_iters is not None and last == max_iters and evaluated and saved, last, max_iters


def newest_run_log(folder):
    """(path, parsed) of the folder's newest run log, or (None, None) where it has none."""
    if not os.path.isdir(folder) or not any(n.startswith('run_') and n.endswith('.json') for n in os.listdir(folder)):
        return None, None
    return read_run_log(folder)


def bpb_result_path(folder, iter_num, split='val'):
    """Where eval_bpb.py writes its result for the checkpoint of iter_num."""
    return os.path.join(folder, f'bpb_{split}_iter{iter_num}.json')


def progress_fraction(folder):
    """(last iteration / max_iters) of the folder's newest run log, or None: for the sweep's ETA."""
    try:
        _, log = newest_run_log(folder)
    except UserError:
        return None
    if log is None:
        return None
    finished, last, max_iters = training_finished(log)
    return 1.0 if finished else (last / max_iters if max_iters else None)


# -----------------------------------------------------------------------------
# Student's t, from the regularized incomplete beta function

def incomplete_beta(a, b, x, complement=None):
    """The regularized incomplete beta function I_x(a, b), a, b > 0, 0 <= x <= 1: its continued
    fraction (evaluated by the modified Lentz method), on the side of x where it converges fast.
    complement: 1 - x where the caller knows it more precisely than 1.0 - x (x near 1)."""
    y = 1.0 - x if complement is None else complement
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"x must be in [0, 1], got {x}")
    if x == 0.0 or y == 0.0:
        return 0.0 if x == 0.0 else 1.0
    if x > (a + 1.0) / (a + b + 2.0):  # I_x(a, b) = 1 - I_{1-x}(b, a)
        return 1.0 - incomplete_beta(b, a, y, x)
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(y)
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    fraction = d
    for m in range(1, 1000):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),          # the even step
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):  # the odd step
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            fraction *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return math.exp(log_front) * fraction / a


def t_cdf(t, df):
    """P(T <= t) for Student's t with df > 0 degrees of freedom (any real df: Welch's are not integers)."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    # P(T > |t|) = I_x(df/2, 1/2) / 2 with x = df / (df + t^2); 1 - x = t^2 / (df + t^2), exactly
    tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t), t * t / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p, df):
    """The t with P(T <= t) = p, by bisection on t_cdf (to the float's precision)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    if p == 0.5:
        return 0.0
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        low, high = high, 2.0 * high
    for _ in range(200):
        middle = 0.5 * (low + high)
        if middle in (low, high):
            break
        low, high = (middle, high) if t_cdf(middle, df) < p else (low, middle)
    return 0.5 * (low + high)


def mean_interval(values, level=LEVEL):
    """n, mean, sample sd, and the two-sided t-interval of the mean (None for fewer than 2 values)."""
    values = list(values)
    n = len(values)
    if n == 0:
        return dict(n=0, mean=None, sd=None, half_width=None, ci=None)
    mean = statistics.fmean(values)
    if n < 2:
        return dict(n=1, mean=mean, sd=None, half_width=None, ci=None)
    sd = statistics.stdev(values)
    half = t_quantile(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    return dict(n=n, mean=mean, sd=sd, half_width=half, ci=[mean - half, mean + half])


def two_sided_p(t, df):
    return 2.0 * (1.0 - t_cdf(abs(t), df)) if math.isfinite(t) else 0.0


def paired_difference(a, b, level=LEVEL):
    """B - A over the seeds both have: a, b map seed -> value. The mean difference, its t-interval
    (n - 1 degrees of freedom) and two-sided p; None for fewer than 2 shared seeds."""
    seeds = sorted(set(a) & set(b), key=str)
    if len(seeds) < 2:
        return None
    out = mean_interval([b[s] - a[s] for s in seeds], level)
    out['seeds'] = seeds
    out['df'] = len(seeds) - 1
    out['p'] = (two_sided_p(out['mean'] / (out['sd'] / math.sqrt(out['n'])), out['df']) if out['sd']
                else (1.0 if out['mean'] == 0 else 0.0))
    return out


def welch_difference(a, b, level=LEVEL):
    """mean(B) - mean(A) with Welch's t-interval (Welch-Satterthwaite degrees of freedom) and two-sided
    p; None unless both have 2 or more values."""
    a, b = list(a), list(b)
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    mean = statistics.fmean(b) - statistics.fmean(a)
    se = math.sqrt(va + vb)
    if se == 0:
        return dict(mean=mean, se=0.0, df=None, half_width=0.0, ci=[mean, mean], p=1.0 if mean == 0 else 0.0)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = t_quantile(0.5 + level / 2, df) * se
    return dict(mean=mean, se=se, df=df, half_width=half, ci=[mean - half, mean + half], p=two_sided_p(mean / se, df))


# -----------------------------------------------------------------------------
# one run's numbers

def speed(log):
    """tokens/s over the run's iteration records, the first record of each process left out
    (compilation): their tokens / their step time (a record's step_time is the mean over the
    iterations since the record before it). None without such records."""
    starts = sorted({0} | {h.get('env', {}).get('start_iter', 0) for h in log.get('resumes') or []})
    tokens_per_iter = log['env'].get('tokens_per_iter')
    process, previous, iters, seconds = None, None, 0, 0.0
    for record in log['iters']:
        start = max(s for s in starts if s < record['iter']) if record['iter'] > 0 else 0
        if start != process:  # the first record of a process
            process, previous = start, record['iter']
            continue
        span, previous = record['iter'] - previous, record['iter']
        if record.get('step_time') and span > 0:
            iters += span
            seconds += span * record['step_time']
    if not iters or not tokens_per_iter:
        return None
    return iters * tokens_per_iter / seconds


def run_result(folder, metric, planned=None):
    """One run's numbers from its folder: status, the metric, tokens, bytes of text, FLOPs, wall time,
    speed and the evaluation curve. planned: the run's name, group and settings where the sweep's plan
    gives them (else its record's). status: 'finished', 'not evaluated' (eval_bpb.py's result
    missing), 'no <metric>' (finished, its metric missing or not finite), 'unfinished' (its run log
    did not reach max_iters), 'failed' (the sweep saw it fail, and it has not finished since) or
    'not started'."""
    record = read_record(folder) or {}
    info = planned or record
    out = dict(name=info.get('name') or os.path.basename(os.path.normpath(folder)), group=info.get('group'),
               settings=info.get('settings') or {}, status='not started', value=None,
               runs_per_device=record.get('runs_per_device'))
    path, log = newest_run_log(folder)
    if log is None:
        if record.get('status') == 'failed':
            out['status'] = 'failed'
        return out
    finished, last, max_iters = training_finished(log)
    config, env = log.get('config') or {}, log['env']
    add_wall_time(log)
    last_iter = log['iters'][-1] if log['iters'] else {}
    tokens = last_iter.get('tokens') or 0
    bytes_per_token = env.get('train_bytes_per_token')
    tokens_per_sec = speed(log)
    final = next((e for e in reversed(log['evals']) if e.get('iter') == last), None)
    out.update(run_log=os.path.basename(path), iterations=last, max_iters=max_iters, seed=config.get('seed'),
               learning_rate=config.get('learning_rate'), parameters=env.get('parameters'),
               flops_per_token=env.get('flops_per_token'), train_bytes_per_token=bytes_per_token, tokens=tokens,
               bytes=tokens * bytes_per_token if bytes_per_token else None,
               flops=tokens * env['flops_per_token'] if env.get('flops_per_token') else None,
               wall_seconds=max([r['wall'] for r in log['iters'] + log['evals'] if 'wall' in r], default=None),
               tokens_per_sec=tokens_per_sec,
               bytes_per_sec=tokens_per_sec * bytes_per_token if tokens_per_sec and bytes_per_token else None,
               device=env.get('device'), data={key: last_header(log).get('config', {}).get(key, config.get(key))
                                               for key in PAIRING_KEYS},
               curve=[dict(iter=e['iter'], tokens=e.get('tokens'), wall=e.get('wall'), val_bpb=e.get('val_bpb'),
                           val_loss=e.get('val_loss')) for e in log['evals']])
    if not finished:
        out['status'] = 'failed' if record.get('status') == 'failed' else 'unfinished'
        return out
    out['status'] = 'finished'
    if metric == 'eval_bpb':
        bpb_path = bpb_result_path(folder, max_iters)
        if os.path.exists(bpb_path):
            with open(bpb_path) as f:
                out['value'] = json.load(f)['overall']['bpb']
        else:
            out['status'] = 'not evaluated'
    elif final is not None:
        out['value'] = final.get(metric)
    if out['value'] is not None and not math.isfinite(out['value']):
        out['value'] = None
    if out['value'] is None and out['status'] == 'finished':  # e.g. val_bpb of a dataset without byte accounting
        out['status'] = f"no {metric}"
    return out


# -----------------------------------------------------------------------------
# the summary: every setting, each group's best, the differences

def setting_key(settings, tuned):
    return tuple(settings.get(key) for key in tuned)


def group_label(run, tuned):
    """The row a run belongs to: its config's name, and any grid key that is neither tuned nor the seed."""
    extra = [f"{k}={v}" for k, v in run['settings'].items() if k not in tuned and k != 'seed']
    return ' '.join([run['group']] + extra)


def choose_best(settings, tuned, grid):
    """The best of a group's settings by THE RULE (module docstring): (the chosen setting or None, warnings).
    settings: dicts with 'values' (tuned key -> value), 'mean' and 'complete'."""
    eligible = [s for s in settings if s['complete'] and s['mean'] is not None]
    warnings = []
    if not eligible:
        return None, ["no setting has every seed finished with a finite metric: nothing to choose from"]

    def order(value, key):  # the tie-break: the smaller value (numbers), else the grid's order
        values = grid.get(key) or []
        return (0, value, 0) if isinstance(value, (int, float)) else (1, 0, values.index(value) if value in values else 0)

    best = min(eligible, key=lambda s: (s['mean'], [order(s['values'][k], k) for k in tuned]))
    for key in tuned:
        values = grid.get(key) or []
        if len(values) < 2:
            warnings.append(f"{key} was not swept (one value): nothing was tuned")
            continue
        numeric = all(isinstance(v, (int, float)) for v in values)
        low, high = (min(values), max(values)) if numeric else (values[0], values[-1])
        value = best['values'][key]
        if value in (low, high):
            side = 'smallest' if value == low else 'largest'
            warnings.append(f"best {key} {value:g} is the grid's {side}: the sweep did not bracket the optimum; "
                            f"add a {'smaller' if side == 'smallest' else 'larger'} value" if numeric else
                            f"best {key} {value!r} is at the edge of the grid")
    if best['n'] < 3:
        warnings.append(f"the best setting has {best['n']} seed(s): at least 3 give a usable interval")
    return best, warnings


def pairable(runs_a, runs_b):
    """None where the runs of A and B read the same data in the same order for the same seed, else why not."""
    for key in PAIRING_KEYS:
        values = {json.dumps(r['data'].get(key)) for r in runs_a + runs_b}
        if len(values) > 1:
            return f"{key} differs ({', '.join(sorted(values))}): the same seed does not give the same data order"
    return None


def comparison_pairs(spec, groups):
    """[(A, B)] from 'first' (each group against the first), 'previous' (each against the one before it:
    a ladder's steps), 'all' (every pair) or 'a:b,c:d' (B against A)."""
    if spec == 'first':
        return [(groups[0], g) for g in groups[1:]]
    if spec == 'previous':
        return list(zip(groups, groups[1:]))
    if spec == 'all':
        return [(a, b) for i, a in enumerate(groups) for b in groups[i + 1:]]
    pairs = []
    for item in spec.split(','):
        a, sep, b = item.strip().partition(':')
        if not sep or a not in groups or b not in groups:
            raise UserError(f"comparisons: {item.strip()!r} is not A:B with A and B among the groups {groups} "
                            f"(or use 'first', 'previous' or 'all')")
        pairs.append((a, b))
    return pairs


def mean_of(runs, key):
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.fmean(values) if values else None


def summarize(runs, tuned, grid, metric, comparisons='first', level=LEVEL):
    """results.json's contents from run_result() dicts of one sweep (the runs of its plan, in its
    order): every setting of every group with its mean and interval, each group's best by THE RULE,
    and the differences between groups at their best settings."""
    if metric not in METRICS:
        raise UserError(f"metric must be one of {METRICS}, got {metric!r}")
    labels = list(dict.fromkeys(group_label(r, tuned) for r in runs))
    groups, best_runs = [], {}
    for label in labels:
        members = [r for r in runs if group_label(r, tuned) == label]
        settings = []
        for key in dict.fromkeys(setting_key(r['settings'], tuned) for r in members):
            these = [r for r in members if setting_key(r['settings'], tuned) == key]
            done = [r for r in these if r['value'] is not None]
            stats = mean_interval([r['value'] for r in done], level)
            settings.append(dict(values=dict(zip(tuned, key)), seeds=[r['settings'].get('seed') for r in done],
                                 metrics=[r['value'] for r in done], complete=len(done) == len(these),
                                 missing={r['name']: r['status'] for r in these if r['value'] is None}, **stats))
        best, warnings = choose_best(settings, tuned, grid)
        entry = dict(name=label, settings=settings, warnings=warnings, best=None)
        if best is not None:
            chosen = [r for r in members if setting_key(r['settings'], tuned) == setting_key(best['values'], tuned)]
            best_runs[label] = chosen
            entry['best'] = dict(values=best['values'], runs=[r['name'] for r in chosen],
                                 **{k: best[k] for k in ('seeds', 'metrics', 'n', 'mean', 'sd', 'half_width', 'ci')})
            entry.update({key: mean_of(chosen, key) for key in ('parameters', 'flops_per_token', 'tokens', 'bytes',
                                                                'flops', 'wall_seconds', 'tokens_per_sec',
                                                                'bytes_per_sec')})
            entry['runs_per_device'] = max((r.get('runs_per_device') or 1 for r in chosen), default=1)
        groups.append(entry)
    compared = []
    for a, b in comparison_pairs(comparisons, labels):
        entry = dict(a=a, b=b, paired=None, welch=None, note=None)
        if a in best_runs and b in best_runs:
            ra, rb = best_runs[a], best_runs[b]
            entry['welch'] = welch_difference([r['value'] for r in ra], [r['value'] for r in rb], level)
            entry['note'] = pairable(ra, rb)
            if entry['note'] is None:
                entry['paired'] = paired_difference({r['settings'].get('seed'): r['value'] for r in ra},
                                                    {r['settings'].get('seed'): r['value'] for r in rb}, level)
                if entry['paired'] is None:
                    entry['note'] = "fewer than 2 seeds in common: no paired interval"
        else:
            entry['note'] = "a group has no best setting yet"
        compared.append(entry)
    return dict(metric=metric, lower_is_better=True, level=level, rule=RULE.format(metric=metric), tuned=list(tuned),
                grid=grid, runs=runs, groups=groups, comparisons=compared,
                warnings=[f"{g['name']}: {w}" for g in groups for w in g['warnings']])


# -----------------------------------------------------------------------------
# the Markdown table

def number(x, digits=4):
    return 'n/a' if x is None else f"{x:.{digits}f}"


def interval(stats, digits=4):
    return 'n/a' if not stats or stats.get('ci') is None else f"[{stats['ci'][0]:.{digits}f}, {stats['ci'][1]:.{digits}f}]"


def scaled(x, scale, digits=1, suffix=''):
    return 'n/a' if x is None else f"{x / scale:,.{digits}f}{suffix}"


def si(x, unit=''):
    """3 significant digits with a K, M, G, T, P or E prefix: 28.5M, 10.2P."""
    if x is None:
        return 'n/a'
    for power, prefix in ((18, 'E'), (15, 'P'), (12, 'T'), (9, 'G'), (6, 'M'), (3, 'K')):
        if abs(x) >= 10 ** power:
            return f"{x / 10 ** power:.3g}{prefix}{unit}"
    return f"{x:.3g}{unit}"


def values_text(values):
    """A setting of the tuned keys: the value alone for one key, key value pairs for several."""
    text = {k: f"{v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v) for k, v in values.items()}
    return next(iter(text.values())) if len(text) == 1 else ', '.join(f"{k} {v}" for k, v in text.items())


def markdown(results):
    """The tables of a summary: best against best, every setting, the differences, the warnings."""
    m, pct = results['metric'], int(round(100 * results['level']))
    lines = [f"Metric: final {m} (lower is better); {pct}% Student-t intervals over seeds.", "",
             f"Rule: {results['rule']}.", "", "### Best against best", "",
             f"| group | best {', '.join(results['tuned'])} | seeds | {m} mean | {pct}% interval | parameters | "
             f"GFLOP/token | tokens | bytes of text | training FLOPs | tokens/s | bytes/s |",
             '|' + ' --- |' * 12]
    for g in results['groups']:
        b = g['best']
        if b is None:
            lines.append(f"| {g['name']} | none | 0 |" + ' n/a |' * 9)
            continue
        lines.append(f"| {g['name']} | {values_text(b['values'])} | {b['n']} | {number(b['mean'])} | {interval(b)} | "
                     f"{scaled(g['parameters'], 1, 0)} | {scaled(g['flops_per_token'], 1e9, 4)} | {si(g['tokens'])} | "
                     f"{si(g['bytes'], 'B')} | {si(g['flops'])} | {scaled(g['tokens_per_sec'], 1, 0)} | "
                     f"{scaled(g['bytes_per_sec'], 1, 0)} |")
    shared = max((g.get('runs_per_device') or 1 for g in results['groups'] if g['best']), default=1)
    if shared > 1:
        lines += ["", f"tokens/s and bytes/s: of runs that shared their device, up to {shared} at a time "
                      f"(sweep.py --parallel): compare speed from runs that had it alone."]
    lines += ["", "### Every setting (* = the group's best)", "",
              f"| group | {', '.join(results['tuned'])} | seeds | {m} mean | {pct}% interval | not finished |",
              '|' + ' --- |' * 6]
    for g in results['groups']:
        for s in g['settings']:
            star = '*' if g['best'] is not None and s['values'] == g['best']['values'] else ''
            missing = ', '.join(f"{name} ({status})" for name, status in s['missing'].items()) or ''
            lines.append(f"| {g['name']} | {values_text(s['values'])}{star} | {s['n']} | {number(s['mean'])} | "
                         f"{interval(s)} | {missing} |")
    if results['comparisons']:
        lines += ["", "### Differences at each group's best (B - A; negative: B is better)", "",
                  f"| A | B | paired seeds | paired mean | {pct}% interval | p | Welch mean | {pct}% interval | p |",
                  '|' + ' --- |' * 9]
        for c in results['comparisons']:
            p, w = c['paired'], c['welch']
            lines.append(f"| {c['a']} | {c['b']} | {p['n'] if p else 0} | {number(p and p['mean'])} | {interval(p)} | "
                         f"{number(p and p['p'], 3)} | {number(w and w['mean'])} | {interval(w)} | "
                         f"{number(w and w['p'], 3)} |")
        notes = [f"- {c['a']} / {c['b']}: {c['note']}" for c in results['comparisons'] if c['note']]
        if notes:
            lines += [""] + notes
    if results['warnings']:
        lines += ["", "### Warnings", ""] + [f"- {w}" for w in results['warnings']]
    return '\n'.join(lines) + '\n'


# -----------------------------------------------------------------------------
# figures (matplotlib, Agg)

CURVE_AXES = (('tokens', 'tokens'), ('bytes', 'bytes of text (tokens x train bytes per token)'),
              ('flops', 'training FLOPs (tokens x flops_per_token)'), ('wall', 'wall time (s)'))


def draw_figures(results, folder, dpi=120):
    """curves.png: each group's best-setting runs, validation curve against tokens, bytes of text,
    FLOPs and wall time; tuning.png: each setting's mean and interval against the tuned key (the
    first one, where its values are numbers). Returns the paths written (none where there is nothing
    to draw yet), or None without matplotlib."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    os.makedirs(folder, exist_ok=True)
    written = []
    for name, draw in (('curves.png', draw_curves), ('tuning.png', draw_tuning)):
        fig = draw(results, plt)
        if fig is not None:
            written.append(os.path.join(folder, name))
            fig.savefig(written[-1], dpi=dpi)
            plt.close(fig)
    return written


def draw_curves(results, plt):
    y_key = 'val_loss' if results['metric'] == 'val_loss' else 'val_bpb'
    best = [g for g in results['groups'] if g['best'] is not None]
    if not best:
        return None
    runs = {r['name']: r for r in results['runs']}
    colors = plt.rcParams['axes.prop_cycle'].by_key()['color']
    fig, axes = plt.subplots(2, 2, figsize=(12, 9))
    drawn = set()
    for i, g in enumerate(best):
        for j, name in enumerate(g['best']['runs']):
            run = runs[name]
            factors = dict(tokens=1.0, wall=None, bytes=run.get('train_bytes_per_token'),
                           flops=run.get('flops_per_token'))
            points = [e for e in run.get('curve') or [] if e.get(y_key) is not None and (e.get('tokens') or 0) > 0]
            for ax, (x, label) in zip(axes.flat, CURVE_AXES):
                xs = ([e['wall'] for e in points] if x == 'wall' else
                      [e['tokens'] * factors[x] for e in points] if factors[x] else [])
                if xs and all(v is not None for v in xs):
                    drawn.add(x)
                    ax.plot(xs, [e[y_key] for e in points], color=colors[i % len(colors)], alpha=0.8,
                            label=(f"{g['name']} ({values_text(g['best']['values'])})" if g['best']['values']
                                   else g['name']) if j == 0 else None)
                ax.set_xlabel(label)
    for ax, (x, _) in zip(axes.flat, CURVE_AXES):
        ax.set_ylabel(y_key.replace('_', ' '))
        ax.grid(alpha=0.3)
        if x not in drawn:
            ax.text(0.5, 0.5, f"no {x} in the run logs", ha='center', va='center', transform=ax.transAxes)
    if drawn:
        axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"{y_key.replace('_', ' ')} at each group's best setting (one line per seed)")
    fig.tight_layout()
    return fig


def draw_tuning(results, plt):
    key = results['tuned'][0] if results['tuned'] else None
    if not key or not all(isinstance(v, (int, float)) for v in results['grid'].get(key, [])):
        return None
    colors = plt.rcParams['axes.prop_cycle'].by_key()['color']
    lines = [(i, g['name'], sorted((s['values'][key], s['mean'], s['half_width'] or 0.0) for s in g['settings']
                                   if s['mean'] is not None)) for i, g in enumerate(results['groups'])]
    lines = [line for line in lines if line[2]]
    if not lines:
        return None
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for i, name, points in lines:
        ax.errorbar([p[0] for p in points], [p[1] for p in points], yerr=[p[2] for p in points], marker='o',
                    capsize=3, color=colors[i % len(colors)], label=name)
    ax.set_xscale('log')
    ax.set_xlabel(key)
    ax.set_ylabel(f"final {results['metric']} (mean, {int(round(100 * results['level']))}% interval)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
