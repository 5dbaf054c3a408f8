"""
bench.py on CPU: the JSON line it appends, the micro-batch sweep, where its results go by default
(an untracked file, so a run leaves the checkout clean), and the vocabulary read from the config's
dataset when vocab_size is unset.
"""
import json
import math
import os
import subprocess
import sys

import pytest
import torch

import helpers
from helpers import REPO, VOCAB, run

BENCH = ['--bench_iters=1', '--bench_warmup=1', '--batch_size=2']


def bench_in(cwd, args, timeout=120):
    """bench.py run from another working directory (where its default output file goes)."""
    return subprocess.run([sys.executable, os.path.join(REPO, 'bench.py'), os.path.join(REPO, 'config/quick_llama.py'),
                           *args], cwd=cwd, env=helpers.env(), capture_output=True, text=True, timeout=timeout)


def test_bench_appends_json_line(tmp_path):
    bench_out = tmp_path / 'bench.jsonl'
    bench_out.write_text('{"earlier": "result"}\n')
    proc = run('bench.py', ['config/quick_llama.py', f'--vocab_size={VOCAB}', '--bench_iters=2', '--bench_warmup=1',
                            f'--bench_out={bench_out}', '--batch_size=4'], check=True, timeout=120)
    lines = bench_out.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0]) == {'earlier': 'result'}
    result = json.loads(lines[1])
    assert result['device'] == 'cpu' and result['torch'] == torch.__version__ and result['world_size'] == 1
    assert result['config'] == 'config/quick_llama.py' and result['arch'] == 'llama'
    assert result['batch_size'] == 4 and result['block_size'] == 128 and result['gradient_accumulation_steps'] == 1
    assert result['vocab_size'] == VOCAB and result['tokens_per_iter'] == 4 * 128
    assert result['tokens_per_sec'] == pytest.approx(result['tokens_per_iter'] / result['step_time'])
    assert result['tokens_per_sec'] > 0 and math.isfinite(result['loss'])
    assert result['mfu'] is None  # no known CPU peak
    assert f"{result['tokens_per_sec']:,.0f} tok/s" in proc.stdout


def test_bench_sweep_stops_at_the_first_micro_batch_that_fails(tmp_path):
    """Each size runs in a fresh process; the first failure (here batch_size=0, rejected like an
    out-of-memory exit would be) ends the sweep, and the largest size before it is reported."""
    bench_out = tmp_path / 'bench.jsonl'
    proc = run('bench.py', ['config/quick_llama.py', f'--vocab_size={VOCAB}', '--bench_iters=1', '--bench_warmup=1',
                            f'--bench_out={bench_out}', '--bench_sweep=True', '--bench_sweep_sizes=1,2,0,4'],
               check=True, timeout=240)
    assert 'largest micro-batch that fits: 2' in proc.stdout
    assert [json.loads(line)['batch_size'] for line in bench_out.read_text().splitlines()] == [1, 2]
    assert 'micro-batch 4' not in proc.stdout


def test_bench_writes_an_untracked_file_by_default(tmp_path):
    proc = bench_in(tmp_path, [f'--vocab_size={VOCAB}', *BENCH])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(os.listdir(tmp_path)) == ['bench_results.local.jsonl']  # not the repo's bench_results.jsonl
    [line] = (tmp_path / 'bench_results.local.jsonl').read_text().splitlines()
    assert json.loads(line)['batch_size'] == 2


def test_bench_default_output_is_git_ignored_and_the_record_is_tracked():
    git = lambda *args: subprocess.run(['git', *args], cwd=REPO, capture_output=True, text=True)
    try:
        if git('rev-parse', '--is-inside-work-tree').stdout.strip() != 'true':
            pytest.skip("not a git checkout")
    except OSError:
        pytest.skip("no git")
    assert git('check-ignore', '-q', 'bench_results.local.jsonl').returncode == 0
    assert git('ls-files', '--error-unmatch', 'bench_results.jsonl').returncode == 0


def test_bench_reads_the_vocabulary_from_the_dataset(tmp_path):
    data = helpers.make_dataset(tmp_path / 'data', vocab_size=300)  # meta.pkl: vocab_size 300
    bench_out = tmp_path / 'bench.jsonl'
    proc = bench_in(tmp_path, [f'--dataset={data}', f'--bench_out={bench_out}', *BENCH])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(bench_out.read_text())['vocab_size'] == 300
    # --vocab_size still wins over the dataset's
    proc = bench_in(tmp_path, [f'--dataset={data}', f'--bench_out={bench_out}', '--vocab_size=280', *BENCH])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(bench_out.read_text().splitlines()[-1])['vocab_size'] == 280


def test_bench_without_vocab_or_dataset_is_a_one_line_error(tmp_path):
    proc = bench_in(tmp_path, [f'--dataset={tmp_path / "no_such_dataset"}', *BENCH], timeout=60)
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith('error: ') and '--vocab_size=' in line and 'prepare' in line and 'no_such_dataset' in line
    assert os.listdir(tmp_path) == []
