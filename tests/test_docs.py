"""
The shell commands of README.md, TRAINING_GUIDE.md and TESTING.md, run as a user would type them.

Every line of a ```bash block is a command (continuation lines joined, comment lines dropped), and a
command chained with && is taken step by step. Each step is either in RUN, and is run here, in
document order, in a copy of the repository (so nothing is written into this checkout), with its
output checked; or in SKIPPED, with the reason it cannot run offline on a CPU machine. A step in
neither list fails test_every_doc_command_is_run_or_skipped, so a new command in the docs cannot go
untested silently; a list entry the docs no longer hold fails it too.
"""
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

import pytest
import torch

pytestmark = pytest.mark.slow  # runs the docs' commands, the quick start's training among them

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ('README.md', 'TRAINING_GUIDE.md', 'TESTING.md', 'reference/stdlib_comparison/README.md')
# seconds for one command: the quick start trains for about 3 minutes on 2 idle cores, and about 5 times
# that on cores shared with another run of the suite; a command past this fails alone, the rest still run
TIMEOUT = 1800

SMOKE = ('--dataset=python_stdlib --vocab_size=257 --n_layer=2 --n_head=4 --n_kv_head=4 --n_embd=64 --d_ff=None '
         '--block_size=64 --batch_size=4 --gradient_accumulation_steps=2')
COST = 'python flops_parameter_counting/detailed_cost_analysis.py'

GPU = "needs a CUDA GPU"
GPU_DATA = "needs a CUDA GPU and the prepared SlimPajama-6B dataset"
TRAINED = "needs a trained 1.36B checkpoint in that out_dir (GPU training)"
HUB = "needs the Hugging Face hub (network)"
LOCAL = "needs SlimPajama's parquet shards and a tokenizer copied to the machine"
SKIPPED = {
    'pip install torch --index-url https://download.pytorch.org/whl/cpu':
        "installs packages (network); the test runs in the installed environment",
    'pip install -r requirements.txt': "installs packages (network); the test runs in the installed environment",
    'pip install ".[test]"': "installs packages (network); the test runs in the installed environment",
    'python3 -m pytest -q tests': "the test suite itself, which this file is part of (.ci/run runs it)",
    'python -m pytest -q -n 7 --dist loadgroup tests/gpu': GPU,
    'bash reference/stdlib_comparison/run.sh': GPU + " (eight small runs, about 30 minutes on one H200)",
    'bash reference/english_mix/run.sh': GPU + " (28 small runs and their summaries, about 15 minutes on one H100 or H200; "
                                          "the packages of the English mix need Debian's archive)",
    # run by tests/test_reference_tasks.py, which checks that it prints the documented table
    'python reference/stdlib_comparison/summarize.py reference/stdlib_comparison/runs/out-compare-llama-s1 '
    'reference/stdlib_comparison/runs/out-compare-llama-s2 reference/stdlib_comparison/runs/out-compare-llama-s3 '
    'reference/stdlib_comparison/runs/out-compare-gpt2-s1 reference/stdlib_comparison/runs/out-compare-gpt2-s2 '
    'reference/stdlib_comparison/runs/out-compare-gpt2-s3 reference/stdlib_comparison/runs/out-swap-llama-gpt2tok-s1 '
    'reference/stdlib_comparison/runs/out-swap-gpt2-llamatok-s1 --speed_runs '
    'reference/stdlib_comparison/runs/out-compare-llama-s1-alone reference/stdlib_comparison/runs/out-compare-gpt2-s1':
        "tests/test_reference_tasks.py runs it and checks its table against the docs",
    'huggingface-cli login': HUB,
    'python data/slimpajama_6b_llama/prepare.py': HUB + ", and a Llama-2 login",
    'python data/slimpajama_6b_gpt2/prepare.py': HUB,
    'python data/slimpajama_6b_llama/prepare.py --input slimpajama/data/train-*.parquet '
    '--val_input slimpajama/data/validation-*.parquet --tokenizer ~/llama-2-7b-hf': LOCAL,
    'python data/slimpajama_6b_gpt2/prepare.py --input slimpajama/data/train-*.parquet '
    '--val_input slimpajama/data/validation-*.parquet --tokenizer ~/r50k_base.tiktoken': LOCAL,
    'ls -lh data/slimpajama_6b_llama data/slimpajama_6b_gpt2': "needs the prepared SlimPajama-6B datasets",
    'python train.py config/full_llama_1.36b.py': GPU_DATA,
    'python train.py config/full_gpt2_1.36b.py': GPU_DATA,
    'python train.py config/full_llama_1.36b.py --fp8=True': GPU_DATA + " with FP8 (H100, H200, H20) and torchao",
    'python bench.py config/full_llama_1.36b.py --fp8=True': "needs a GPU with FP8 (H100, H200, H20) and torchao",
    'python bench.py config/full_llama_1.36b.py --fp8=True --bench_baseline=bf16': "needs a GPU with FP8 (H100, H200, H20) and torchao",
    'torchrun --standalone --nproc_per_node=4 train.py config/full_llama_1.36b.py': "needs 4 GPUs and the dataset",
    'torchrun --standalone --nproc_per_node=2 train.py config/full_gpt2_1.36b.py --use_zero1=True':
        "needs 2 GPUs and the dataset",
    'torchrun --standalone --nproc_per_node=2 train.py config/full_llama_1.36b.py': "needs 2 GPUs and the dataset",
    'torchrun --standalone --nproc_per_node=4 train.py config/full_gpt2_1.36b.py': "needs 4 GPUs and the dataset",
    'torchrun --standalone --nproc_per_node=8 train.py config/full_llama_1.36b.py': "needs 8 GPUs and the dataset",
    'torchrun --standalone --nproc_per_node=2 train.py config/full_llama_1.36b.py --batch_size=4 '
    '--gradient_accumulation_steps=32 --use_zero1=True': "needs 2 GPUs and the dataset",
    'torchrun --nnodes=2 --nproc_per_node=8 --rdzv_backend=c10d --rdzv_endpoint=HOST:29500 --rdzv_id=JOB '
    'train.py config/full_llama_1.36b.py': "needs two 8-GPU machines",
    'python train.py config/full_llama_1.36b.py --init_from=resume': TRAINED,
    'torchrun --standalone --nproc_per_node=4 train.py config/full_llama_1.36b.py --init_from=resume':
        "needs 4 GPUs and a trained checkpoint",
    'python train.py config/full_llama_1.36b.py --init_from=resume --eval_only=True': TRAINED,
    'python train.py config/full_gpt2_1.36b.py --init_from=resume --eval_only=True': TRAINED,
    'python train.py config/full_llama_1.36b.py --max_iters=10 --compile=False --out_dir=out-smoke-llama': GPU_DATA,
    'python train.py config/full_gpt2_1.36b.py --max_iters=10 --compile=False --out_dir=out-smoke-gpt2-gpu': GPU_DATA,
    'tail -f out-llama-1.36b/run_*.jsonl': "follows a GPU run's log and never exits",
    'nvidia-smi -l 5': GPU,
    'nvidia-smi dmon -s um': GPU,
    'python plot_runs.py out-llama-1.36b out-gpt2-1.36b --out plots': "needs the two 1.36B runs' logs",
    'python sweep.py config/sweeps/sweep_350m.py --gpus=0,1,2,3': GPU_DATA + " (twelve ~350M runs)",
    'python sweep.py config/sweeps/sweep_350m.py --summarize=True': "needs the twelve ~350M runs",
    'python sample.py --out_dir=out-llama-1.36b --start="The capital of France" --num_samples=3': TRAINED,
    'python export_hf.py --ckpt out-llama-1.36b/ckpt.pt --out hf-llama-1.36b': TRAINED,
    'python eval_downstream.py --out_dir=out-llama-1.36b': TRAINED + "; " + HUB + " for the tasks' data",
    'python eval_downstream.py --out_dir=out-gpt2-1.36b': TRAINED + "; " + HUB + " for the tasks' data",
    'python -c "from transformers import AutoModelForCausalLM as M; M.from_pretrained(\'hf-llama-1.36b\')"':
        "needs the exported 1.36B model",
}


# -----------------------------------------------------------------------------
# checks: (completed process, the copy's root) -> assertions on what the command printed and wrote

def run_log(root, out_dir):
    logs = sorted(glob.glob(os.path.join(root, out_dir, 'run_*.json')))
    assert len(logs) == 1, f"{out_dir}: expected one run log, found {logs}"
    with open(logs[0]) as f:
        return json.load(f)


def checkpoint(root, out_dir):
    return torch.load(os.path.join(root, out_dir, 'ckpt.pt'), map_location='cpu', weights_only=False)


def check_prepare(proc, root):
    for name in ('train.bin', 'val.bin', 'meta.pkl'):
        assert os.path.getsize(os.path.join(root, 'data/python_stdlib', name)) > 0
    assert os.path.getsize(os.path.join(root, 'data/python_stdlib/train.bin')) > 10_000_000  # > 5M tokens


QUICK_NUMBERS = re.compile(r"training loss falls from (\d+\.\d+) .*? to (\d+\.\d+) at iteration (\d+); the "
                           r"validation loss is (\d+\.\d+) nats a byte, (\d+\.\d+) bits per byte", flags=re.S)


def check_quick_start(proc, root):
    log = run_log(root, 'out-quick-llama')
    first, last = log['iters'][0]['loss'], log['iters'][-1]['loss']
    assert last < first - 1.0, f"the quick start's loss should fall clearly: {first:.3f} -> {last:.3f}"
    vals = [e['val_loss'] for e in log['evals']]
    assert vals == sorted(vals, reverse=True) and vals[-1] < 2.5, vals
    assert checkpoint(root, 'out-quick-llama')['iter_num'] == log['config']['max_iters']
    # the numbers README quotes are this run's (to their 2 decimals; a CPU of another kind may round
    # its float32 sums in another order)
    with open(os.path.join(REPO, 'README.md')) as f:
        quoted = QUICK_NUMBERS.search(f.read().replace('\n', ' '))
    assert quoted, "README's quick-start numbers are not where this test reads them"
    doc_first, doc_last, doc_iter, doc_val, doc_bpb = quoted.groups()
    assert int(doc_iter) == log['iters'][-1]['iter']
    for name, doc, actual in (('first loss', doc_first, first), ('last loss', doc_last, last),
                              ('val loss', doc_val, vals[-1]), ('val bpb', doc_bpb, log['evals'][-1]['val_bpb'])):
        assert abs(float(doc) - actual) <= 0.011, f"README's quick-start {name} {doc} is stale: the run gives {actual:.4f}"


def check_samples(count, starts=''):
    def check(proc, root):
        texts = re.split(r'^--- sample \d+ of \d+ ---\n', proc.stdout, flags=re.M)
        assert len(texts) == count + 1 and texts[0] == '', proc.stdout[-2000:]
        for text in texts[1:]:
            assert len(text.strip()) > 20 and text.startswith(starts), text
    return check


def check_imports(proc, root):
    assert 'all required packages are installed' in proc.stdout


def check_printed(*expected):
    """The docs quote these numbers; the command must print them."""
    def check(proc, root):
        for text in expected:
            assert text in proc.stdout, f"{text!r} not in the output:\n{proc.stdout[-3000:]}"
    return check


def check_two_processes(proc, root):
    log = run_log(root, 'out-quick-llama-2cpu')
    assert log['env']['world_size'] == 2 and [r['iter'] for r in log['iters']][-1] == 20
    assert log['config']['backend'] == 'gloo'
    assert checkpoint(root, 'out-quick-llama-2cpu')['iter_num'] == 20


def check_validate(proc, root):
    assert 'FAIL' not in proc.stdout and re.search(r'(\d+)/\1 checks passed', proc.stdout), proc.stdout[-2000:]


def check_smoke(out_dir, arch, iters):
    def check(proc, root):
        ckpt = checkpoint(root, out_dir)
        assert ckpt['iter_num'] == iters and ckpt['model_args']['arch'] == arch
        assert ckpt['model_args']['n_layer'] == 2 and ckpt['model_args']['vocab_size'] == 257
        log = run_log(root, out_dir)
        assert [e['iter'] for e in log['evals']][-1] == iters
        assert all(math_finite(e['val_loss']) for e in log['evals'])
    return check


def math_finite(x):
    return x == x and abs(x) != float('inf')


def check_resume(proc, root):
    check_smoke('out-smoke', 'llama', 20)(proc, root)
    log = run_log(root, 'out-smoke')  # the same run log, appended to
    assert len(log['resumes']) == 1 and log['resumes'][0]['env']['start_iter'] == 10
    assert [e['iter'] for e in log['evals']] == [5, 10, 15, 20]


def check_eval_only(proc, root):
    assert re.search(r'eval iter 20: train loss [\d.]+, val loss [\d.]+', proc.stdout), proc.stdout[-2000:]
    assert 'saved checkpoint' not in proc.stdout
    log = run_log(root, 'out-smoke')
    assert len(log['resumes']) == 2 and log['evals'][-1]['iter'] == 20 and len(log['evals']) == 5


def check_plots(proc, root):
    names = {'loss_vs_iter.png', 'loss_vs_tokens.png', 'loss_vs_time.png', 'lr.png', 'throughput.png',
             'arch_comparison.png'}
    written = set(os.listdir(os.path.join(root, 'plots-smoke')))
    assert names <= written, written
    for name in names:
        with open(os.path.join(root, 'plots-smoke', name), 'rb') as f:
            assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def check_export(proc, root):
    assert 'LlamaForCausalLM' in proc.stdout
    for name in ('config.json', 'model.safetensors'):
        assert os.path.isfile(os.path.join(root, 'hf-quick-llama', name))


def check_hf_load(proc, root):
    parameters = sum(v.numel() for v in checkpoint(root, 'out-quick-llama')['model'].values())
    assert proc.stdout.strip() == str(parameters)


RUN = {
    'python data/python_stdlib/prepare.py': check_prepare,
    'python train.py config/quick_llama.py': check_quick_start,
    'python sample.py --out_dir=out-quick-llama': check_samples(3),
    'python -c "from checkpoint import load_checkpoint; c = load_checkpoint(\'out-quick-llama/ckpt.pt\'); '
    'print(c[\'iter_num\'], c[\'model_args\'][\'n_layer\'], sorted(c))"': check_printed('600 4 [', "'windows'"),
    'python test_imports.py': check_imports,
    'torchrun --standalone --nproc_per_node=2 train.py config/quick_llama.py --gradient_accumulation_steps=2 '
    '--max_iters=20 --eval_interval=10 --out_dir=out-quick-llama-2cpu': check_two_processes,
    'python train.py --help': check_printed('eval_only', 'use_fsdp', 'process group backend on GPU'),
    f'{COST} --model_config config/full_llama_1.36b.py': check_printed('1,294,159,104', '2.7469', '2.6787'),
    f'{COST} --model_config config/full_gpt2_1.36b.py': check_printed('1,404,968,832', '2.7380', '2.6695'),
    f'{COST} --backward_config configs/scaling_laws/custom/verify_llama_1.36b.jsonc':
        check_printed('N = 1,294,159,104', 'loss 2.7469', 'loss 2.6787'),
    f'{COST} --validate': check_validate,
    f'python train.py config/full_llama_1.36b.py {SMOKE} --max_iters=10 --eval_interval=5 --eval_iters=2 '
    '--device=cpu --compile=False --out_dir=out-smoke': check_smoke('out-smoke', 'llama', 10),
    f'python train.py config/full_gpt2_1.36b.py {SMOKE} --max_iters=10 --eval_interval=5 --eval_iters=2 '
    '--device=cpu --compile=False --out_dir=out-smoke-gpt2': check_smoke('out-smoke-gpt2', 'gpt2', 10),
    'python plot_runs.py out-smoke out-smoke-gpt2 --out plots-smoke': check_plots,
    f'python train.py config/full_llama_1.36b.py {SMOKE} --max_iters=20 --eval_interval=5 --eval_iters=2 '
    '--device=cpu --compile=False --out_dir=out-smoke --init_from=resume': check_resume,
    f'python train.py config/full_llama_1.36b.py {SMOKE} --eval_iters=2 --device=cpu --compile=False '
    '--out_dir=out-smoke --init_from=resume --eval_only=True': check_eval_only,
    'python sample.py --out_dir=out-quick-llama --start="def " --num_samples=2 --max_new_tokens=300':
        check_samples(2, starts='def '),
    'python export_hf.py --ckpt out-quick-llama/ckpt.pt --out hf-quick-llama': check_export,
    'python -c "from transformers import AutoModelForCausalLM as M; '
    'print(M.from_pretrained(\'hf-quick-llama\').num_parameters())"': check_hf_load,
    # the memory table of TRAINING_GUIDE.md section 10 (LLaMA, 2 GPUs: DDP / ZeRO-1 / FSDP2)
    f'{COST} --model_config config/full_llama_1.36b.py --gpu H20 --num_gpus 2 --batch_size 8 --mfu 0.574':
        check_printed('45.68 GiB', '40.86 GiB', '34.99 GiB', '50.85 GiB', '2 x H20 (148 TFLOP/s'),
}


# -----------------------------------------------------------------------------

def doc_commands():
    """[(doc, step)] in document order: the lines of every ```bash block, split at &&."""
    steps = []
    for doc in DOCS:
        with open(os.path.join(REPO, doc)) as f:
            text = f.read()
        for block in re.findall(r'^```bash\n(.*?)^```', text, flags=re.S | re.M):
            for line in re.sub(r'\\\n\s*', ' ', block).splitlines():
                line = line.strip()
                if line and not line.startswith('#'):
                    steps += [(doc, step.strip()) for step in line.split(' && ')]
    return steps


def test_every_doc_command_is_run_or_skipped():
    steps = doc_commands()
    unknown = [f"{doc}: {step}" for doc, step in steps if step not in RUN and step not in SKIPPED]
    assert not unknown, "commands in the docs that are neither run nor skipped:\n" + "\n".join(unknown)
    assert not set(RUN) & set(SKIPPED)
    in_docs = {step for _, step in steps}
    stale = [c for c in list(RUN) + list(SKIPPED) if c not in in_docs]
    assert not stale, "listed here but no longer in the docs:\n" + "\n".join(stale)


def test_readme_test_command_is_what_ci_runs():
    with open(os.path.join(REPO, '.ci', 'run')) as f:
        ci = [line.strip() for line in f if line.strip() and not line.startswith('#')]
    assert ci[-1] == 'python3 -m pytest -q tests'
    assert ('README.md', ci[-1]) in doc_commands()
    # in a virtual environment of its own, made and entered before anything is installed
    venv = next(i for i, line in enumerate(ci) if line.startswith('python3 -m venv '))
    activate = next(i for i, line in enumerate(ci) if line.startswith('. ') and 'bin/activate' in line)
    installs = [i for i, line in enumerate(ci) if 'pip install' in line]
    assert installs and venv < activate < min(installs)


def test_docs_python_is_this_environment(tmp_path):
    """The docs' `python` runs with this interpreter's packages (a virtual environment's included)."""
    python_wrapper(str(tmp_path / 'python'))
    code = 'import sys, pytest, torch; print(sys.prefix); print(torch.__file__)'
    proc = subprocess.run([str(tmp_path / 'python'), '-c', code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines() == [sys.prefix, torch.__file__]
    python_wrapper(str(tmp_path / 'torchrun'), '-m', 'torch.distributed.run')
    proc = subprocess.run([str(tmp_path / 'torchrun'), '--help'], capture_output=True, text=True)
    assert proc.returncode == 0 and '--nproc_per_node' in proc.stdout, proc.stderr[-2000:]


def copy_repo(dst):
    """The files git would commit (tracked and untracked, not ignored), or the tree without outputs."""
    try:
        files = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard', '-z'], cwd=REPO, check=True,
                               capture_output=True, text=True).stdout.split('\0')
    except (OSError, subprocess.CalledProcessError):
        shutil.copytree(REPO, dst, ignore=shutil.ignore_patterns(
            '.git', 'out*', '*.bin', 'meta.pkl', '__pycache__', '.pytest_cache', 'hf-*', 'plots*'))
        return
    for name in filter(None, files):
        source = os.path.join(REPO, name)
        if os.path.isfile(source):
            os.makedirs(os.path.dirname(os.path.join(dst, name)), exist_ok=True)
            shutil.copy2(source, os.path.join(dst, name))


def python_wrapper(path, *args):
    """The docs' `python` is this interpreter, in this environment: a script that execs sys.executable
    by its own path (with args first). (A symlink to it would not do: Python started through a link in
    another folder finds no pyvenv.cfg beside it, and runs the base interpreter without a virtual
    environment's packages.)"""
    with open(path, 'w') as f:
        f.write(f'#!/bin/sh\nexec {shlex.join([sys.executable, *args])} "$@"\n')
    os.chmod(path, 0o755)


@pytest.fixture(scope='module')
def ran(tmp_path_factory):
    """Run every RUN command once, in document order, in a copy of the repo; {command: (process, seconds)}."""
    root = str(tmp_path_factory.mktemp('repo'))
    copy_repo(root)
    bin_dir = str(tmp_path_factory.mktemp('bin'))
    for name in ('python', 'python3'):
        python_wrapper(os.path.join(bin_dir, name))
    python_wrapper(os.path.join(bin_dir, 'torchrun'), '-m', 'torch.distributed.run')  # what torchrun runs
    env = {k: v for k, v in os.environ.items()
           if k not in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'LOCAL_WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')}
    env.update(PATH=bin_dir + os.pathsep + env.get('PATH', ''), PYTHONDONTWRITEBYTECODE='1', PYTHONUNBUFFERED='1',
               HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1', MPLBACKEND='Agg')
    results = {}
    for _, step in doc_commands():
        if step in RUN and step not in results:
            t0 = time.time()
            try:
                proc = subprocess.run(['bash', '-c', step], cwd=root, env=env, capture_output=True, text=True,
                                      timeout=TIMEOUT)
            except subprocess.TimeoutExpired as e:
                out = e.stdout.decode(errors='replace') if isinstance(e.stdout, bytes) else e.stdout or ''
                results[step] = (time.time() - t0, f"killed after the {TIMEOUT} s timeout\n{out[-3000:]}")
                continue
            seconds = time.time() - t0
            failure = None
            if proc.returncode != 0:
                failure = f"exit {proc.returncode} after {seconds:.0f}s\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            else:
                try:  # checked now: a later command may change what this one wrote
                    RUN[step](proc, root)
                except AssertionError as e:
                    failure = f"{type(e).__name__}: {e}\n{proc.stdout[-3000:]}"
            results[step] = (seconds, failure)
    return results


@pytest.mark.parametrize('command', list(RUN), ids=lambda c: c[:80])
def test_doc_command(ran, command):
    assert command in ran, f"not found in a ```bash block of {' or '.join(DOCS)}"
    seconds, failure = ran[command]
    assert failure is None, failure
