"""
sweep.py: the plan (run folders named from their settings, seeds outermost, the exact arguments),
its one-line errors, what a run folder needs (finished, evaluate, resume, new), the component
ladder's shapes against model.py; and, on tiny CPU runs, a sweep whose failed run is reported while
the others finish and are skipped the next time, and a sweep stopped by Ctrl-C that resumes to the
checkpoint of an uninterrupted run.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

import compare
import helpers
import sweep
from configurator import UserError
from helpers import REPO
from test_compare import write_run


def sweep_file(path, **keys):
    """A sweep file of the given keys (Python literals)."""
    with open(path, 'w') as f:
        f.writelines(f"{key} = {value!r}\n" for key, value in keys.items())
    return str(path)


def planned(argv):
    c = sweep.parse(argv)
    sweep.check_keys(c)
    return c, sweep.plan(c)


def two_config_sweep(tmp_path, **extra):
    keys = dict(out_dir=str(tmp_path / 'out'), configs={'llama': 'config/quick_llama.py',
                                                         'gpt2': ('config/quick_gpt2.py', {'n_layer': 2})},
                grid={'learning_rate': [1e-3, 3e-4], 'seed': [1, 2]}, overrides={'max_iters': 50}, min_lr_ratio=0.1)
    keys.update(extra)
    return sweep_file(tmp_path / 'sweep.py', **keys)


def test_the_plan_names_each_run_from_its_settings_seeds_outermost(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    c, runs = planned([two_config_sweep(tmp_path)])
    assert [r.name for r in runs] == [
        'llama-lr0.001-s1', 'llama-lr0.0003-s1', 'gpt2-lr0.001-s1', 'gpt2-lr0.0003-s1',
        'llama-lr0.001-s2', 'llama-lr0.0003-s2', 'gpt2-lr0.001-s2', 'gpt2-lr0.0003-s2']
    out = str(tmp_path / 'out')
    assert runs[3].folder == os.path.join(out, 'gpt2-lr0.0003-s1')
    assert runs[3].train_args == ['config/quick_gpt2.py', '--max_iters=50', '--n_layer=2', '--learning_rate=0.0003',
                                  '--seed=1', '--min_lr=3e-05', f'--out_dir={out}/gpt2-lr0.0003-s1']
    assert runs[3].settings == {'learning_rate': 3e-4, 'seed': 1} and runs[3].eval_args is None
    assert [r.name for r in planned([two_config_sweep(tmp_path)])[1]] == [r.name for r in runs]  # deterministic
    c, runs = planned([two_config_sweep(tmp_path), '--eval_bpb=True', "--eval_args={'max_docs': 20}"])
    assert runs[0].eval_args == [f'--out_dir={out}/llama-lr0.001-s1', '--max_docs=20'] and c['metric'] == 'eval_bpb'


def test_dry_run_prints_every_command(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    assert sweep.main([two_config_sweep(tmp_path), '--dry_run=True', '--eval_bpb=True']) == 0
    out = capsys.readouterr().out
    assert 'llama-lr0.001-s1: new\n    python train.py config/quick_llama.py --max_iters=50 --learning_rate=0.001 ' \
           f'--seed=1 --min_lr=0.0001 --out_dir={tmp_path}/out/llama-lr0.001-s1\n' \
           f'    then python eval_bpb.py --out_dir={tmp_path}/out/llama-lr0.001-s1\n' in out
    assert out.endswith('8 runs: 8 new\n')
    assert not os.path.exists(tmp_path / 'out')


USER_ERRORS = [
    (dict(grid={'learning_rat': [1e-3]}), "grid: 'learning_rat' is not a train.py key (did you mean 'learning_rate'?)"),
    (dict(grid={'learning_rate': 1e-3}), "grid: learning_rate must be a non-empty list of values, got 0.001"),
    (dict(overrides={'out_dir': 'x'}), "overrides: out_dir is the sweep's to set"),
    (dict(overrides={'learning_rate': 1e-3}), "learning_rate is both in grid and in overrides: keep it in one"),
    (dict(grid={'seed': [1, 2]}), "tuned names learning_rate, which the grid does not vary"),
    (dict(configs={'llama': 'config/no_such.py'}), "configs: llama: config file 'config/no_such.py' not found"),
    (dict(configs={'a b': 'config/quick_llama.py'}), "configs: group name 'a b' must be letters, digits and ._+-"),
    (dict(configs={}), "configs is empty"),
    (dict(out_dir=''), "out_dir is not set"),
    (dict(grid={'learning_rate': [1e-3, 0.001]}), "grid: learning_rate lists a value twice"),
    (dict(gpus='0;1'), "gpus must be GPU indices separated by commas"),
    (dict(metric='eval_bpb'), "metric='eval_bpb' needs eval_bpb=True"),
    (dict(comparisons='llama-gpt2'), "comparisons: 'llama-gpt2' is not A:B"),
]


@pytest.mark.parametrize('keys, message', USER_ERRORS, ids=[m[:40] for _, m in USER_ERRORS])
def test_user_errors_are_caught_before_anything_runs(tmp_path, monkeypatch, keys, message):
    monkeypatch.chdir(REPO)
    with pytest.raises(UserError) as e:
        sweep.main([two_config_sweep(tmp_path, **keys), '--dry_run=True'])
    assert message in str(e.value)
    assert not os.path.exists(tmp_path / 'out' / 'llama-lr0.001-s1')


def test_a_user_error_is_one_line_and_exit_status_2(tmp_path):
    r = subprocess.run([sys.executable, 'sweep.py', two_config_sweep(tmp_path, grid={'sed': [1]})], cwd=REPO,
                       capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout) == (2, '')
    assert r.stderr == "error: grid: 'sed' is not a train.py key (did you mean 'seed'?)\n"


def test_what_each_run_folder_needs(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    c, runs = planned([two_config_sweep(tmp_path, grid={'learning_rate': [1e-3, 3e-4], 'seed': [1]})])
    finished, stopped, fresh, _ = runs
    for run, status in ((finished, 'finished'), (stopped, 'stopped')):  # run logs as train.py leaves them
        os.makedirs(os.path.dirname(run.folder), exist_ok=True)
        write_run(os.path.dirname(run.folder), 'x', 1, 1, 1.0, status=status)
        os.rename(os.path.join(os.path.dirname(run.folder), 'x-lr1-s1'), run.folder)
        compare.write_record(run.folder, run.record())
    open(os.path.join(stopped.folder, 'ckpt.pt'), 'w').close()
    assert [sweep.state(r) for r in (finished, stopped, fresh)] == ['finished', 'resume', 'new']
    _, with_eval = planned([two_config_sweep(tmp_path, grid={'learning_rate': [1e-3, 3e-4], 'seed': [1]}),
                            '--eval_bpb=True'])
    assert sweep.state(with_eval[0]) == 'evaluate'  # trained, eval_bpb.py owed
    compare.write_record(finished.folder, dict(finished.record(), evaluated_with=with_eval[0].eval_args))
    assert sweep.state(with_eval[0]) == 'finished'

    _, changed = planned([two_config_sweep(tmp_path, grid={'learning_rate': [1e-3, 3e-4], 'seed': [1]},
                                           overrides={'max_iters': 60})])
    with pytest.raises(UserError, match=r"was run with other arguments \(--max_iters=60 \(was --max_iters=50\)\)"):
        sweep.state(changed[0])
    os.makedirs(fresh.folder)
    open(os.path.join(fresh.folder, 'notes.txt'), 'w').close()
    with pytest.raises(UserError, match="exists and has no sweep_run.json: it is not a run of this sweep"):
        sweep.state(fresh)


# -----------------------------------------------------------------------------
# the component ladder (config/ladder/README.md's table, recomputed with model.py)

def ladder_table():
    with open(os.path.join(REPO, 'config', 'ladder', 'README.md'), encoding='utf-8') as f:
        rows = [line for line in f if line.startswith('| `')]
    return [[cell.strip().strip('`') for cell in row.strip().strip('|').split('|')] for row in rows]


def built(path, **overrides):
    import train
    from model import Transformer
    c = train.parse_config([path] + [f'--{k}={v}' for k, v in overrides.items()])
    mconf = train.model_config(c, None, c.vocab_size)
    with torch.device('meta'):
        model = Transformer(mconf)
    return mconf, model, model.flops_per_token(mconf.block_size)


def test_the_ladder_table_is_model_py_s_count():
    rows = ladder_table()
    assert [r[0] for r in rows] == ['l0_gpt2.py', 'l1_untied.py', 'l2_rope.py', 'l3_swiglu.py', 'l4_llama.py',
                                    'llama_params.py']
    names = {'layernorm': 'LayerNorm', 'rmsnorm': 'RMSNorm', 'learned': 'learned', 'rope': 'RoPE',
             'gelu': 'GELU', 'swiglu': 'SwiGLU'}
    _, _, gpt2_flops = built('config/ladder/l0_gpt2.py')
    print(f"\n{'config':<16} {'parameters':>12} {'matmul':>12} {'GFLOP/token':>12}")
    for name, group, _, norm, position, mlp, d_ff, embeddings, params, matmul, gflop, vs in rows:
        mconf, model, flops = built(f'config/ladder/{name}')
        print(f"{name:<16} {model.num_params():>12,} {model.num_matmul_params():>12,} {flops / 1e9:>12.4f}")
        assert (names[mconf.norm], names[mconf.position], names[mconf.mlp], str(mconf.d_ff)) == (norm, position, mlp, d_ff)
        assert embeddings == ('tied' if mconf.tie_embeddings else 'untied')
        assert (params, matmul) == (f"{model.num_params():,}", f"{model.num_matmul_params():,}")
        assert (gflop, vs) == (f"{flops / 1e9:.4f}", f"{100 * (flops / gpt2_flops - 1):+.2f}%")
        assert (mconf.n_layer, mconf.n_embd, mconf.n_head, mconf.block_size, mconf.vocab_size) == (6, 384, 6, 1024, 50304)
    with open(os.path.join(REPO, 'config', 'sweeps', 'english_ladder.py')) as f:
        text = f.read()
    assert all(f"'{group}': 'config/ladder/{name}'" in text for name, group, *_ in rows)  # the sweep runs each


def test_each_rung_changes_one_component():
    rungs = ['l0_gpt2', 'l1_untied', 'l2_rope', 'l3_swiglu', 'l4_llama']
    shapes = [built(f'config/ladder/{r}.py')[0].to_dict() for r in rungs]
    changed = [sorted(k for k in b if k != 'arch' and a[k] != b[k]) for a, b in zip(shapes, shapes[1:])]
    assert changed == [['tie_embeddings'], ['position'], ['d_ff', 'mlp'], ['norm']]
    # SwiGLU at the GELU MLP's FLOPs: 3 d d_ff = 2 d 4d, d_ff = 8d/3, exactly 1024 at width 384
    assert shapes[3]['d_ff'] == 8 * 384 // 3 == 1024
    from model_config import ModelConfig
    llama = ModelConfig(**dict(shapes[4], arch='llama', norm=None, position=None, mlp=None, tie_embeddings=None,
                               residual_dtype=None)).to_dict()
    assert llama == shapes[4]  # the last rung is the llama preset
    _, gpt2, gpt2_flops = built('config/ladder/l0_gpt2.py')
    _, llama_model, llama_flops = built('config/ladder/l4_llama.py')
    _, preset, preset_flops = built('config/ladder/l4_llama.py', d_ff=None)  # the llama preset's own d_ff rule
    assert llama_flops == gpt2_flops == preset_flops  # rung 4 is LLaMA at GPT-2's FLOPs, by its own rule too
    # rung 4 is config/english_llama.py's model on GPT-2's tokenizer
    english = built('config/english_llama.py', vocab_size=50304)[0].to_dict()
    assert english == shapes[4]
    _, params_matched, _ = built('config/ladder/llama_params.py')
    assert abs(params_matched.num_params() - gpt2.num_params()) == 6_144  # the nearest d_ff (1080; 1088 is 49,152 over)
    assert abs(built('config/ladder/llama_params.py', d_ff=1088)[1].num_params() - gpt2.num_params()) == 49_152


# -----------------------------------------------------------------------------
# tiny sweeps on the CPU

TINY = dict(arch='llama', n_layer=2, n_head=4, n_kv_head=4, n_embd=64, block_size=64, device='cpu', compile=False,
            dtype='float32', batch_size=4, eval_iters=2, warmup_iters=2)


def prepare_bytes_dataset(root):
    """A dataset with byte accounting (so that train.py logs val_bpb and eval_bpb.py can score it)."""
    docs = [f"def f{i}(x):\n    return x * {i} + {i % 7}\n" if i % 2 else f"Document {i}: the quick brown fox.\n"
            for i in range(200)]
    for name, part in (('train.jsonl', docs[:180]), ('val.jsonl', docs[180:])):
        with open(root / name, 'w') as f:
            f.writelines(json.dumps({'text': t}) + '\n' for t in part)
    data = root / 'data'
    subprocess.run([sys.executable, os.path.join('data', 'python_stdlib', 'prepare.py'), '--input', str(root / 'train.jsonl'),
                    '--val_input', str(root / 'val.jsonl'), '--out_dir', str(data), '--num_proc', '1'],
                   cwd=REPO, check=True, capture_output=True, text=True, timeout=120)
    return str(data)


def run_sweep(args, timeout=helpers.TIMEOUT):
    return subprocess.run([sys.executable, 'sweep.py', *args], cwd=REPO, env=helpers.env(), capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.slow
def test_a_failed_run_is_reported_the_others_finish_and_are_skipped_next_time(tmp_path, capsys):
    data = prepare_bytes_dataset(tmp_path)
    tiny = sweep_file(tmp_path / 'tiny.py', dataset=data, max_iters=12, eval_interval=6, log_interval=3, **TINY)
    out = tmp_path / 'out'
    # learning rate 1e6 diverges: five non-finite steps in a row, and train.py stops with status 2
    spec = sweep_file(tmp_path / 'sweep.py', out_dir=str(out), configs={'tiny': tiny},
                      grid={'learning_rate': [1e-3, 3e-3, 1e6], 'seed': [1]}, min_lr_ratio=0.1, parallel=2, eval_bpb=True)
    r = run_sweep([spec])
    assert r.returncode == 1, r.stdout + r.stderr
    assert "sweep: FAILED tiny-lr1000000.0-s1: train.py exited with status 2; the last lines of" in r.stdout
    assert "    error: 5 optimizer steps in a row had a non-finite gradient norm" in r.stdout
    assert "sweep: 2 of 3 runs finished; failed: tiny-lr1000000.0-s1 (exit 2)" in r.stdout
    finished = ('tiny-lr0.001-s1', 'tiny-lr0.003-s1')
    for name in finished:
        folder = out / name
        record = compare.read_record(str(folder))
        assert record['status'] == 'finished' and record['evaluated_with'] == [f'--out_dir={folder}']
        assert helpers.load(str(folder))['iter_num'] == 12
        assert os.path.exists(folder / 'bpb_val_iter12.json')
        assert 'eval_bpb.py' in (folder / 'console.log').read_text()
    assert compare.read_record(str(out / 'tiny-lr1000000.0-s1'))['exit_code'] == 2

    before = {name: helpers.snapshot(str(out / name)) for name in finished}
    r = run_sweep([spec])
    assert r.returncode == 1
    assert "sweep: 3 runs in" in r.stdout and "2 finished already, 1 to run" in r.stdout
    assert "started tiny-lr0.00" not in r.stdout
    assert {name: helpers.snapshot(str(out / name)) for name in before} == before  # untouched

    assert sweep.main([spec, '--summarize=True']) == 0
    with open(out / 'summary' / 'results.json') as f:
        results = json.load(f)
    bpb = {}
    for name in finished:
        with open(out / name / 'bpb_val_iter12.json') as f:
            bpb[name] = json.load(f)['overall']['bpb']
    best = min(bpb, key=bpb.get)
    (group,) = results['groups']
    assert group['best']['runs'] == [best] and group['best']['mean'] == bpb[best]
    assert group['settings'][2]['missing'] == {'tiny-lr1000000.0-s1': 'failed'}
    lr = best.split('-lr')[1].split('-')[0]
    assert f"| tiny | {lr} | 1 | {bpb[best]:.4f} | n/a |" in capsys.readouterr().out
    assert os.path.getsize(out / 'summary' / 'curves.png') > 10_000


@pytest.mark.slow
def test_a_stopped_sweep_resumes_to_the_checkpoint_of_an_uninterrupted_run(tmp_path):
    data = helpers.make_dataset(tmp_path / 'data')
    tiny = sweep_file(tmp_path / 'tiny.py', dataset=data, vocab_size=helpers.VOCAB, max_iters=200, eval_interval=50,
                      log_interval=10, learning_rate=3e-3, **TINY)
    out = tmp_path / 'out'
    spec = sweep_file(tmp_path / 'sweep.py', out_dir=str(out), configs={'tiny': tiny}, grid={'seed': [1]}, tuned='',
                      metric='val_loss')
    console = out / 'tiny-s1' / 'console.log'
    proc = subprocess.Popen([sys.executable, 'sweep.py', spec], cwd=REPO, env=helpers.env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + helpers.TIMEOUT
    while not (console.exists() and re.search(r'^iter 20:', console.read_text(), re.M)):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)  # Ctrl-C: the sweep passes SIGTERM on to train.py, which saves
    output = proc.communicate(timeout=helpers.TIMEOUT)[0]
    assert proc.returncode == 1, output
    assert "sweep: SIGINT: asked the 1 running run(s) to save and stop" in output
    assert "sweep: 0 of 1 runs finished; stopped: tiny-s1" in output
    stopped_at = helpers.load(str(out / 'tiny-s1'))['iter_num']
    assert 20 <= stopped_at < 200, stopped_at
    assert compare.read_record(str(out / 'tiny-s1'))['status'] == 'stopped'

    r = run_sweep([spec])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "sweep: started tiny-s1 (resumed)" in r.stdout and "sweep: 1 of 1 runs finished" in r.stdout
    assert f"resuming from {out / 'tiny-s1' / 'ckpt.pt'}: iter {stopped_at}," in console.read_text()
    whole = tmp_path / 'whole'  # the same arguments, never stopped
    args = compare.read_record(str(out / 'tiny-s1'))['train_args']
    helpers.train(args[:-1] + [f'--out_dir={whole}'])
    resumed, uninterrupted = helpers.load(str(out / 'tiny-s1')), helpers.load(str(whole))
    assert resumed['iter_num'] == uninterrupted['iter_num'] == 200
    helpers.assert_identical(resumed['model'], uninterrupted['model'])


def test_help_lists_every_key_and_does_nothing_else(tmp_path, monkeypatch):
    from configurator import HelpRequested
    monkeypatch.chdir(tmp_path)
    with pytest.raises(HelpRequested) as e:
        sweep.main(['--help'])
    text = e.value.args[0]
    assert text.startswith('usage: python sweep.py [CONFIG_FILE ...] [--key=value ...]')
    for key in sweep.DEFAULTS:
        assert re.search(rf'^{key} += .+  # \S', text, re.M), key
    assert os.listdir(tmp_path) == []


def test_each_run_gets_one_gpu_of_the_list_and_a_run_that_saves_nothing_fails(tmp_path, monkeypatch, capsys):
    """--gpus=0,1: one run per GPU at a time, through CUDA_VISIBLE_DEVICES, each in a process group of
    its own (away from the terminal's Ctrl-C); the children here are stand-ins that exit 0 without
    training, which the sweep reports as failures."""
    monkeypatch.chdir(REPO)
    c, runs = planned([two_config_sweep(tmp_path, grid={'learning_rate': [1e-3, 3e-4], 'seed': [1]}), '--gpus=0,1'])
    started, real_popen = [], subprocess.Popen

    def stand_in(command, **kwargs):
        started.append((command[1:], kwargs['env'].get('CUDA_VISIBLE_DEVICES'), kwargs['start_new_session']))
        return real_popen([sys.executable, '-c', 'import time; time.sleep(0.5)'], **kwargs)

    monkeypatch.setattr(sweep.subprocess, 'Popen', stand_in)
    assert sweep.Sweep(c, runs, {r.name: 'new' for r in runs}).go() == 1
    assert [(args[0], args[1:], own_group) for args, _, own_group in started] == [
        (os.path.join(REPO, 'train.py'), run.train_args, True) for run in runs]
    gpus = [gpu for _, gpu, _ in started]
    assert gpus[:2] == ['0', '1'] and set(gpus[2:]) <= {'0', '1'}  # the next run takes the GPU freed first
    out = capsys.readouterr().out
    assert "sweep: started llama-lr0.001-s1 (train.py on GPU 0)" in out
    assert "sweep: FAILED gpt2-lr0.0003-s1: train.py exited 0 but its run log shows no saved end of training at " \
           "max_iters (last iteration None, max_iters None)" in out
    assert "sweep: 0 of 4 runs finished; failed: llama-lr0.001-s1 (exit 0), " in out
    with open(os.path.join(runs[1].folder, 'console.log')) as f:
        assert "sweep: CUDA_VISIBLE_DEVICES=1 python train.py " in f.read()  # the repo's place is not recorded
