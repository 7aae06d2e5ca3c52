#!/usr/bin/env bash
# Draw the README's pictures in docs/ from the shipped zoo (`genzoo zoo`); rows not in the zoo are
# skipped (their older pictures stay, labelled as such in the README). A minute or two on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/data_root.sh
G=.venv/bin/genzoo
ZOO=$($G zoo)  # listed once: `grep -q` on a pipe would stop reading early and fail the pipe
have() { grep -q "^zoo:$1 " <<< "$ZOO"; }
plot() {  # plot ROW KIND OUT [extra args]
    local row=$1 kind=$2 out=$3; shift 3
    if have "$row"; then $G plot "zoo:$row" "$kind" --out "docs/$out" "$@"; fi
}
plot vae-2d manifold vae-manifold.png --num 16
plot vae-2d latent vae-latent.png
plot vae-2d samples vae-samples.png --num 50
plot vae-2d interpolation vae-interpolation.png --num 5
plot vae-2d attributes vae-attributes.png
plot vae-2d losses vae-losses.png
plot vae-2d progress vae-progress.png
plot vae losses vae-likelihood-losses.png
plot cvae conditional cvae-conditional.png
plot cvae style-transfer cvae-style-transfer.png --num 6
plot dae denoising dae-denoising.png --num 2
plot ae-2d latent ae-2d-latent.png
plot ae-2d reconstructions ae-2d-reconstructions.png --num 2
plot gan samples gan-samples.png --num 50
plot gan progress gan-progress.png
plot cgan conditional cgan-conditional.png
plot dcgan samples dcgan-samples.png --num 50
plot dcgan-upsampling samples dcgan-upsampling-samples.png --num 50
plot dcgan-upsampling progress dcgan-upsampling-progress.png
plot context-encoder inpainting context-encoder-inpainting.png --num 1
plot lapgan pyramid lapgan-pyramid.png --num 6
plot rbm chain rbm-chain.png --num 3
plot rbm filters rbm-filters.png --num 50
plot rbm samples rbm-samples.png --num 50
plot dbn samples dbn-samples.png --num 50
plot dbm samples dbm-samples.png --num 50
plot dbm filters dbm-filters.png --num 50
plot draw-annealed canvas draw-canvas.png --num 4
plot draw-annealed samples draw-samples.png --num 50
