"""
The offline default dataset: this Python's standard library sources (.py), each file a document of
UTF-8 bytes (ids 0..255) ended by 256. Every 20th file (library, then tests, by path) is validation.
Needs no download and takes seconds. See README.md.

    python data/python_stdlib/prepare.py
"""
import os
import sys
import sysconfig

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))  # the repo root, for dataprep
import dataprep

MAX_BYTES = 30_000_000  # about the whole library (3.11: 31.5 MB, 19 MB of it its own test suite)
VAL_EVERY = 20
SKIP_DIRS = {'site-packages', 'dist-packages', '__pycache__'}  # installed packages are not the standard library
TEST_DIRS = {'test', 'tests', 'idle_test'}


def stdlib_files(root):
    """Relative paths of the .py files under root: the library sorted by path, then its tests sorted
    by path, up to MAX_BYTES in all (so a larger library loses tests first)."""
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
        found += [os.path.relpath(os.path.join(folder, n), root) for n in names if n.endswith('.py')]
    chosen, total = [], 0
    for path in sorted(found, key=lambda p: (bool(TEST_DIRS & set(p.split(os.sep))), p)):
        size = os.path.getsize(os.path.join(root, path))
        if total + size > MAX_BYTES:
            break
        chosen.append(path)
        total += size
    return chosen


def stdlib_source(args, labelled=False):
    """The documents, (split, text) each; labelled: (split, text, 'library' or 'tests') each, two
    sources (data/stdlib_llama and data/stdlib_gpt2 report bits per byte for each)."""
    root = sysconfig.get_paths()['stdlib']
    paths = stdlib_files(root)[:args.max_docs]
    # read up front (at most MAX_BYTES), so that the progress bar's total counts only the documents kept
    documents = []
    for index, path in enumerate(paths):
        with open(os.path.join(root, path), 'rb') as f:
            data = f.read()
        try:
            text = data.decode('utf-8')
        except UnicodeDecodeError:  # a few test files are in other encodings on purpose
            continue
        split = 'val' if index % VAL_EVERY == VAL_EVERY - 1 else 'train'
        label = 'tests' if TEST_DIRS & set(path.split(os.sep)) else 'library'
        documents.append((split, text, label) if labelled else (split, text))

    return dataprep.Source(description=f'Python {sys.version.split()[0]} standard library ({root})',
                           split_names={'train': '.py files but every 20th (library, then tests, by path)',
                                        'val': 'every 20th .py file (library, then tests, by path)'},
                           documents=documents, total=len(documents),
                           default_label=None if labelled else 'python_stdlib')  # unlabelled: one source


TOKENIZERS = os.path.join(os.path.dirname(HERE), 'tokenizers')  # data/tokenizers/build.py writes them


def stdlib_recipe(kind, out_dir):
    """The Recipe of data/stdlib_llama (kind 'llama') or data/stdlib_gpt2 (kind 'gpt2'): the documents
    in two sources, 'library' and 'tests', tokenized by the real Llama-2 tokenizer (32,000 ids, with BOS)
    or GPT-2's (50,257 ids), from data/tokenizers/ (python data/tokenizers/build.py); --tokenizer names
    another copy."""
    llama = kind == 'llama'
    return dataprep.Recipe(
        title=f"Python standard library sources (library and tests), {'Llama-2' if llama else 'GPT-2'} tokenizer",
        tokenizer={'kind': 'hf' if llama else 'tiktoken', 'name': os.path.join(TOKENIZERS, 'llama2' if llama else 'gpt2')},
        bos=llama, default_source=lambda args: stdlib_source(args, labelled=True), out_dir=out_dir)


RECIPE = dataprep.Recipe(
    title='Python standard library sources, UTF-8 bytes',
    tokenizer={'kind': 'bytes', 'name': 'utf-8'},
    bos=False,
    default_source=stdlib_source,
    out_dir=HERE)

if __name__ == '__main__':
    dataprep.main(RECIPE)
