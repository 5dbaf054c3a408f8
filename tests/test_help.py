"""
--help and -h on the scripts that take configurator.py's arguments (train.py, sample.py, bench.py, eval_bpb.py,
eval_downstream.py, export_hf.py):
every key with its default and its meaning, the meaning being the trailing comment of the key in the
script's defaults block; on stdout, exit 0, and nothing else done (no data read, nothing written).
"""
import os
import re
import subprocess
import sys

import pytest

import helpers
from helpers import REPO

import bench
import eval_bpb
import eval_downstream
import export_hf
import sample
import train
from configurator import HelpRequested

SCRIPTS = {
    'train.py': dict(train.DEFAULTS),
    'sample.py': dict(sample.DEFAULTS),
    'bench.py': {**train.DEFAULTS, **bench.BENCH_DEFAULTS},
    'eval_bpb.py': dict(eval_bpb.DEFAULTS),
    'eval_downstream.py': dict(eval_downstream.DEFAULTS),
    'export_hf.py': dict(export_hf.DEFAULTS),
}
# a few meanings each script's help must show, as its defaults block words them
KNOWN = {
    'train.py': {'eval_only': 'write no checkpoint', 'use_fsdp': 'FSDP2',
                 'gradient_accumulation_steps': 'micro-steps per optimizer step'},
    'sample.py': {'temperature': '0 = greedy', 'start': 'FILE:path'},
    'bench.py': {'bench_iters': 'timed optimizer steps', 'use_fsdp': 'FSDP2'},
    'eval_bpb.py': {'max_docs': 'seeded sample'},
    'eval_downstream.py': {'tasks': 'comma-separated', 'hf_dir': 'temporary folder'},
    'export_hf.py': {'out_dir': 'the run whose ckpt.pt', 'out': 'hf-NAME'},
}
TYPOS = {'train.py': ('eval_onyl', 'eval_only'), 'sample.py': ('tempreature', 'temperature'),
         'bench.py': ('bench_iter', 'bench_iters'), 'eval_bpb.py': ('max_doc', 'max_docs'),
         'eval_downstream.py': ('taks', 'tasks'), 'export_hf.py': ('outdir', 'out_dir')}


def launch(script, args, cwd, env=None):
    return subprocess.Popen([sys.executable, os.path.join(REPO, script), *args], cwd=cwd, env=env or helpers.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc):
    out, err = proc.communicate(timeout=helpers.TIMEOUT)
    return proc.returncode, out, err


@pytest.fixture(scope='module')
def helps(tmp_path_factory):
    """{script: (exit status, stdout, stderr, files left in its working folder)} of `python SCRIPT --help`,
    each run in an empty folder, all at once."""
    folders = {s: tmp_path_factory.mktemp(s.replace('.', '_')) for s in SCRIPTS}
    procs = {s: launch(s, ['--help'], folders[s]) for s in SCRIPTS}
    return {s: (*finish(p), os.listdir(folders[s])) for s, p in procs.items()}


def key_lines(text):
    """{key: the rest of its line} from the help's 'key = value  # meaning' lines."""
    return {m.group(1): m.group(2) for m in re.finditer(r'^(\w+) += (.*)$', text, re.M)}


def source_comments(script):
    """{key: trailing comment or None} for the defaults as written in the script, read line by line
    (independently of configurator.py's reader)."""
    with open(os.path.join(REPO, script)) as f:
        lines = f.read().splitlines()
    if script == 'train.py':
        start = next(i for i, line in enumerate(lines) if line.startswith('# defaults'))
        end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith('# ----'))
        pattern = r'^(\w+) = .*?(?:  +# (.*))?$'
    else:
        name = 'BENCH_DEFAULTS' if script == 'bench.py' else 'DEFAULTS'
        start = lines.index(f'{name} = dict(')
        end = lines.index(')', start)
        pattern = r'^\s+(\w+)=.*?,(?:\s+# (.*))?$'
    found = {}
    for line in lines[start + 1:end]:
        m = re.match(pattern, line)
        if m:
            found[m.group(1)] = m.group(2)
    return found


@pytest.mark.slow  # `helps` runs the six scripts with --help, each a process that imports torch
@pytest.mark.parametrize('script', SCRIPTS)
def test_help_lists_every_key_with_default_and_meaning(script, helps):
    code, out, err, left = helps[script]
    assert code == 0 and err == '', err
    assert left == [], f"--help wrote {left}"
    assert out.startswith(f'usage: python {script} [CONFIG_FILE ...] [--key=value ...]\n')
    listed = key_lines(out)
    defaults = SCRIPTS[script]
    if script == 'bench.py':  # bench.py's keys first (tests/test_newcomer3.py checks the order)
        assert sorted(listed) == sorted(defaults), "every key"
    else:
        assert list(listed) == list(defaults), "every key, in the defaults' order, once"
    for key, value in defaults.items():
        assert listed[key].startswith(repr(value)), (key, listed[key])
    for key, meaning in KNOWN[script].items():
        assert meaning in listed[key], (key, listed[key])


@pytest.mark.slow
@pytest.mark.parametrize('script', SCRIPTS)
def test_meanings_are_the_comments_of_the_defaults_block(script, helps):
    listed = key_lines(helps[script][1])
    comments = {**(source_comments('train.py') if script == 'bench.py' else {}), **source_comments(script)}
    assert set(comments) == set(SCRIPTS[script])
    for key, comment in comments.items():
        value = repr(SCRIPTS[script][key])
        if comment is None:  # no comment: key and default only
            assert listed[key] == value, (key, listed[key])
        else:
            assert re.fullmatch(re.escape(value) + r' *  # ' + re.escape(comment), listed[key]), (key, listed[key])


@pytest.mark.parametrize('script', SCRIPTS)
def test_every_key_has_a_meaning(script):
    """README says every key's meaning is in --help: each default carries its comment."""
    comments = {**(source_comments('train.py') if script == 'bench.py' else {}), **source_comments(script)}
    assert [key for key, comment in comments.items() if not comment] == []


@pytest.mark.slow
def test_train_help_is_grouped_by_section_comments(helps):
    out = helps['train.py'][1]
    sections = re.findall(r'^# (.*)$', out, re.M)
    assert sections[:3] == ['I/O', 'logging', 'data'] and sections[-1] == 'system'
    assert out.index('# I/O') < out.index('\neval_only ') < out.index('# logging')
    assert out.index('# system') < out.index('\nuse_fsdp ')
    bench_out = helps['bench.py'][1]
    assert bench_out.index('# bench.py') < bench_out.index('\nbench_iters ') < bench_out.index('# data') \
        < bench_out.index('# system') < bench_out.index('# I/O')


@pytest.mark.slow
@pytest.mark.parametrize('script,argv', [
    ('train.py', ['-h']),
    ('train.py', ['config/full_llama_1.36b.py', '--batch_size=4', '--help']),  # anywhere, nothing applied
    ('sample.py', ['--out_dir=no_such_run', '-h']),
    ('bench.py', ['config/full_gpt2_1.36b.py', '--bench_sweep=True', '--help']),
])
def test_help_does_nothing_else(script, argv, helps, monkeypatch):
    """In the process: main() stops at the argument parsing, before any setup, with the same text
    as `python SCRIPT --help`."""
    def forbidden(*args, **kwargs):
        raise AssertionError('--help went on to do work')
    for module, name in ((train, 'setup'), (train, 'open_trackers'), (sample, 'load_checkpoint'),
                         (sample, 'tokenizer_of'), (bench, 'run'), (bench, 'sweep')):
        monkeypatch.setattr(module, name, forbidden)
    monkeypatch.chdir(REPO)  # the config files named relative to the repository, as a user types them
    main = {'train.py': train.main, 'sample.py': sample.main, 'bench.py': bench.main}[script]
    with pytest.raises(HelpRequested) as shown:
        main(argv)
    assert shown.value.args[0] + '\n' == helps[script][1]


@pytest.mark.slow  # the six scripts as processes
def test_bad_key_is_still_a_one_line_error(tmp_path):
    procs = {s: launch(s, [f'--{typo}=1'], tmp_path) for s, (typo, _) in TYPOS.items()}
    for script, proc in procs.items():
        code, out, err = finish(proc)
        typo, key = TYPOS[script]
        assert code == 2 and out == '', (script, out, err)
        assert err == f"error: --{typo}: unknown config key '{typo}'; did you mean '{key}'?\n", (script, err)
    assert os.listdir(tmp_path) == []


def test_help_of_any_script_built_on_configurator(tmp_path):
    """The mechanism, on a script of its own: globals and a dict of defaults, section comments,
    separators, keys with and without a meaning."""
    script = tmp_path / 'toy.py'
    script.write_text('''"""A toy script: its summary line.

More about it.
"""
import sys

from configurator import Configurator, run_cli

# -----------------------------------------------------------------------------
# first section
alpha = 1                # the first key
beta = 'b'
# second section
gamma = None             # None = no gamma
# -----------------------------------------------------------------------------
KEYS = {k: v for k, v in dict(globals()).items() if k in ('alpha', 'beta', 'gamma')}
OWN = dict(
    delta=2.5,           # a dict entry
    # a section in the dict
    epsilon=[1, 2],      # a list,
                         # written over two lines
    zeta='z',
)


def main(argv):
    Configurator({**KEYS, **OWN}, {'gamma': int}).parse(argv)
    open('ran', 'w').close()
    return 0


if __name__ == '__main__':
    run_cli(main)
''')
    work = tmp_path / 'work'
    work.mkdir()
    proc = launch(str(script), ['--gamma=3', '-h'], work, env=helpers.env(PYTHONPATH=REPO))
    code, out, err = finish(proc)
    assert code == 0 and err == '', err
    assert out == '''usage: python toy.py [CONFIG_FILE ...] [--key=value ...]

A toy script: its summary line.

Arguments apply in order: a bare argument is a config file (Python, run over the defaults),
--key=value sets one key (a Python literal, else a string). The keys, their defaults and
meanings:

# first section
alpha   = 1       # the first key
beta    = 'b'

# second section
gamma   = None    # None = no gamma

delta   = 2.5     # a dict entry

# a section in the dict
epsilon = [1, 2]  # a list, written over two lines
zeta    = 'z'
'''
    assert os.listdir(work) == []
    code, out, err = finish(launch(str(script), ['--gamma=3'], work, env=helpers.env(PYTHONPATH=REPO)))
    assert code == 0 and os.listdir(work) == ['ran'], err


# every script a user runs, with what its --help must say first
EVERY_SCRIPT = ['train.py', 'sample.py', 'bench.py', 'eval_bpb.py', 'eval_downstream.py', 'export_hf.py', 'plot_runs.py',
                'dataprep.py', 'test_imports.py', 'flops_parameter_counting/detailed_cost_analysis.py',
                'data/python_stdlib/prepare.py', 'data/slimpajama_6b_llama/prepare.py',
                'data/slimpajama_6b_gpt2/prepare.py', 'data/stdlib_llama/prepare.py', 'data/stdlib_gpt2/prepare.py',
                'reference/stdlib_comparison/make_tasks.py',
                'reference/stdlib_comparison/summarize.py', 'data/tokenizers/build.py', 'data/english_mix/collect.py',
                'data/english_mix_llama/prepare.py', 'data/english_mix_gpt2/prepare.py', 'sweep.py',
                'flops_parameter_counting/scaling_fit.py']


@pytest.mark.slow  # a process for each script
def test_every_script_answers_help_with_usage_and_exit_0(tmp_path):
    """--help prints a usage line and exits 0, doing nothing else, for every script a user runs; its
    one-line summary, where it has one, is not cut mid-sentence."""
    procs = {s: subprocess.Popen([sys.executable, os.path.join(REPO, s), '--help'], cwd=tmp_path, env=helpers.env(),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for s in EVERY_SCRIPT}
    for script, proc in procs.items():
        out, err = proc.communicate(timeout=helpers.TIMEOUT)
        assert proc.returncode == 0, f"{script} --help exited {proc.returncode}: {err[-500:]}"
        assert re.search(r'usage:', out, flags=re.I) or script == 'test_imports.py', (script, out[:300])
        paragraphs = [p for p in out.split('\n\n') if p.strip() and not p.lower().startswith('usage:')]
        if paragraphs and script != 'test_imports.py':  # argparse's or configurator's summary, after usage
            summary = ' '.join(paragraphs[0].split())
            assert not re.search(r'(\b(and|or|the|a|an|of|to|that|with|on|in|by|for|scaling)|[,;(])$', summary), \
                (script, 'cut mid-sentence', summary)
    assert os.listdir(tmp_path) == []  # nothing written
