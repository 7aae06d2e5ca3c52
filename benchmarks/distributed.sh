#!/usr/bin/env bash
# Training throughput with 1 and 2 processes (torch.distributed, gloo on CPU) on the same global
# batch: the conv VAE and the MLP GAN on MNIST, 150 steps each after the first epoch's start.
#   bash benchmarks/distributed.sh            (needs MNIST: GENZOO_DATA or ../shared/data)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/data_root.sh
G=.venv/bin/genzoo
OUT=${OUT:-runs/benchmark-distributed}
rm -rf "$OUT"
for model in vae gan; do
  for n in 1 2; do
    $G train $model --epochs 1 --set train.max_batches=150 --set train.eval_batches=1 --set train.overhead_budget=0 \
      --nproc $n --run-dir "$OUT/$model-$n" --no-progress > /dev/null 2>&1
    python3 - "$OUT/$model-$n/metrics.jsonl" "$model" "$n" <<'PY'
import json, sys
epoch = [json.loads(l) for l in open(sys.argv[1]) if '"kind": "epoch"' in l][-1]
print(f"| {sys.argv[2]} | {sys.argv[3]} | {epoch['images_per_second']:,.0f} |")
PY
  done
done
