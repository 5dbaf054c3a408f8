"""
The scaling ladder (reference/scaling/README.md): its tables are check.py's output on the shipped runs
and recorded predictions, the recorded predictions are what scaling_fit.py computes from the shipped
runs, and the README's numbers are recomputed from those files.
"""
import json
import os
import re

import pytest

from flops_parameter_counting import scaling_fit

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.join(REPO, 'reference', 'scaling')
RUNS = os.path.join(HERE, 'runs')


def load(name):
    with open(os.path.join(HERE, name)) as f:
        return json.load(f)


@pytest.fixture(scope='module')
def readme():
    with open(os.path.join(HERE, 'README.md')) as f:
        return f.read()


@pytest.fixture(scope='module')
def checked(tmp_path_factory):
    """check.py's results.json and results.md, made anew from the shipped files."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('scaling_check', os.path.join(HERE, 'check.py'))
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    out = str(tmp_path_factory.mktemp('check'))
    assert check.main(['--out', out]) == 0
    with open(os.path.join(out, 'results.json')) as f, open(os.path.join(out, 'results.md')) as g:
        return json.load(f), g.read()


def test_readme_tables_are_check_py_s(checked, readme):
    _, markdown = checked
    for table in markdown.strip().split('\n\n'):
        assert table in readme


@pytest.mark.parametrize('name, pattern', [('prediction.json', '-p{0.25,0.5,1}-s1'), ('prediction_onepass.json', '-p1-s1')])
def test_the_recorded_predictions_are_the_fit_of_the_shipped_runs(tmp_path, name, pattern):
    """The point estimates (the bootstrap's intervals take minutes: the shipped file has them) of a refit
    from the shipped run logs, with run.sh's queries, equal the recorded ones."""
    recorded = load(name)
    budgets = re.search(r'\{(.*)\}', pattern).group(1).split(',') if '{' in pattern else ['1']
    runs = sorted(os.path.join(RUNS, n) for n in os.listdir(RUNS)
                  if re.fullmatch(r'(gpt2|llama)-\dx\d+-p(%s)-s1' % '|'.join(re.escape(b) for b in budgets), n)
                  and '7x448' not in n)
    assert len(runs) == (24 if len(budgets) == 3 else 8)
    queries = [f"N={q['N']:.0f},D={q['D']:.0f}" for q in recorded['queries']]
    refit = tmp_path / 'refit.json'
    args = runs + sum((['--predict', q] for q in queries), []) + ['--bootstrap', '0', '--json', str(refit)]
    assert scaling_fit.main(args) == 0
    with open(refit) as f:
        again = json.load(f)
    assert list(again['fits']) == list(recorded['fits'])
    for label, fit in recorded['fits'].items():
        for key, p in fit['parameters'].items():
            assert again['fits'][label]['parameters'][key]['value'] == pytest.approx(p['value'], rel=1e-6, abs=1e-9)
        for mine, theirs in zip(again['fits'][label]['predictions'], fit['predictions']):
            assert mine['bpb'] == pytest.approx(theirs['bpb'], rel=1e-9)
        assert [os.path.basename(p['run']) for p in fit['points']] == \
               [os.path.basename(p['run']) for p in again['fits'][label]['points']]


def test_the_ladder_s_design_and_rate_checks(checked, readme):
    results, _ = checked
    fitted = [r for r in results['runs'] if r['role'] == 'fitted']
    checks = [r for r in results['runs'] if r['role'] == 'rate check']
    assert len(fitted) == 24 and len(checks) == 8 and len(results['checks']) == 2 and results['pending'] == []
    n = sorted({r['N'] for r in fitted})
    per = [r['tokens'] / r['N'] for r in fitted]
    assert f"{min(n) / 1e6:.2f}M to {max(n) / 1e6:.1f}M non-embedding parameters, a factor " \
           f"{max(n) / min(n):.1f}" in ' '.join(readme.split())
    assert f"run from {min(per):.1f} to {max(per):.0f}" in readme
    for r in checks:  # half and twice the rule's rate are worse, at both ends, for both
        rule = next(f for f in fitted if f['name'] == re.sub(r'-lrx[\d.]+', '', r['name']))
        assert r['bpb'] > rule['bpb']
    gpt2, llama = sorted(results['checks'], key=lambda p: p['arch'])
    assert round(gpt2['N'] / gpt2['largest_rung_N'], 1) == round(llama['N'] / llama['largest_rung_N'], 1) == 2.7
    assert f"{gpt2['N'] / 1e6:.1f}M non-embedding parameters for GPT-2 and {llama['N'] / 1e6:.1f}M for LLaMA, 2.7 times " \
           f"each one's largest rung" in ' '.join(readme.split())
    with open(os.path.join(HERE, 'logs', 'sweep_ladder.log')) as f:
        log = f.read()
    assert 'sweep: 32 of 32 runs finished' in log and '0 left of 32; 4m29s elapsed' in log
    assert 'in 4 min 29 s' in readme and '4 min 29 s of one H200 for 32 runs' in readme


def test_the_prose_numbers(readme):
    recorded = load('prediction.json')
    fits = {label.split(' ')[0]: f for label, f in recorded['fits'].items()}
    text = ' '.join(readme.split())
    assert f"rms residuals of {fits['gpt2']['rms_residual']:.3f} (GPT-2) and {fits['llama']['rms_residual']:.3f} (LLaMA)" \
           in text
    alpha = fits['gpt2']['parameters']['alpha']['interval']
    assert f"run from {alpha[0]:.2f} to {alpha[1]:.1f} (GPT-2's alpha)" in text
    assert all(f['parameters']['E']['interval'][0] == 0 for f in fits.values())  # E's interval reaches zero
    held, big = recorded['gaps'][0], recorded['gaps'][2]
    assert held['interval'][1] < 0
    assert f"LLaMA - GPT-2 = {held['gap']:+.2f} [{held['interval'][0]:+.2f}, {held['interval'][1]:+.2f}]" in text
    g, l = fits['gpt2']['predictions'][2], fits['llama']['predictions'][3]
    assert f"GPT-2 (at its N) {g['bpb']:.2f} [{g['interval'][0]:.2f}, {g['interval'][1]:.2f}]" in text
    assert f"LLaMA (at its N) {l['bpb']:.2f} [{l['interval'][0]:.2f}, {l['interval'][1]:.2f}]" in text
    assert big['interval'][0] < 0 < big['interval'][1]  # the fit cannot tell at 1.36B
    assert f"the gap at either N {big['gap']:+.2f} [{big['interval'][0]:+.2f}, {big['interval'][1]:+.2f}]" in text
    assert abs(recorded['gaps'][3]['gap'] - big['gap']) < 0.005
    residuals = [abs(p['residual']) for f in fits.values() for p in f['points']]
    assert f"(up to {max(residuals):.2f} bits per byte" in text


def test_the_held_out_runs_and_their_errors(checked, readme):
    """The check: both held-out runs trained after both predictions were committed, their errors against
    each, and the README's prose numbers, from check.py's results on the shipped files."""
    results, _ = checked
    gpt2, llama = sorted(results['checks'], key=lambda c: c['arch'])
    text = ' '.join(readme.split())
    for c in (gpt2, llama):
        assert c['error'] == pytest.approx(c['actual'] - c['predicted'])
        assert c['inside'] == (c['interval'][0] <= c['actual'] <= c['interval'][1]) is True
    assert f"predicted LLaMA within {abs(llama['error']):.3f}** ({llama['actual']:.4f} measured, " \
           f"{llama['predicted']:.4f} predicted, {100 * abs(llama['relative_error']):.1f}%)" in text
    assert f"GPT-2 {-gpt2['error']:.3f} too high** ({gpt2['actual']:.4f} against {gpt2['predicted']:.4f}, " \
           f"{100 * abs(gpt2['relative_error']):.0f}%)" in text
    widths = sorted(c['interval'][1] - c['interval'][0] for c in (gpt2, llama))
    assert f"which are wide ({widths[0]:.2f} and {widths[1]:.2f} bits per byte)" in text
    assert llama['second']['inside'] and not gpt2['second']['inside']
    assert f"did worse on LLaMA** ({llama['second']['error']:+.3f})" in text
    assert f"outside its interval** ({gpt2['second']['error']:+.3f}; its interval, " \
           f"{gpt2['second']['interval'][1] - gpt2['second']['interval'][0]:.2f} wide" in text
    predicted = load('prediction.json')['gaps'][0]
    gap = llama['actual'] - gpt2['actual']
    assert predicted['interval'][0] < gap < predicted['interval'][1]
    assert f"LLaMA - GPT-2 = {gap:+.3f} measured, against the first fit's {predicted['gap']:+.2f} " \
           f"[{predicted['interval'][0]:+.2f}, {predicted['interval'][1]:+.2f}]: inside" in text
    # the predictions' commits come before the held-out runs' logs in the history (where there is one)
    import subprocess
    git = lambda *a: subprocess.run(['git', *a], cwd=REPO, capture_output=True, text=True).stdout.strip()
    if git('rev-parse', '--is-inside-work-tree') == 'true' and git('log', '--format=%h', '-1', '--', 'reference/scaling/runs/gpt2-7x448-p1-s1'):
        for name in ('prediction.json', 'prediction_onepass.json', 'runs/gpt2-7x448-p1-s1', 'runs/llama-7x448-p1-s1'):
            assert git('log', '--format=%h', '--', f'reference/scaling/{name}'), name
        first_run = git('log', '--format=%ct', '--reverse', '--', 'reference/scaling/runs/llama-7x448-p1-s1').split()[0]
        for name in ('prediction.json', 'prediction_onepass.json'):
            assert int(git('log', '--format=%ct', '--reverse', '--', f'reference/scaling/{name}').split()[0]) <= int(first_run)
    with open(os.path.join(HERE, 'logs', 'sweep_heldout_retry.log')) as f:
        assert 'sweep: 2 of 2 runs finished' in f.read() and "GPT-2's 54 s alone" in text
    with open(os.path.join(HERE, 'logs', 'sweep_heldout.log')) as f:
        log = f.read()
    assert 'FAILED gpt2-7x448-p1-s1' in log and 'OutOfMemoryError' in log and '4m02s elapsed' in log


def test_check_scores_a_held_out_run_against_each_recorded_prediction(tmp_path):
    """check.py's path for a held-out run that exists: a stand-in held-out folder (a copy of a ladder run
    renamed 7x448) and recorded predictions given a query at its N and D; the LLaMA one stays pending."""
    import importlib.util
    import shutil
    spec = importlib.util.spec_from_file_location('scaling_check', os.path.join(HERE, 'check.py'))
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    runs = tmp_path / 'runs'
    shutil.copytree(RUNS, runs, ignore=shutil.ignore_patterns('*-7x448-*'))  # the ladder without its held-out runs
    shutil.copytree(runs / 'gpt2-5x320-p1-s1', runs / 'gpt2-7x448-p1-s1')
    shutil.rmtree(runs / 'gpt2-5x320-p1-s1')  # the stand-in is no ladder run twice
    stand_in = check.run_summary(str(runs / 'gpt2-7x448-p1-s1'))
    paths = {}
    for name, predicted, interval in (('prediction.json', 1.70, [1.60, 1.80]), ('prediction_onepass.json', 1.60, [1.55, 1.65])):
        recorded = load(name)
        recorded['queries'].append({'N': stand_in['N'], 'D': stand_in['D']})
        for fit in recorded['fits'].values():
            fit['predictions'].append({'N': stand_in['N'], 'D': stand_in['D'], 'bpb': predicted, 'interval': interval,
                                       'note': None})
        if name == 'prediction.json':  # the ladder run the stand-in was copied from is no fitted point now
            for fit in recorded['fits'].values():
                fit['points'] = [p for p in fit['points'] if 'gpt2-5x320-p1-s1' not in p['run']]
        paths[name] = tmp_path / name
        paths[name].write_text(json.dumps(recorded))
    out = tmp_path / 'out'
    assert check.main(['--runs', str(runs), '--prediction', str(paths['prediction.json']),
                       '--second_prediction', str(paths['prediction_onepass.json']), '--out', str(out)]) == 0
    results = json.loads((out / 'results.json').read_text())
    [c] = results['checks']
    actual = stand_in['bpb']
    assert c['run'] == 'gpt2-7x448-p1-s1' and c['actual'] == actual == pytest.approx(1.6582, abs=1e-4)
    assert c['error'] == pytest.approx(actual - 1.70) and c['inside'] is True
    assert c['second']['error'] == pytest.approx(actual - 1.60) and c['second']['inside'] is False
    assert [p['name'] for p in results['pending']] == ['llama-7x448-p1-s1']
    md = (out / 'results.md').read_text()
    assert f"| gpt2 | gpt2-7x448-p1-s1 | {stand_in['N']:,} |" in md
    assert f"| {actual:.4f} | {actual - 1.70:+.4f} (inside); {actual - 1.60:+.4f} (outside) |" in md
    assert "| llama | llama-7x448-p1-s1 | 16,765,504 | 2.70 |" in md and "not yet trained" in md
