"""
SlimPajama-6B tokenized with GPT-2's BPE (tiktoken 'gpt2', 50,257 ids): train.bin, val.bin, meta.pkl
here. Documents end with <|endoftext|> (50256); GPT-2 has no BOS. See README.md.

    python data/slimpajama_6b_gpt2/prepare.py     # needs the hub and tiktoken's download
    python data/tokenizers/build.py               # offline: the real tokenizer, built once
    python data/slimpajama_6b_gpt2/prepare.py --input shards/ --tokenizer=data/tokenizers/gpt2
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))  # the repo root, for dataprep
import dataprep

RECIPE = dataprep.Recipe(
    title='SlimPajama-6B, GPT-2 tokenizer',
    tokenizer={'kind': 'tiktoken', 'name': 'gpt2'},
    bos=False,
    default_source=dataprep.hf_source('DKYoon/SlimPajama-6B', {'train': 'train', 'val': 'validation'}),
    out_dir=HERE,
    source_field='meta.redpajama_set_name')  # RedPajamaCommonCrawl, RedPajamaC4, RedPajamaGithub, ...

if __name__ == '__main__':
    dataprep.main(RECIPE)
