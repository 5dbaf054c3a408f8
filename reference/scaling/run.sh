#!/usr/bin/env bash
# The scaling ladder and its check on a held-out size (README.md beside this file). From the repo root:
#
#     bash reference/scaling/run.sh            # every step not done yet, in order
#     bash reference/scaling/run.sh ladder     # one step: ladder | predict | predict_onepass | heldout | check
#
# 1. ladder:  config/sweeps/scaling.py, 4 sizes x 3 token budgets x 2 architectures (+ 8 rate checks)
# 2. predict: scaling_fit.py on the 24 ladder runs (not the rate checks), predicting the held-out size of
#             each architecture (and the 1.36B models at 2.5e10 bytes); written to prediction.json
#             beside this file, never over one that is there: the prediction is recorded before step 3
# 2b. predict_onepass: a second prediction, added after step 2's fit showed residuals of up to 0.17 bits
#             per byte on the quarter- and half-pass runs and before any held-out run: the one-pass runs
#             alone (4 sizes at the held-out's D), L(N) = E + A / N^alpha; prediction_onepass.json
# 3. heldout: config/sweeps/scaling_heldout.py, 7 x 448 for each architecture
# 4. check:   check.py: the held-out runs against the prediction, the table and the figure
#
# The queries, fixed before any run was made: each architecture's held-out N (non-embedding parameters,
# model.py's count: 16,865,856 for GPT-2 and 16,765,504 for LLaMA at 7 x 448) at the bytes of text of one
# pass (1007 x 32,768 tokens x 2.80519 bytes a token, 884 x 32,768 x 3.19388: the training split's bytes
# per token, env.train_bytes_per_token of the runs); and the two 1.36B models' N (LLaMA 1,146,703,104,
# GPT-2 1,277,648,768) at 2.5e10 bytes (6.5536e9 tokens at 3.8 bytes a token: the 1.36B recipe's tokens).
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=reference/scaling
RUNS=${RUNS:-out-scaling}
PREDICTION=${PREDICTION:-$HERE/prediction.json}  # where step 2 records it
step=${1:-all}

ladder_runs() {  # the fitted runs: every size and budget, not the rate checks (-lrx)
  ls -d "$RUNS"/{gpt2,llama}-*x*-p{0.25,0.5,1}-s1
}

if [ "$step" = ladder ] || [ "$step" = all ]; then
  [ -f data/english_mix_gpt2/meta.pkl ] || python data/english_mix_gpt2/prepare.py
  [ -f data/english_mix_llama/meta.pkl ] || python data/english_mix_llama/prepare.py
  python sweep.py config/sweeps/scaling.py --parallel=${PARALLEL:-8}
fi
if [ "$step" = predict ] || { [ "$step" = all ] && [ ! -f "$PREDICTION" ]; }; then
  if [ -f "$PREDICTION" ]; then
    echo "$PREDICTION exists: a recorded prediction is not made again (move it away to refit)" >&2
    exit 1
  fi
  { echo "prediction made $(date -u +%FT%TZ), before any held-out run"
    python flops_parameter_counting/scaling_fit.py $(ladder_runs) \
      --predict N=16865856,D=92563927 --predict N=16765504,D=92516866 \
      --predict N=1277648768,D=2.5e10 --predict N=1146703104,D=2.5e10 \
      --json "$PREDICTION.tmp"; } | tee "${PREDICTION%.json}.txt"
  mv "$PREDICTION.tmp" "$PREDICTION"
fi
ONEPASS=${PREDICTION%.json}_onepass.json
if [ "$step" = predict_onepass ] || { [ "$step" = all ] && [ ! -f "$ONEPASS" ]; }; then
  if [ -f "$ONEPASS" ]; then
    echo "$ONEPASS exists: a recorded prediction is not made again (move it away to refit)" >&2
    exit 1
  fi
  { echo "prediction made $(date -u +%FT%TZ), before any held-out run"
    python flops_parameter_counting/scaling_fit.py $(ls -d "$RUNS"/{gpt2,llama}-*x*-p1-s1 | grep -v 7x448) \
      --predict N=16865856,D=92563927 --predict N=16765504,D=92516866 \
      --json "$ONEPASS.tmp"; } | tee "${ONEPASS%.json}.txt"
  mv "$ONEPASS.tmp" "$ONEPASS"
fi
if [ "$step" = heldout ] || [ "$step" = all ]; then
  [ -f "$PREDICTION" ] || { echo "no $PREDICTION: predict before the held-out runs" >&2; exit 1; }
  python sweep.py config/sweeps/scaling_heldout.py --parallel=2
fi
if [ "$step" = check ] || [ "$step" = all ]; then
  python $HERE/check.py --runs "$RUNS" --prediction "$PREDICTION"
fi
