"""
SlimPajama-6B tokenized with LLaMA-2's tokenizer (32,000 ids): train.bin, val.bin, meta.pkl here.
Documents begin with BOS <s> and end with EOS </s>. See README.md.

    python data/slimpajama_6b_llama/prepare.py    # needs the hub and a Llama-2 login
    python data/tokenizers/build.py               # offline: the real tokenizer, built once
    python data/slimpajama_6b_llama/prepare.py --input shards/ --tokenizer=data/tokenizers/llama2
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))  # the repo root, for dataprep
import dataprep

RECIPE = dataprep.Recipe(
    title='SlimPajama-6B, LLaMA-2 tokenizer',
    tokenizer={'kind': 'hf', 'name': 'meta-llama/Llama-2-7b-hf'},
    bos=True,
    default_source=dataprep.hf_source('DKYoon/SlimPajama-6B', {'train': 'train', 'val': 'validation'}),
    out_dir=HERE,
    source_field='meta.redpajama_set_name')  # RedPajamaCommonCrawl, RedPajamaC4, RedPajamaGithub, ...

if __name__ == '__main__':
    dataprep.main(RECIPE)
