"""
The English mix (data/english_mix: Debian's manuals of Linux, Python, Perl, PostgreSQL and git, the
1913 Webster's dictionary, and Python's standard library code) tokenized with LLaMA-2's tokenizer
(32,000 ids): train.bin, val.bin, meta.pkl here. Documents begin with BOS <s> and end with EOS </s>.
The split is the archive's, by document, the same as data/english_mix_gpt2's. See README.md.

    python data/english_mix_llama/prepare.py                         # collects the archive first if it is missing
    python data/english_mix_llama/prepare.py --input english_mix.jsonl.zst --tokenizer ~/llama-2-tokenizer
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))  # the repo root, for dataprep
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'english_mix'))  # for collect
import collect  # noqa: E402
import dataprep  # noqa: E402

RECIPE = dataprep.Recipe(
    title='English mix (Debian manuals, the 1913 Webster, Python code), LLaMA-2 tokenizer',
    tokenizer={'kind': 'hf', 'name': os.path.join(os.path.dirname(HERE), 'tokenizers', 'llama2')},
    bos=True,
    default_source=collect.default_source,
    out_dir=HERE,
    input_source=collect.input_source,
    input_help=collect.INPUT_HELP)

if __name__ == '__main__':
    dataprep.main(RECIPE)
