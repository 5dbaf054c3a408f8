"""
compare.py: Student's t against closed forms and published quantiles, the intervals and differences
against hand computations, when a run log is finished, speed, and the choice of each group's best
learning rate by its written rule, on synthetic run folders (sweep_run.json and a run log as
train.py writes them).
"""
import json
import math
import os

import pytest

import compare


# -----------------------------------------------------------------------------
# Student's t

@pytest.mark.parametrize('df, expected', [(2, 4.302653), (4, 2.776445), (10, 2.228139), (30, 2.042272)])
def test_t_quantile_matches_the_published_975_quantiles(df, expected):
    assert compare.t_quantile(0.975, df) == pytest.approx(expected, abs=5e-7)


def test_t_quantile_matches_closed_forms_and_the_normal_limit():
    for p in (0.6, 0.9, 0.95, 0.975, 0.995, 0.9999, 0.025, 0.3):
        assert compare.t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-11)  # Cauchy
        assert compare.t_quantile(p, 2) == pytest.approx((2 * p - 1) / math.sqrt(2 * p * (1 - p)), rel=1e-11)
    assert compare.t_quantile(0.975, 1) == pytest.approx(12.706204736, abs=1e-8)
    assert compare.t_quantile(0.95, 5) == pytest.approx(2.015048, abs=5e-7)
    assert compare.t_quantile(0.975, 1e6) == pytest.approx(1.959964, abs=5e-6)  # the normal's 1.959964
    assert compare.t_quantile(0.5, 3) == 0.0


def test_t_cdf_matches_closed_forms():
    for t in (-30.0, -2.5, -0.3, 0.0, 0.7, 4.0, 100.0):
        assert compare.t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-14)
        assert compare.t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), abs=1e-14)
        # df 3: 1/2 + (atan(u) + u / (1 + u^2)) / pi with u = t / sqrt(3)
        u = t / math.sqrt(3)
        assert compare.t_cdf(t, 3) == pytest.approx(0.5 + (math.atan(u) + u / (1 + u * u)) / math.pi, abs=1e-14)


def test_incomplete_beta_matches_closed_forms():
    for x in (0.0, 0.01, 0.3, 0.5, 0.9, 1.0):
        assert compare.incomplete_beta(1, 1, x) == pytest.approx(x, abs=1e-15)
        assert compare.incomplete_beta(3.5, 1, x) == pytest.approx(x ** 3.5, abs=1e-14)
        assert compare.incomplete_beta(1, 2.5, x) == pytest.approx(1 - (1 - x) ** 2.5, abs=1e-14)
    assert compare.incomplete_beta(7.3, 7.3, 0.5) == pytest.approx(0.5, abs=1e-14)


# -----------------------------------------------------------------------------
# intervals and differences

def test_mean_interval_over_five_values():
    stats = compare.mean_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    # mean 3, sd sqrt(2.5), half width t_{0.975,4} x sqrt(2.5) / sqrt(5) = 2.776445 x 0.707107
    assert (stats['n'], stats['mean'], stats['sd']) == (5, 3.0, pytest.approx(math.sqrt(2.5)))
    assert stats['half_width'] == pytest.approx(1.963243, abs=1e-6)
    assert stats['ci'] == [pytest.approx(1.036757, abs=1e-6), pytest.approx(4.963243, abs=1e-6)]
    one = compare.mean_interval([1.25])
    assert (one['n'], one['mean'], one['ci']) == (1, 1.25, None)


def test_paired_difference_uses_the_shared_seeds():
    a = {1: 1.0, 2: 2.0, 3: 3.0}
    b = {1: 1.1, 2: 2.3, 3: 3.2, 4: 9.0}  # seed 4 has no partner: left out
    d = compare.paired_difference(a, b)
    # differences 0.1, 0.3, 0.2: mean 0.2, sd 0.1, half width t_{0.975,2} x 0.1 / sqrt(3) = 4.302653 x 0.057735
    assert d['seeds'] == [1, 2, 3] and d['df'] == 2
    assert d['mean'] == pytest.approx(0.2) and d['sd'] == pytest.approx(0.1)
    assert d['half_width'] == pytest.approx(0.248414, abs=1e-6)
    t = 0.2 / (0.1 / math.sqrt(3))  # two-sided p at df 2: 1 - t / sqrt(2 + t^2)
    assert d['p'] == pytest.approx(1 - t / math.sqrt(2 + t * t), rel=1e-9)
    assert compare.paired_difference({1: 1.0}, {1: 2.0}) is None


def test_welch_difference_of_equal_variances_has_2n_minus_2_degrees_of_freedom():
    w = compare.welch_difference([1.0, 2.0, 3.0], [2.0, 3.0, 4.0])
    # variances 1 and 1, n 3 and 3: se sqrt(2/3), df 4, half width t_{0.975,4} x sqrt(2/3) = 2.776445 x 0.816497
    assert w['mean'] == pytest.approx(1.0) and w['df'] == pytest.approx(4.0)
    assert w['half_width'] == pytest.approx(2.266958, abs=1e-6)
    unequal = compare.welch_difference([1.0, 1.1, 0.9, 1.05], [2.0, 3.0, 2.5])
    va, vb = 0.021875 / 3 / 4, 0.5 / 2 / 3  # sample variances (squared deviations / (n - 1)) over n
    df = (va + vb) ** 2 / (va ** 2 / 3 + vb ** 2 / 2)
    assert unequal['df'] == pytest.approx(df, rel=1e-9) and unequal['mean'] == pytest.approx(1.4875)
    assert unequal['half_width'] == pytest.approx(compare.t_quantile(0.975, df) * math.sqrt(va + vb), rel=1e-12)


# -----------------------------------------------------------------------------
# synthetic run folders, as sweep.py and train.py write them

def write_run(root, group, lr, seed, value, status='finished', dataset='d', max_iters=100, tokens_per_iter=1000,
              step_time=0.5, bytes_per_token=4.0, flops_per_token=6000):
    """A run folder: sweep_run.json and a run log whose final evaluation's val_bpb is value. status:
    'finished', 'stopped' (saved at iteration 60 by a signal) or 'failed' (no run log, the record says so)."""
    name = f"{group}-lr{lr!r}-s{seed}"
    folder = os.path.join(root, name)
    os.makedirs(folder)
    record = dict(name=name, group=group, config=f'config/{group}.py', settings=dict(learning_rate=lr, seed=seed),
                  train_args=[], eval_args=None, status='failed' if status == 'failed' else 'finished')
    compare.write_record(folder, record)
    if status == 'failed':
        return name
    last = max_iters if status == 'finished' else 60
    iters = [dict(iter=i, loss=1.0, tokens=i * tokens_per_iter, step_time=step_time * (3 if i == 10 else 1),
                  tokens_per_sec=tokens_per_iter / step_time, time=i * step_time, unix_time=1e9 + i * step_time)
             for i in range(10, last + 1, 10)]
    evals = [dict(iter=i, val_loss=value * 2, val_bpb=value + (max_iters - i) / 1000, tokens=i * tokens_per_iter,
                  time=i * step_time, unix_time=1e9 + i * step_time) for i in (50, last) if i <= last]
    events = [dict(iter=last, event='checkpoint', reason='end of training' if status == 'finished' else 'stopped by SIGTERM')]
    log = dict(config=dict(seed=seed, learning_rate=lr, max_iters=max_iters, dataset=dataset, block_size=64,
                           batch_size=4, gradient_accumulation_steps=1, data_order='epoch'),
               model_args={}, env=dict(parameters=123456, flops_per_token=flops_per_token, tokens_per_iter=tokens_per_iter,
                                       train_bytes_per_token=bytes_per_token, start_iter=0, device='cpu'),
               iters=iters, evals=evals, events=events)
    with open(os.path.join(folder, 'run_20260101_000000.json'), 'w') as f:
        json.dump(log, f)
    return name


def test_training_finished_needs_max_iters_evaluated_and_saved(tmp_path):
    write_run(tmp_path, 'a', 1e-3, 1, 1.0)
    write_run(tmp_path, 'b', 1e-3, 1, 1.0, status='stopped')
    _, done = compare.newest_run_log(str(tmp_path / 'a-lr0.001-s1'))
    _, stopped = compare.newest_run_log(str(tmp_path / 'b-lr0.001-s1'))
    assert compare.training_finished(done) == (True, 100, 100)
    assert compare.training_finished(stopped) == (False, 60, 100)
    done['events'] = []  # evaluated at max_iters, killed before the checkpoint was written
    assert compare.training_finished(done) == (False, 100, 100)
    # resumed with a larger max_iters: the latest process's max_iters counts
    _, done = compare.newest_run_log(str(tmp_path / 'a-lr0.001-s1'))
    done['resumes'] = [dict(config=dict(done['config'], max_iters=200), env=dict(start_iter=100))]
    assert compare.training_finished(done) == (False, 100, 200)


def test_speed_leaves_out_the_first_record_of_each_process():
    log = dict(env=dict(tokens_per_iter=100, start_iter=0), resumes=[dict(env=dict(start_iter=30))],
               iters=[dict(iter=10, step_time=9.0), dict(iter=20, step_time=0.1), dict(iter=30, step_time=0.3),
                      dict(iter=40, step_time=5.0), dict(iter=50, step_time=0.2)])
    # kept: 20 (10 iterations at 0.1 s), 30 (10 at 0.3), 50 (10 at 0.2); 10 and 40 start their processes
    assert compare.speed(log) == pytest.approx(30 * 100 / (10 * 0.1 + 10 * 0.3 + 10 * 0.2))


def test_run_result_reads_tokens_bytes_flops_and_speed(tmp_path):
    name = write_run(tmp_path, 'a', 1e-3, 1, 0.9, step_time=0.25)
    r = compare.run_result(str(tmp_path / name), 'val_bpb')
    assert (r['status'], r['value'], r['iterations'], r['tokens']) == ('finished', 0.9, 100, 100_000)
    assert (r['bytes'], r['flops']) == (400_000, 600_000_000)
    assert r['tokens_per_sec'] == pytest.approx(4000) and r['bytes_per_sec'] == pytest.approx(16000)
    assert r['wall_seconds'] == pytest.approx(25.0)
    assert compare.run_result(str(tmp_path / name), 'val_loss')['value'] == 1.8
    assert compare.run_result(str(tmp_path / name), 'eval_bpb')['status'] == 'not evaluated'
    with open(compare.bpb_result_path(str(tmp_path / name), 100), 'w') as f:
        json.dump(dict(overall=dict(bpb=0.875)), f)
    assert compare.run_result(str(tmp_path / name), 'eval_bpb')['value'] == 0.875


# The values of a synthetic sweep: group -> lr -> the final val_bpb of seeds 1, 2, 3 (None: failed)
SWEEP = {
    'gpt2': {1e-3: [1.30, 1.32, 1.31], 2e-3: [1.20, 1.23, 1.22], 4e-3: [1.25, 1.24, 1.29]},  # best inside the grid
    'llama': {1e-3: [1.20, 1.21, 1.22], 2e-3: [1.10, 1.12, 1.14], 4e-3: [1.05, 1.06, 1.10]},  # best at the edge
    'tie': {1e-3: [1.00, 1.10, 1.20], 2e-3: [1.20, 1.00, 1.10], 4e-3: [1.50, 1.50, 1.50]},    # equal means: the lower lr
    'diverged': {1e-3: [1.30, 1.30, 1.30], 2e-3: [1.25, 1.26, 1.27], 4e-3: [0.90, 0.90, None]},  # a failed seed
}
GRID = {'learning_rate': [1e-3, 2e-3, 4e-3], 'seed': [1, 2, 3]}


def synthetic_sweep(root, dataset=lambda group: 'd'):
    runs = []
    for seed in (1, 2, 3):
        for group, settings in SWEEP.items():
            for lr, values in settings.items():
                value = values[seed - 1]
                name = write_run(root, group, lr, seed, value, status='failed' if value is None else 'finished',
                                 dataset=dataset(group))
                runs.append(compare.run_result(os.path.join(root, name), 'val_bpb'))
    return runs


def test_each_group_gets_its_best_learning_rate_by_the_rule(tmp_path):
    results = compare.summarize(synthetic_sweep(str(tmp_path)), ['learning_rate'], GRID, 'val_bpb', 'first')
    groups = {g['name']: g for g in results['groups']}
    best = {name: g['best']['values']['learning_rate'] for name, g in groups.items()}
    assert best == {'gpt2': 2e-3, 'llama': 4e-3, 'tie': 1e-3, 'diverged': 2e-3}
    g = groups['gpt2']['best']
    assert (g['n'], g['seeds'], g['mean']) == (3, [1, 2, 3], pytest.approx(1.216666667))
    sd = math.sqrt(((1.20 - 1.2166667) ** 2 + (1.23 - 1.2166667) ** 2 + (1.22 - 1.2166667) ** 2) / 2)
    assert g['half_width'] == pytest.approx(4.302653 * sd / math.sqrt(3), rel=1e-6)
    warnings = results['warnings']
    assert not any(w.startswith('gpt2:') for w in warnings)  # bracketed: 2e-3 lies inside the grid
    assert "llama: best learning_rate 0.004 is the grid's largest: the sweep did not bracket the optimum; " \
           "add a larger value" in warnings
    assert "tie: best learning_rate 0.001 is the grid's smallest: the sweep did not bracket the optimum; " \
           "add a smaller value" in warnings
    diverged = {s['values']['learning_rate']: s for s in groups['diverged']['settings']}
    assert not diverged[4e-3]['complete'] and diverged[4e-3]['missing'] == {'diverged-lr0.004-s3': 'failed'}
    assert diverged[4e-3]['mean'] == pytest.approx(0.90)  # the lowest mean, but a seed failed: not eligible
    assert groups['gpt2']['tokens'] == 100_000 and groups['gpt2']['bytes'] == 400_000


def test_differences_at_the_best_settings_are_paired_where_the_data_order_is_shared(tmp_path):
    results = compare.summarize(synthetic_sweep(str(tmp_path)), ['learning_rate'], GRID, 'val_bpb', 'first')
    first = {c['b']: c for c in results['comparisons']}
    assert [(c['a'], c['b']) for c in results['comparisons']] == [('gpt2', 'llama'), ('gpt2', 'tie'),
                                                                  ('gpt2', 'diverged')]
    paired = first['llama']['paired']  # llama at 4e-3 minus gpt2 at 2e-3, seed by seed
    diffs = [1.05 - 1.20, 1.06 - 1.23, 1.10 - 1.22]
    assert paired['seeds'] == [1, 2, 3] and paired['mean'] == pytest.approx(sum(diffs) / 3)
    sd = math.sqrt(sum((d - sum(diffs) / 3) ** 2 for d in diffs) / 2)
    assert paired['ci'] == [pytest.approx(sum(diffs) / 3 - 4.302653 * sd / math.sqrt(3), rel=1e-6),
                            pytest.approx(sum(diffs) / 3 + 4.302653 * sd / math.sqrt(3), rel=1e-6)]
    assert first['llama']['welch']['mean'] == pytest.approx(sum(diffs) / 3)

    other = tmp_path / 'other'  # llama on another dataset: the same seed reads other batches
    results = compare.summarize(synthetic_sweep(str(other), lambda g: 'e' if g == 'llama' else 'd'), ['learning_rate'],
                                GRID, 'val_bpb', 'gpt2:llama')
    (c,) = results['comparisons']
    assert c['paired'] is None and c['welch']['mean'] == pytest.approx(sum(diffs) / 3)
    assert c['note'].startswith('dataset differs')


def test_the_markdown_table_shows_the_numbers_of_results_json(tmp_path):
    results = compare.summarize(synthetic_sweep(str(tmp_path)), ['learning_rate'], GRID, 'val_bpb', 'previous')
    text = compare.markdown(json.loads(json.dumps(results)))  # what results.json holds
    for g in results['groups']:
        b = g['best']
        row = (f"| {g['name']} | {b['values']['learning_rate']:g} | 3 | {b['mean']:.4f} | "
               f"[{b['ci'][0]:.4f}, {b['ci'][1]:.4f}] | 123,456 | 0.0000 | 100K | 400KB | 600M | 2,000 | 8,000 |")
        assert row in text, row
    assert "| diverged | 0.004 | 2 | 0.9000 | [0.9000, 0.9000] | diverged-lr0.004-s3 (failed) |" in text
    for c in results['comparisons']:
        p = c['paired']
        assert f"| {c['a']} | {c['b']} | 3 | {p['mean']:.4f} | [{p['ci'][0]:.4f}, {p['ci'][1]:.4f}] |" in text
    assert f"Rule: {compare.RULE.format(metric='val_bpb')}." in text
    assert 'shared their device' not in text
    results['groups'][1]['runs_per_device'] = 4  # its runs shared a GPU four at a time (sweep.py --parallel=4)
    assert "tokens/s and bytes/s: of runs that shared their device, up to 4 at a time" in compare.markdown(results)


def test_figures_are_drawn(tmp_path):
    pytest.importorskip('matplotlib')
    results = compare.summarize(synthetic_sweep(str(tmp_path)), ['learning_rate'], GRID, 'val_bpb')
    paths = compare.draw_figures(results, str(tmp_path / 'summary'))
    assert [os.path.basename(p) for p in paths] == ['curves.png', 'tuning.png']
    assert all(os.path.getsize(p) > 10_000 for p in paths)


def test_comparison_specs():
    groups = ['a', 'b', 'c']
    assert compare.comparison_pairs('first', groups) == [('a', 'b'), ('a', 'c')]
    assert compare.comparison_pairs('previous', groups) == [('a', 'b'), ('b', 'c')]
    assert compare.comparison_pairs('all', groups) == [('a', 'b'), ('a', 'c'), ('b', 'c')]
    assert compare.comparison_pairs('c:a, b:c', groups) == [('c', 'a'), ('b', 'c')]
    with pytest.raises(compare.UserError, match="'a-b' is not A:B"):
        compare.comparison_pairs('a-b', groups)
