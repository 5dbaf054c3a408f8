"""
The reference comparison v2 (reference/english_mix/README.md): every number its README states is
recomputed here from the files shipped beside it: the run logs and eval_bpb.py results of the
learning-rate sweep, summarized again by sweep.py into a temporary folder.
"""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

import compare
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


def summarize_compare(tmp_path_factory, metric, summary_dir, sweep_file='config/sweeps/english_compare.py'):
    """(results.json, results.md) of a sweep over the shipped compare/ runs (step 2's, or step 3's ladder
    that shares its out_dir), summarized anew into a temporary folder."""
    out = str(tmp_path_factory.mktemp('compare'))
    shutil.copytree(COMPARE, out, dirs_exist_ok=True, ignore=shutil.ignore_patterns('summary*', 'logs'))
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        assert sweep.main([sweep_file, '--summarize=True', f'--out_dir={out}',
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
    return readme[readme.index('## Step 2'):readme.index('## Step 3')]


def step(readme, n):
    """The README's section of step n."""
    return readme[readme.index(f'## Step {n}'):readme.index('\n## ', readme.index(f'## Step {n}') + 1)]


def final_val_bpb(folder):
    """The last evaluation's val_bpb in a run folder's newest run log."""
    name = sorted(n for n in os.listdir(folder) if re.fullmatch(r'run_\d+_\d+\.json', n))[-1]
    with open(os.path.join(folder, name)) as f:
        return json.load(f)['evals'][-1]['val_bpb']


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
    # eval_bpb.py on all 12, each within 0.02 of val_bpb and below it
    evaluated = {r['name']: r['value'] for r in compare_eval[0]['runs'] if r['value'] is not None}
    assert set(values) == set(evaluated) and "then ran on all 12" in text
    # gpt2-s1 trained twice with the same arguments and seed: the first's log kept, the second shipped
    first = final_val_bpb(os.path.join(COMPARE, 'logs', 'gpt2-s1-first'))
    second = final_val_bpb(os.path.join(COMPARE, 'gpt2-s1'))
    assert second == values['gpt2-s1']
    assert f"it finished at {second:.4f} against the first training's {first:.4f}, {abs(second - first):.3f} apart" \
           in text.replace('\n', ' ')
    assert f"half GPT-2's spread over seeds" in text and round(2 * abs(second - first), 2) == round(
        max(spans['gpt2']) - min(spans['gpt2']), 2)
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


# -----------------------------------------------------------------------------
# step 3: the component ladder (compare/, config/sweeps/english_ladder.py)

@pytest.fixture(scope='module')
def ladder(tmp_path_factory):
    return summarize_compare(tmp_path_factory, 'eval_bpb', 'summary-ladder', 'config/sweeps/english_ladder.py')


@pytest.fixture(scope='module')
def ladder_val(tmp_path_factory):
    return summarize_compare(tmp_path_factory, 'val_bpb', 'summary-ladder-val_bpb', 'config/sweeps/english_ladder.py')


def test_step3_tables_are_the_summary_of_the_shipped_runs(ladder, readme):
    results, markdown = ladder
    text = step(readme, 3)
    assert len(results['runs']) == 30 and all(g['best']['n'] == 5 for g in results['groups'])
    assert table_rows(text, '| group | best ') == table_rows(markdown, '### Best against best')[1:]
    assert table_rows(text, '| A | B |') == table_rows(markdown, '### Differences')[1:]


def test_step3_prose_numbers(ladder, ladder_val, readme):
    text = ' '.join(step(readme, 3).split())
    paired = {(c['a'], c['b']): c['paired'] for c in ladder[0]['comparisons']}
    f = lambda c: f"{c['mean']:+.3f} [{c['ci'][0]:+.3f}, {c['ci'][1]:+.3f}]"
    rope, whole = paired[('untied', 'rope')], paired[('gpt2', 'llama')]
    assert rope['ci'][1] < 0 and 0.75 < rope['mean'] / whole['mean'] < 0.85  # most of it: about four fifths
    assert f"{f(rope)} bits per byte from learned positions to RoPE, about four fifths of the whole ladder's " \
           f"{f(whole)}" in text
    swiglu = paired[('rope', 'swiglu')]
    assert swiglu['n'] == 5 and swiglu['ci'][1] < 0  # seeds 4 and 5 settled it: the interval excludes zero
    assert f"SwiGLU at GELU's FLOPs is next**: {f(swiglu)} paired over 5 seeds" in text
    # with seeds 1 to 3 alone (the earlier statement the README keeps) the paired interval reached zero
    value = {(r['group'], r['seed']): r['value'] for r in ladder[0]['runs']}
    early = compare.paired_difference({k: value[('rope', k)] for k in (1, 2, 3)}, {k: value[('swiglu', k)] for k in (1, 2, 3)})
    assert early['ci'][0] < 0 < early['ci'][1] and f"{f(early)})" in text
    untied, norm = paired[('gpt2', 'untied')], paired[('swiglu', 'llama')]
    assert untied['ci'][0] < 0 < untied['ci'][1] and norm['ci'][0] < 0 < norm['ci'][1]
    assert f"{f(untied)} and {f(norm)}" in text
    welch_untied = next(c['welch'] for c in ladder[0]['comparisons'] if (c['a'], c['b']) == ('gpt2', 'untied'))
    assert f"untying costs a little at this length (Welch's p {welch_untied['p']:.2f})" in text
    # paired differences of the same seeds add up: the rungs sum to the whole ladder
    steps = [paired[k]['mean'] for k in (('gpt2', 'untied'), ('untied', 'rope'), ('rope', 'swiglu'), ('swiglu', 'llama'))]
    assert sum(steps) == pytest.approx(whole['mean'], abs=1e-9)
    assert steps[3] > 0 and f"{steps[0]:+.4f} - {-steps[1]:.4f} - {-steps[2]:.4f} + {steps[3]:.4f} = {whole['mean']:.4f}" in text
    tied = paired[('llama', 'llama_params')]
    assert tied['ci'][1] < 0
    assert f"{f(tied)} against the untied LLaMA, {f(paired[('gpt2', 'llama_params')])} against GPT-2" in text
    # the val_bpb summary agrees on every step
    val = {(c['a'], c['b']): c['paired']['mean'] for c in ladder_val[0]['comparisons']}
    assert max(abs(val[k] - paired[k]['mean']) for k in paired) < 0.015 and 'agrees within 0.015 on every step' in text
    with open(os.path.join(COMPARE, 'logs', 'sweep_ladder.log')) as log:
        log = log.read()
    assert 'sweep: 18 of 18 runs finished' in log and '0 left of 18; 8m19s elapsed' in log
    assert '13 to run, 7 at a time' in log and 'in 8 min 19 s' in text
    with open(os.path.join(COMPARE, 'logs', 'sweep_ladder_s45.log')) as log:
        log = log.read()
    assert '30 runs in out-english-compare, 18 finished already, 12 to run, 6 at a time' in log
    assert 'sweep: 30 of 30 runs finished' in log and '0 left of 30; 7m09s elapsed' in log and 'in 7 min 09 s' in text


# -----------------------------------------------------------------------------
# step 4: bench.py at the 1.36B configs (perf/bench_results.jsonl)

def test_step4_speed_and_hours(readme):
    with open(os.path.join(REPO, 'perf', 'bench_results.jsonl')) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    # the last four: one call, LLaMA and GPT-2 each with its own vocabulary, then each at the other's
    llama, gpt2, llama_50k, gpt2_32k = four = lines[-4:]
    assert [(b['config'], b['vocab_size']) for b in four] == [
        ('config/full_llama_1.36b.py', 32000), ('config/full_gpt2_1.36b.py', 50304),
        ('config/full_llama_1.36b.py', 50304), ('config/full_gpt2_1.36b.py', 32000)]
    assert {b['device'] for b in four} == {'NVIDIA H100 80GB HBM3'} and not any(b['throttled'] for b in four)
    assert [b['text'] for b in four] == ['data/english_mix_' + ('llama' if b['vocab_size'] == 32000 else 'gpt2') for b in four]
    text = step(readme, 4)
    shown = lambda command: re.sub(r' --bench_out=\S+', '', command)  # the call wrote its own file, appended here
    for b in four:
        assert shown(b['command']) in [shown(line) for line in text.split('\n') if line.startswith('python bench.py')]
        assert b['bytes_per_sec'] == pytest.approx(b['tokens_per_sec'] * b['bytes_per_token'])
        assert f"| `{b['config']}` | {b['parameters']:,} | {b['vocab_size']:,} | {b['flops_per_token'] / 1e9:.3f} | " \
               f"{b['tokens_per_sec']:,.0f} | {100 * b['mfu']:.1f}% | {b['bytes_per_token']:.3f} | " \
               f"{b['bytes_per_sec']:,.0f} | {b['peak_mem_gib']:.1f} GiB |" in text
    # the bytes per token are the datasets' (data/english_mix/README.md's table: all splits 2.806 and 3.197)
    assert round(gpt2['bytes_per_token'], 2) == 2.81 and round(llama['bytes_per_token'], 2) == 3.19
    flat = ' '.join(text.split())
    mtx = [b['matmul_tflops_before'] for b in four] + [b['matmul_tflops_after'] for b in four]
    assert f"matmul check {min(mtx):.0f} to {max(mtx):.0f} TFLOP/s before and after each" in flat
    # the same vocabulary: the architecture's speed alone, and what the vocabulary costs each
    same = (llama_50k['tokens_per_sec'] / gpt2['tokens_per_sec'], llama['tokens_per_sec'] / gpt2_32k['tokens_per_sec'])
    assert f"by {100 * (min(same) - 1):.0f} to {100 * (max(same) - 1):.0f}%" in flat
    assert f"{same[0]:.2f} at GPT-2's 50,304 and {same[1]:.2f} at Llama-2's 32,000" in flat
    fewer = [1 - a['flops_per_token'] / b['flops_per_token'] for a, b in ((llama_50k, gpt2), (llama, gpt2_32k))]
    assert {f"{100 * x:.0f}" for x in fewer} == {'9'} and "for 9% fewer FLOPs a token at either" in flat
    assert f"{100 * gpt2['mfu']:.1f}% and {100 * gpt2_32k['mfu']:.1f}% against {100 * llama_50k['mfu']:.1f}% and " \
           f"{100 * llama['mfu']:.1f}%" in flat
    assert f"cost LLaMA {100 * (1 - llama_50k['tokens_per_sec'] / llama['tokens_per_sec']):.1f}% of its tokens/s and " \
           f"GPT-2 {100 * (1 - gpt2['tokens_per_sec'] / gpt2_32k['tokens_per_sec']):.1f}%" in flat
    # the earlier call of the first two (another H100), within the stated fraction of these
    earlier = [b for b in lines[:-4] if shown(b['command']) in (shown(llama['command']), shown(gpt2['command']))][-2:]
    assert [b['config'] for b in earlier] == [llama['config'], gpt2['config']]
    apart = max(abs(1 - a['tokens_per_sec'] / b['tokens_per_sec']) for a, b in zip(earlier, (llama, gpt2)))
    assert f"within {100 * apart:.1f}% of these" in flat
    assert f"{llama['tokens_per_sec'] / gpt2['tokens_per_sec']:.2f} times GPT-2's tokens/s" in flat
    assert f"GFLOP a token are {100 * (1 - llama['flops_per_token'] / gpt2['flops_per_token']):.0f}% fewer" in flat
    assert f"{llama['bytes_per_sec'] / gpt2['bytes_per_sec']:.2f} times its bytes of text a second" in flat
    ratio = llama['bytes_per_token'] / gpt2['bytes_per_token']
    assert f"packs {100 * (ratio - 1):.0f}% more text into a token" in flat
    # the cost tool's hours at the measured MFU: tokens / (4 x 148 TFLOP/s x MFU / FLOPs a token)
    from flops_parameter_counting import detailed_cost_analysis as cost
    hours = {}
    for name, b in (('llama', llama), ('gpt2', gpt2)):
        proc = subprocess.run([sys.executable, os.path.join(REPO, 'flops_parameter_counting', 'detailed_cost_analysis.py'),
                               '--model_config', b['config'], '--gpu', 'H20', '--num_gpus', '4', '--mfu', f"{b['mfu']:.4f}",
                               '--json'], capture_output=True, text=True, cwd=REPO, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        result = json.loads(proc.stdout)
        assert result['flops_per_token']['training'] == b['flops_per_token']
        hours[name] = result['time']['hours']
        assert cost.PEAK_BF16_TFLOPS['H20'] == 148
    assert f"--num_gpus 4 --mfu {llama['mfu']:.4f}`, and the same for GPT-2 at {gpt2['mfu']:.4f})" in flat
    assert f"LLaMA {hours['llama']:.1f} h and GPT-2 {hours['gpt2']:.1f} h" in flat
    assert f"GPT-2 needs {ratio:.2f} times the tokens at this corpus's bytes per token, {hours['gpt2'] * ratio:.1f} h" in flat


def test_the_project_readme_quotes_steps_3_and_4_and_the_scaling_check(ladder):
    with open(os.path.join(REPO, 'README.md')) as f:
        text = ' '.join(f.read().split())
    paired = {(c['a'], c['b']): c['paired']['mean'] for c in ladder[0]['comparisons']}
    assert f"rotary positions buy most of the gap ({paired[('untied', 'rope')]:.2f} bits per byte), SwiGLU at " \
           f"GELU's FLOPs the next {paired[('rope', 'swiglu')]:.2f}" in text
    with open(os.path.join(REPO, 'perf', 'bench_results.jsonl')) as f:
        llama, gpt2, llama_50k, _ = [json.loads(line) for line in f if line.strip()][-4:]
    assert f"LLaMA trains at {llama['tokens_per_sec'] / gpt2['tokens_per_sec']:.2f} times GPT-2's tokens a second and " \
           f"{llama['bytes_per_sec'] / gpt2['bytes_per_sec']:.2f} times its bytes of text a second" in text
    assert f"and at {llama_50k['tokens_per_sec'] / gpt2['tokens_per_sec']:.2f} times its tokens a second at the same " \
           f"vocabulary" in text
    with open(os.path.join(REPO, 'reference', 'scaling', 'results.json')) as f:
        checks = {c['arch']: c for c in json.load(f)['checks']}
    assert all(c['inside'] for c in checks.values())
    assert f"off by {checks['llama']['error']:+.3f} bits per byte for LLaMA and {checks['gpt2']['error']:+.3f} for GPT-2, " \
           f"both inside its 95% intervals" in text
