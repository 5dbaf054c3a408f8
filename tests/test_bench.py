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

pytestmark = pytest.mark.slow  # python bench.py runs (training steps)

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
    assert sorted(os.listdir(tmp_path)) == ['bench_results.local.jsonl']  # not the repo's perf/bench_results.jsonl
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
    assert git('ls-files', '--error-unmatch', 'perf/bench_results.jsonl').returncode == 0


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


def with_byte_counts(data, train_bytes, train_tokens):
    """meta.pkl as prepare.py writes it for text: the training split's bytes and tokens (its stats)."""
    import pickle
    path = os.path.join(data, 'meta.pkl')
    with open(path, 'rb') as f:
        meta = pickle.load(f)
    meta['stats'] = {'train': {'all': {'bytes': train_bytes, 'tokens': train_tokens}}}
    with open(path, 'wb') as f:
        pickle.dump(meta, f)
    return data


def test_bench_text_gives_bytes_of_text_per_second(tmp_path):
    """--bench_text names a prepared dataset: tokens/s times its training split's bytes per token."""
    data = with_byte_counts(helpers.make_dataset(tmp_path / 'text', vocab_size=300), 50_000, 20_000)
    bench_out = tmp_path / 'bench.jsonl'
    proc = bench_in(tmp_path, ['--vocab_size=320', f'--bench_text={data}', f'--bench_out={bench_out}', *BENCH])
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(bench_out.read_text())
    assert result['text'] == str(data) and result['bytes_per_token'] == 2.5
    assert result['bytes_per_sec'] == pytest.approx(2.5 * result['tokens_per_sec'])
    assert f"({result['bytes_per_sec'] / 1e3:,.0f} kB of text/s at 2.500 bytes a token)" in proc.stdout
    # without it, no byte fields
    proc = bench_in(tmp_path, ['--vocab_size=320', f'--bench_out={bench_out}', *BENCH])
    assert proc.returncode == 0 and 'bytes_per_sec' not in json.loads(bench_out.read_text().splitlines()[-1])


def test_bench_text_errors_are_one_line_before_any_work(tmp_path):
    wide = helpers.make_dataset(tmp_path / 'wide', vocab_size=400)
    with_byte_counts(wide, 50_000, 20_000)
    bare = helpers.make_dataset(tmp_path / 'bare', vocab_size=300)  # no byte counts
    bench_out = tmp_path / 'bench.jsonl'
    for text, message in [(wide, "has token ids up to 399 but the model's vocab_size is 320"),
                          (bare, "has no byte counts of its training split"),
                          (tmp_path / 'none', "not found")]:
        proc = bench_in(tmp_path, ['--vocab_size=320', f'--bench_text={text}', f'--bench_out={bench_out}', *BENCH],
                        timeout=60)
        assert proc.returncode == 2, proc.stderr[-2000:]
        [line] = proc.stderr.strip().splitlines()
        assert line.startswith('error: bench_text') and message in line, line
        assert proc.stdout == '' and not bench_out.exists()


@pytest.mark.parametrize('sweep', [False, True], ids=['one run', 'sweep'])
def test_bench_out_in_a_missing_folder_is_refused_before_any_work(tmp_path, sweep):
    """The path is checked first: a benchmark whose results could not be written is never run (it ran to
    the end, then lost its results to a traceback)."""
    target = tmp_path / 'no_such_folder' / 'bench.jsonl'
    args = [f'--vocab_size={VOCAB}', *BENCH, f'--bench_out={target}', '--bench_matmul_seconds=1']
    proc = bench_in(tmp_path, args + (['--bench_sweep=True', '--bench_sweep_sizes=1,2'] if sweep else []), timeout=60)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [
        f"error: bench_out='{target}': the folder {target.parent} does not exist: create it (mkdir -p "
        f"{target.parent}) or choose another --bench_out"]
    assert proc.stdout == ''  # nothing ran
    assert os.listdir(tmp_path) == []
    proc = bench_in(tmp_path, [f'--vocab_size={VOCAB}', *BENCH, f'--bench_out={tmp_path}'], timeout=60)
    assert proc.returncode == 2 and f"bench_out='{tmp_path}' is a folder: name a file in it" in proc.stderr


# -----------------------------------------------------------------------------
# the matmul check (throttling) and the Hugging Face baseline

# helpers.TINY_MODEL (2 layers, 64 wide, fp32 on CPU), 2 micro-steps of 2 sequences
TINY = [*helpers.TINY_MODEL, '--bench_iters=1', '--bench_warmup=1', '--batch_size=2', '--gradient_accumulation_steps=2',
        '--bench_matmul_seconds=0.2']


def bench_lines(tmp_path, config, args):
    bench_out = tmp_path / 'bench.jsonl'
    proc = run('bench.py', [config, *TINY, *args, f'--bench_out={bench_out}'], check=True, timeout=120)
    return proc, [json.loads(line) for line in bench_out.read_text().splitlines()]


def our_parameters(arch, **shape):
    from model import ModelConfig, Transformer
    return Transformer(ModelConfig(arch=arch, n_layer=2, n_head=4, n_embd=64, block_size=64, vocab_size=VOCAB,
                                   **shape)).num_params()


def test_bench_line_has_the_matmul_check(tmp_path):
    proc, [result] = bench_lines(tmp_path, 'config/quick_llama.py', [])
    assert result['implementation'] == 'this project' and result['matmul_shape'] == '512^3 float32'
    assert result['matmul_tflops_before'] > 0 and result['matmul_tflops_after'] > 0
    assert result['throttled'] is None and result['throttled_why'] is None  # unknown off the GPU
    assert result['clocks'] is None and result['throttle_reasons'] is None and result['matmul_usual_tflops'] is None
    assert 'matmul check (512^3 float32' in proc.stdout and 'throttling unknown' in proc.stdout
    assert result['parameters'] == our_parameters('llama')


@pytest.mark.parametrize('arch', ['llama', 'gpt2'])
def test_bench_baseline_all_times_ours_then_hugging_face(tmp_path, arch):
    """One process, two lines: ours, then HF's at the same shape with our initial weights and the same
    tokens (so the same loss), and their ratio. LLaMA: the same parameters. GPT-2: HF's GPT2LMHeadModel
    always has biases (zeros here), which our gpt2 preset leaves out: per layer ln_1, ln_2 (2d), c_attn
    (3d), attn and mlp c_proj (2d), c_fc (d_ff), plus ln_f (d)."""
    import transformers
    proc, [ours, hf] = bench_lines(tmp_path, helpers.CONFIGS[arch], ['--bench_baseline=all'])
    assert ours['implementation'] == 'this project' and hf['implementation'] == f'hf-transformers {transformers.__version__}'
    assert hf['attention'] == 'sdpa' and hf['arch'] == arch and hf['gradient_accumulation_steps'] == 2
    d, d_ff, n_layer = 64, 4 * 64, 2
    extra = 0 if arch == 'llama' else n_layer * (7 * d + d_ff) + d
    assert ours['parameters'] == our_parameters(arch) and hf['parameters'] == ours['parameters'] + extra
    # the same tokens, weights, loss and optimizer: LLaMA's loss after one AdamW step is ours (GPT-2's
    # zero biases learn, so its loss moves a little)
    assert hf['loss'] == pytest.approx(ours['loss'], rel=1e-5 if arch == 'llama' else 1e-3)
    assert ours['ratio_vs']['implementation'] == hf['implementation'] and hf['ratio_vs']['implementation'] == 'this project'
    assert ours['ratio_vs']['tokens_per_sec'] == pytest.approx(ours['tokens_per_sec'] / hf['tokens_per_sec'])
    assert hf['ratio_vs']['tokens_per_sec'] == pytest.approx(1 / ours['ratio_vs']['tokens_per_sec'])
    assert ours['matmul_tflops_before'] == hf['matmul_tflops_before'] > 0  # one check before the first, one after the last
    assert proc.stdout.count('matmul check') == 1 and f"this project / {hf['implementation']}: " in proc.stdout


def test_bench_baseline_hf_alone_with_grouped_query_attention(tmp_path):
    _, [hf] = bench_lines(tmp_path, 'config/quick_llama.py', ['--bench_baseline=hf', '--n_kv_head=2'])
    assert hf['implementation'].startswith('hf-transformers ') and 'ratio_vs' not in hf
    assert hf['parameters'] == our_parameters('llama', n_kv_head=2) and math.isfinite(hf['loss'])


@pytest.mark.parametrize('args,message', [
    (['--bench_baseline=transformers'], "bench_baseline must be '' (this project's model), 'hf'"),
    (['--bench_baseline=hf', '--activation_checkpointing=True'], "runs without use_fsdp, activation_checkpointing and fp8"),
    (['--bench_baseline=all', '--fp8=True'], "runs without use_fsdp, activation_checkpointing and fp8"),
    (['--bench_baseline=bf16'], "bench_baseline='bf16' times fp8=True against the same run in bf16: add --fp8=True"),
    (['--bench_baseline=bf16', '--fp8=True'], "fp8=True trains on a CUDA GPU with FP8 matmuls"),  # checked before the matmul check
])
def test_bench_baseline_errors_are_one_line(tmp_path, args, message):
    proc = bench_in(tmp_path, [f'--vocab_size={VOCAB}', *BENCH, *args], timeout=60)
    assert proc.returncode == 2 and proc.stdout == ''
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith('error: ') and message in line
    assert os.listdir(tmp_path) == []


def test_throttle_verdict():
    import bench
    usual = 770.0
    assert bench.verdict(765.0, 760.0, usual, ['sw_power_cap']) == (False, None)  # the power cap alone is normal
    throttled, why = bench.verdict(765.0, 650.0, usual, [])
    assert throttled and '650 TFLOP/s after, under 90% of the usual 770' in why
    assert bench.verdict(765.0, 760.0, usual, ['sw_power_cap', 'hw_slowdown']) == (True, 'NVML: hw_slowdown')
    # a GPU without a usual rate: only a drop of over 10% from before to after, and NVML's reasons
    assert bench.verdict(500.0, 460.0, None, None) == (False, None)
    assert bench.verdict(500.0, 400.0, None, None) == (True, 'the rate fell 20% from before to after')
    assert bench.verdict(500.0, 500.0, None, ['sw_thermal_slowdown'])[0] is True
    assert bench.verdict(None, None, usual, ['hw_slowdown']) == (None, None)  # nothing measured


def test_usual_matmul_rate_and_nvml_without_a_gpu():
    import bench
    from gpu_specs import usual_matmul_tflops
    assert usual_matmul_tflops('NVIDIA H100 80GB HBM3') == 683.0
    assert usual_matmul_tflops('NVIDIA H100 PCIe') is None and usual_matmul_tflops('NVIDIA H200') is None
    assert usual_matmul_tflops('Some Future GPU') is None
    if not torch.cuda.is_available():  # no NVML to read: every field None, nothing raised
        assert set(bench.nvml_sample('cuda:0').values()) == {None}
