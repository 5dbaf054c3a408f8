#!/usr/bin/env bash
# The GPU measurements of README's performance table in one go: both 1.36B configs, block_size 2048,
# bf16, an optimizer step every 16 micro-steps, compiled. Each line of BENCH_RUNS is one bench.py run
# ("config overrides..."); results are appended as JSON lines to $BENCH_OUT (default the git-ignored
# bench_results.local.jsonl; BENCH_OUT=perf/bench_results.jsonl records them in the repo).
#   bash perf/bench_suite.sh                          # the default runs below
#   BENCH_RUNS=$'config/full_llama_1.36b.py --batch_size=12' bash perf/bench_suite.sh
set -uo pipefail
cd "$(dirname "$0")/.."  # the repo root: bench.py and the configs
export PYTHONUNBUFFERED=1
BENCH_OUT=${BENCH_OUT:-bench_results.local.jsonl}
BENCH_RUNS=${BENCH_RUNS:-$'config/full_llama_1.36b.py --batch_size=8\nconfig/full_gpt2_1.36b.py --batch_size=8'}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader || true
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
while IFS= read -r run; do
  [ -z "$run" ] && continue
  echo "== python bench.py $run"
  python3 bench.py $run --bench_out="$BENCH_OUT" 2>&1 | grep -v -i warn | tail -n 40
done <<< "$BENCH_RUNS"
