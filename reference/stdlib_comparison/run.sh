#!/usr/bin/env bash
# The reference comparison, end to end, on one CUDA GPU: LLaMA and GPT-2 at one small shape
# (config/compare_llama.py, config/compare_gpt2.py), each with its own tokenizer on the same
# documents (the Python standard library's sources), 2 seeds each, the same bytes of text (4 passes),
# then bits per byte of every validation document (eval_bpb.py), a downstream task (eval_downstream.py
# on local task files), the figures (plot_runs.py) and the table (summarize.py). From the repo root:
#
#     bash reference/stdlib_comparison/run.sh            # SEEDS="1 2 3" for more seeds
#
# Writes out-compare-{llama,gpt2}-s{seed}/ and, in this folder, results.json, the figures and the run
# logs and evaluation results of each run (runs/). The downstream tasks need lm_eval (pip install
# "lm_eval[hf]"); without it eval_bpb.py gives the bits per byte alone and the table has no task columns.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=reference/stdlib_comparison
seeds=${SEEDS:-1 2}

[ -f data/stdlib_llama/meta.pkl ] || python data/stdlib_llama/prepare.py
[ -f data/stdlib_gpt2/meta.pkl ] || python data/stdlib_gpt2/prepare.py
python $here/make_tasks.py --out_dir $here/tasks

runs=()
for seed in $seeds; do
  for arch in llama gpt2; do
    out=out-compare-$arch-s$seed
    python train.py config/compare_$arch.py --seed=$seed --out_dir=$out --overwrite=True
    if python -c 'import lm_eval' 2>/dev/null; then  # bits per byte (as eval_bpb.py) and the tasks
      python eval_downstream.py --out_dir=$out --tasks=stdlib_next_line --include_path=$here/tasks
    else
      python eval_bpb.py --out_dir=$out
    fi
    runs+=("$out")
  done
done

python plot_runs.py "${runs[@]}" --out $here/figures
for out in "${runs[@]}"; do  # what the table is made from, kept small: this run's log and results, no checkpoints
  rm -rf $here/runs/$out && mkdir -p $here/runs/$out
  cp "$(ls -t "$out"/run_*.json | head -n 1)" $here/runs/$out/
  cp "$out"/downstream_iter*.json "$out"/bpb_val_iter*.json $here/runs/$out/ 2>/dev/null || true
done
python $here/summarize.py "${runs[@]/#/$here/runs/}" --out $here/results.json
