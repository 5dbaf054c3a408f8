"""
The reference comparison's gpt2 dataset: the documents of data/python_stdlib (this Python's standard
library sources; every 20th file is validation), in two sources, 'library' and 'tests', tokenized
with a GPT-2-style tokenizer of 50,257 ids (tiktoken byte-level BPE; documents end with <|endoftext|>) trained
here on the training documents the first time (the real one cannot be had offline). See README.md.

    python data/stdlib_gpt2/prepare.py
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))  # the repo root, for dataprep
sys.path.insert(0, os.path.dirname(HERE))  # data/, for stand_in_tokenizers
import dataprep  # noqa: E402
import stand_in_tokenizers  # noqa: E402

RECIPE = stand_in_tokenizers.stdlib_recipe('gpt2', HERE)

if __name__ == '__main__':
    dataprep.main(RECIPE)
