#!/usr/bin/env bash
# The reference comparison, version 2 (README.md beside this file), as far as it has run: the real
# tokenizers, the English mix for each, the learning-rate sweep of both architectures (16 runs, 8 side
# by side on one GPU), and its summary. From the repo root:
#
#     bash reference/english_mix/run.sh           # PARALLEL=4 for a smaller GPU
#
# A second invocation skips finished runs and resumes stopped ones. The runs go to out-english-lr/;
# the summary to out-english-lr/summary/ (the shipped one: reference/english_mix/lr_sweep/summary/).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -f data/tokenizers/gpt2/r50k_base.tiktoken ] && [ -f data/tokenizers/llama2/tokenizer.json ] \
  || python data/tokenizers/build.py
[ -f data/english_mix_gpt2/meta.pkl ] || python data/english_mix_gpt2/prepare.py
[ -f data/english_mix_llama/meta.pkl ] || python data/english_mix_llama/prepare.py
python sweep.py config/sweeps/english_lr.py --parallel=${PARALLEL:-8}
python sweep.py config/sweeps/english_lr.py --summarize=True
