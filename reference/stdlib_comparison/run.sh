#!/usr/bin/env bash
# The reference comparison, end to end, on one CUDA GPU: LLaMA and GPT-2 at one small shape
# (config/compare_llama.py, config/compare_gpt2.py), each with its own tokenizer on the same
# documents (the Python standard library's sources), 3 seeds each, the same bytes of text (4 passes),
# and each architecture once with the other's tokenizer (which separates architecture from tokenizer),
# then bits per byte of every validation document (eval_bpb.py), a downstream task (eval_downstream.py
# on local task files), the figures (plot_runs.py) and the table (summarize.py). From the repo root:
#
#     bash reference/stdlib_comparison/run.sh            # SEEDS="1 2 3 4" for more seeds
#
# The runs in runs/ were made with stand-in tokenizers, which data/stdlib_* trained at commit a4b6342 and
# earlier; they now tokenize with the real ones (data/tokenizers/), with max_iters 4 passes at those counts.
# So this script now runs version 1's protocol on the real tokenizers; to rerun the shipped numbers,
# check out a4b6342 first.
#
# Writes out-compare-{llama,gpt2}-s{seed}/, out-swap-*-s{seed}/ and, in this folder, results.json, the figures and the run
# logs and evaluation results of each run (runs/). The downstream tasks need lm_eval (pip install
# "lm_eval[hf]"); without it eval_bpb.py gives the bits per byte alone and the table has no task columns.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=reference/stdlib_comparison
seeds=${SEEDS:-1 2 3}
swap_seeds=${SWAP_SEEDS:-1}  # each architecture with the other's tokenizer: SWAP_SEEDS="" skips it

[ -f data/stdlib_llama/meta.pkl ] || python data/stdlib_llama/prepare.py
[ -f data/stdlib_gpt2/meta.pkl ] || python data/stdlib_gpt2/prepare.py
python $here/make_tasks.py --out_dir $here/tasks

evaluate() {  # bits per byte of every validation file (as eval_bpb.py) and, with lm_eval, the task
  if python -c 'import lm_eval' 2>/dev/null; then
    python eval_downstream.py --out_dir=$1 --tasks=stdlib_next_line --include_path=$here/tasks
  else
    python eval_bpb.py --out_dir=$1
  fi
}

runs=()
for seed in $seeds; do
  for arch in llama gpt2; do
    out=out-compare-$arch-s$seed
    python train.py config/compare_$arch.py --seed=$seed --out_dir=$out --overwrite=True
    evaluate $out
    runs+=("$out")
  done
done
# the same tokenizer for both architectures: each config on the other's dataset, vocabulary and passes
for seed in $swap_seeds; do
  out=out-swap-llama-gpt2tok-s$seed
  python train.py config/compare_llama.py --dataset=stdlib_gpt2 --vocab_size=50304 --max_iters=1695 \
    --seed=$seed --out_dir=$out --overwrite=True
  evaluate $out
  runs+=("$out")
  out=out-swap-gpt2-llamatok-s$seed
  python train.py config/compare_gpt2.py --dataset=stdlib_llama --vocab_size=32000 --max_iters=1142 \
    --seed=$seed --out_dir=$out --overwrite=True
  evaluate $out
  runs+=("$out")
done

python plot_runs.py "${runs[@]}" --out $here/figures
for out in "${runs[@]}"; do  # what the table is made from, kept small: this run's log and results, no checkpoints
  rm -rf $here/runs/$out && mkdir -p $here/runs/$out
  cp "$(ls -t "$out"/run_*.json | head -n 1)" $here/runs/$out/
  cp "$out"/downstream_iter*.json "$out"/bpb_val_iter*.json $here/runs/$out/ 2>/dev/null || true
done
python $here/summarize.py "${runs[@]/#/$here/runs/}" --out $here/results.json
