"""
reference/stdlib_comparison/make_tasks.py on a few small synthetic documents: the items of
stdlib_next_line (four choices, the true line among them at its label, the distractors from other
documents and re-indented to the true line's indentation, the context the text just before the line),
the same for the same seed, and the task files lm_eval reads.
"""
import importlib.util
import json
import os
import re

from helpers import REPO

spec = importlib.util.spec_from_file_location('make_tasks', os.path.join(REPO, 'reference', 'stdlib_comparison',
                                                                         'make_tasks.py'))
make_tasks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_tasks)


def document(d):
    """A small module whose lines all name d (so that each line tells its document), at three indentations."""
    lines = [f'"""Module number {d}."""', 'import os', '']
    for k in range(6):
        lines += [f'def function_{d}_{k}(argument_{d}, other_{d}=None):',
                  f'    value_{d}_{k} = argument_{d} * {k} + len(os.sep)',
                  f'    if other_{d} is not None and value_{d}_{k} > {k}:',
                  f'        value_{d}_{k} = other_{d}.combine(value_{d}_{k})',
                  f'    return value_{d}_{k}', '']
    return '\n'.join(lines) + '\n'


DOCUMENTS = [(document(d), 'library' if d % 2 else 'tests') for d in range(4)]


def document_of(stripped):
    found = [d for d, (text, _) in enumerate(DOCUMENTS) if stripped in [line.strip() for line in text.split('\n')]]
    assert len(found) == 1, stripped
    return found[0]


def test_next_line_items():
    items = make_tasks.next_line_items(DOCUMENTS, n=40, seed=3, context_chars=300)
    assert len(items) == 40 and len({(it['doc'], it['line']) for it in items}) == 40
    assert {it['label'] for it in items} == {0, 1, 2, 3}  # the gold's place is shuffled
    for it in items:
        text, source = DOCUMENTS[it['doc']]
        lines = text.split('\n')
        truth = lines[it['line']]
        assert it['source'] == source and it['line'] >= 3 and len(truth.replace(' ', '')) >= 20
        assert len(it['choices']) == 4 and it['choices'][it['label']] == truth
        assert len({c.strip() for c in it['choices']}) == 4
        indent = truth[:len(truth) - len(truth.lstrip())]
        for k, choice in enumerate(it['choices']):
            assert choice[:len(choice) - len(choice.lstrip())] == indent  # indentation gives nothing away
            if k != it['label']:
                assert document_of(choice.strip()) != it['doc']  # a distractor is of another document
                assert len(choice.replace(' ', '')) >= 20
        before = '\n'.join(lines[:it['line']]) + '\n'
        assert before.endswith(it['context']) and 0 < len(it['context']) <= 300
        assert len(it['context']) == len(before) or before[-len(it['context']) - 1] == '\n'  # cut at a line start


def test_deterministic_for_the_seed():
    function = make_tasks.next_line_items
    first = function(DOCUMENTS, n=20, seed=11, context_chars=300)
    assert function(DOCUMENTS, n=20, seed=11, context_chars=300) == first
    assert function(DOCUMENTS, n=20, seed=12, context_chars=300) != first


def test_tail_cuts_at_a_line_boundary():
    assert make_tasks.tail('ab\ncd\nef\n', 100) == 'ab\ncd\nef\n'
    assert make_tasks.tail('ab\ncd\nef\n', 6) == 'cd\nef\n'
    assert make_tasks.tail('ab\ncd\nef\n', 5) == 'ef\n'
    assert make_tasks.tail('ab\ncdefgh\n', 5) == ''


def test_task_files(tmp_path, monkeypatch):
    items = make_tasks.next_line_items(DOCUMENTS, n=5, seed=0)
    data = make_tasks.write_task(str(tmp_path), 'stdlib_next_line', items, make_tasks.NEXT_LINE_YAML)
    assert data == str(tmp_path / 'stdlib_next_line.jsonl')  # outside the repository: absolute
    assert [json.loads(line) for line in open(data)] == items
    yaml = (tmp_path / 'stdlib_next_line.yaml').read_text()
    assert f'    test: "{data}"\n' in yaml and 'task: stdlib_next_line\n' in yaml
    assert 'target_delimiter: ""' in yaml  # the context ends with a newline; a choice starts the next line
    # inside the repository: from its root (lm_eval reads it from the working directory, the root)
    monkeypatch.setattr(make_tasks, 'REPO', str(tmp_path))
    (tmp_path / 'tasks').mkdir()
    assert make_tasks.write_task(str(tmp_path / 'tasks'), 'x', items, make_tasks.NEXT_LINE_YAML) == 'tasks/x.jsonl'
    assert '    test: "tasks/x.jsonl"\n' in (tmp_path / 'tasks' / 'x.yaml').read_text()
    assert make_tasks.write_task(str(tmp_path / 'tasks'), 'x', items, make_tasks.NEXT_LINE_YAML,
                                 absolute=True) == str(tmp_path / 'tasks' / 'x.jsonl')


def test_the_documented_table_is_what_the_shipped_runs_give():
    """README.md and reference/stdlib_comparison/README.md quote the table summarize.py makes from
    the run logs and evaluations in reference/stdlib_comparison/runs: regenerated here, it must be
    the one they show (a change to the runs, the evaluation or the summary cannot leave them stale)."""
    import subprocess
    import sys
    here = os.path.join(REPO, 'reference', 'stdlib_comparison')
    readme = open(os.path.join(here, 'README.md')).read()
    command = re.search(r'^python reference/stdlib_comparison/summarize\.py .*$', readme, flags=re.M).group(0)
    args = command.split()[2:]
    proc = subprocess.run([sys.executable, os.path.join(here, 'summarize.py'), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=True)
    table = '\n'.join(line for line in proc.stdout.splitlines() if line.startswith('|'))
    assert table.count('\n') == 5  # header, rule, llama and gpt2 each on both tokenizers' data
    assert table in readme  # README.md leads with the English-mix comparison (tests/test_reference_english.py)
    with open(os.path.join(here, 'results.json')) as f:
        assert json.load(f)['table'] == table  # the shipped results.json is the same summary
