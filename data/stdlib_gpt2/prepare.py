"""
The documents of data/python_stdlib (this Python's standard library sources; every 20th file is
validation), in two sources, 'library' and 'tests', tokenized with GPT-2's tokenizer (50,257 ids, tiktoken byte-level BPE; documents end with
<|endoftext|>), from data/tokenizers/ (built offline by
data/tokenizers/build.py). See README.md.

    python data/stdlib_gpt2/prepare.py
"""
import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))  # the repo root, for dataprep
import dataprep  # noqa: E402

_spec = importlib.util.spec_from_file_location('python_stdlib_prepare',
                                               os.path.join(os.path.dirname(HERE), 'python_stdlib', 'prepare.py'))
python_stdlib = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(python_stdlib)

RECIPE = python_stdlib.stdlib_recipe('gpt2', HERE)

if __name__ == '__main__':
    dataprep.main(RECIPE)
