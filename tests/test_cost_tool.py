"""
The cost tool (flops_parameter_counting/detailed_cost_analysis.py) against model.py: the same
parameter count and the same 6N + 12LHQT for random shapes of both architectures, its published
checks, its JSON output, its error messages, and that it needs nothing beyond the standard library.
"""

import importlib.util
import json
import os
import random
import subprocess
import sys

import pytest
import torch

from model import ModelConfig, Transformer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TOOL = os.path.join(ROOT, 'flops_parameter_counting', 'detailed_cost_analysis.py')
spec = importlib.util.spec_from_file_location('detailed_cost_analysis', TOOL)
cost = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cost)


def preset_shape(name):
    """The cost tool's shape of a production config (config/full_{name}.py), read from the config itself."""
    return cost.shape_from_config(cost.load_model_config(os.path.join(ROOT, 'config', f'full_{name}.py'))[1])


def run_tool(*args, cwd=ROOT):
    return subprocess.run([sys.executable, TOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def random_shape(rng, arch):
    """A random valid shape: (the tool's Hugging Face style dict, model.py's ModelConfig)."""
    head_dim = rng.choice([2, 4, 6, 8, 16])
    n_kv_head = rng.choice([1, 2, 3, 4])
    n_head = n_kv_head * rng.choice([1, 1, 2, 3])  # with and without GQA
    n_embd = n_head * head_dim
    d_ff = rng.choice([None, rng.randint(1, 100)])
    bias, tie = rng.choice([False, True]), rng.choice([None, False, True])
    cfg = ModelConfig(arch=arch, n_layer=rng.randint(1, 4), n_head=n_head, n_kv_head=n_kv_head, n_embd=n_embd,
                      d_ff=d_ff, block_size=rng.randint(1, 300), vocab_size=rng.randint(1, 500), bias=bias,
                      tie_embeddings=tie)
    hf = dict(architecture=arch, num_hidden_layers=cfg.n_layer, hidden_size=n_embd, num_attention_heads=n_head,
              num_key_value_heads=n_kv_head, vocab_size=cfg.vocab_size, max_position_embeddings=cfg.block_size,
              attention_bias=bias)
    if d_ff is not None:
        hf['intermediate_size'] = d_ff
    if tie is not None:
        hf['tie_word_embeddings'] = tie
    return hf, cfg


@pytest.mark.parametrize('arch', ['llama', 'gpt2'])
def test_parameters_and_flops_equal_model_py(arch):
    rng = random.Random(arch)
    for _ in range(100):
        hf, cfg = random_shape(rng, arch)
        with torch.device('meta'):
            model = Transformer(cfg)
        shape = cost.shape_from_config(hf)
        parts = cost.count_parameters(shape)
        assert sum(parts.values()) == model.num_params(), (hf, parts)
        assert cost.matmul_params(shape, parts) == model.num_matmul_params(), hf
        seq_len = rng.randint(1, cfg.block_size)
        assert cost.palm_flops_per_token(shape, seq_len) == model.flops_per_token(seq_len), hf
        assert 3 * sum(cost.forward_flops(shape, seq_len).values()) == model.flops_per_token(seq_len), hf


def test_presets_fill_missing_keys():
    # llama: untied, d_ff = 256 ceil(8d/3/256); gpt2: tied, 4d, learned positions
    llama = cost.shape_from_config(dict(architecture='llama', hidden_size=2304, num_hidden_layers=18,
                                        num_attention_heads=18, vocab_size=32000, max_position_embeddings=2048))
    assert (llama.d_ff, llama.tie_embeddings, llama.n_kv_head, llama.bias) == (6144, False, 18, False)
    gpt2 = cost.shape_from_config(dict(architecture='gpt2', hidden_size=2432, num_hidden_layers=18,
                                       num_attention_heads=19, vocab_size=50304, max_position_embeddings=2048))
    assert (gpt2.d_ff, gpt2.tie_embeddings) == (9728, True)
    assert sum(cost.count_parameters(llama).values()) == 1_294_159_104
    assert sum(cost.count_parameters(gpt2).values()) == 1_404_968_832


def test_validate_passes():
    r = run_tool('--validate')
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [line for line in r.stdout.splitlines() if line.startswith(('PASS', 'FAIL'))]
    assert len(lines) >= 15 and all(line.startswith('PASS') for line in lines)


@pytest.mark.parametrize('name, params', [('llama_1.36b', 1_294_159_104), ('gpt2_1.36b', 1_404_968_832)])
def test_production_shapes_json(name, params):
    # the path relative to the tool's folder works from the repo root
    r = run_tool('--model_config', f'config/full_{name}.py', '--json', '--tokens', '6.5e9')
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out['parameters']['total'] == params == sum(out['parameters']['components'].values())
    fpt = out['flops_per_token']
    assert fpt['training'] == fpt['palm_6n_12lhqt'] == 3 * fpt['forward']
    assert out['training_flops']['flops'] == pytest.approx(fpt['training'] * 6.5e9)
    assert set(out['memory']['per_gpu']) == {'plain', 'zero1', 'fsdp'}
    assert out['memory']['per_gpu']['plain']['total allocated'] > 16 * params  # weights, grads, AdamW and more
    assert out['time']['seconds'] > 0
    law = cost.SCALING_LAWS['hoffmann']
    assert out['predicted_loss']['hoffmann'] == pytest.approx(
        law['E'] + law['A'] / params ** law['alpha'] + law['B'] / 6.5e9 ** law['beta'])
    assert set(out['predicted_loss']) == {'hoffmann', 'besiroglu'}


def test_production_flops_per_token():
    with torch.device('meta'):
        model = Transformer(ModelConfig(arch='llama', n_layer=18, n_head=18, n_embd=2304, block_size=2048))
    out = json.loads(run_tool('--model_config', 'config/full_llama_1.36b.py', '--json').stdout)
    assert out['flops_per_token']['training'] == model.flops_per_token() == 8_341_802_496


def test_memory_sharding():
    shape = cost.shape_from_config(dict(architecture='llama', hidden_size=512, num_hidden_layers=4,
                                        num_attention_heads=4, vocab_size=1000, max_position_embeddings=256))
    one = cost.memory_estimate(shape, 4, 256, 1)['per_gpu']
    four = cost.memory_estimate(shape, 4, 256, 4)['per_gpu']
    assert four['zero1']['adamw states (fp32)'] == one['plain']['adamw states (fp32)'] / 4
    assert four['fsdp']['weights (fp32)'] == one['plain']['weights (fp32)'] / 4
    assert four['ddp']['total allocated'] == one['plain']['total allocated']  # gradients live in DDP's buckets
    assert four['fsdp']['total allocated'] < four['zero1']['total allocated'] < four['ddp']['total allocated']
    # activations scale with the micro-batch; checkpointing keeps less
    assert cost.memory_estimate(shape, 8, 256, 1)['activations']['blocks'] == 2 * cost.memory_estimate(
        shape, 4, 256, 1)['activations']['blocks']
    assert (cost.memory_estimate(shape, 4, 256, 1, activation_checkpointing=True)['activations']['blocks']
            < cost.memory_estimate(shape, 4, 256, 1)['activations']['blocks'])


def test_backward_and_verify_config():
    r = run_tool('--backward_config', 'configs/scaling_laws/custom/verify_llama_1.36b.jsonc', '--json')
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out['verify']['parameters'] == 1_294_159_104
    for name, law in cost.SCALING_LAWS.items():
        fit = out['verify']['fits'][name]
        # at D_opt(N), N is the optimum of the budget 6 N D_opt
        n_opt, _ = cost.compute_optimal(law, 6 * 1_294_159_104 * fit['d_opt'])
        assert n_opt == pytest.approx(1_294_159_104, rel=1e-9)
        assert set(fit['loss_at_tokens']) == {'6e+09', '6.5536e+09'}
        shape = out['budget']['fits'][name]['shape']
        assert shape['model']['n_layer'] == 18 and shape['model']['n_embd'] % 128 == 0


def test_backward_budget_from_gpus(tmp_path):
    path = tmp_path / 'budget.jsonc'
    path.write_text('{"budget": {"gpu": "h100-sxm", "num_gpus": 8, "hours": 24, "mfu": 0.4}, /* width */\n'
                    ' "shape": {"architecture": "gpt2", "hidden_size": 2048},}\n')
    out = json.loads(run_tool('--backward_config', str(path), '--json').stdout)
    assert out['budget']['flops'] == pytest.approx(989e12 * 8 * 24 * 3600 * 0.4)
    assert out['budget']['fits']['besiroglu']['shape']['model']['n_embd'] == 2048


def test_gpu_names():
    assert cost.peak_tflops_for('h100-sxm') == ('H100 SXM', 989.0)
    assert cost.peak_tflops_for('H100') == ('H100 SXM', 989.0)
    assert cost.peak_tflops_for('h100_pcie')[1] == 756.0
    assert cost.peak_tflops_for('H20')[1] == 148.0
    assert cost.peak_tflops_for('b200')[1] == 2250.0
    with pytest.raises(cost.UserError):
        cost.peak_tflops_for('V100')


def test_jsonc_comments_and_strings():
    text = '{"a": "http://x /* not a comment */", // comment\n /* block\n */ "b": [1, 2,],}'
    assert json.loads(cost.strip_jsonc(text)) == {'a': 'http://x /* not a comment */', 'b': [1, 2]}


def test_standard_library_only():
    # -S: no site-packages at all, so torch and numpy cannot even be found; model_config.py (the
    # presets and shape checks, shared with model.py) is imported all the same
    code = ("import sys; sys.argv = ['x', '--validate']; "
            "import detailed_cost_analysis as t; rc = t.main(); assert 'model_config' in sys.modules; "
            "assert not {'torch', 'numpy'} & set(sys.modules), sorted(sys.modules); sys.exit(rc)")
    r = subprocess.run([sys.executable, '-S', '-c', code], cwd=os.path.dirname(TOOL), capture_output=True, text=True,
                       timeout=60)  # -c: the tool's folder, the working one, is where imports look first
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize('hf, model', [
    (dict(hidden_size=2432, num_attention_heads=18), dict(n_embd=2432, n_head=18)),
    (dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=3), dict(n_embd=64, n_head=4, n_kv_head=3)),
    (dict(hidden_size=36, num_attention_heads=12), dict(n_embd=36, n_head=12)),
    (dict(hidden_size=64.0, num_attention_heads=4), dict(n_embd=64.0, n_head=4)),
    (dict(architecture='bert', hidden_size=64, num_attention_heads=4), dict(arch='bert', n_embd=64, n_head=4)),
])
def test_shape_errors_are_model_config_s(hf, model):
    """The tool resolves a shape through model_config.ModelConfig: its checks, its message after the file's name."""
    with pytest.raises(ValueError) as expected:
        ModelConfig(**{'arch': 'llama', 'n_layer': 2, 'vocab_size': 10, 'block_size': 8, **model})
    with pytest.raises(cost.UserError) as got:
        cost.shape_from_config({'architecture': 'llama', 'num_hidden_layers': 2, 'vocab_size': 10,
                                'max_position_embeddings': 8, **hf}, 'shape.json')
    assert str(got.value) == f"shape.json: {expected.value}"


@pytest.mark.parametrize('args, message', [
    (['--model_config', 'no/such/file.json'], 'no such file'),
    (['--model_config', '{bad}'], "arch must be one of ('llama', 'gpt2'), got 'bert'"),
    (['--model_config', '{missing}'], 'missing num_hidden_layers'),
    (['--model_config', 'config/full_llama_1.36b.py', '--gpu', 'V100'], 'unknown GPU'),
    (['--model_config', 'config/full_llama_1.36b.py', '--mfu', '40'], '--mfu'),
    (['--backward_config', '{bad}'], 'budget'),
    ([], '--model_config'),
    (['--model_config', 'config/full_llama_1.36b.py', '--activation_memory_budget', '1.5'], 'in (0, 1]'),
    (['--model_config', 'config/full_llama_1.36b.py', '--activation_memory_budget', '0.8'], 'below 0.840'),
    (['--model_config', 'config/full_llama_1.36b.py', '--activation_memory_budget', '0.9', '--eager'],
     "torch.compile's partitioner"),
    (['--model_config', 'config/full_llama_1.36b.py', '--activation_memory_budget', '0.9', '--batch_size', '1'],
     'too small against the weights'),
])
def test_bad_input_is_one_line(tmp_path, args, message):
    bad, missing = tmp_path / 'bad.json', tmp_path / 'missing.json'
    bad.write_text('{"architecture": "bert", "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, '
                   '"vocab_size": 10, "max_position_embeddings": 8}')
    missing.write_text('// no depth\n{"architecture": "llama", "hidden_size": 8, "num_attention_heads": 2, '
                       '"vocab_size": 10, "max_position_embeddings": 8}')
    args = [str(bad) if a == '{bad}' else str(missing) if a == '{missing}' else a for a in args]
    r = run_tool(*args)
    assert r.returncode == 2
    assert 'Traceback' not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert message in r.stderr


# Measured peaks of train.py's training step (bench.py, torch.cuda.max_memory_allocated after warm-up,
# so fp32 gradients and AdamW states exist): one NVIDIA H100 80GB HBM3, torch 2.11.0+cu130, 2026-11-25,
# block_size 2048, bf16 autocast, torch.compile default mode, gradient_accumulation_steps 16;
# `python bench.py config/full_<arch>_1.36b.py --batch_size=B --bench_iters=3` (records in
# perf/bench_results.jsonl; the float32 rows used --residual_dtype=float32 before the configs set 'compute').
MEASURED_PEAK_GIB = [
    ('llama_1.36b', 8, 'compute', 45.68), ('llama_1.36b', 12, 'compute', 57.64), ('llama_1.36b', 16, 'compute', 69.60),
    ('gpt2_1.36b', 8, 'compute', 46.92), ('gpt2_1.36b', 12, 'compute', 58.46),
    ('llama_1.36b', 8, 'float32', 48.24), ('gpt2_1.36b', 8, 'float32', 49.72),
]


@pytest.mark.parametrize('name, batch_size, residual_dtype, measured_gib', MEASURED_PEAK_GIB)
def test_memory_estimate_matches_measured_peak(name, batch_size, residual_dtype, measured_gib):
    shape = preset_shape(name)
    est = cost.memory_estimate(shape, batch_size, 2048, 1, residual_dtype=residual_dtype)
    est_gib = est['per_gpu']['plain']['total allocated'] / cost.GIB
    assert est_gib == pytest.approx(measured_gib, rel=0.10), (name, batch_size, residual_dtype, est_gib)


# What one compiled block saves for backward, bytes per token, on one NVIDIA H100 80GB HBM3, torch
# 2.11.0+cu130, 2026-11-26, micro-batch 8 x 2048: `python tests/gpu/saved_probe.py config/full_<arch>_1.36b.py
# --batch=8` (blocks 1 and 2) and, with the budget, `--activation_memory_budget=0.9 --layers=17,18` (the real
# depth: the partitioner's choice depends on it).
MEASURED_SAVED_PER_BLOCK = [('llama_1.36b', 1.0, 83024), ('llama_1.36b', 0.9, 61520),
                            ('gpt2_1.36b', 1.0, 77916), ('gpt2_1.36b', 0.9, 48732)]


@pytest.mark.parametrize('name, budget, measured', MEASURED_SAVED_PER_BLOCK)
def test_activation_terms_are_what_the_compiled_block_saves(name, budget, measured):
    shape = preset_shape(name)
    mem = cost.memory_estimate(shape, 8, 2048, 1, activation_memory_budget=budget)
    assert sum(mem['activations_per_layer_per_token'].values()) == measured


def test_activation_memory_budget_estimate_matches_measured_peak():
    # perf/bench_results.jsonl: `python bench.py config/full_llama_1.36b.py --activation_memory_budget=B` for B in 0.9,
    # 0.95, 0.97, 0.99, one H100 80GB HBM3, torch 2.11.0+cu130, 2026-11-26: 38.56 GiB each (45.68 at 1.0)
    shape = preset_shape('llama_1.36b')
    for budget in (0.9, 0.95, 0.97, 0.99):
        mem = cost.memory_estimate(shape, 8, 2048, 1, activation_memory_budget=budget)
        assert mem['per_gpu']['plain']['total allocated'] / cost.GIB == pytest.approx(38.56, rel=0.05)
        assert mem['pointwise_recompute_ratio'] == pytest.approx(0.84, abs=0.01)  # 0.8 measured 37.27: another choice


def test_memory_options_on_the_command_line():
    def total(*extra):
        out = json.loads(run_tool('--model_config', 'config/full_llama_1.36b.py', '--json', *extra).stdout)
        return out['memory']['per_gpu']['plain']['total allocated'], out['memory']
    compiled, mem = total()
    assert (mem['residual_dtype'], mem['compiled']) == ('compute', True)  # the production configs
    assert total('--residual_dtype', 'float32')[0] > compiled
    eager, mem = total('--eager')
    assert mem['compiled'] is False and eager > compiled
    # eager saves the norms' fp32 input either way (model.py's x.float() or the fp32 stream itself)
    assert total('--eager', '--residual_dtype', 'float32')[0] == eager
    assert run_tool('--model_config', 'config/full_llama_1.36b.py', '--residual_dtype', 'fp8').returncode == 2


def test_eager_estimate_matches_the_earlier_eager_check():
    # README: eager, micro-batch 2 x 2048, activations plus autocast copies measured 10.97 / 11.09 GiB
    for name, measured in (('llama_1.36b', 10.97), ('gpt2_1.36b', 11.09)):
        shape = preset_shape(name)
        plain = cost.memory_estimate(shape, 2, 2048, 1, compiled=False)['per_gpu']['plain']
        est = (plain['activations'] + plain['autocast bf16 weight copies']) / cost.GIB
        assert est == pytest.approx(measured, rel=0.02), (name, est)


TINY_SHAPES = {  # 3 heads of 128, d_ff / n_embd as in the 1.36B presets, no biases, the bf16 stream
    'llama': dict(arch='llama', n_head=3, n_kv_head=3, n_embd=384, d_ff=1024, block_size=256, vocab_size=640),
    'gpt2': dict(arch='gpt2', n_head=3, n_embd=384, d_ff=1536, block_size=256, vocab_size=640),
}


@pytest.mark.slow
@pytest.mark.parametrize('arch', ['llama', 'gpt2'])
def test_activation_terms_match_the_compiled_block_on_cpu(arch, tmp_path):
    """tests/gpu/saved_probe.py on the CPU (inductor, bf16 autocast, micro-batch 2): one compiled block
    saves what activation_terms says, byte for byte, but for GPT-2's LayerNorm statistics: CPU inductor
    keeps them in the stream's dtype (bf16, 2 x 2 x 2 bytes), CUDA in fp32 (the tool's figure; the GPU
    suite checks the 1.36B shapes there)."""
    shape = TINY_SHAPES[arch]
    config = tmp_path / 'tiny.py'
    config.write_text(''.join(f"{k} = {v!r}\n" for k, v in {**shape, 'bias': False, 'residual_dtype': 'compute'}.items()))
    r = subprocess.run([sys.executable, os.path.join(ROOT, 'tests', 'gpu', 'saved_probe.py'), str(config), '--batch=2',
                        '--device=cpu'], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    seen = json.loads(r.stdout.strip().splitlines()[-1])
    model = {'architecture': arch, 'hidden_size': shape['n_embd'], 'num_attention_heads': shape['n_head'],
             'num_key_value_heads': shape.get('n_kv_head', shape['n_head']), 'intermediate_size': shape['d_ff'],
             'vocab_size': shape['vocab_size'], 'max_position_embeddings': shape['block_size'], 'num_hidden_layers': 2}
    predicted = sum(cost.activation_terms(cost.shape_from_config(model)).values())
    cpu_layernorm_stats = 2 * 2 * (cost.FP32 - cost.BF16) if arch == 'gpt2' else 0
    assert seen['bytes_per_token_per_block'] == predicted - cpu_layernorm_stats, (seen, predicted, r.stdout[-2000:])
    assert seen['weight_copies_saved']


def test_project_configs_are_read_as_train_py_reads_them():
    """--model_config config/*.py: the shape comes from the config file run over train.py's defaults
    (no copy of it in another file), and its parameter count is model.py's for every config that
    fixes its vocabulary; one that leaves it to its dataset is a one-line error."""
    import glob

    import torch

    import train
    from model import Transformer
    checked = 0
    for path in sorted(glob.glob(os.path.join(ROOT, 'config', '*.py'))):
        c = train.parse_config([path])
        if c.vocab_size is None:
            r = run_tool('--model_config', os.path.relpath(path, ROOT))
            assert r.returncode == 2 and 'leaves vocab_size to its dataset' in r.stderr
            continue
        with torch.device('meta'):
            model = Transformer(train.model_config(c, None, c.vocab_size))
        shape = cost.shape_from_config(cost.load_model_config(path)[1])
        assert sum(cost.count_parameters(shape).values()) == model.num_params(), path
        assert cost.palm_flops_per_token(shape, shape.block_size) == model.flops_per_token(shape.block_size), path
        checked += 1
    assert checked >= 6  # the 1.36B, sweep, comparison and fp8-check configs


# Every number a user gives the tool, on the command line or in a JSON config, is checked by type and
# range before anything is computed: one line on stderr naming the flag or field, exit status 2.
BAD_FLAGS = [
    (['--peak_tflops=0'], '--peak_tflops must be a positive number, got 0.0'),  # was a ZeroDivisionError
    (['--peak_tflops=-5'], '--peak_tflops must be a positive number, got -5.0'),  # was "-7592.9 hours"
    (['--peak_tflops=inf'], '--peak_tflops must be a positive number, got inf'),
    (['--tokens', 'nan'], '--tokens must be a positive number, got nan'),  # was "nan hours"
    (['--tokens', '1e400'], '--tokens must be a positive number, got inf'),
    (['--tokens', '0'], '--tokens must be a positive number, got 0.0'),
    (['--seq_len', '0'], '--seq_len must be a positive integer, got 0'),  # was the model's context, silently
    (['--seq_len', '4096'], '--seq_len must be in 1..2048'),
    (['--batch_size', '-1'], '--batch_size must be a positive integer, got -1'),
    (['--batch_size', '1' + '0' * 20], '--batch_size must be at most 1e+12'),
    (['--num_gpus', '0'], '--num_gpus must be a positive integer, got 0'),
    (['--num_gpus', '8.5'], "argument --num_gpus: invalid int value: '8.5'"),  # argparse's own, on one line
    (['--mfu', 'nan'], '--mfu must be a fraction in (0, 1], got nan'),
    (['--mfu', '0'], '--mfu must be a fraction in (0, 1], got 0.0'),
    (['--activation_memory_budget', '0'], '--activation_memory_budget must be a fraction in (0, 1], got 0.0'),
    (['--vocab_size', '0'], '--vocab_size must be a positive integer, got 0'),
    (['--no_such_flag'], 'unrecognized arguments: --no_such_flag'),
]


@pytest.mark.parametrize('args, message', BAD_FLAGS, ids=lambda a: ' '.join(a) if isinstance(a, list) else '')
def test_bad_flags_are_one_line(args, message):
    r = run_tool('--model_config', 'config/full_llama_1.36b.py', *args)
    assert (r.returncode, r.stdout) == (2, ''), r.stdout[-500:] + r.stderr
    assert r.stderr.count('\n') == 1 and 'Traceback' not in r.stderr, r.stderr
    assert message in r.stderr, r.stderr


BUDGET = {'gpu': 'H100', 'num_gpus': 8, 'hours': 24, 'mfu': 0.4}
SHAPE = {'architecture': 'llama', 'num_hidden_layers': 18}
BAD_BACKWARD = [
    ({'budget': {'flops': -1}}, 'budget.flops must be a positive number, got -1'),  # was complex numbers
    ({'budget': {'flops': 'abc'}}, "budget.flops must be a positive number, got 'abc'"),  # was a ValueError
    ({'budget': {**BUDGET, 'num_gpus': '8'}}, "budget.num_gpus must be a positive integer, got '8'"),  # TypeError
    ({'verify': {'parameters': 0}}, 'verify.parameters must be a number from 1 to 1e+20, got 0'),  # ZeroDivisionError
    ({'budget': 5}, 'budget must be an object ({...}), got 5'),  # was a TypeError
    ('[1, 2]', 'expected a JSON object at the top level'),
    ('{"budget": {"flops": 1e999}}', 'budget.flops must be a positive number, got inf'),
    ({'budget': {'flops': True}}, 'budget.flops must be a positive number, got True'),
    ({'budget': {**BUDGET, 'mfu': 40}}, 'budget.mfu must be a fraction in (0, 1], got 40'),
    ({'budget': {**BUDGET, 'hours': 0}}, 'budget.hours must be a positive number, got 0'),
    ({'budget': {**BUDGET, 'peak_tflops': -989}}, 'budget.peak_tflops must be a positive number, got -989'),
    ({'budget': {**BUDGET, 'gpu': 100}}, 'budget.gpu must be a non-empty string, got 100'),
    ({'budget': {**BUDGET, 'gpu': 'V100'}}, "unknown GPU 'V100'"),
    ({'budget': {'gpu': 'H100', 'hours': 24}}, 'missing num_gpus, mfu'),
    ({'budget': {'flops': 1e21, **BUDGET}}, "budget gives either 'flops' or gpu, num_gpus, hours and mfu, not both"),
    ({'budget': {'flop': 1e21}}, "budget: unknown key 'flop' (did you mean 'flops'?)"),
    ({'budgett': {'flops': 1e21}}, "unknown key 'budgett' (did you mean 'budget'?)"),
    ({}, "needs a 'budget' or a 'verify' section"),
    ({'budget': {'flops': 1e21}, 'shape': {**SHAPE, 'num_hidden_layers': 0}},
     'shape.num_hidden_layers must be a positive integer, got 0'),
    ({'budget': {'flops': 1e21}, 'shape': {**SHAPE, 'architecture': 'bert'}},
     "shape.architecture must be one of ('llama', 'gpt2'), got 'bert'"),
    ({'budget': {'flops': 1e21}, 'shape': {**SHAPE, 'vocab_size': '32000'}},
     "shape.vocab_size must be a positive integer, got '32000'"),
    ({'budget': {'flops': 1e21}, 'shape': {'architecture': 'llama', 'hidden_size': 1000}}, 'multiple of the head size'),
    ({'budget': {'flops': 1e21}, 'shape': {**SHAPE, 'hidden_size': 2048}}, 'not both or neither'),
    ({'budget': {'flops': 1e21}, 'shape': []}, 'shape must be an object ({...}), got []'),
    ({'verify': {'parameters': 1e9, 'tokens': [6e9, -1]}}, 'verify.tokens[1] must be a positive number, got -1'),
    ({'verify': {'parameters': 1e9, 'tokens': 'many'}}, "verify.tokens must be a positive number, got 'many'"),
    ({'verify': {'parameters': 1e300}}, 'verify.parameters must be a number from 1 to 1e+20, got 1e+300'),  # overflow
    ({'verify': {'model_config': 5}}, 'verify.model_config must be a non-empty string, got 5'),
    ({'verify': {'model_config': 'config/full_llama_1.36b.py', 'parameters': 1e9}}, "'model_config' or 'parameters', not both"),
    ({'verify': {'tokens': [6e9]}}, "verify needs 'model_config' or 'parameters'"),
]


@pytest.mark.parametrize('config, message', BAD_BACKWARD, ids=lambda c: json.dumps(c) if not isinstance(c, str) else c)
def test_bad_backward_config_is_one_line(tmp_path, config, message):
    path = tmp_path / 'bad.jsonc'
    path.write_text(config if isinstance(config, str) else json.dumps(config))
    r = run_tool('--backward_config', str(path))
    assert (r.returncode, r.stdout) == (2, ''), r.stdout[-500:] + r.stderr
    assert r.stderr.count('\n') == 1 and 'Traceback' not in r.stderr, r.stderr
    assert message in r.stderr, r.stderr


@pytest.mark.parametrize('field, value, message', [
    ('tie_word_embeddings', 'no', "tie_word_embeddings must be true or false, got 'no'"),  # was taken as true
    ('attention_bias', 'false', "attention_bias must be true or false, got 'false'"),
    ('architecture', ['llama'], "architecture must be a non-empty string, got ['llama']"),  # was a TypeError
])
def test_bad_model_json_field_is_one_line(tmp_path, field, value, message):
    cfg = dict(architecture='llama', hidden_size=64, num_hidden_layers=2, num_attention_heads=4, vocab_size=10,
               max_position_embeddings=8)
    path = tmp_path / 'model.json'
    path.write_text(json.dumps({**cfg, field: value}))
    r = run_tool('--model_config', str(path))
    assert (r.returncode, r.stdout) == (2, ''), r.stdout[-500:] + r.stderr
    assert r.stderr.count('\n') == 1 and message in r.stderr, r.stderr


def test_good_input_at_the_edges_of_its_ranges(tmp_path):
    """What the checks let through still runs: a fraction of exactly 1, JSON integers for numbers,
    a single number for verify.tokens, a GPU budget with its own peak."""
    r = run_tool('--model_config', 'config/full_llama_1.36b.py', '--mfu', '1', '--seq_len', '1', '--json')
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)['time']['tokens_per_second'] == pytest.approx(989e12 / cost.palm_flops_per_token(
        preset_shape('llama_1.36b'), 1))
    path = tmp_path / 'ok.jsonc'
    path.write_text(json.dumps({'budget': {'gpu': 'mine', 'peak_tflops': 100, 'num_gpus': 1, 'hours': 1, 'mfu': 1},
                                'verify': {'parameters': 1000000000, 'tokens': 20000000000}}))
    out = json.loads(run_tool('--backward_config', str(path), '--json').stdout)
    assert out['budget']['flops'] == 100e12 * 3600
    assert list(out['verify']['fits']['hoffmann']['loss_at_tokens']) == ['2e+10']


def test_vocab_size_from_the_command_line():
    """config/quick_llama.py takes its vocabulary from its dataset (train.py reads meta.pkl): the tool
    says so in one line, and counts it with --vocab_size."""
    r = run_tool('--model_config', 'config/quick_llama.py')
    assert r.returncode == 2 and r.stderr.count('\n') == 1, r.stderr
    assert ("config/quick_llama.py leaves vocab_size to its dataset: train.py reads it from "
            "data/python_stdlib/meta.pkl; give it with --vocab_size") in r.stderr, r.stderr
    out = json.loads(run_tool('--model_config', 'config/quick_llama.py', '--vocab_size', '257', '--json').stdout)
    with torch.device('meta'):
        model = Transformer(ModelConfig(arch='llama', n_layer=4, n_head=4, n_embd=128, block_size=128, vocab_size=257))
    assert out['parameters']['total'] == model.num_params() == 1_115_520
    assert out['model']['vocab_size'] == 257
    # and it overrides a config's own
    out = json.loads(run_tool('--model_config', 'config/full_llama_1.36b.py', '--vocab_size', '32768', '--json').stdout)
    assert out['parameters']['total'] == 1_294_159_104 + 2 * 768 * 2304


@pytest.mark.parametrize('name, params', [('llama_1.36b', 1_294_159_104), ('gpt2_1.36b', 1_404_968_832)])
def test_model_jsons_are_written_from_the_configs(tmp_path, name, params):
    """configs/models/<name>.json is what --write_model_json makes of config/full_<name>.py, byte for byte,
    by the command the README gives: the configs own the shapes, the JSONs follow them."""
    committed = os.path.join(ROOT, 'flops_parameter_counting', 'configs', 'models', f'{name}.json')
    command = (f"python flops_parameter_counting/detailed_cost_analysis.py --model_config config/full_{name}.py "
               f"--write_model_json flops_parameter_counting/configs/models/{name}.json")
    with open(os.path.join(ROOT, 'flops_parameter_counting', 'README.md')) as f:
        assert command in f.read()
    r = run_tool('--model_config', f'config/full_{name}.py', '--write_model_json', str(tmp_path / 'model.json'))
    assert r.returncode == 0 and r.stdout == f"wrote {tmp_path / 'model.json'} from config/full_{name}.py\n", r.stderr
    with open(committed) as f, open(tmp_path / 'model.json') as g:
        assert f.read() == g.read(), f"{committed} is stale: run `{command}`"
    model = json.loads((tmp_path / 'model.json').read_text())
    assert model['num_attention_heads'] * 128 == model['hidden_size']  # head size 128 (GPT-2: 19 heads, not 18)
    # it counts what the config counts, and the shape resolves to the config's ModelConfig field by field
    shape = cost.shape_from_config(model)
    assert shape == preset_shape(name) and sum(cost.count_parameters(shape).values()) == params


def test_write_model_json_errors_are_one_line(tmp_path):
    r = run_tool('--model_config', 'config/full_llama_1.36b.py', '--write_model_json', str(tmp_path / 'no' / 'm.json'))
    assert r.returncode == 2 and r.stderr.count('\n') == 1 and 'cannot write' in r.stderr, r.stderr
    r = run_tool('--model_config', 'config/quick_llama.py', '--write_model_json', str(tmp_path / 'm.json'))
    assert r.returncode == 2 and 'give it with --vocab_size' in r.stderr and not (tmp_path / 'm.json').exists()
    r = run_tool('--validate', '--write_model_json', str(tmp_path / 'm.json'))
    assert r.returncode == 2 and r.stderr == 'error: --write_model_json goes with --model_config\n'
