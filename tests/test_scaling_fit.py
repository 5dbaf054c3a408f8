"""
The scaling-law fit (flops_parameter_counting/scaling_fit.py): on points drawn from a known law it
recovers the law, and its bootstrap intervals cover the law's parameters and its bits per byte at a
held-out bigger model; a ladder with D tied to N gets the reduced form; run logs in runlog.py's format
give their points (final or named evaluations, non-embedding N, D in bytes); two architectures get a
gap with an interval; bad input is one line and exit status 2; the standard library is enough.
"""

import csv
import importlib.util
import json
import math
import os
import random
import subprocess
import sys

import pytest

from configurator import UserError
from model_config import ModelConfig
from runlog import RunLog

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(ROOT, 'flops_parameter_counting', 'scaling_fit.py')
spec = importlib.util.spec_from_file_location('scaling_fit', TOOL)
fit = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fit)

# the law the synthetic ladders are drawn from, in bits per byte
TRUE = dict(E=0.8, A=30.0, alpha=0.3, B=50.0, beta=0.3)
SIZES = (1e7, 2.5e7, 6.3e7, 1.6e8)     # N over 16x
BYTES = (3e8, 1e9, 3e9, 9e9)           # D over 30x
HELD_OUT = (1e9, 2e10)                 # a bigger model, on more data than any run


def law(n, d, params=TRUE):
    return params['E'] + params['A'] / n ** params['alpha'] + params['B'] / d ** params['beta']


def ladder(sigma, seed=0):
    """4 sizes x 4 data sizes, each its own run, bits per byte from TRUE plus Gaussian noise of sigma."""
    rng = random.Random(seed)
    return [dict(arch='synthetic', run=f'r{i}', N=n, D=d, bpb=law(n, d) + rng.gauss(0, sigma))
            for i, (n, d) in enumerate((n, d) for n in SIZES for d in BYTES)]


def write_points(path, rows):
    if str(path).endswith('.csv'):
        with open(path, 'w', newline='') as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        with open(path, 'w') as f:
            json.dump(rows, f)
    return str(path)


def run_fit(tmp_path, *args):
    """main() in this process; its JSON output."""
    out = tmp_path / 'fit.json'
    assert fit.main([*map(str, args), '--json', str(out)]) == 0
    return json.loads(out.read_text())


def run_tool(*args, cwd=ROOT):
    return subprocess.run([sys.executable, TOOL, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_noise_free_points_give_back_the_law(tmp_path):
    r = run_fit(tmp_path, write_points(tmp_path / 'points.csv', ladder(0.0)), '--bootstrap', 20,
                '--predict', f'N={HELD_OUT[0]:g},D={HELD_OUT[1]:g}')
    f = r['fits']['synthetic']
    assert f['form'] == 'full' and f['runs'] == 16 and len(f['points']) == 16
    for name, value in TRUE.items():
        assert f['parameters'][name]['value'] == pytest.approx(value, rel=1e-6), name
        lo, hi = f['parameters'][name]['interval']  # every resample fits exactly: the interval is the point
        assert lo == pytest.approx(value, rel=1e-5) and hi == pytest.approx(value, rel=1e-5), name
    assert max(abs(p['residual']) for p in f['points']) < 1e-9
    assert f['predictions'][0]['bpb'] == pytest.approx(law(*HELD_OUT), abs=1e-9)
    assert law(*HELD_OUT) == pytest.approx(0.900470, abs=1e-6)


def test_noisy_ladder_recovers_the_law_and_its_intervals_cover_it(tmp_path):
    """Noise of 0.002 bits per byte (a seed's spread): the fit is near the law, each 95% interval
    covers the law's value, and the held-out bigger model's bits per byte lies in its interval."""
    rows = ladder(0.002, seed=0)
    r = run_fit(tmp_path, write_points(tmp_path / 'points.json', rows), '--bootstrap', 200, '--seed', 0,
                '--predict', f'N={HELD_OUT[0]:g},D={HELD_OUT[1]:g}')
    f = r['fits']['synthetic']
    p = {k: v['value'] for k, v in f['parameters'].items()}
    assert p['E'] == pytest.approx(0.8, abs=0.02)
    assert p['alpha'] == pytest.approx(0.3, abs=0.02)
    assert p['beta'] == pytest.approx(0.3, abs=0.05)
    assert 0.5 < p['A'] / 30 < 2 and 0.4 < p['B'] / 50 < 2.5  # the coefficients trade off with their exponents
    for name, value in TRUE.items():
        lo, hi = f['parameters'][name]['interval']
        assert lo < value < hi, (name, lo, value, hi)
    pred = f['predictions'][0]
    assert pred['bpb'] == pytest.approx(law(*HELD_OUT), abs=0.005)
    assert pred['interval'][0] < law(*HELD_OUT) < pred['interval'][1]
    assert pred['interval'][1] - pred['interval'][0] < 0.03
    assert f['rms_residual'] < 0.003
    # the optimizer found the minimum: the Huber loss at the fit is below the loss at the true law
    problem = fit.Problem([(x['N'], x['D'], x['bpb']) for x in rows], 'full', fit.HUBER_DELTA)
    truth = [math.log(0.8), math.log(30.0), 0.3, math.log(50.0), 0.3]
    assert f['huber_loss'] < problem.objective(problem.centred(truth))


def test_bootstrap_is_reproducible(tmp_path):
    """The same seed gives the same intervals, in every process; another seed, others."""
    path = write_points(tmp_path / 'points.json', ladder(0.002, seed=0))
    first, again, other = (run_fit(tmp_path, path, '--bootstrap', 30, '--seed', seed)['fits']['synthetic']['parameters']
                           for seed in (0, 0, 1))
    assert again == first and other['E']['interval'] != first['E']['interval']
    assert first['E']['interval'] == [pytest.approx(0.7544, abs=1e-4), pytest.approx(0.8039, abs=1e-4)]


def test_minimizer_is_a_stationary_point():
    """Levenberg-Marquardt on the Huber loss: the gradient vanishes at the fit (noisy points, where
    most residuals are past delta and the loss is L1-like)."""
    rows = ladder(0.002, seed=3)
    points = [(x['N'], x['D'], x['bpb']) for x in rows]
    params, loss, natural = fit.fit_law(points, 'full')
    problem = fit.Problem(points, 'full', fit.HUBER_DELTA)
    theta = problem.centred(natural)
    for j in range(5):
        h = 1e-7
        up, down = list(theta), list(theta)
        up[j] += h
        down[j] -= h
        slope = (problem.objective(up) - problem.objective(down)) / (2 * h)
        assert abs(slope) < 1e-7, (j, slope)
    assert loss == pytest.approx(problem.objective(theta))


def test_tied_ladder_gets_the_reduced_form(tmp_path, capsys):
    """D = 20 N: the N and D terms are not identifiable; the fit is L(N) = E + A / N^alpha with D's
    term folded in: with alpha = beta, exactly A' = A + B 20^-beta."""
    rows = [dict(N=n, D=20 * n, bpb=law(n, 20 * n)) for n in (1e7, 1.7e7, 3e7, 5e7, 9e7, 1.6e8)]
    r = run_fit(tmp_path, write_points(tmp_path / 'tied.csv', rows), '--bootstrap', 10,
                '--predict', 'N=1e9,D=2e10', '--predict', 'N=1e9,D=1e11', '--predict', 'N=1e9')
    f = r['fits']['tied.csv']  # a points file without arch: its name is the group
    assert f['form'] == 'N' and set(f['parameters']) == {'E', 'A', 'alpha'}
    assert f['tie']['k'] == pytest.approx(20) and f['tie']['gamma'] == pytest.approx(1)
    assert f['parameters']['E']['value'] == pytest.approx(0.8, rel=1e-6)
    assert f['parameters']['A']['value'] == pytest.approx(30 + 50 * 20 ** -0.3, rel=1e-6)  # 48.17
    assert f['parameters']['alpha']['value'] == pytest.approx(0.3, rel=1e-6)
    on_line, off_line, bare = f['predictions']
    assert on_line['bpb'] == pytest.approx(law(1e9, 2e10), abs=1e-9) and on_line['note'] is None
    assert off_line['D'] == pytest.approx(2e10) and 'off the ladder' in off_line['note']
    assert bare['bpb'] == pytest.approx(law(1e9, 2e10), abs=1e-9)
    out = capsys.readouterr().out
    assert 'L(N) = E + A / N^alpha' in out and 'D is tied to N (D = 20 N)' in out


def test_fixed_data_folds_its_term_into_E(tmp_path):
    rows = [dict(N=n, D=3e9, bpb=law(n, 3e9)) for n in SIZES]
    f = run_fit(tmp_path, write_points(tmp_path / 'fixed.json', rows), '--bootstrap', 0)['fits']['fixed.json']
    assert f['form'] == 'N' and f['tie'] == {'D': pytest.approx(3e9)}
    assert f['parameters']['E']['value'] == pytest.approx(0.8 + 50 / 3e9 ** 0.3, rel=1e-6)
    assert f['parameters']['E']['interval'] is None  # no bootstrap, no interval
    rows = [dict(N=6e7, D=d, bpb=law(6e7, d)) for d in BYTES]  # and N fixed: L(D), N's term in E
    f = run_fit(tmp_path, write_points(tmp_path / 'one_size.json', rows), '--bootstrap', 0, '--predict', 'N=6e7,D=2e10')
    f = f['fits']['one_size.json']
    assert f['form'] == 'D' and set(f['parameters']) == {'E', 'B', 'beta'}
    assert f['parameters']['E']['value'] == pytest.approx(0.8 + 30 / 6e7 ** 0.3, rel=1e-6)
    assert f['parameters']['B']['value'] == pytest.approx(50, rel=1e-6)
    assert f['predictions'][0]['bpb'] == pytest.approx(law(6e7, 2e10), abs=1e-9)


# -----------------------------------------------------------------------------
# run logs, as train.py writes them (runlog.RunLog)

SHAPES = {'llama': [(2, 128), (4, 256), (6, 384), (8, 512)], 'gpt2': [(2, 128), (4, 256), (6, 384), (8, 512)]}
VOCAB = {'llama': 32000, 'gpt2': 50304}
BYTES_PER_TOKEN = {'llama': 3.5, 'gpt2': 4.0}
GAP = 0.05  # GPT-2's E above LLaMA's


def shape(arch, n_layer, n_embd):
    """model.py's configuration of a small model, its total parameters (the cost tool's count, equal to
    model.py's) and its non-embedding parameters, counted here by hand."""
    mconf = ModelConfig(arch=arch, n_layer=n_layer, n_head=n_embd // 64, n_embd=n_embd, block_size=256,
                        vocab_size=VOCAB[arch])
    total = sum(fit.count_parameters(fit.resolve_shape('test', **mconf.to_dict())).values())
    embedding = VOCAB[arch] * n_embd * (1 if mconf.tie_embeddings else 2) + (256 * n_embd if arch == 'gpt2' else 0)
    return mconf, total, total - embedding


def write_run(out_dir, arch, n_layer, n_embd, evals, max_iters, bytes_per_token, tokens_per_iter=1000):
    """A run log in runlog.py's format (written by its RunLog, as train.py writes it) with evaluations
    [(iter, bpb)]; returns its out_dir."""
    mconf, total, _ = shape(arch, n_layer, n_embd)
    header = dict(config=dict(dataset=f'synthetic_{arch}', max_iters=max_iters), model_args=mconf.to_dict(),
                  env=dict(parameters=total, tokens_per_iter=tokens_per_iter, flops_per_token=6 * total,
                           train_bytes_per_token=bytes_per_token, start_iter=0))
    os.makedirs(out_dir)
    log = RunLog(str(out_dir), 'run_20270101_000000.json', header)
    for it, bpb in evals:
        log.add('evals', dict(iter=it, train_loss=1.0, val_loss=1.0, val_bpb=bpb, val_bytes=1000,
                              val_bpb_sources=None, tokens=it * tokens_per_iter, time=1.0, unix_time=1.0, eval_seconds=0.1))
    log.write()
    return str(out_dir)


def law_of(arch):
    return dict(TRUE, E=TRUE['E'] + (GAP if arch == 'gpt2' else 0))


def wsd_ladder(tmp_path):
    """Each architecture: 4 sizes, each run evaluated at the ends of two decays 4x apart in tokens
    (a WSD schedule's), named with RUN@ITER,ITER; bits per byte from the law, noise-free."""
    args, expected = [], {}
    for arch, shapes in SHAPES.items():
        for i, (n_layer, n_embd) in enumerate(shapes):
            iters = (500 * (i + 1), 2000 * (i + 1))  # tokens grow with the size, and 4x within a run
            out_dir = tmp_path / f'out-{arch}-{i}'
            _, _, n = shape(arch, n_layer, n_embd)
            evals = [(it, law(n, it * 1000 * BYTES_PER_TOKEN[arch], law_of(arch))) for it in (250, *iters)]
            write_run(out_dir, arch, n_layer, n_embd, evals, iters[1], BYTES_PER_TOKEN[arch])
            args.append(f"{out_dir}@{iters[0]},{iters[1]}")
            expected[(arch, i)] = n
    return args, expected


def test_run_logs_give_points_in_non_embedding_parameters_and_bytes(tmp_path):
    args, expected = wsd_ladder(tmp_path)
    r = run_fit(tmp_path, *args, '--bootstrap', 50, '--predict', 'N=1e9,D=2e10')
    assert list(r['fits']) == ['llama', 'gpt2']
    for arch in ('llama', 'gpt2'):
        f = r['fits'][arch]
        assert f['form'] == 'full' and f['runs'] == 4 and len(f['points']) == 8
        first = f['points'][0]  # the smallest run: 2 layers x 128, its evaluations at iters 500 and 2000
        assert first['iter'] == 500 and first['D'] == 500 * 1000 * BYTES_PER_TOKEN[arch]
        assert first['N'] == expected[(arch, 0)]
        for name, value in law_of(arch).items():
            assert f['parameters'][name]['value'] == pytest.approx(value, rel=1e-5), (arch, name)
    # non-embedding N: all but the token embedding (and lm_head, untied; positions, learned)
    assert expected[('llama', 0)] == 2 * (4 * 128 * 128 + 3 * 128 * 512 + 2 * 128) + 128 == 524_928
    assert expected[('gpt2', 0)] == 2 * (4 * 128 * 128 + 8 * 128 * 128 + 2 * 128) + 128 == 393_856
    gap = r['gaps'][0]
    assert (gap['first'], gap['second']) == ('llama', 'gpt2')
    assert gap['gap'] == pytest.approx(GAP, abs=1e-6)
    assert gap['interval'] == [pytest.approx(GAP, abs=1e-4), pytest.approx(GAP, abs=1e-4)]
    assert gap['second_lower_fraction'] == 0


def test_architecture_groups_components_off_the_preset():
    assert fit.architecture(ModelConfig(arch='llama').to_dict()) == 'llama'
    assert fit.architecture(ModelConfig(arch='gpt2', position='rope', tie_embeddings=False).to_dict()) == \
        'gpt2 (position rope, tie_embeddings False)'


def test_forced_forms_and_repeated_data(tmp_path, capsys):
    tied = write_points(tmp_path / 'tied.csv', [dict(N=n, D=20 * n, bpb=law(n, 20 * n)) for n in SIZES * 2])
    f = run_fit(tmp_path, tied, '--form', 'full', '--bootstrap', 0)['fits']['tied.csv']
    assert f['form'] == 'full'
    assert f['design'] == "D is tied to N (D = 20 N): --form full fits all the same, its terms unidentified"
    f = run_fit(tmp_path, write_points(tmp_path / 'full.csv', ladder(0.0)), '--form', 'reduced', '--bootstrap', 0)
    f = f['fits']['synthetic']
    assert f['form'] == 'N' and f['design'].startswith("--form reduced: L(N) along the ladder's line D = 1.687e+09 N^0, ")
    assert f['tie']['k'] == pytest.approx(math.sqrt(math.sqrt(3e8 * 1e9 * 3e9 * 9e9)))  # no trend: the geometric mean
    out_dir = write_run(tmp_path / 'out', 'llama', 2, 128, [(200, 1.4)], 200, 3.5)
    log = RunLog(out_dir, 'run_20270101_000000.json', dict(env=dict(start_iter=200)))
    log.add('iters', dict(iter=200, epoch=2.5))
    log.write()
    points, notes, sources = fit.load_points([out_dir], 'non_embedding', 'bytes')
    assert notes == [f"{out_dir} trained on more than one epoch: its D counts repeated data"]
    assert sources == {'run_logs': 1, 'points_files': 0}


def test_total_parameters_and_tokens(tmp_path):
    out_dir = write_run(tmp_path / 'out', 'gpt2', 2, 128, [(100, 1.5), (200, 1.4)], 200, 4.0)
    points, _, _ = fit.load_points([out_dir], 'total', 'tokens')
    assert [(p.n, p.d, p.bpb, p.iteration) for p in points] == [(6_865_536, 200_000, 1.4, 200)]  # the final evaluation
    assert shape('gpt2', 2, 128)[1:] == (6_865_536, 393_856)  # + 50304 x 128 tied + 256 x 128 positions


def test_gap_has_an_interval_from_noisy_ladders(tmp_path):
    rows = ladder(0.002, seed=0) + [dict(r, arch='other', bpb=r['bpb'] + GAP) for r in ladder(0.002, seed=1)]
    r = run_fit(tmp_path, write_points(tmp_path / 'two.csv', rows), '--bootstrap', 100,
                '--predict', f'N={HELD_OUT[0]:g},D={HELD_OUT[1]:g}')
    gap = r['gaps'][0]
    assert (gap['first'], gap['second']) == ('synthetic', 'other')
    lo, hi = gap['interval']
    assert lo < GAP < hi and hi - lo < 0.04 and lo > 0  # the 0.05 gap, resolved from zero
    assert gap['gap'] == pytest.approx(r['fits']['other']['predictions'][0]['bpb']
                                       - r['fits']['synthetic']['predictions'][0]['bpb'])


def test_command_line_output(tmp_path):
    path = write_points(tmp_path / 'points.csv', ladder(0.0)[:12])
    r = run_tool(path, '--bootstrap', 5, '--predict', 'N=1e9,D=2e10')
    assert r.returncode == 0, r.stderr
    assert 'synthetic: 12 runs, 12 points: L(N, D) = E + A / N^alpha + B / D^beta' in r.stdout
    assert 'E                  0.8   [0.8, 0.8]' in r.stdout
    assert 'at N = 1e+09, D = 2e+10' in r.stdout and 'synthetic                   0.9005   [0.9005, 0.9005]' in r.stdout


# -----------------------------------------------------------------------------
# bad input: one line, exit status 2

def bad_cases(tmp_path):
    few = write_points(tmp_path / 'few.csv', ladder(0.0)[:5])
    zero = write_points(tmp_path / 'zero.csv', [dict(r, N=0) if i == 3 else r for i, r in enumerate(ladder(0.0))])
    two_sizes = write_points(tmp_path / 'two_sizes.csv', ladder(0.0)[:8])
    same = write_points(tmp_path / 'same.json', [dict(N=1e8, D=1e9, bpb=1.0 + i / 100) for i in range(6)])
    empty = write_run(tmp_path / 'empty', 'llama', 2, 128, [], 100, 3.5)
    no_bpb = write_run(tmp_path / 'no_bpb', 'llama', 2, 128, [(100, None)], 100, 3.5)
    unfinished = write_run(tmp_path / 'unfinished', 'llama', 2, 128, [(50, 1.5)], 100, 3.5)
    done = write_run(tmp_path / 'done', 'llama', 2, 128, [(100, 1.5)], 100, 3.5)
    good = write_points(tmp_path / 'good.csv', ladder(0.0))
    return [
        ([few], "synthetic: 5 points for the 5 parameters of L(N, D) = E + A / N^alpha + B / D^beta: the fit needs "
                "at least 6; add runs"),
        ([zero], "zero.csv: point 4: N must be a positive number, got 0.0"),
        ([two_sizes], "synthetic: N takes 2 distinct values: A / N^alpha with its constant needs at least 3; "
                      "add runs of other sizes"),
        ([same], "same.json: every point has the same N and D (within a factor of 2): a fit needs runs of "
                 "several sizes or token counts"),
        ([empty], "it has no evaluations; fit runs that evaluated bits per byte"),
        ([no_bpb], "its evaluations have no val_bpb"),
        ([unfinished], "its last evaluation is at iter 50 of max_iters 100: the run has not finished"),
        ([f"{unfinished}@60"], "no evaluation with val_bpb at iter 60 (it has 50)"),
        ([good, '--predict', 'N=1e9'], "--predict N=1e+09: synthetic's fit needs D too"),
        ([good, '--predict', 'N=-1,D=2'], "--predict N=-1,D=2: N must be a positive number, got -1.0"),
        ([good, '--predict', 'P=1'], "--predict P=1: give N=...,D=..."),
        ([str(tmp_path / 'nowhere')], "does not exist"),
        ([done, done + '/run_20270101_000000.json'], "are the same run log: give each run once"),
        ([good, '--bootstrap', '-1'], "--bootstrap must be 0 or more, got -1"),
        ([good + '@100'], "@ITER names evaluations of a run log, and " + good + " is a points file"),
    ]


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    cases = bad_cases(tmp_path)
    for args, message in cases[:2]:  # two through the command line: one line on stderr, exit status 2
        r = run_tool(*args)
        assert r.returncode == 2 and r.stdout == '', r.stderr
        assert r.stderr.count('\n') == 1 and r.stderr.startswith('error: ') and message in r.stderr, r.stderr
    for args, message in cases:  # each through main(): the UserError the command line prints
        with pytest.raises(UserError) as e:
            fit.main([*args, '--bootstrap', '0'] if '--bootstrap' not in args else args)
        assert message in str(e.value) and '\n' not in str(e.value), (args, str(e.value))


def test_points_file_unknown_key_names_the_closest(tmp_path):
    path = write_points(tmp_path / 'typo.csv', [dict(N=1e7, D=1e9, bpp=1.1)])
    with pytest.raises(UserError, match=r"typo.csv: point 1: unknown key 'bpp' \(did you mean 'bpb'\?\)"):
        fit.main([path])


def test_standard_library_only(tmp_path):
    path = write_points(tmp_path / 'points.csv', ladder(0.0))
    code = (f"import sys; sys.argv = ['x', {path!r}, '--bootstrap', '2']; "
            "import scaling_fit as t; rc = t.main(); "
            "assert not {'torch', 'numpy', 'scipy'} & set(sys.modules), sorted(sys.modules); sys.exit(rc)")
    r = subprocess.run([sys.executable, '-S', '-c', code], cwd=os.path.dirname(TOOL), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_help_exits_0(tmp_path):
    r = run_tool('--help', cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith('usage:') and 'Fitting a ladder' in r.stdout
    assert os.listdir(tmp_path) == []


# -----------------------------------------------------------------------------
# README.md beside the tool: its example, its coverage counts, its parameter counts

README = os.path.join(ROOT, 'flops_parameter_counting', 'README.md')
SYNTHETIC = os.path.join(ROOT, 'flops_parameter_counting', 'configs', 'ladders', 'synthetic.csv')


def readme_section():
    text = open(README).read()
    return text[text.index('## Fitting a ladder'):text.index('## The 1.36B models')]


def test_synthetic_ladders_are_the_seeded_draws():
    """configs/ladders/synthetic.csv: ladder(0.002) with seeds 0 and 1, the second 0.05 higher."""
    with open(SYNTHETIC, newline='') as f:
        rows = list(csv.DictReader(f))
    expected = [dict(r, arch='truth') for r in ladder(0.002, seed=0)] + \
        [dict(r, arch='truth+0.05', bpb=r['bpb'] + GAP) for r in ladder(0.002, seed=1)]
    assert len(rows) == len(expected) == 32
    for row, want in zip(rows, expected):
        assert (row['arch'], row['run'], float(row['N']), float(row['D'])) == \
            (want['arch'], want['run'], want['N'], want['D'])
        assert float(row['bpb']) == pytest.approx(want['bpb'], abs=5e-7)


def test_readme_example_is_the_tool_s_output(tmp_path):
    section = readme_section()
    start = section.index('    python flops_parameter_counting/scaling_fit.py flops_parameter_counting/configs/ladders')
    command = section[start:section.index('\n\n', start)].replace('\\\n', ' ').split()
    shown = section[section.index('```\n', start) + 4:section.index('```', section.index('```\n', start) + 4)]
    r = subprocess.run([sys.executable, *command[1:], '--json', str(tmp_path / 'fit.json')], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout == shown
    # what the text says of it: every interval covers the true value, the predictions' and the gap's too
    result = json.loads((tmp_path / 'fit.json').read_text())
    for label, params in (('truth', TRUE), ('truth+0.05', law_of('gpt2'))):
        f = result['fits'][label]
        for name, value in params.items():
            lo, hi = f['parameters'][name]['interval']
            assert lo < value < hi, (label, name)
        for pred, (n, d) in zip(f['predictions'], [(1e9, 2e10), (4e8, 8e9)]):
            assert pred['interval'][0] < law(n, d, params) < pred['interval'][1], (label, n)
    assert (round(law(1e9, 2e10), 4), round(law(1e9, 2e10, law_of('gpt2')), 4)) == (0.9005, 0.9505)
    assert all(g['interval'][0] < GAP < g['interval'][1] for g in result['gaps'])
    b = result['fits']['truth']['parameters']['B']['interval']
    assert 14 < b[1] / b[0] < 18  # "a factor of 15 in B"
    assert (round(1e9 / max(SIZES)), round(2e10 / max(BYTES))) == (6, 2)  # "6x bigger on 2x more data"
    assert 'Over 20\nsuch ladders (seeds 100 to 119, 100 resamples each), the 95% intervals covered E and beta 20 times, A,\n' \
           'alpha and B 19 times, and the held-out prediction 20 times.' in section


@pytest.mark.slow  # 20 fits with 100 resamples each: about a minute
def test_coverage_over_twenty_ladders(tmp_path):
    """The README's counts: how often the 95% intervals cover the truth, over 20 noisy ladders."""
    counts = dict.fromkeys([*TRUE, 'prediction'], 0)
    for seed in range(100, 120):
        path = write_points(tmp_path / f'ladder{seed}.json', ladder(0.002, seed=seed))
        f = run_fit(tmp_path, path, '--bootstrap', 100,
                    '--predict', f'N={HELD_OUT[0]:g},D={HELD_OUT[1]:g}')['fits']['synthetic']
        for name, value in TRUE.items():
            lo, hi = f['parameters'][name]['interval']
            counts[name] += lo < value < hi
        lo, hi = f['predictions'][0]['interval']
        counts['prediction'] += lo < law(*HELD_OUT) < hi
    assert counts == dict(E=20, A=19, alpha=19, B=19, beta=20, prediction=20)


def test_readme_parameter_counts():
    """The non-embedding counts the README gives: the 1.36B models' (for --predict) and the ladder's shares."""
    cost = fit.sys.modules['flops_parameter_counting.detailed_cost_analysis']  # the cost tool, as the fit imports it

    def counts(cfg):
        parts = cost.count_parameters(cfg)
        total = sum(parts.values())
        return total, total - parts['token embedding'] - parts.get('position embedding', 0) - parts['lm_head']
    big = {name: counts(cost.shape_from_config(cost.load_model_config(f'config/full_{name}_1.36b.py')[1], name))
           for name in ('llama', 'gpt2')}
    assert big == {'llama': (1_294_159_104, 1_146_703_104), 'gpt2': (1_404_968_832, 1_277_648_768)}
    small = counts(cost.resolve_shape('x', arch='llama', n_layer=4, n_head=4, n_embd=256, vocab_size=32000, block_size=1024))
    compare = counts(cost.resolve_shape('x', arch='llama', n_layer=8, n_head=8, n_embd=512, d_ff=1536, vocab_size=32000,
                                        block_size=1024))
    assert small == (19_794_176, 3_410_176) and compare[0] == 60_039_680
    shares = [round(100 * (1 - n / total)) for total, n in (small, compare, big['llama'])]
    assert shares == [83, 55, 11]
    section = readme_section()
    assert ('83% of a 4 x 256 LLaMA (19,794,176 parameters, 3,410,176 without embeddings), 55%\n  of the 8 x 512 one, '
            '11% of LLaMA 1.36B') in section
    assert 'N = 1,146,703,104 (LLaMA 1.36B) and 1,277,648,768 (GPT-2 1.36B)' in section
    assert '--predict N=1.147e9,D=2.5e10 --predict N=1.278e9,D=2.5e10' in section
    assert (f"{big['llama'][1]:.4g}", f"{big['gpt2'][1]:.4g}", f"{6.5536e9 * 3.8:.2g}") == \
        ('1.147e+09', '1.278e+09', '2.5e+10')
    assert '2.5e10 bytes: 6.5536e9 tokens at 3.8\nbytes a token' in section
    # "1,200 iterations read it about 4 times": the comparison's 32 windows an iteration, its windows per pass
    with open(os.path.join(ROOT, 'reference', 'stdlib_comparison', 'runs', 'out-compare-llama-s1',
                           'run_20261204_160447.json')) as f:
        env = json.load(f)['env']
    assert env['tokens_per_iter'] == 32 * 1024 and round(1200 * 32 / env['windows_per_epoch'], 2) == 3.87
    assert '1,200 iterations read it about 4 times' in section
