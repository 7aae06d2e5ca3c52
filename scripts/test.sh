#!/usr/bin/env bash
# Set up, then run the whole test suite (slow MNIST tests included; about 5 minutes on 2 cores).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/data_root.sh
export GENZOO_TEST_DATA=${GENZOO_TEST_DATA:-${GENZOO_DATA:-}}
.venv/bin/python -m pytest "$@"
