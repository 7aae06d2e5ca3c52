#!/usr/bin/env bash
# Reproduce the README's MNIST results and the pictures in docs/ (about 17 minutes on 2 CPU cores).
# Runs are kept in runs/docs/ and not retrained if present.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/data_root.sh
G=.venv/bin/genzoo
OUT=${OUT:-runs/docs}
train_once() {
    local name=$1; shift
    [ -f "$OUT/$name/model.safetensors" ] || $G train "$@" --dataset mnist --epochs 10 --run-dir "$OUT/$name" --no-progress
}
train_once vae vae
train_once cvae cvae
train_once dae dae
train_once ae-2d ae --preset dense-2d
$G plot "$OUT/vae" manifold --num 16 --out docs/vae-manifold.png
$G plot "$OUT/vae" latent --out docs/vae-latent.png
$G plot "$OUT/vae" samples --num 50 --out docs/vae-samples.png
$G plot "$OUT/vae" interpolation --num 5 --out docs/vae-interpolation.png
$G plot "$OUT/vae" losses --out docs/vae-losses.png
$G plot "$OUT/cvae" conditional --out docs/cvae-conditional.png
$G plot "$OUT/cvae" style-transfer --num 6 --out docs/cvae-style-transfer.png
$G plot "$OUT/dae" denoising --num 2 --out docs/dae-denoising.png
$G plot "$OUT/ae-2d" latent --out docs/ae-2d-latent.png
$G plot "$OUT/ae-2d" reconstructions --num 2 --out docs/ae-2d-reconstructions.png
cp "$OUT/vae/samples/epoch_0001.png" docs/vae-epoch-01.png
cp "$OUT/vae/samples/epoch_0010.png" docs/vae-epoch-10.png
.venv/bin/python benchmarks/report_runs.py "$OUT/vae" "$OUT/cvae" "$OUT/dae" "$OUT/ae-2d"
