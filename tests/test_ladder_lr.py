"""
reference/english_mix/ladder_lr.py: the ladder's runs at its one rate and the rates sweep's runs either
side of it, summarized as one grid: each rung's best rate by compare.py's rule, only the seeds the rates
sweep runs, paired differences at each rung's best; and its one-line errors.
"""
import json
import os
import subprocess
import sys

import pytest

import compare
from configurator import UserError
from helpers import REPO
from test_compare import write_run
from test_sweep import sweep_file

sys.path.insert(0, os.path.join(REPO, 'reference', 'english_mix'))
import ladder_lr  # noqa: E402

CONFIGS = {'a': 'config/quick_llama.py', 'b': 'config/quick_gpt2.py', 'c': 'config/quick_llama.py'}
# bits per byte: a is best at 4e-3, b at the ladder's 2e-3; seed 2 is worse by 0.05 everywhere
VALUES = {('a', 1e-3): 1.50, ('a', 2e-3): 1.40, ('a', 4e-3): 1.30, ('b', 1e-3): 1.45, ('b', 2e-3): 1.20, ('b', 4e-3): 1.60}


def layout(tmp_path, rates_grid=(1e-3, 4e-3), ladder_groups=('a', 'b', 'c')):
    ladder_dir, rates_dir = tmp_path / 'ladder', tmp_path / 'rates'
    ladder = sweep_file(tmp_path / 'ladder.py', out_dir='unused', configs={g: CONFIGS[g] for g in ladder_groups},
                        overrides={'learning_rate': 2e-3}, grid={'seed': [1, 2, 3]}, tuned='')
    rates = sweep_file(tmp_path / 'rates.py', out_dir='unused', configs={g: CONFIGS[g] for g in ('a', 'b')},
                       grid={'learning_rate': list(rates_grid), 'seed': [1, 2]}, comparisons='a:b')
    for seed in (1, 2, 3):
        for group in ladder_groups:  # the ladder's folders are named without the rate: <group>-s<seed>
            value = VALUES.get((group, 2e-3), 1.0) + 0.05 * (seed - 1) - (0.5 if seed == 3 else 0)
            name = write_run(str(ladder_dir), group, 2e-3, seed, value)
            os.rename(ladder_dir / name, ladder_dir / f'{group}-s{seed}')
        for group in ('a', 'b'):
            for lr in rates_grid:
                if seed < 3:
                    write_run(str(rates_dir), group, lr, seed, VALUES[(group, lr)] + 0.05 * (seed - 1))
    return [f'--ladder={ladder}', f'--rates={rates}', f'--ladder_dir={ladder_dir}', f'--rates_dir={rates_dir}',
            '--metric=val_bpb']


def test_each_rung_gets_its_own_best_rate_over_both_sweeps(tmp_path):
    assert ladder_lr.main(layout(tmp_path)) == 0
    with open(tmp_path / 'rates' / 'summary' / 'results.json') as f:
        results = json.load(f)
    best = {g['name']: g['best'] for g in results['groups']}
    assert best['a']['values'] == {'learning_rate': 4e-3} and best['a']['metrics'] == pytest.approx([1.30, 1.35])
    assert best['b']['values'] == {'learning_rate': 2e-3} and best['b']['metrics'] == pytest.approx([1.20, 1.25])
    assert best['b']['runs'] == ['b-s1', 'b-s2']  # the ladder's own runs; its seed 3 and group c left out
    assert {r['name'] for r in results['runs']} == {f'{g}-lr{lr!r}-s{s}' for g in 'ab' for lr in (1e-3, 4e-3) for s in (1, 2)} \
        | {f'{g}-s{s}' for g in 'ab' for s in (1, 2)}
    every = {g['name']: [(s['values']['learning_rate'], s['mean']) for s in g['settings']] for g in results['groups']}
    assert every['a'] == [(1e-3, pytest.approx(1.525)), (2e-3, pytest.approx(1.425)), (4e-3, pytest.approx(1.325))]
    assert results['grid']['learning_rate'] == [1e-3, 2e-3, 4e-3]  # the combined grid: the rule's edges are its
    edges = [w for w in results['warnings'] if 'bracket' in w]
    assert len(edges) == 1 and edges[0].startswith('a: best learning_rate 0.004 is the grid')  # b's 2e-3 is inside
    (diff,) = results['comparisons']
    assert (diff['a'], diff['b']) == ('a', 'b') and diff['paired']['seeds'] == [1, 2]
    assert diff['paired']['mean'] == pytest.approx(-0.10) and diff['paired']['sd'] == pytest.approx(0, abs=1e-12)
    markdown = (tmp_path / 'rates' / 'summary' / 'results.md').read_text()
    assert '| a | 0.004* | 2 | 1.3250 |' in markdown and '| b | 0.002* | 2 | 1.2250 |' in markdown


def test_a_missing_rates_run_leaves_its_rate_out(tmp_path):
    args = layout(tmp_path)
    os.remove(tmp_path / 'rates' / 'a-lr0.004-s2' / 'run_20260101_000000.json')
    assert ladder_lr.main(args) == 0
    with open(tmp_path / 'rates' / 'summary' / 'results.json') as f:
        best = {g['name']: g['best'] for g in json.load(f)['groups']}
    assert best['a']['values'] == {'learning_rate': 2e-3}  # 4e-3 has a seed missing: not eligible


@pytest.mark.parametrize('change, message', [
    (dict(rates_grid=(1e-3, 2e-3)), "grid has the ladder's rate 0.002: its runs would be counted twice"),
    (dict(ladder_groups=('a', 'c')), "has no runs of b at the seeds [1, 2]"),
])
def test_user_errors(tmp_path, change, message):
    with pytest.raises(UserError, match=message.replace('[', r'\[').replace(']', r'\]')):
        ladder_lr.main(layout(tmp_path, **change))
    assert not (tmp_path / 'rates' / 'summary').exists()


def test_a_user_error_is_one_line_and_exit_status_2(tmp_path):
    args = layout(tmp_path, rates_grid=(1e-3, 2e-3))
    proc = subprocess.run([sys.executable, os.path.join(REPO, 'reference', 'english_mix', 'ladder_lr.py')] + args,
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ''
    assert proc.stderr.count('\n') == 1 and proc.stderr.startswith('error: ') and 'counted twice' in proc.stderr
