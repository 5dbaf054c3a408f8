"""
Fit a scaling law to a ladder of runs: validation bits per byte against parameters N and data D.

    python flops_parameter_counting/scaling_fit.py out-ladder-llama-* out-ladder-gpt2-* \
        --predict N=1.147e9,D=1.8e10 --json fit.json
    python flops_parameter_counting/scaling_fit.py points.csv --bootstrap 200 --seed 1

Each run (a train.py out_dir or run_*.json) gives a point (N, D, bits per byte) at its final
evaluation, or at the evaluations named after '@' (RUN@2000,4000: the ends of a WSD schedule's
decays); a points file (.csv or .json) gives them directly. The runs of each architecture are fitted
to Hoffmann et al.'s form

    L(N, D) = E + A / N^alpha + B / D^beta

as their approach 3 does: a Huber loss on log L, minimized (Levenberg-Marquardt on the Huber
loss's reweighted least squares) from a grid of starts, in log space (a = log A, b = log B,
e = log E). A ladder whose D is tied to N (one tokens-per-parameter ratio) cannot tell N's term from
D's: it is fitted as L(N) = E + A / N^alpha, the tie folded in, and the output says so. Intervals
come from a bootstrap over the runs (fixed seed); a gap between two architectures at a queried
(N, D) from each one's bootstrap, drawn independently. Standard library only, like the cost tool.
Method, units and sources: README.md beside this file ("Fitting a ladder").
"""

import argparse
import csv
import difflib
import json
import math
import os
import random
import sys

TOOL_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(TOOL_DIR))  # the repo root: configurator, runlog, model_config (standard library only)
from configurator import UserError  # noqa: E402  the project's one: a mistake of the user's, one line and exit 2
from flops_parameter_counting.detailed_cost_analysis import (  # noqa: E402  model.py's count; the one-line parser
    ArgumentParser, count_parameters, resolve_shape)
from model_config import MODEL_FIELDS, PRESETS  # noqa: E402
from runlog import read_run_log  # noqa: E402  the run log's one reader


# -----------------------------------------------------------------------------
# the law: L = E + sum over its terms of C / X^p. A form is its terms, (coefficient, exponent, variable).

FORMS = {
    'full': (('A', 'alpha', 'N'), ('B', 'beta', 'D')),
    'N': (('A', 'alpha', 'N'),),   # D tied to N (or fixed): L(N) = E + A / N^alpha
    'D': (('B', 'beta', 'D'),),    # N fixed: L(D) = E + B / D^beta
}
FORM_NAMES = {'full': 'L(N, D) = E + A / N^alpha + B / D^beta', 'N': 'L(N) = E + A / N^alpha',
              'D': 'L(D) = E + B / D^beta'}
HUBER_DELTA = 1e-3   # Hoffmann et al. 2022, appendix D.2: Huber delta 10^-3 on log L
CONFIDENCE = 0.95    # the percentile interval of the bootstrap
# Below this factor of spread, a variable counts as held fixed: D tied to N (its spread about the
# ladder's line log D = c + gamma log N), N fixed, or D fixed. A factor of 2 in D moves B / D^beta by
# 2^-0.3 = 0.81 at beta 0.3: less is a term the fit cannot separate from E and the other term.
IDENTIFIABLE_SPREAD = 2.0
# the grid of exponents the starts are made from (each with its E, A, B by non-negative least squares)
START_EXPONENTS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0, 1.5)
STARTS_KEPT = 3      # the best grid starts polished by Levenberg-Marquardt (the bootstrap adds the full fit's)
MAX_ITERATIONS = 500


def power(log_coefficient, exponent, x):
    """C / x^p from log C: a bootstrap refit can run an exponent far past the data (the term then
    vanishes inside the ladder's range) with log C beyond a float's range; the term is still finite
    at the ladder's sizes, and infinite only where it truly overflows."""
    value = log_coefficient - exponent * math.log(x)
    return math.exp(value) if value < 709 else math.inf


def predict(params, form, n, d):
    """The law's bits per byte at N = n, D = d."""
    return params['E'] + sum(power(params['log_' + c] if 'log_' + c in params else math.log(params[c]), params[p],
                                   {'N': n, 'D': d}[x]) if params[c] > 0 else 0.0
                             for c, p, x in FORMS[form])


def huber(r, delta):
    return 0.5 * r * r if abs(r) <= delta else delta * (abs(r) - 0.5 * delta)


class Problem:
    """The points of one fit, in the coordinates the optimizer works in: y = log L, and for each term
    z = log X - its mean (centering decorrelates a term's log coefficient from its exponent).
    theta = [e, c_1, p_1, c_2, p_2], c_k the log coefficient at the centre: a_k = c_k + p_k mean(log X)."""

    def __init__(self, points, form, delta):
        self.form, self.delta = form, delta
        self.y = [math.log(bpb) for _, _, bpb in points]
        self.L = [bpb for _, _, bpb in points]
        self.centre, self.z = [], []
        for _, _, x in FORMS[form]:
            logs = [math.log(n if x == 'N' else d) for n, d, _ in points]
            mean = sum(logs) / len(logs)
            self.centre.append(mean)
            self.z.append([v - mean for v in logs])
        self.by_point = list(zip(self.y, *self.z))  # (log L, z_1, ...) of each point

    def centred(self, natural):
        """[e, a, alpha, (b, beta)] -> theta."""
        theta = [natural[0]]
        for k, mean in enumerate(self.centre):
            a, p = natural[1 + 2 * k], natural[2 + 2 * k]
            theta += [a - p * mean, p]
        return theta

    def natural(self, theta):
        out = [theta[0]]
        for k, mean in enumerate(self.centre):
            c, p = theta[1 + 2 * k], theta[2 + 2 * k]
            out += [c + p * mean, p]
        return out

    def params(self, theta):
        nat = self.natural(theta)
        params = {'E': math.exp(nat[0])}
        for k, (c, p, _) in enumerate(FORMS[self.form]):
            log_c = nat[1 + 2 * k]
            params[c], params['log_' + c], params[p] = (math.exp(log_c) if log_c < 709 else math.inf), log_c, nat[2 + 2 * k]
        return params

    def residuals(self, theta, jacobian=False):
        """r_i = log L_hat - log L_i, with log L_hat = logsumexp(e, c_k - p_k z_k) (and dr/dtheta)."""
        e, terms = theta[0], [(theta[1 + 2 * k], theta[2 + 2 * k]) for k in range(len(self.z))]
        exp, log = math.exp, math.log
        rs, rows = [], []
        for y, *zs in self.by_point:
            parts = [c - p * z for (c, p), z in zip(terms, zs)]
            top = max(e, *parts)
            w0 = exp(e - top)
            ws = [exp(v - top) for v in parts]
            total = w0 + sum(ws)
            rs.append(top + log(total) - y)
            if jacobian:
                row = [w0 / total]
                for w, z in zip(ws, zs):
                    row += (w / total, -w / total * z)
                rows.append(row)
        return (rs, rows) if jacobian else rs

    def objective(self, theta):
        try:
            return sum(huber(r, self.delta) for r in self.residuals(theta))
        except OverflowError:
            return math.inf


def solve(matrix, vector):
    """x with matrix x = vector (Gaussian elimination, partial pivoting); None if singular."""
    n = len(vector)
    m = [list(row) + [v] for row, v in zip(matrix, vector)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        if abs(m[pivot][col]) < 1e-300:
            return None
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(col + 1, n):
            f = m[r][col] / m[col][col]
            for c in range(col, n + 1):
                m[r][c] -= f * m[col][c]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (m[r][n] - sum(m[r][c] * x[c] for c in range(r + 1, n))) / m[r][r]
    return x


def levenberg_marquardt(problem, theta):
    """Minimize the Huber loss on log L from theta: each step solves the reweighted least squares
    (J^T W J + lambda diag) step = -J^T W r, with Huber's weights w = min(1, delta / |r|), so that
    J^T W r is the loss's gradient and J^T W J majorizes its curvature; a step is taken only if the
    loss falls. Returns (theta, loss)."""
    delta, lam = problem.delta, 1e-3
    loss = problem.objective(theta)
    for _ in range(MAX_ITERATIONS):
        rs, rows = problem.residuals(theta, jacobian=True)
        w = [min(1.0, delta / abs(r)) if r else 1.0 for r in rs]
        n = len(theta)
        grad, hess = [0.0] * n, [[0.0] * n for _ in range(n)]
        for wi, ri, row in zip(w, rs, rows):
            for j in range(n):
                grad[j] += wi * ri * row[j]
                wj = wi * row[j]
                hj = hess[j]
                for k in range(j + 1):
                    hj[k] += wj * row[k]
        for j in range(n):
            for k in range(j):
                hess[k][j] = hess[j][k]
        while True:
            damped = [[hess[j][k] + (lam * (hess[j][j] + 1e-12) if j == k else 0.0) for k in range(n)] for j in range(n)]
            step = solve(damped, [-g for g in grad])
            trial = [t + s for t, s in zip(theta, step)] if step is not None else theta
            new_loss = problem.objective(trial) if step is not None else math.inf
            if new_loss < loss:
                lam = max(lam / 3, 1e-12)
                break
            lam *= 4
            if lam > 1e12:  # no step lowers the loss: a minimum, to the precision of floats
                return theta, loss
        improvement = loss - new_loss
        theta, loss = trial, new_loss
        if improvement <= 1e-10 * loss + 1e-24:  # the loss has stopped falling (noise-free points: to ~1e-12 in r)
            break
    return theta, loss


def nonnegative_least_squares(gram, rhs):
    """x >= 0 minimizing ||X x - t||^2, given X^T X (gram) and X^T t (rhs), for up to 3 columns: the
    unconstrained solution where it is >= 0, else the best such solution on a subset of the columns.
    Returns (x, ||X x - t||^2 - t^T t)."""
    n = len(rhs)

    def on(idx):
        x = solve([[gram[j][k] for k in idx] for j in idx], [rhs[j] for j in idx])
        if x is None or min(x) < 0:
            return None
        full = [0.0] * n
        for a, j in enumerate(idx):
            full[j] = x[a]
        return full, -sum(xj * rj for xj, rj in zip(full, rhs))  # at a least-squares solution x'Gx = x'r

    every = on(list(range(n)))
    if every is not None:
        return every
    subsets = [on([j for j in range(n) if mask >> j & 1]) for mask in range(1, 2 ** n - 1)]
    return min((s for s in subsets if s is not None), key=lambda s: s[1], default=([0.0] * n, 0.0))


def grid_starts(problem):
    """Starts for the optimizer: for each exponent (pair) of the grid, E and the coefficients by
    non-negative least squares in L, relative (each point weighted by 1 / L); the STARTS_KEPT best."""
    K = len(problem.z)
    m = len(problem.L)
    floor = 1e-4 * sum(problem.L) / m  # a zero coefficient, in log space
    ones = [1 / L for L in problem.L]  # E's column; the target is 1 for every point
    # each term's column for each exponent, and its products with E's column and the target
    cols = [{p: [math.exp(-p * z) / L for z, L in zip(problem.z[k], problem.L)] for p in START_EXPONENTS}
            for k in range(K)]
    dot = lambda a, b: sum(x * y for x, y in zip(a, b))  # noqa: E731
    g00, r0 = dot(ones, ones), sum(ones)
    cross = [{p: (dot(c, ones), dot(c, c), sum(c)) for p, c in cols[k].items()} for k in range(K)]
    scored = []
    combos = [(p,) for p in START_EXPONENTS] if K == 1 else [(p, q) for p in START_EXPONENTS for q in START_EXPONENTS]
    for exps in combos:
        gram = [[g00] + [cross[k][p][0] for k, p in enumerate(exps)]]
        for k, p in enumerate(exps):
            gram.append([cross[k][p][0]] + [cross[k][p][1] if j == k else dot(cols[k][p], cols[j][q])
                                            for j, q in enumerate(exps)])
        rhs = [r0] + [cross[k][p][2] for k, p in enumerate(exps)]
        x, score = nonnegative_least_squares(gram, rhs)
        theta = [math.log(max(x[0], floor))]
        for k, p in enumerate(exps):
            theta += [math.log(max(x[1 + k], floor)), p]
        scored.append((score, theta))
    scored.sort(key=lambda s: s[0])
    return [theta for _, theta in scored[:STARTS_KEPT]]


def fit_law(points, form, delta=HUBER_DELTA, starts=(), kept=STARTS_KEPT):
    """The law of form fitted to points [(N, D, bpb)]: (params, Huber loss, [e, a, alpha, (b, beta)]).
    kept: how many of the grid's best starts to polish; starts: natural parameter vectors
    [e, a, alpha, (b, beta)] to polish besides them."""
    problem = Problem(points, form, delta)
    best = None
    for theta in grid_starts(problem)[:kept] + [problem.centred(s) for s in starts]:
        theta, loss = levenberg_marquardt(problem, theta)
        if best is None or loss < best[1]:
            best = (theta, loss)
    theta, loss = best
    return problem.params(theta), loss, problem.natural(theta)


# -----------------------------------------------------------------------------
# the points: run logs (train.py's, through runlog.py) and points files

class Point:
    """One (N, D, bits per byte); run: its run's name as printed, key: its run (the bootstrap's unit)."""

    def __init__(self, run, key, group, n, d, bpb, iteration=None):
        self.run, self.key, self.group = run, key, group
        self.n, self.d, self.bpb, self.iteration = n, d, bpb, iteration


def is_positive(value):
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and value > 0)


def check_positive(where, name, value):
    if not is_positive(value):
        raise UserError(f"{where}: {name} must be a positive number, got {value!r}")
    return float(value)


def split_selection(arg):
    """'out_dir@2000,4000' -> ('out_dir', [2000, 4000]); 'out_dir' -> ('out_dir', None)."""
    path, sep, tail = arg.rpartition('@')
    if not sep or not tail or os.path.exists(arg):
        return arg, None
    try:
        iters = [int(s) for s in tail.split(',')]
    except ValueError:
        raise UserError(f"{arg}: after '@' give evaluation iterations, e.g. {path}@2000,4000") from None
    return path, iters


def non_embedding_parameters(model_args, total, where):
    """Kaplan et al.'s N: every parameter but the token embedding, learned positions and an untied
    lm_head (the cost tool's count of those, model.py's shape); total is model.py's own count."""
    fields = {k: v for k, v in model_args.items() if k in MODEL_FIELDS}
    parts = count_parameters(resolve_shape(f"{where}: model_args", **fields))
    return total - parts['token embedding'] - parts.get('position embedding', 0) - parts['lm_head']


# the fields that make an architecture: a run that sets one off its arch's preset is a group of its own
COMPONENTS = ('norm', 'position', 'mlp', 'norm_placement', 'tie_embeddings', 'bias')


def architecture(model_args):
    """A run's group: its arch, and each component it sets off the arch's preset ('gpt2 (position rope)')."""
    arch = model_args['arch']
    preset = PRESETS.get(arch, {})
    changed = [f"{key} {model_args[key]}" for key in COMPONENTS
               if key in preset and key in model_args and model_args[key] != preset[key]]
    return arch + (f" ({', '.join(changed)})" if changed else "")


def run_points(arg, parameters, data):
    """The points of one run log (their group not yet set), its architecture, its dataset, its path, and
    whether it read its data more than once."""
    path, iters = split_selection(arg)
    where, log = read_run_log(path)
    log_path = where
    env, config = log['env'], log.get('config') or {}
    model_args = log.get('model_args')
    if not isinstance(model_args, dict) or 'arch' not in model_args:
        raise UserError(f"{where} has no model_args: give a run log written by train.py")
    evals = [e for e in log['evals'] if isinstance(e, dict) and e.get('val_bpb') is not None]
    if not evals:
        reason = ("its evaluations have no val_bpb (its dataset's meta.pkl has no byte counts)" if log['evals']
                  else "it has no evaluations")
        raise UserError(f"{where}: {reason}; fit runs that evaluated bits per byte")
    if iters is None:
        chosen = [max(evals, key=lambda e: e['iter'])]
        max_iters = config.get('max_iters')
        if isinstance(max_iters, int) and chosen[0]['iter'] < max_iters:
            raise UserError(f"{where}: its last evaluation is at iter {chosen[0]['iter']} of max_iters {max_iters}: "
                            f"the run has not finished (nor its learning-rate decay); resume it, or pass "
                            f"{path}@{chosen[0]['iter']} to fit that evaluation all the same")
    else:
        by_iter = {e['iter']: e for e in evals}
        missing = [i for i in iters if i not in by_iter]
        if missing:
            raise UserError(f"{where}: no evaluation with val_bpb at iter {', '.join(map(str, missing))} "
                            f"(it has {', '.join(str(e['iter']) for e in evals)})")
        chosen = [by_iter[i] for i in iters]
    total = env.get('parameters')
    check_positive(where, "env's parameters", total)
    n = total if parameters == 'total' else non_embedding_parameters(model_args, total, where)
    check_positive(where, f"its {parameters.replace('_', '-')} parameters", n)
    if data == 'bytes':
        per_token = env.get('train_bytes_per_token')
        if per_token is None:
            raise UserError(f"{where}: its env has no train_bytes_per_token (the dataset's meta.pkl has no byte "
                            f"counts): fit in tokens with --data tokens")
        per_token = check_positive(where, "env's train_bytes_per_token", per_token)
    else:
        per_token = 1.0
    points = []
    for e in chosen:
        tokens = check_positive(where, f"the tokens of its evaluation at iter {e['iter']}", e.get('tokens'))
        bpb = check_positive(where, f"val_bpb at iter {e['iter']}", e['val_bpb'])
        points.append(Point(path, os.path.abspath(log_path), None, float(n), tokens * per_token, bpb, e['iter']))
    epochs = [r.get('epoch') for r in log['iters'] if isinstance(r, dict) and r.get('epoch') is not None]
    repeated = bool(epochs) and max(epochs) > 1.0001
    return points, architecture(model_args), config.get('dataset'), os.path.abspath(log_path), repeated


POINT_KEYS = ('N', 'D', 'bpb', 'arch', 'run')


def file_points(path, rows):
    """Points from a points file's rows (dicts): N, D, bpb and optionally arch (the group) and run
    (the bootstrap's unit; each row its own run by default)."""
    where = path
    if not rows:
        raise UserError(f"{where} holds no points: give rows of N, D, bpb")
    points = []
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise UserError(f"{where}: point {i} is not an object with N, D, bpb")
        for key in row:
            if key not in POINT_KEYS:
                match = difflib.get_close_matches(key, POINT_KEYS, n=1)
                raise UserError(f"{where}: point {i}: unknown key {key!r}" +
                                (f" (did you mean {match[0]!r}?)" if match else f" (known: {', '.join(POINT_KEYS)})"))
        values = []
        for key in ('N', 'D', 'bpb'):
            if key not in row:
                raise UserError(f"{where}: point {i} has no {key}")
            value = row[key]
            if isinstance(value, str):  # a CSV cell
                try:
                    value = float(value)
                except ValueError:
                    raise UserError(f"{where}: point {i}: {key} must be a positive number, got {row[key]!r}") from None
            values.append(check_positive(f"{where}: point {i}", key, value))
        group = str(row.get('arch') or os.path.basename(path))
        run = str(row['run']) if row.get('run') not in (None, '') else str(i)
        points.append(Point(f"{os.path.basename(path)}:{run}", (os.path.abspath(path), run), group, *values))
    return points


def read_points_file(path):
    where = path
    try:
        with open(path, encoding='utf-8', newline='') as f:
            if path.endswith('.csv'):
                return [dict(row) for row in csv.DictReader(f)]
            data = json.load(f)
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read {where}: {e}") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{where}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except csv.Error as e:
        raise UserError(f"{where}: invalid CSV: {e}") from None
    if isinstance(data, dict) and 'points' in data:
        data = data['points']
    if not isinstance(data, list):
        raise UserError(f"{where} is neither a train.py run log nor a points file (a list of {{N, D, bpb}} "
                        f"or {{\"points\": [...]}})")
    return data


def is_run_log(path):
    """A run log (or its out_dir, or its .jsonl twin), not a points file."""
    if os.path.isdir(path) or path.endswith('.jsonl'):
        return True
    if path.endswith('.csv'):
        return False
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return True  # read_run_log says what is wrong with it
    return isinstance(data, dict) and 'points' not in data


def load_points(args, parameters, data):
    """Every point of the RUNS arguments, each with its group: a run log's architecture (its arch and
    any component off the preset; and its dataset, where one architecture's runs train on several), a
    points file's arch column.
    Also the notes to print."""
    points, logs, seen, notes, files = [], [], {}, [], 0
    for arg in args:
        path, iters = split_selection(arg)
        if not os.path.exists(path):
            raise UserError(f"{path} does not exist: give train.py out_dirs, run logs (run_*.json) or points files "
                            f"(.csv, .json)")
        if is_run_log(path):
            pts, arch, dataset, key, repeated = run_points(arg, parameters, data)
            if key in seen:
                raise UserError(f"{arg} and {seen[key]} are the same run log: give each run once "
                                f"(RUN@ITER,ITER for several of its evaluations)")
            seen[key] = arg
            if repeated:
                notes.append(f"{path} trained on more than one epoch: its D counts repeated data")
            logs.append((pts, arch, dataset))
        else:
            if iters is not None:
                raise UserError(f"{arg}: @ITER names evaluations of a run log, and {path} is a points file")
            points += file_points(path, read_points_file(path))
            files += 1
    datasets = {}
    for _, arch, dataset in logs:
        datasets.setdefault(arch, set()).add(dataset)
    for pts, arch, dataset in logs:
        for p in pts:
            p.group = arch if len(datasets[arch]) == 1 else f"{arch} on {dataset}"
        points += pts
    return points, notes, {'run_logs': len(logs), 'points_files': files}


# -----------------------------------------------------------------------------
# the design: which form its points can identify

def spread(values):
    return max(values) - min(values)


def levels(logs):
    """How many distinct values (more than 5% apart) a variable takes: a power law with its constant
    needs 3."""
    s = sorted(logs)
    return 1 + sum(b - a > math.log(1.05) for a, b in zip(s, s[1:]))


def tie_line(points):
    """The least-squares line log D = log k + gamma log N: {'k', 'gamma'}, and each point's log distance
    from it."""
    u = [math.log(p.n) for p in points]
    v = [math.log(p.d) for p in points]
    mu, mv = sum(u) / len(u), sum(v) / len(v)
    gamma = sum((a - mu) * (b - mv) for a, b in zip(u, v)) / sum((a - mu) ** 2 for a in u)
    return {'k': math.exp(mv - gamma * mu), 'gamma': gamma}, [b - mv - gamma * (a - mu) for a, b in zip(u, v)]


def design(points):
    """(form, tie): the full form where N and D vary apart; else the reduced form and what holds the
    other variable: {'D': fixed} or {'N': fixed} (geometric means), or {'k', 'gamma'} with
    D = k N^gamma (tie_line)."""
    u = [math.log(p.n) for p in points]
    v = [math.log(p.d) for p in points]
    small = math.log(IDENTIFIABLE_SPREAD)
    if spread(u) < small and spread(v) < small:
        return None, None
    if spread(u) < small:
        return 'D', {'N': math.exp(sum(u) / len(u))}
    if spread(v) < small:
        return 'N', {'D': math.exp(sum(v) / len(v))}
    line, off_line = tie_line(points)
    return ('N', line) if spread(off_line) < small else ('full', None)


def describe_tie(tie):
    if tie is None:
        return "N and D vary apart"
    if 'k' in tie:
        ratio = f"{tie['k']:.4g} N" if abs(tie['gamma'] - 1) < 0.005 else f"{tie['k']:.4g} N^{tie['gamma']:.4f}"
        return (f"D is tied to N (D = {ratio}): N's and D's terms cannot be told apart, so the fit is "
                f"the reduced form with D's term folded into A / N^alpha; it predicts only along that line")
    if 'D' in tie:
        return (f"D is fixed ({tie['D']:.4g}): E includes D's term B / D^beta; the fit predicts only at that D")
    return f"N is fixed ({tie['N']:.4g}): E includes N's term A / N^alpha; the fit predicts only at that N"


# -----------------------------------------------------------------------------
# the fit of a group, its bootstrap, and predictions

def percentile(values, q):
    """The q-quantile (0..1) of values, linear between order statistics."""
    s = sorted(values)
    pos = q * (len(s) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def interval(values):
    tail = (1 - CONFIDENCE) / 2
    return [percentile(values, tail), percentile(values, 1 - tail)] if values else None


def query_point(query, form, tie):
    """(N, D) at which the form predicts for a query {'N', 'D'?}, and a note where the reduced form
    moved the query onto its ladder's line."""
    n, d = query['N'], query.get('D')
    if form == 'full' or tie is None:
        return n, d, None
    if 'k' in tie:
        on_line = tie['k'] * n ** tie['gamma']
        moved = d is not None and abs(math.log(d / on_line)) > math.log(1.01)
        return n, on_line, (f"D = {d:.4g} is off the ladder's line: predicted at D = {on_line:.4g}" if moved else None)
    if 'D' in tie:
        moved = d is not None and abs(math.log(d / tie['D'])) > math.log(1.01)
        return n, tie['D'], (f"D = {d:.4g} is not the ladder's: predicted at D = {tie['D']:.4g}" if moved else None)
    moved = abs(math.log(n / tie['N'])) > math.log(1.01)
    return tie['N'], d, (f"N = {n:.4g} is not the ladder's: predicted at N = {tie['N']:.4g}" if moved else None)


def plan_group(label, points, form_choice, queries):
    """The form a group's points are fitted to, what holds the other variable (the tie), and a line that
    says so; a UserError where the points cannot identify the form, or a query lacks what it needs."""
    form, tie = design(points)
    if form is None:
        raise UserError(f"{label}: every point has the same N and D (within a factor of {IDENTIFIABLE_SPREAD:g}): "
                        f"a fit needs runs of several sizes or token counts")
    described = describe_tie(tie)
    if form_choice == 'full' and form != 'full':
        form, described = 'full', described.split(':')[0] + ": --form full fits all the same, its terms unidentified"
    elif form_choice == 'reduced' and form == 'full':
        form, tie = 'N', tie_line(points)[0]
        described = (f"--form reduced: L(N) along the ladder's line D = {tie['k']:.4g} N^{round(tie['gamma'], 3) + 0.0:g}, "
                     f"D's term folded in, the points' spread about the line left to the residuals")
    n_params = 1 + 2 * len(FORMS[form])
    if len(points) < n_params + 1:
        raise UserError(f"{label}: {len(points)} points for the {n_params} parameters of {FORM_NAMES[form]}: "
                        f"the fit needs at least {n_params + 1}; add runs")
    for term in FORMS[form]:
        variable = term[2]
        count = levels([math.log(p.n if variable == 'N' else p.d) for p in points])
        if count < 3:
            raise UserError(f"{label}: {variable} takes {count} distinct values: {term[0]} / {variable}^{term[1]} "
                            f"with its constant needs at least 3; add runs of other "
                            + ("sizes" if variable == 'N' else "token counts"))
    for q in queries:
        if form in ('full', 'D') and 'D' not in q:
            raise UserError(f"--predict N={q['N']:g}: {label}'s fit needs D too: give N=...,D=...")
    return form, tie, described


def identifiable(sample, form, n_params):
    """Whether a bootstrap resample [(N, D, bpb)] can identify the form: as many distinct points as
    parameters, and 3 distinct values of each term's variable."""
    if len({(n, d) for n, d, _ in sample}) < n_params:
        return False
    return all(levels([math.log(n if x == 'N' else d) for n, d, _ in sample]) >= 3 for _, _, x in FORMS[form])


def fit_group(label, points, plan, queries, replicates, seed, delta):
    """One group's fit: its parameters with intervals, residuals, predictions, bootstrap draws."""
    form, tie, described = plan
    n_params = 1 + 2 * len(FORMS[form])
    triples = [(p.n, p.d, p.bpb) for p in points]
    params, loss, natural = fit_law(triples, form, delta)
    located = [query_point(q, form, tie) for q in queries]
    predictions = [predict(params, form, n, d) for n, d, _ in located]

    runs = list(dict.fromkeys(p.key for p in points))
    by_run = {r: [(p.n, p.d, p.bpb) for p in points if p.key == r] for r in runs}
    rng = random.Random(f"{seed}:{label}")  # a string seed: the same draws in every Python process
    draws, redrawn, tries = [], 0, 0
    while len(draws) < replicates:
        tries += 1
        if tries > 100 * replicates + 100:
            raise UserError(f"{label}: too few distinct runs to bootstrap: most resamples of its {len(runs)} runs "
                            f"cannot identify {FORM_NAMES[form]}; add runs")
        sample = [pt for _ in runs for pt in by_run[rng.choice(runs)]]
        if not identifiable(sample, form, n_params):
            redrawn += 1
            continue
        p, _, _ = fit_law(sample, form, delta, starts=[natural], kept=1)  # the full data's optimum, and the grid's best
        draws.append({'params': p, 'predictions': [predict(p, form, n, d) for n, d, _ in located]})

    names = ['E'] + [name for term in FORMS[form] for name in term[:2]]
    return {
        'form': form, 'law': FORM_NAMES[form], 'design': described, 'tie': tie if form != 'full' else None,
        'runs': len(runs), 'huber_loss': loss,
        'parameters': {k: {'value': params[k], 'interval': interval([d['params'][k] for d in draws])} for k in names},
        'points': [{'run': p.run, 'iter': p.iteration, 'N': p.n, 'D': p.d, 'bpb': p.bpb,
                    'fit': predict(params, form, p.n, p.d), 'residual': p.bpb - predict(params, form, p.n, p.d)}
                   for p in points],
        'rms_residual': math.sqrt(sum((p.bpb - predict(params, form, p.n, p.d)) ** 2 for p in points) / len(points)),
        'predictions': [{'N': n, 'D': d, 'bpb': pred, 'interval': interval([dr['predictions'][i] for dr in draws]),
                         'note': note}
                        for i, ((n, d, note), pred) in enumerate(zip(located, predictions))],
        'bootstrap': {'replicates': replicates, 'redrawn': redrawn},
        '_draws': [d['predictions'] for d in draws],
    }


def gaps(fits, queries):
    """For each pair of groups (in the order given) and each query: the second's bpb minus the first's,
    its interval from the two bootstraps paired draw by draw (independent draws: runs of two
    architectures share nothing to pair on)."""
    out = []
    labels = list(fits)
    for i, first in enumerate(labels):
        for second in labels[i + 1:]:
            for q, (a, b) in enumerate(zip(fits[first]['predictions'], fits[second]['predictions'])):
                da, db = fits[first]['_draws'], fits[second]['_draws']
                diffs = [y[q] - x[q] for x, y in zip(da, db)]
                out.append({'query': queries[q], 'first': first, 'second': second,
                            'first_at': [a['N'], a['D']], 'second_at': [b['N'], b['D']],
                            'gap': b['bpb'] - a['bpb'], 'interval': interval(diffs),
                            'second_lower_fraction': sum(d < 0 for d in diffs) / len(diffs) if diffs else None})
    return out


# -----------------------------------------------------------------------------
# output

def fmt_interval(iv, spec):
    return f"[{iv[0]:{spec}}, {iv[1]:{spec}}]" if iv else ""


def print_report(result):
    m = result['method']
    units = f"N = {m['N']}, D = {m['D']}"
    if not m['sources']['run_logs']:
        units = "N and D as the points file gives them"
    elif m['sources']['points_files']:
        units += " (a points file's: as it gives them)"
    print(f"scaling fit of validation bits per byte; {units}")
    print(f"Huber loss (delta {m['huber_delta']:g}) on log L, Levenberg-Marquardt from a grid of starts; "
          + (f"{m['bootstrap']} bootstrap resamples of the runs (seed {m['seed']}), {CONFIDENCE:.0%} percentile intervals"
             if m['bootstrap'] else "no bootstrap (--bootstrap 0): no intervals"))
    for label, f in result['fits'].items():
        print(f"\n{label}: {f['runs']} runs, {len(f['points'])} points: {f['law']}")
        print(f"  {f['design']}")
        if f['bootstrap']['redrawn']:
            print(f"  {f['bootstrap']['redrawn']} resamples that could not identify the form (fewer distinct points than "
                  f"parameters, or 2 sizes or token counts) were drawn again")
        print(f"  {'parameter':<10}{'fit':>12}   {CONFIDENCE:.0%} interval")
        for name, p in f['parameters'].items():
            print(f"  {name:<10}{p['value']:>12.5g}   {fmt_interval(p['interval'], '.5g')}")
        iters = any(p['iter'] is not None for p in f['points'])  # run logs' points: the evaluation's iteration
        width = min(40, max(len(p['run']) for p in f['points']) + 2)
        print(f"  {'run':<{width}}" + (f"{'iter':>8}" if iters else "")
              + f"{'N':>11}{'D':>11}{'bpb':>9}{'fit':>9}{'residual':>10}")
        for p in f['points']:
            it = f"{'' if p['iter'] is None else p['iter']:>8}" if iters else ""
            print(f"  {p['run'][-(width - 2):]:<{width}}{it}{p['N']:>11.4g}{p['D']:>11.4g}{p['bpb']:>9.4f}{p['fit']:>9.4f}"
                  f"{p['residual']:>+10.4f}")
        print(f"  rms residual {f['rms_residual']:.4f} bits per byte; Huber loss {f['huber_loss']:.6g}")
    if result['queries']:
        print("\npredictions (bits per byte)")
        for q_index, q in enumerate(result['queries']):
            at = f"N = {q['N']:.4g}" + (f", D = {q['D']:.4g}" if 'D' in q else "")
            print(f"  at {at}")
            for label, f in result['fits'].items():
                pred = f['predictions'][q_index]
                print(f"    {label:<28}{pred['bpb']:.4f}   {fmt_interval(pred['interval'], '.4f')}"
                      + (f"   ({pred['note']})" if pred['note'] else ""))
            for g in result['gaps']:
                if g['query'] is q:
                    share = (f"; {g['second_lower_fraction']:.0%} of draws have {g['second']} lower"
                             if g['second_lower_fraction'] is not None else "")
                    print(f"    {g['second']} - {g['first']}: {g['gap']:+.4f}   "
                          f"{fmt_interval(g['interval'], '+.4f')}{share}")
    for note in result['notes']:
        print(f"note: {note}")


def parse_query(text):
    """'N=1e9,D=2e10' -> {'N': 1e9, 'D': 2e10} (D optional)."""
    query = {}
    for item in text.split(','):
        key, sep, value = item.partition('=')
        key = key.strip()
        if not sep or key not in ('N', 'D'):
            raise UserError(f"--predict {text}: give N=...,D=... (e.g. N=1.1e9,D=2.5e10)")
        try:
            number = float(value)
        except ValueError:
            raise UserError(f"--predict {text}: {key} must be a positive number, got {value!r}") from None
        query[key] = check_positive(f"--predict {text}", key, number)
    if 'N' not in query:
        raise UserError(f"--predict {text}: give N (and D): N=...,D=...")
    return query


def main(argv=None):
    parser = ArgumentParser(description=__doc__.strip().splitlines()[0],
                            epilog="Method, units and sources: flops_parameter_counting/README.md, 'Fitting a ladder'.",
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('runs', nargs='+', metavar='RUN',
                        help="train.py out_dirs or run logs (run_*.json), each its final evaluation, or RUN@ITER,... for "
                             "the evaluations at those iterations; or points files (.csv or .json: N, D, bpb, arch, run)")
    parser.add_argument('--predict', action='append', default=[], metavar='N=...,D=...',
                        help="predict bits per byte at this N and D, with an interval (repeat for several)")
    parser.add_argument('--parameters', choices=('non_embedding', 'total'), default='non_embedding',
                        help="N of a run log: parameters but the token and position embeddings and lm_head "
                             "(default, Kaplan's), or all (Hoffmann's)")
    parser.add_argument('--data', choices=('bytes', 'tokens'), default='bytes',
                        help="D of a run log: training bytes of text (default: tokens x the training split's bytes per "
                             "token) or tokens")
    parser.add_argument('--form', choices=('auto', 'full', 'reduced'), default='auto',
                        help="auto (default): the full form where N and D vary apart, else the reduced L(N)")
    parser.add_argument('--bootstrap', type=int, default=1000, help="resamples of the runs for the intervals (0: none)")
    parser.add_argument('--seed', type=int, default=0, help="the bootstrap's seed")
    parser.add_argument('--huber_delta', type=float, default=HUBER_DELTA, help="Huber's delta on log L (default 1e-3)")
    parser.add_argument('--json', metavar='PATH', help="also write the results as one JSON object to PATH")
    args = parser.parse_args(argv)
    if args.bootstrap < 0:
        raise UserError(f"--bootstrap must be 0 or more, got {args.bootstrap}")
    check_positive('--huber_delta', 'delta', args.huber_delta)
    queries = [parse_query(q) for q in args.predict]

    points, notes, sources = load_points(args.runs, args.parameters, args.data)
    groups = {}
    for p in points:
        groups.setdefault(p.group, []).append(p)
    plans = {label: plan_group(label, pts, args.form, queries) for label, pts in groups.items()}  # every check first
    fits = {label: fit_group(label, pts, plans[label], queries, args.bootstrap, args.seed, args.huber_delta)
            for label, pts in groups.items()}
    for label, f in fits.items():
        notes += [f"{label}: {p['note']}" for p in f['predictions'] if p['note']]
    result = {
        'method': {'N': {'non_embedding': "non-embedding parameters", 'total': "all parameters"}[args.parameters],
                   'D': {'bytes': "training bytes of text", 'tokens': "training tokens"}[args.data],
                   'parameters': args.parameters, 'data': args.data, 'form': args.form, 'sources': sources,
                   'huber_delta': args.huber_delta, 'bootstrap': args.bootstrap, 'seed': args.seed,
                   'confidence': CONFIDENCE},
        'fits': fits, 'queries': queries, 'gaps': gaps(fits, queries), 'notes': notes,
    }
    print_report(result)
    if args.json:
        for f in fits.values():
            f.pop('_draws')
        try:
            with open(args.json, 'w', encoding='utf-8') as out:
                json.dump(result, out, indent=1)
                out.write('\n')
        except OSError as e:
            raise UserError(f"cannot write {args.json}: {e.strerror}") from None
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
