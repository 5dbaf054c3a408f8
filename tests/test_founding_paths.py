"""
Every path the founding document names works where it names it: the guides at the top level, the
architecture notes beside the configs, the cost tool's model JSONs, and the "verify N" commands it
runs with them. FOUNDING_PATHS lists them here, so the check needs the repository alone; where the
founding document sits beside the repository (../shared/seed/PROJECT_READY_SUMMARY.md), every
path-looking token in it (inline code, its shell blocks with their `cd`s, its folder tree) is checked
too. And no file of the repository points at a moved document's old place.
"""
import os
import re
import subprocess
import sys

import pytest
import torch

import train
from helpers import REPO
from model import Transformer

# the paths the founding document names, as it names them (a folder ends with /)
FOUNDING_PATHS = [
    'config/full_llama_1.36b.py', 'config/full_gpt2_1.36b.py',
    'data/slimpajama_6b_llama/', 'data/slimpajama_6b_llama/prepare.py', 'data/slimpajama_6b_llama/README.md',
    'data/slimpajama_6b_gpt2/', 'data/slimpajama_6b_gpt2/prepare.py', 'data/slimpajama_6b_gpt2/README.md',
    'TRAINING_GUIDE.md', 'config/ARCH_GPT2.md', 'config/ARCH_LLAMA.md', 'config/PARAMETER_FORMULAS.md',
    'flops_parameter_counting/', 'flops_parameter_counting/configs/', 'flops_parameter_counting/configs/models/',
    'flops_parameter_counting/configs/models/llama_1.36b.json', 'flops_parameter_counting/configs/models/gpt2_1.36b.json',
    'flops_parameter_counting/configs/scaling_laws/', 'flops_parameter_counting/configs/scaling_laws/custom/',
    'flops_parameter_counting/configs/scaling_laws/custom/verify_llama_1.36b.jsonc',
    'flops_parameter_counting/detailed_cost_analysis.py',
    'train.py', 'test_imports.py', 'README.md', 'SYSTEM_OVERVIEW.md', 'TESTING.md',
]
# what it names that a command writes, never the repository: prepare.py's and train.py's outputs, and
# the placeholder for the repository's own folder
WRITTEN = {'train.bin', 'val.bin', 'meta.pkl', 'data/slimpajama_6b_llama/*.bin', 'data/slimpajama_6b_gpt2/*.bin',
           'out-llama-1.36b/run_*.json', '/path/to/enhanced_training_system'}
FOUNDING_DOC = os.path.join(os.path.dirname(REPO), 'shared', 'seed', 'PROJECT_READY_SUMMARY.md')
EXTENSIONS = ('md', 'py', 'json', 'jsonc', 'bin', 'pkl')
MOVED = {'docs/TRAINING_GUIDE.md': 'TRAINING_GUIDE.md', 'docs/TESTING.md': 'TESTING.md',
         'docs/ARCH_LLAMA.md': 'config/ARCH_LLAMA.md', 'docs/ARCH_GPT2.md': 'config/ARCH_GPT2.md',
         'docs/PARAMETER_FORMULAS.md': 'config/PARAMETER_FORMULAS.md'}


def exists(path):
    full = os.path.join(REPO, path)
    return os.path.isdir(full) if path.endswith('/') else os.path.isfile(full)


def test_every_founding_path_is_in_the_repository():
    missing = [p for p in FOUNDING_PATHS if not exists(p)]
    assert not missing, f"named by the founding document, missing from the repository: {missing}"


# -----------------------------------------------------------------------------
# the founding document itself, where it is beside the repository

def path_like(token):
    return (re.fullmatch(r'[\w.*/-]+', token) is not None and not token.startswith('-')
            and ('/' in token or token.rsplit('.', 1)[-1] in EXTENSIONS))


def tree_paths(block):
    """The paths of a folder tree drawn with ├── and └── (4 columns a level)."""
    lines = [line for line in block.splitlines() if line.strip()]
    stack, paths = [lines[0].split()[0]], [lines[0].split()[0]]
    for line in lines[1:]:
        branch = re.search(r'[├└]── (\S+)', line)
        if branch is None:
            continue
        depth = branch.start() // 4 + 1
        del stack[depth:]
        stack.append(branch.group(1))
        paths.append(''.join(stack))
    return paths


def named_in(text):
    """[(path as named, path from the repository root)] for every path-looking token of the document."""
    named = []
    fences = re.compile(r'^```(\w*)\n(.*?)^```', flags=re.S | re.M)
    for lang, block in fences.findall(text):
        if re.search(r'[├└]── ', block):
            named += [(p, p) for p in tree_paths(block)]
        elif lang == 'bash':
            cwd = ''
            for line in re.sub(r'\\\n\s*', ' ', block).splitlines():
                words = line.split('#')[0].split()
                if words[:1] == ['cd'] and len(words) == 2:  # the placeholder is the repository's folder
                    target = '.' if words[1] in WRITTEN else os.path.normpath(os.path.join(cwd, words[1]))
                    cwd = '' if target == '.' else target
                    if '..' not in words[1]:
                        named.append((words[1], words[1] if words[1] in WRITTEN else cwd + '/'))
                    continue
                named += [(w, os.path.join(cwd, w)) for w in words if path_like(w)]
    last_folder = ''
    for span in re.findall(r'`([^`\n]+)`', fences.sub('', text)):
        for word in span.split():
            if path_like(word):
                in_folder = os.path.join(last_folder, word)
                named.append((word, word if exists(word) or not exists(in_folder) else in_folder))
                if word.endswith('/'):
                    last_folder = word  # "`prepare.py`" under "`data/slimpajama_6b_llama/`" is that folder's
    return named


@pytest.mark.skipif(not os.path.isfile(FOUNDING_DOC), reason="the founding document is not beside the repository")
def test_every_path_the_founding_document_names_resolves():
    with open(FOUNDING_DOC, encoding='utf-8') as f:
        named = named_in(f.read())
    found = {path for word, path in named if word not in WRITTEN and path not in WRITTEN}
    unresolved = sorted(word if word == path else f"{word} ({path})" for word, path in named
                        if word not in WRITTEN and path not in WRITTEN and not exists(path))
    assert not unresolved, f"named by the founding document, not in the repository: {unresolved}"
    assert set(FOUNDING_PATHS) == found, "FOUNDING_PATHS and the founding document disagree"
    assert {word for word, _ in named} >= WRITTEN, "WRITTEN lists a name the founding document no longer has"


def test_the_reader_finds_the_founding_paths():
    """The parser above, on the founding document's own forms: a tree, a cd in a shell block, a file
    named under its folder."""
    doc = ("**`data/x_llama/`**\n- `prepare.py` and `README.md`\n\n```bash\ncd data/x_llama\npython prepare.py\n"
           "cd ../..\nls config/full_llama_1.36b.py\n```\n\n```\ntools/\n├── configs/\n│   └── a.json   # note\n"
           "└── run.py\n```\n")
    assert named_in(doc) == [('data/x_llama', 'data/x_llama/'), ('prepare.py', 'data/x_llama/prepare.py'),
                             ('config/full_llama_1.36b.py', 'config/full_llama_1.36b.py'),
                             ('tools/', 'tools/'), ('tools/configs/', 'tools/configs/'),
                             ('tools/configs/a.json', 'tools/configs/a.json'), ('tools/run.py', 'tools/run.py'),
                             ('data/x_llama/', 'data/x_llama/'), ('prepare.py', 'prepare.py'), ('README.md', 'README.md')]


# -----------------------------------------------------------------------------
# what it runs with the model JSONs: "Verify N"

def config_parameters(name):
    c = train.parse_config([os.path.join(REPO, 'config', f'full_{name}.py')])
    with torch.device('meta'):
        return Transformer(train.model_config(c, None, c.vocab_size)).num_params()


@pytest.mark.parametrize('name', ['llama_1.36b', 'gpt2_1.36b'])
@pytest.mark.parametrize('cwd, tool, model', [
    ('flops_parameter_counting', 'detailed_cost_analysis.py', 'configs/models/{}.json'),  # as its tree has it
    ('.', 'flops_parameter_counting/detailed_cost_analysis.py', 'configs/models/{}.json'),
    ('.', 'flops_parameter_counting/detailed_cost_analysis.py', '{}.json'),  # a bare name: configs/models/
])
def test_verify_n_with_the_model_json(name, cwd, tool, model):
    proc = subprocess.run([sys.executable, tool, '--model_config', model.format(name)], cwd=os.path.join(REPO, cwd),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    total = re.search(r'^  total +([\d,]+)', proc.stdout, flags=re.M)
    assert total and int(total.group(1).replace(',', '')) == config_parameters(name), proc.stdout[:2000]


@pytest.mark.parametrize('config', ['configs/scaling_laws/custom/verify_llama_1.36b.jsonc', 'verify_llama_1.36b.jsonc'])
def test_verify_n_d_and_loss_from_the_tools_folder(config):
    proc = subprocess.run([sys.executable, 'detailed_cost_analysis.py', '--backward_config', config],
                          cwd=os.path.join(REPO, 'flops_parameter_counting'), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"verify config/full_llama_1.36b.py: N = {config_parameters('llama_1.36b'):,}\n" in proc.stdout


# -----------------------------------------------------------------------------
# no file points at a moved document's old place, and every relative link resolves

def repository_text_files():
    try:
        names = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard', '-z'], cwd=REPO, check=True,
                               capture_output=True, text=True).stdout.split('\0')
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: every file but the outputs
        names = [os.path.relpath(os.path.join(d, f), REPO) for d, _, files in os.walk(REPO) for f in files]
    return [n for n in names if n and os.path.isfile(os.path.join(REPO, n))
            and (n.endswith(('.py', '.md', '.json', '.jsonc', '.toml', '.sh', '.txt', '.cfg')) or n == '.ci/run')]


def test_no_file_names_a_moved_document_by_its_old_path():
    stale = []
    for name in repository_text_files():
        if name == 'tests/test_founding_paths.py':  # MOVED above
            continue
        with open(os.path.join(REPO, name), encoding='utf-8', errors='replace') as f:
            for number, line in enumerate(f, 1):
                stale += [f"{name}:{number}: {old} is now {new}" for old, new in MOVED.items()
                          if re.search(r'(?<![\w/])' + re.escape(old), line)]
    assert not stale, "\n".join(stale)
    assert not os.path.exists(os.path.join(REPO, 'docs'))


def test_every_relative_markdown_link_resolves():
    broken = []
    for name in repository_text_files():
        if name.endswith('.md'):
            with open(os.path.join(REPO, name), encoding='utf-8') as f:
                for target in re.findall(r'\]\(([^)\s]+)\)', f.read()):
                    path = target.split('#')[0]
                    if path and not re.match(r'\w+:', path) and not os.path.exists(
                            os.path.join(REPO, os.path.dirname(name), path)):
                        broken.append(f"{name}: {target}")
    assert not broken, "\n".join(broken)


def test_system_overview_names_every_module_and_only_real_files():
    with open(os.path.join(REPO, 'SYSTEM_OVERVIEW.md'), encoding='utf-8') as f:
        text = f.read()
    modules = sorted(n for n in os.listdir(REPO) if n.endswith('.py'))
    unnamed = [m for m in modules if f'`{m}`' not in text]
    assert modules and not unnamed, f"SYSTEM_OVERVIEW.md does not name {unnamed}"
    for span in re.findall(r'`([^`\n]+)`', re.sub(r'^```.*?^```', '', text, flags=re.S | re.M)):
        for word in span.split():
            # a dataset's files (train.bin, ...) are written by prepare.py; <name>, * and {a,b} are patterns
            if path_like(word) and word not in WRITTEN and not word.startswith('.') and not set('<*{') & set(word):
                assert os.path.exists(os.path.join(REPO, word)), f"SYSTEM_OVERVIEW.md names {word}, which is not there"
