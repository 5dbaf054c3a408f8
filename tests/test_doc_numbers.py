"""
Numbers the docs quote about the model, checked against the code that makes them: every
"P parameters (M in matmuls)" of docs/TRAINING_GUIDE.md is a 1.36B config's num_params() and
num_matmul_params() (the N of 6N), so the two conventions cannot drift apart again.
"""
import os
import re

import torch

import train
from helpers import REPO
from model import Transformer


def built(config_file):
    c = train.parse_config([config_file])
    with torch.device('meta'):
        return Transformer(train.model_config(c, None, c.vocab_size))


def test_parameters_in_matmuls_quoted_in_the_guide():
    text = open(os.path.join(REPO, 'docs', 'TRAINING_GUIDE.md')).read().replace('\n', ' ')
    quoted = re.findall(r'([\d,]{9,}) parameters? \(([\d,]{9,}) in matmuls', text)
    quoted += re.findall(r'1\.36B\s+([\d,]{9,}) \(([\d,]{9,}) in matmuls', text)
    counts = {(m.num_params(), m.num_matmul_params()) for m in map(built, ('config/full_llama_1.36b.py',
                                                                            'config/full_gpt2_1.36b.py'))}
    numbers = {(int(p.replace(',', '')), int(q.replace(',', ''))) for p, q in quoted}
    assert numbers and numbers <= counts, (numbers, counts)
    assert len(numbers) == 2  # both models are quoted
