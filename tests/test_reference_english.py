"""
The reference comparison v2 (reference/english_mix/README.md): every number its README states is
recomputed here from the files shipped beside it: the run logs and eval_bpb.py results of the
learning-rate sweep, summarized again by sweep.py into a temporary folder.
"""
import json
import os
import re
import shutil

import pytest

import sweep

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.join(REPO, 'reference', 'english_mix')


@pytest.fixture(scope='module')
def summary(tmp_path_factory):
    """(results.json, results.md) of the shipped runs, summarized anew."""
    out = str(tmp_path_factory.mktemp('lr_sweep'))
    shutil.copytree(os.path.join(HERE, 'lr_sweep'), out, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns('summary', 'logs'))
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        assert sweep.main(['config/sweeps/english_lr.py', '--summarize=True', f'--out_dir={out}']) == 0
    finally:
        os.chdir(cwd)
    with open(os.path.join(out, 'summary', 'results.json')) as f, \
            open(os.path.join(out, 'summary', 'results.md')) as g:
        return json.load(f), g.read()


@pytest.fixture(scope='module')
def readme():
    with open(os.path.join(HERE, 'README.md')) as f:
        return f.read()


def table_rows(text, header):
    """The rows of the markdown table that follows the line starting with header."""
    lines = text[text.index(header):].splitlines()[1:]
    start = next(i for i, line in enumerate(lines) if line.startswith('|'))
    rows = []
    for line in lines[start:]:
        if not line.startswith('|'):
            break
        rows.append(line)
    return rows


@pytest.mark.parametrize('header', ['### Every setting', '### Best against best'])
def test_readme_tables_are_the_summary_of_the_shipped_runs(summary, readme, header):
    _, markdown = summary
    assert table_rows(readme, header) == table_rows(markdown, header)


def test_sixteen_runs_each_finished_and_evaluated(summary):
    results, _ = summary
    assert len(results['runs']) == 16
    for group in results['groups']:
        assert [s['values']['learning_rate'] for s in group['settings']] == [1e-3, 2e-3, 4e-3, 8e-3]
        assert all(s['complete'] and s['n'] == 2 for s in group['settings'])


def test_the_prose_numbers(summary, readme):
    results, _ = summary
    groups = {g['name']: g for g in results['groups']}
    gpt2, llama = groups['gpt2'], groups['llama']
    # the best rates, bracketed by worse ones on both sides
    for g in (gpt2, llama):
        means = [s['mean'] for s in g['settings']]
        best = means.index(min(means))
        assert g['best']['values']['learning_rate'] == 2e-3 and 0 < best < len(means) - 1
    assert "Both architectures' best rate is 2e-3, bracketed" in readme
    llama_means = {s['values']['learning_rate']: s['mean'] for s in llama['settings']}
    assert f"({llama_means[2e-3]:.4f} and {llama_means[4e-3]:.4f})" in readme
    gap = gpt2['best']['mean'] - llama['best']['mean']
    assert f"LLaMA is {gap:.2f} bits per byte lower" in readme
    assert f"({llama['best']['mean']:.3f} against {gpt2['best']['mean']:.3f}, {100 * gap / gpt2['best']['mean']:.0f}%)" \
        in readme
    fewer = 1 - llama['flops'] / gpt2['flops']
    assert f"for {100 * fewer:.0f}% fewer training FLOPs ({llama['flops'] / 1e15:.1f} against " \
           f"{gpt2['flops'] / 1e15:.1f} PFLOP" in readme
    assert f"tied embeddings, {gpt2['parameters'] / 1e6:.1f}M parameters" in readme
    assert f"untied, {llama['parameters'] / 1e6:.1f}M)" in readme
    assert f"untied embeddings are {(llama['parameters'] - gpt2['parameters']) / 1e6:.0f}M more" in readme
    comparison = results['comparisons'][0]
    assert comparison['paired'] is None and 'dataset differs' in comparison['note']


def test_training_length_and_tokens_per_parameter(readme):
    logs = {}
    for arch in ('gpt2', 'llama'):
        folder = os.path.join(HERE, 'lr_sweep', f'{arch}-lr0.002-s1')
        name = next(n for n in os.listdir(folder) if re.fullmatch(r'run_\d+_\d+\.json', n))
        with open(os.path.join(folder, name)) as f:
            logs[arch] = json.load(f)
    gpt2, llama = (logs[a]['env'] for a in ('gpt2', 'llama'))
    tokens = {a: logs[a]['evals'][-1]['tokens'] for a in logs}
    iters = {a: logs[a]['evals'][-1]['iter'] for a in logs}
    assert f"({iters['gpt2']:,} and {iters['llama']:,} iterations, {tokens['gpt2'] / 1e6:.1f}M and " \
           f"{tokens['llama'] / 1e6:.1f}M" in readme
    text = {a: tokens[a] * logs[a]['env']['train_bytes_per_token'] / 1e6 for a in logs}
    assert abs(text['gpt2'] - text['llama']) < 0.1  # one pass each: the same documents, but for the last batch
    assert f"the same documents: {text['gpt2']:.1f} and {text['llama']:.1f} MB of text" in readme
    per_param = {a: tokens[a] / logs[a]['env']['parameters'] for a in logs}
    assert f"{per_param['gpt2']:.1f} tokens per parameter for GPT-2 and {per_param['llama']:.1f} for LLaMA" in readme
    embedding = {'gpt2': (50304 + 1024) * 384, 'llama': 2 * 32000 * 384}  # tied + positions; untied in and out
    non_embedding = {a: tokens[a] / (logs[a]['env']['parameters'] - embedding[a]) for a in logs}
    assert f"({non_embedding['gpt2']:.1f} and {non_embedding['llama']:.1f}\n  per non-embedding parameter)" in readme


def test_batch_times_and_preparation_are_the_shipped_logs(readme):
    logs = os.path.join(HERE, 'lr_sweep', 'logs')
    for seed in (1, 2):
        with open(os.path.join(logs, f'sweep_seed{seed}.log')) as f:
            text = f.read()
        assert 'sweep: 8 of 8 runs finished' in text
        elapsed = re.findall(r'8 finished, 0 running, 0 failed, 0 left of 8; (\d+)m(\d+)s elapsed', text)
        assert elapsed and int(elapsed[-1][0]) == 4
    assert "each batch of 8 in 4 minutes" in readme
    for name, seconds in (('gpt2', 2), ('llama', 5)):
        with open(os.path.join(logs, f'prepare_{name}.log')) as f:
            took = float(re.search(r'tokens in ([\d.]+) s', f.read()).group(1))
        assert round(took) == seconds
    assert "(2 s for GPT-2's tokenizer and 5 s for\nLlama-2's on 8 cores each)" in readme


# -----------------------------------------------------------------------------
# step 2: both architectures on both tokenizers, 3 seeds (compare/)

COMPARE = os.path.join(HERE, 'compare')


def summarize_compare(tmp_path_factory, metric, summary_dir):
    out = str(tmp_path_factory.mktemp('compare'))
    shutil.copytree(COMPARE, out, dirs_exist_ok=True, ignore=shutil.ignore_patterns('summary*', 'logs'))
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        assert sweep.main(['config/sweeps/english_compare.py', '--summarize=True', f'--out_dir={out}',
                           f'--metric={metric}', f'--summary_dir={summary_dir}']) == 0
    finally:
        os.chdir(cwd)
    with open(os.path.join(out, summary_dir, 'results.json')) as f, \
            open(os.path.join(out, summary_dir, 'results.md')) as g:
        return json.load(f), g.read()


@pytest.fixture(scope='module')
def compare_val(tmp_path_factory):
    return summarize_compare(tmp_path_factory, 'val_bpb', 'summary-val_bpb')


@pytest.fixture(scope='module')
def compare_eval(tmp_path_factory):
    return summarize_compare(tmp_path_factory, 'eval_bpb', 'summary')


def step2(readme):
    return readme[readme.index('## Step 2'):readme.index('## What is left')]


def test_step2_tables_are_the_summary_of_the_shipped_runs(compare_val, readme):
    _, markdown = compare_val
    text = step2(readme)
    best, diffs = table_rows(markdown, '### Best against best'), table_rows(markdown, '### Differences')
    assert text.count('| group | best ') == 1 and best[0].startswith('| group | best ')
    assert table_rows(text, '| group | best ') == best[1:]  # the rows after the header line
    assert diffs[0].startswith('| A | B |') and table_rows(text, '| A | B |') == diffs[1:]


def test_step2_prose_numbers(compare_val, compare_eval, readme):
    results, _ = compare_val
    text = step2(readme)
    groups = {g['name']: g for g in results['groups']}
    assert all(g['best']['n'] == 3 for g in groups.values())
    diff = {(c['a'], c['b']): c for c in results['comparisons']}
    same_gpt2, same_llama = diff[('gpt2', 'llama')], diff[('gpt2+llamatok', 'llama+llamatok')]
    assert same_gpt2['paired']['n'] == same_llama['paired']['n'] == 3
    assert same_gpt2['paired']['ci'][1] < 0 and same_llama['paired']['ci'][1] < 0  # intervals exclude zero
    gpt2 = groups['gpt2']['best']['mean']
    assert f"LLaMA is {-same_gpt2['paired']['mean']:.2f} bits per byte lower on GPT-2's " \
           f"({100 * -same_gpt2['paired']['mean'] / gpt2:.0f}% of GPT-2's {gpt2:.3f}) and\n  " \
           f"{-same_llama['paired']['mean']:.2f} lower on Llama-2's" in text
    for a, b, name in (('gpt2', 'gpt2+llamatok', 'GPT-2'), ('llama', 'llama+llamatok', 'LLaMA')):
        w = diff[(a, b)]['welch']
        assert diff[(a, b)]['paired'] is None
        assert f"{name} {w['mean']:+.3f} [{w['ci'][0]:+.3f}, {w['ci'][1]:+.3f}]" in text.replace('\n  ', ' ')
    own = diff[('gpt2', 'llama+llamatok')]['welch']
    assert f"LLaMA {-own['mean']:.2f} lower (Welch" in text
    flops = {name: g['flops'] for name, g in groups.items()}
    assert f"({flops['llama+llamatok'] / 1e15:.1f}\n  against {flops['gpt2'] / 1e15:.2f} PFLOP a pass)" in text
    assert f"for {100 * (1 - flops['llama+llamatok'] / flops['gpt2']):.0f}% fewer training FLOPs" in text
    per_token = {name: g['flops_per_token'] for name, g in groups.items()}
    assert per_token['gpt2'] == per_token['llama'] and per_token['gpt2+llamatok'] == per_token['llama+llamatok']
    assert f"({per_token['gpt2'] / 1e9:.4f} GFLOP on GPT-2's vocabulary, {per_token['llama+llamatok'] / 1e9:.4f}\n  on" \
           in text
    values = {r['name']: r['value'] for r in results['runs']}
    spans = {g: [values[f'{g}-s{s}'] for s in (1, 2, 3)] for g in groups}
    assert f"span {min(spans['llama']):.3f} to {max(spans['llama']):.3f}, on Llama-2's\n  " \
           f"{min(spans['llama+llamatok']):.3f} to {max(spans['llama+llamatok']):.3f}" in text
    assert f"GPT-2's span {max(spans['gpt2']) - min(spans['gpt2']):.3f} and " \
           f"{max(spans['gpt2+llamatok']) - min(spans['gpt2+llamatok']):.3f}." in text
    # eval_bpb.py on 11 of the 12 (gpt2-s1's never started), each within 0.02 of val_bpb and below it
    evaluated = {r['name']: r['value'] for r in compare_eval[0]['runs'] if r['value'] is not None}
    assert sorted(set(values) - set(evaluated)) == ['gpt2-s1'] and "ran on 11 of the 12" in text
    lower = [values[n] - evaluated[n] for n in evaluated]
    assert 0 < min(lower) and max(lower) < 0.02
    assert f"eval_bpb is lower by {min(lower):.3f} to {max(lower):.3f}" in text.replace('\n', ' ')
    tokens = {name: g['tokens'] for name, g in groups.items()}
    params = {name: g['parameters'] for name, g in groups.items()}
    assert f"one pass, {tokens['gpt2'] / 1e6:.1f}M tokens on GPT-2's tokenizer and {tokens['llama+llamatok'] / 1e6:.1f}M" \
           in text
    assert f"{tokens['gpt2'] / params['gpt2']:.1f} (GPT-2, tied) and {tokens['llama'] / params['llama']:.2f} (LLaMA, " \
           f"untied) on GPT-2's vocabulary, {tokens['gpt2+llamatok'] / params['gpt2+llamatok']:.2f} and " \
           f"{tokens['llama+llamatok'] / params['llama+llamatok']:.2f} on Llama-2's" in text.replace('\n  ', ' ')


def test_the_project_readme_quotes_step2(compare_val):
    results, markdown = compare_val
    with open(os.path.join(REPO, 'README.md')) as f:
        readme = f.read()
    assert '\n'.join(table_rows(markdown, '### Differences')) in readme  # the table, as the summary makes it
    text = ' '.join(readme.split())
    diff = {(c['a'], c['b']): c['paired'] for c in results['comparisons']}
    a, b = diff[('gpt2', 'llama')], diff[('gpt2+llamatok', 'llama+llamatok')]
    assert f"LLaMA is {-a['mean']:.2f} bits per byte lower on GPT-2's tokenizer (95% interval " \
           f"[{-a['ci'][1]:.2f}, {-a['ci'][0]:.2f}], paired over seeds) and {-b['mean']:.2f} on Llama-2's " \
           f"[{-b['ci'][1]:.2f}, {-b['ci'][0]:.2f}]" in text
