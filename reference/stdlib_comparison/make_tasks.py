"""
An lm-evaluation-harness task over the validation documents of the standard library (the files
that data/stdlib_llama and data/stdlib_gpt2 hold out: every 20th), so that the reference comparison
can be scored downstream offline, on code its models never trained on:

stdlib_next_line (multiple_choice, HellaSwag-like): the text of a file up to the start of a line,
  and four candidates for that line: the true one and three lines of other validation files, each
  re-indented to the true line's indentation. Metrics acc and acc_norm (log-likelihood per character).
A LAMBADA-like task (the identifier that ends a line) cannot score both models: lm_eval splits
context and continuation by tokenizing both and their concatenation, and a tokenizer without
pre-tokenization (the LLaMA-2-style one) merges a short continuation into the context's last token,
which lm_eval refuses (an empty continuation). A whole line as the continuation does not have that
problem.

The task is a .jsonl of items and a YAML naming it: by its path from the repository root when the
folder is inside the repository (lm_eval reads a relative path from the working directory: run
eval_downstream.py from the root, as below), else (or with --absolute) by its absolute path. The
items are seeded: the same Python (whose standard library this is, the one that prepared the
datasets: the tasks must hold out what they held out) and the same settings give the same files.

    python reference/stdlib_comparison/make_tasks.py
    python eval_downstream.py --out_dir=out-compare-gpt2 --tasks=stdlib_next_line \\
        --include_path=reference/stdlib_comparison/tasks
"""
import argparse
import importlib.util
import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

MIN_CHARS = 20      # a line worth predicting (or offering as a distractor) has this many non-blank characters
MIN_LINE = 3        # ... and at least this many lines before it

NEXT_LINE_YAML = """task: stdlib_next_line
dataset_path: json
dataset_kwargs:
  data_files:
    test: {path}
output_type: multiple_choice
test_split: test
doc_to_text: context
doc_to_target: label
doc_to_choice: choices
target_delimiter: ""
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


def validation_documents():
    """[(text, 'library' or 'tests')]: the validation documents, as the stdlib datasets take them."""
    path = os.path.join(REPO, 'data', 'python_stdlib', 'prepare.py')
    spec = importlib.util.spec_from_file_location('python_stdlib_prepare', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    documents = module.stdlib_source(argparse.Namespace(max_docs=None), labelled=True).documents
    return [(text, label) for split, text, label in documents if split == 'val']


def eligible(line, min_chars=MIN_CHARS):
    return '\r' not in line and sum(not c.isspace() for c in line) >= min_chars


def indentation(line):
    return line[:len(line) - len(line.lstrip())]


def split_lines(text):
    """[(offset, line)]: the text's lines split at '\\n' only, each with the offset of its first character."""
    lines, offset = [], 0
    for line in text.split('\n'):
        lines.append((offset, line))
        offset += len(line) + 1
    return lines


def tail(prefix, max_chars):
    """The longest suffix of prefix (a text ending at a line boundary) that starts at a line boundary
    and has at most max_chars characters; '' when its last line alone is longer."""
    if len(prefix) <= max_chars:
        return prefix
    cut = prefix.find('\n', len(prefix) - max_chars - 1)
    return prefix[cut + 1:] if cut >= 0 else ''


def _documents(documents):
    return [(d, '') if isinstance(d, str) else (d[0], d[1]) for d in documents]


def next_line_items(documents, n=1000, seed=1234, context_chars=1500, n_choices=4):
    """stdlib_next_line's items from documents (texts, or (text, label) pairs): n positions drawn
    (seeded) among the eligible lines with a non-empty context; each item {'context', 'choices',
    'label' (the true line's place among choices), 'doc', 'line', 'source'}."""
    documents = _documents(documents)
    rng = random.Random(seed)
    positions, pool = [], []
    for d, (text, _) in enumerate(documents):
        for i, (offset, line) in enumerate(split_lines(text)):
            if not eligible(line):
                continue
            pool.append((d, line.strip()))
            if i >= MIN_LINE and tail(text[:offset], context_chars):
                positions.append((d, i, offset, line))
    items = []
    for d, i, offset, line in rng.sample(positions, min(n, len(positions))):
        text, label = documents[d]
        truth = line.strip()
        distractors = []
        for _ in range(100 * n_choices):  # drawn from the whole pool, the unfit ones drawn again
            e, stripped = rng.choice(pool)
            if e != d and stripped != truth and stripped not in distractors:
                distractors.append(stripped)
                if len(distractors) == n_choices - 1:
                    break
        else:
            raise ValueError(f'too few distinct lines in documents other than {d} for {n_choices - 1} distractors')
        indent = indentation(line)
        choices = [line] + [indent + s for s in distractors]
        order = list(range(n_choices))
        rng.shuffle(order)
        items.append(dict(context=tail(text[:offset], context_chars), choices=[choices[k] for k in order],
                          label=order.index(0), doc=d, line=i, source=label))
    return items


def write_task(out_dir, name, items, yaml_template, absolute=False):
    """out_dir/name.jsonl and out_dir/name.yaml; the YAML names the data file by its path from the
    repository root when out_dir is inside it (lm_eval's json loader reads a relative path from the
    working directory, which is the root in every eval_downstream.py command; the folder then moves
    with the checkout), else or if absolute by its absolute path. Returns the path written into the YAML."""
    data = os.path.abspath(os.path.join(out_dir, f'{name}.jsonl'))
    with open(data, 'w', encoding='utf-8') as f:
        f.writelines(json.dumps(item) + '\n' for item in items)
    named = data
    if not absolute and os.path.commonpath([data, os.path.abspath(REPO)]) == os.path.abspath(REPO):
        named = os.path.relpath(data, REPO)
    with open(os.path.join(out_dir, f'{name}.yaml'), 'w', encoding='utf-8') as f:
        f.write(yaml_template.format(path=json.dumps(named)))
    return named


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out_dir', default=os.path.join(HERE, 'tasks'), help='where the .jsonl and .yaml files go')
    parser.add_argument('--n', type=int, default=1000, help='items per task')
    parser.add_argument('--seed', type=int, default=1234, help='which positions, distractors and orders')
    parser.add_argument('--context_chars', type=int, default=1500, help='the most characters of context')
    parser.add_argument('--absolute', action='store_true',
                        help='name the data files by absolute paths even inside the repository')
    args = parser.parse_args(argv)
    documents = validation_documents()
    os.makedirs(args.out_dir, exist_ok=True)
    items = next_line_items(documents, args.n, args.seed, args.context_chars)
    path = write_task(args.out_dir, 'stdlib_next_line', items, NEXT_LINE_YAML, args.absolute)
    print(f"stdlib_next_line: {len(items)} items from {len(documents)} validation documents -> {path}")


if __name__ == '__main__':
    main()
