#!/usr/bin/env bash
# The reference comparison, version 2 (README.md beside this file): the real tokenizers, the English
# mix for each, step 1 (the learning-rate sweep of both architectures, 16 runs, 8 side by side on one
# GPU), step 2 (both architectures on both tokenizers, 3 seeds, 12 runs), step 3 (the component ladder,
# 5 seeds a rung, 24 more runs), their summaries, and step 4 (bench.py at the two 1.36B configs, each
# with its own vocabulary and the other's). From the repo root:
#
#     bash reference/english_mix/run.sh           # PARALLEL=4 for a smaller GPU
#
# A second invocation skips finished runs and resumes stopped ones. The runs go to out-english-lr/ and
# out-english-compare/, the summaries into them (the shipped ones: lr_sweep/summary/, compare/summary*/).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -f data/tokenizers/gpt2/r50k_base.tiktoken ] && [ -f data/tokenizers/llama2/tokenizer.json ] \
  || python data/tokenizers/build.py
[ -f data/english_mix_gpt2/meta.pkl ] || python data/english_mix_gpt2/prepare.py
[ -f data/english_mix_llama/meta.pkl ] || python data/english_mix_llama/prepare.py
python sweep.py config/sweeps/english_lr.py --parallel=${PARALLEL:-8}
python sweep.py config/sweeps/english_lr.py --summarize=True
python sweep.py config/sweeps/english_compare.py --parallel=${PARALLEL:-6}
python sweep.py config/sweeps/english_compare.py --summarize=True --metric=val_bpb --summary_dir=summary-val_bpb
python sweep.py config/sweeps/english_compare.py --summarize=True
python sweep.py config/sweeps/english_ladder.py --parallel=${PARALLEL:-6}
python sweep.py config/sweeps/english_ladder.py --summarize=True --metric=val_bpb --summary_dir=summary-ladder-val_bpb
python sweep.py config/sweeps/english_ladder.py --summarize=True
# step 4: the 1.36B configs' speed in tokens and bytes of text a second, on an otherwise idle GPU
python bench.py config/full_llama_1.36b.py --bench_text=english_mix_llama --bench_matmul_seconds=5
python bench.py config/full_gpt2_1.36b.py --bench_text=english_mix_gpt2 --bench_matmul_seconds=5
# and each at the other's vocabulary (the architecture's speed alone)
python bench.py config/full_llama_1.36b.py --vocab_size=50304 --bench_text=english_mix_gpt2 --bench_matmul_seconds=5
python bench.py config/full_gpt2_1.36b.py --vocab_size=32000 --bench_text=english_mix_llama --bench_matmul_seconds=5
