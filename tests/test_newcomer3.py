"""
A newcomer's third round (issue 37): every string key's value is checked when the configuration is
read, in one line (--device=gpu, a dtype, a compile mode, a sweep's sizes), and a device the machine
lacks is one line too; eval_bpb.py says what it is doing when its output is a log, not a terminal;
torchao's import noise is gone from the environment check and the export; export_hf.py and
plot_runs.py take --key=value like the other scripts (their earlier flags still work); the effective
configuration says what its '*' means; bench.py's --help lists a benchmark's keys first; sample.py
heads each sample; the throughput figure labels its axes where its data is.
"""
import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest
import torch

import helpers
from helpers import REPO

import bench
import bpb
import configurator
import eval_bpb
import export_hf
import plot_runs
import sample
import train
from configurator import Configurator, HelpRequested, UserError
from test_export_hf import make_checkpoint
from test_model import tiny_model

BYTES = 257  # the byte tokenizer's vocabulary: 0..255, 256 ends a document
DOCS = [f"def f{i}(x):\n    return x * {i} + {i % 7}  # {'abc ' * (i % 5)}\n" * (1 + i % 4) for i in range(40)]


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory):
    """(dataset, out_dir): a byte dataset with its document index and byte table (python_stdlib's
    prepare.py on a few documents), and out-tiny/ckpt.pt, an untrained tiny model on it."""
    root = tmp_path_factory.mktemp('newcomer3')
    with open(root / 'docs.jsonl', 'w') as f:
        f.writelines(json.dumps({'text': t}) + '\n' for t in DOCS)
    data = root / 'data'
    subprocess.run([sys.executable, os.path.join('data', 'python_stdlib', 'prepare.py'), '--input',
                    str(root / 'docs.jsonl'), '--val_fraction=0.5', '--out_dir', str(data), '--num_proc', '1'],
                   cwd=REPO, check=True, capture_output=True, text=True, timeout=120)
    out = root / 'out-tiny'
    out.mkdir()
    make_checkpoint(out / 'ckpt.pt', tiny_model('llama', vocab_size=BYTES, block_size=32), str(data))
    return str(data), str(out)


# ----------------------------------------------------------------------------- string keys, checked when read

def test_a_value_outside_a_keys_choices_is_a_one_line_error(tmp_path):
    conf = Configurator({'mode': 'a', 'name': 'x'}, choices={'mode': ('a', 'b')})
    assert conf.parse(['--mode=b']) == {'mode': 'b', 'name': 'x'}
    with pytest.raises(UserError) as e:
        conf.parse(['--mode=c'])
    assert str(e.value) == "--mode: mode must be one of 'a', 'b', got 'c'"
    config_file = tmp_path / 'my_config.py'
    config_file.write_text("mode = 'bb'\n")
    with pytest.raises(UserError) as e:
        conf.parse([str(config_file)])
    assert str(e.value) == f"config file '{config_file}': mode must be one of 'a', 'b', got 'bb'; did you mean 'b'?"


@pytest.mark.parametrize('value, message', [
    ('gpu', "got 'gpu'; did you mean 'cuda'?"),
    ('GPU:1', "got 'GPU:1'; did you mean 'cuda:1'?"),
    ('CUDA', "got 'CUDA'; did you mean 'cuda'?"),
    ('cuda0', "got 'cuda0'; did you mean 'cuda:0'?"),
    ('cuda:x', "got 'cuda:x'"),
    ('tpu', "got 'tpu'"),
])
def test_an_unknown_device_is_one_line_when_the_configuration_is_read(value, message, monkeypatch):
    """sample.py and eval_bpb.py stop at their arguments, before any checkpoint is read."""
    def forbidden(*args, **kwargs):
        raise AssertionError('went on past the configuration')
    monkeypatch.setattr(sample, 'load_checkpoint', forbidden)
    monkeypatch.setattr(eval_bpb, 'load_checkpoint', forbidden)
    for main in (sample.main, eval_bpb.main):
        with pytest.raises(UserError) as e:
            main([f'--device={value}'])
        assert str(e.value) == (f"--device: device must be 'auto' (cuda if available, else cpu), 'cpu', 'cuda', "
                                f"'cuda:N' (GPU N) or 'mps', {message}")


def test_the_devices_the_scripts_run_on_are_accepted():
    for value in ('cpu', 'cuda', 'cuda:0', 'cuda:7', 'mps'):
        assert Configurator({'device': 'cpu'}, choices={'device': configurator.DEVICE}).parse(
            [f'--device={value}'])['device'] == value
    assert Configurator({'device': 'auto'}, choices={'device': configurator.DEVICE_OR_AUTO}).parse(
        ['--device=auto'])['device'] == 'auto'
    with pytest.raises(UserError, match=r"device must be 'cpu', 'cuda', 'cuda:N' \(GPU N\) or 'mps', got 'auto'$"):
        Configurator({'device': 'cpu'}, choices={'device': configurator.DEVICE}).parse(['--device=auto'])


def test_a_device_this_machine_lacks_is_one_line(monkeypatch):
    if not torch.backends.mps.is_available():
        with pytest.raises(UserError, match=r"^device='mps' but Apple's GPU \(MPS\) is not available"):
            configurator.check_device('mps')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(UserError, match=r"^device='cuda:1' but no CUDA GPU is visible: pass --device=cpu"):
        configurator.check_device('cuda:1')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 2)
    configurator.check_device('cuda:1')
    with pytest.raises(UserError, match=r"^device='cuda:2' but this machine has 2 CUDA GPUs \(cuda:0 to cuda:1\)"):
        configurator.check_device('cuda:2')
    for name in ('cpu', 'auto', 'cuda', 'cuda:0'):
        configurator.check_device(name)


def test_sample_on_a_missing_mps_is_one_line(run_dir):
    if torch.backends.mps.is_available():
        pytest.skip('this machine has MPS')
    _, out = run_dir
    with pytest.raises(UserError, match=r"^device='mps' but Apple's GPU \(MPS\) is not available"):
        sample.main([f'--out_dir={out}', '--device=mps'])


@pytest.mark.parametrize('arg, message', [
    ('--device=gpu', "device must be 'cpu', 'cuda', 'cuda:N' (GPU N) or 'mps', got 'gpu'; did you mean 'cuda'?"),
    ('--dtype=bf16', "dtype must be one of 'float32', 'bfloat16', 'float16', got 'bf16'; did you mean 'bfloat16'?"),
    ('--compile_mode=max_autotune', "compile_mode must be one of 'default', 'reduce-overhead', 'max-autotune', "
                                    "'max-autotune-no-cudagraphs', got 'max_autotune'; did you mean 'max-autotune'?"),
    ('--init_from=resum', "init_from must be one of 'scratch', 'resume', got 'resum'; did you mean 'resume'?"),
    ('--data_order=shuffle', "data_order must be one of 'epoch', 'random', got 'shuffle'"),
    ('--arch=llam', "arch must be one of 'llama', 'gpt2', got 'llam'; did you mean 'llama'?"),
    ('--norm=rms', "norm must be one of 'rmsnorm', 'layernorm', got 'rms'; did you mean 'rmsnorm'?"),
    ('--backend=mpi', "backend must be one of 'nccl', 'gloo', got 'mpi'"),
    ('--attention_backend=flash2', "attention_backend must be one of 'auto', 'flash', 'cudnn', 'efficient', 'math', "
                                   "got 'flash2'; did you mean 'flash'?"),
])
def test_train_string_keys_are_checked_when_the_configuration_is_read(arg, message):
    with pytest.raises(UserError) as e:
        train.parse_config([arg])
    assert str(e.value) == f"{arg.split('=')[0]}: {message}"


FREE_TEXT = {'out_dir', 'dataset', 'wandb_project', 'wandb_run_name', 'bench_out', 'bench_text', 'start'}  # any string goes (a name or path)


def test_every_string_key_has_its_allowed_values():
    """A string key is free text (a path, a name, a prompt) or has a table of allowed values."""
    for defaults, key_types, choices in ((train.DEFAULTS, train.KEY_TYPES, train.CHOICES),
                                         (bench.BENCH_DEFAULTS, {}, bench.BENCH_CHOICES),
                                         (sample.DEFAULTS, {}, sample.CHOICES),
                                         (eval_bpb.DEFAULTS, {}, eval_bpb.CHOICES),
                                         (export_hf.DEFAULTS, {}, export_hf.CHOICES)):
        strings = {k for k, v in defaults.items() if key_types.get(k, type(v)) is str}
        assert strings - FREE_TEXT - {'ckpt', 'out'} == set(choices), sorted(strings - FREE_TEXT)


def test_a_bad_device_on_the_command_line_is_one_line_not_a_traceback(tmp_path):
    proc = helpers.run('train.py', ['config/quick_llama.py', '--device=gpu', f'--out_dir={tmp_path / "out"}'])
    assert proc.returncode == 2 and proc.stdout == '', proc.stderr[-3000:]
    assert proc.stderr == ("error: --device: device must be 'cpu', 'cuda', 'cuda:N' (GPU N) or 'mps', got 'gpu'; "
                           "did you mean 'cuda'?\n")


def test_bench_keys_are_checked_when_the_configuration_is_read(monkeypatch):
    monkeypatch.setattr(bench, 'dataset_vocab_size', lambda c: pytest.fail('went on past the configuration'))
    monkeypatch.setattr(bench, 'sweep', lambda c: pytest.fail('went on past the configuration'))
    with pytest.raises(UserError) as e:
        bench.main(['--bench_sweep=True', '--bench_sweep_sizes=1,2,x'])
    assert str(e.value) == ("--bench_sweep_sizes: bench_sweep_sizes must be micro-batch sizes separated by commas, "
                            "e.g. '1,2,4,8', got '1,2,x'")
    with pytest.raises(UserError) as e:
        bench.main(['--bench_baseline=HF'])
    assert str(e.value) == ("--bench_baseline: bench_baseline must be '' (this project's model), 'hf' (Hugging Face's "
                            "at the same shape), 'all' (both, and their ratio) or 'bf16' (with fp8=True: fp8, then "
                            "bf16), got 'HF'; did you mean 'hf'?")


# ----------------------------------------------------------------------------- eval_bpb.py's progress

def test_bits_per_byte_reports_progress_where_the_output_is_not_a_terminal(run_dir, capsys, monkeypatch):
    """A line as each tenth of the windows (forward passes) is reached, with documents and windows done
    out of all, the time so far and an estimate of the rest; the total is the number of forward passes."""
    monkeypatch.setattr(bpb.Progress, 'every_seconds', 1e9)  # the tenths alone, however slow this machine
    data, _ = run_dir
    model = tiny_model('llama', vocab_size=BYTES, block_size=32)
    calls = []
    model.register_forward_hook(lambda *args: calls.append(1))
    result = bpb.bits_per_byte(model, data, 'val', 0, 1337, 'cpu', torch.autocast('cpu', enabled=False))
    captured = capsys.readouterr()
    assert captured.err == ''  # stderr holds errors only (and a bar on a terminal)
    printed = captured.out
    found = re.findall(r'^val: ([\d,]+)/([\d,]+) documents, ([\d,]+)/([\d,]+) windows \((\d+)%\), (\S+) elapsed'
                       r'(?:, about (\S+) left)?$', printed, flags=re.M)
    lines = [[v.replace(',', '') for v in line] for line in found]
    first, *rest = printed.strip().splitlines()
    assert re.fullmatch(r'scoring [\d,]+ val documents \([\d,]+ tokens, [\d,]+ windows of up to 32\) on cpu', first)
    assert len(rest) == len(lines) >= 5, printed
    tenths = [int(line[4]) // 10 for line in lines]
    assert tenths == sorted(set(tenths)), printed  # a line as each tenth is reached (a document may span two)
    documents = result['overall']['documents']
    assert all(int(total) == documents and int(windows) == len(calls) for _, total, _, windows, *_ in lines)
    assert lines[-1][0] == str(documents) and lines[-1][2] == str(len(calls)) and lines[-1][4] == '100'
    done = [int(w) for _, _, w, *_ in lines]
    assert done == sorted(done) and len(calls) > 2 * documents  # documents longer than a window


def test_progress_prints_at_least_every_so_many_seconds(capsys, monkeypatch):
    monkeypatch.setattr(bpb.Progress, 'every_seconds', 0.0)
    progress = bpb.Progress('val', 3, 300)
    for _ in range(3):
        progress.update(1)  # 1% each: no tenth reached, but the time is up each time
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith('val: 3/3 documents, 3/300 windows (1%), 0s elapsed, about ')


def test_eval_bpb_says_what_it_loads(run_dir, capsys):
    data, out = run_dir
    assert eval_bpb.main([f'--out_dir={out}', '--device=cpu']) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"loading {os.path.join(run_dir[1], 'ckpt.pt')} ..."
    assert re.fullmatch(r'loaded .*ckpt\.pt \(iteration 7, [\d,]+ parameters\) in [\d.]+ s', lines[1]), out
    assert re.fullmatch(r'scoring \d+ val documents \([\d,]+ tokens, [\d,]+ windows of up to 32\) on cpu', lines[2])
    assert re.match(r'val: \d+/12 documents, ', lines[3]) and lines[-3].startswith('val: 12/12 documents, '), out
    assert re.match(r'val: [\d.]+ bits per byte over 12 documents', lines[-2]) and lines[-1].startswith('wrote '), out


# ----------------------------------------------------------------------------- torchao's import noise

needs_torchao = pytest.mark.skipif(importlib.util.find_spec('torchao') is None, reason='needs torchao')


@needs_torchao
def test_environment_check_explains_torchao_in_one_line():
    proc = subprocess.run([sys.executable, 'test_imports.py'], cwd=REPO, env=helpers.env(), capture_output=True,
                          text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert 'Failed to load' not in proc.stdout + proc.stderr and '_pytree' not in proc.stderr, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if 'torchao' in line]
    assert len(lines) == 1 and re.match(r'^  torchao +\d', lines[0]), proc.stdout


# ----------------------------------------------------------------------------- --key=value: export_hf.py, plot_runs.py

@needs_torchao  # the export without torchao's lines
def test_export_hf_takes_out_dir_like_the_other_scripts(run_dir, tmp_path):
    _, out = run_dir
    proc = subprocess.run([sys.executable, os.path.join(REPO, 'export_hf.py'), f'--out_dir={out}'], cwd=tmp_path,
                          env=helpers.env(), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    hf_dir = os.path.join(os.path.dirname(out), 'hf-tiny')  # out-NAME -> hf-NAME, beside it
    assert os.path.isfile(os.path.join(hf_dir, 'model.safetensors')) and f"saved to {hf_dir}" in proc.stdout
    assert 'Failed to load' not in proc.stderr and '_pytree' not in proc.stderr, proc.stderr


def test_export_hf_keys(run_dir, tmp_path, capsys):
    _, out = run_dir
    ckpt = os.path.join(out, 'ckpt.pt')
    assert export_hf.main([f'--out_dir={out}', f'--out={tmp_path / "a"}', '--dtype=bfloat16']) == 0
    assert export_hf.main([f'--ckpt={ckpt}', f'--out={tmp_path / "b"}']) == 0
    assert export_hf.main(['--ckpt', ckpt, '--out', str(tmp_path / 'a'), '--force']) == 0  # the earlier spelling
    assert export_hf.main(['--ckpt', ckpt, '--out', str(tmp_path / 'a'), '--force=True', '--dtype', 'float16']) == 0
    for argv, message in (
            ([f'--ckpt={ckpt}', f'--out_dir={out}'], "--ckpt names the checkpoint file and --out_dir its run folder: "
                                                     "give one"),
            (['--dtype=fp16'], "--dtype: dtype must be one of 'float32', 'bfloat16', 'float16', got 'fp16'"),
            (['--force=yes'], "--force: force must be True or False, got 'yes'"),
            (['--ckpt'], "'--ckpt': overrides are written --key=value"),
            (['--outdir=x'], "--outdir: unknown config key 'outdir'; did you mean 'out_dir'?")):
        with pytest.raises(UserError) as e:
            export_hf.main(argv)
        assert str(e.value) == message
    with pytest.raises(HelpRequested) as shown:
        export_hf.main(['--help'])
    assert shown.value.args[0].startswith('usage: python export_hf.py [CONFIG_FILE ...] [--key=value ...]\n')
    assert re.search(r'^out_dir += \'out\' +# the run whose ckpt\.pt', shown.value.args[0], re.M)


def write_run_log(folder, mfu):
    """A run log of 8 iterations, written by runlog.RunLog as train.py writes it, with or without MFU."""
    import runlog
    os.makedirs(folder)
    log = runlog.RunLog(str(folder), 'run_20250101_120000.json',
                        {'config': {'arch': 'llama'}, 'model_args': {'arch': 'llama', 'n_layer': 2},
                         'env': {'parameters': 1000, 'flops_per_token': 6000, 'world_size': 2, 'start_iter': 0}})
    for i in range(1, 9):
        log.add('iters', dict(iter=i, loss=5.0 - 0.1 * i, lr=1e-3, tokens=1024 * i, time=float(i),
                              tokens_per_sec=1000.0 + i, mfu=0.3 if mfu else None))
    log.write()
    return str(folder)


def test_plot_runs_takes_out_dir_and_out(tmp_path, monkeypatch):
    run = write_run_log(tmp_path / 'out-a', mfu=False)
    monkeypatch.chdir(tmp_path)
    assert plot_runs.main([f'--out_dir={run}']) == 0  # the figures go to plots/
    assert 'throughput.png' in os.listdir(tmp_path / 'plots')
    other = write_run_log(tmp_path / 'out-b', mfu=True)
    assert plot_runs.main([f'--out_dir={run},{other}', '--out=figs', '--dpi=50']) == 0
    assert 'throughput.png' in os.listdir(tmp_path / 'figs')
    assert plot_runs.main([run, other, '--out', 'figs2', '--dpi', '50']) == 0  # the earlier spelling
    with pytest.raises(UserError, match=r"^--dpi: dpi must be an integer, got 'high'$"):
        plot_runs.main([run, '--dpi=high'])
    with pytest.raises(UserError, match=r"^no run to plot: name out_dirs or run logs"):
        plot_runs.main(['--out=figs'])
    with pytest.raises(HelpRequested) as shown:
        plot_runs.main(['--help'])
    assert shown.value.args[0].startswith('usage: python plot_runs.py [OUT_DIR ...] [--key=value ...]\n')


@pytest.mark.parametrize('mfu', [False, True])
def test_throughput_figure_labels_its_data(tmp_path, mfu):
    """tokens/s over all processes; the x label under the panel that holds the tokens/s, and with MFU
    logged a second panel with it (its own x label); without MFU no empty panel."""
    runs = plot_runs.load_runs([write_run_log(tmp_path / 'out', mfu)])
    fig = plot_runs.throughput_figure(runs)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert axes[0].get_ylabel() == 'tokens/s (all processes)' and axes[0].get_xlabel() == 'iteration'
    assert len(axes[0].get_lines()) == 1
    if mfu:
        assert len(axes) == 2 and axes[1].get_ylabel() == 'MFU (%)' and axes[1].get_xlabel() == 'iteration'
        assert len(axes[1].get_lines()) == 1
    else:
        assert len(axes) == 1
        assert any('no MFU logged' in t.get_text() for t in fig.texts + axes[0].texts)


# ----------------------------------------------------------------------------- the small ones

def test_the_effective_configuration_says_what_its_star_means():
    text = configurator.format_config({'a': 1, 'bb': 2}, {'a': 1, 'bb': 3})
    assert text.splitlines() == ["effective configuration (* = not the default):", "  a  = 1", "* bb = 2"]


def test_bench_help_lists_a_benchmarks_keys_first():
    with pytest.raises(HelpRequested) as shown:
        bench.main(['--help'])
    keys = re.findall(r'^(\w+) += ', shown.value.args[0], re.M)
    assert keys[:len(bench.BENCH_DEFAULTS)] == list(bench.BENCH_DEFAULTS)
    assert sorted(keys) == sorted({**train.DEFAULTS, **bench.BENCH_DEFAULTS})
    position = {key: i for i, key in enumerate(keys)}
    for key in ('batch_size', 'gradient_accumulation_steps', 'n_layer', 'block_size', 'dtype', 'compile', 'use_fsdp'):
        for unused in ('out_dir', 'eval_interval', 'wandb_log', 'learning_rate', 'warmup_iters'):
            assert position[key] < position[unused], (key, unused)


def test_sample_heads_each_sample(run_dir, capsys):
    _, out = run_dir
    assert sample.main([f'--out_dir={out}', '--device=cpu', '--num_samples=3', '--max_new_tokens=8']) == 0
    printed = capsys.readouterr().out
    parts = re.split(r'^--- sample (\d) of 3 ---\n', printed, flags=re.M)
    assert parts[0] == '' and parts[1::2] == ['1', '2', '3'], printed
    assert '---------------' not in printed
