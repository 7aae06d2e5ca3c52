#!/usr/bin/env bash
# Set up, then train a convolutional VAE (2-D latent) on MNIST and draw what it learned.
# Writes runs/demo-vae/: per-epoch sample grids, and plots/{samples,latent,manifold,...}.png.
# Takes about 3 minutes on 2 CPU cores (EPOCHS=5); set EPOCHS=10 for the lectures' quality.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/data_root.sh
RUN=${RUN:-runs/demo-vae}
rm -rf "$RUN"
.venv/bin/genzoo train vae --dataset mnist --epochs "${EPOCHS:-5}" --run-dir "$RUN"
.venv/bin/genzoo sample "$RUN" --num 100 --out "$RUN/plots/sample-grid.png"
.venv/bin/genzoo plot "$RUN" all
echo "done: open $RUN/plots/*.png"
