#!/usr/bin/env bash
# Draw the README's pictures of the GAN, Boltzmann-machine and DRAW runs of `genzoo benchmark mnist`
# (run that first; it trains into runs/benchmark-mnist/). Skips rows that are not there.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/data_root.sh
G=.venv/bin/genzoo
RUNS=${RUNS:-runs/benchmark-mnist}
plot() {  # plot ROW KIND OUT [extra args]
    local row=$1 kind=$2 out=$3; shift 3
    if [ -f "$RUNS/$row/model.safetensors" ]; then $G plot "$RUNS/$row" "$kind" --out "docs/$out" "$@"; fi
}
plot gan samples gan-samples.png --num 50
plot gan progress gan-progress.png
plot cgan conditional cgan-conditional.png
plot dcgan samples dcgan-samples.png --num 50
plot dcgan-upsampling samples dcgan-upsampling-samples.png --num 50
plot dcgan-upsampling progress dcgan-upsampling-progress.png
plot context-encoder inpainting context-encoder-inpainting.png --num 1
plot lapgan pyramid lapgan-pyramid.png --num 6
plot rbm-cd25 chain rbm-chain.png --num 3
plot rbm-cd25 filters rbm-filters.png --num 50
plot dbn samples dbn-samples.png --num 50
plot dbm samples dbm-samples.png --num 50
plot draw canvas draw-canvas.png --num 4
plot draw samples draw-samples.png --num 50
