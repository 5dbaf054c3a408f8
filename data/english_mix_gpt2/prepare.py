"""
The English mix (data/english_mix: Debian's manuals of Linux, Python, Perl, PostgreSQL and git, the
1913 Webster's dictionary, and Python's standard library code) tokenized with GPT-2's BPE (50,257 ids):
train.bin, val.bin, meta.pkl here. Documents end with <|endoftext|> (50256); GPT-2 has no BOS. The
split is the archive's, by document, the same as data/english_mix_llama's. See README.md.

    python data/english_mix_gpt2/prepare.py                          # collects the archive first if it is missing
    python data/english_mix_gpt2/prepare.py --input english_mix.jsonl.zst --tokenizer ~/r50k_base.tiktoken
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))  # the repo root, for dataprep
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'english_mix'))  # for collect
import collect  # noqa: E402
import dataprep  # noqa: E402

RECIPE = dataprep.Recipe(
    title='English mix (Debian manuals, the 1913 Webster, Python code), GPT-2 tokenizer',
    tokenizer={'kind': 'tiktoken', 'name': os.path.join(os.path.dirname(HERE), 'tokenizers', 'gpt2')},
    bos=False,
    default_source=collect.default_source,
    out_dir=HERE,
    input_source=collect.input_source,
    input_help=collect.INPUT_HELP)

if __name__ == '__main__':
    dataprep.main(RECIPE)
