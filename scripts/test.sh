#!/usr/bin/env bash
# Set up, then run the whole test suite (slow MNIST and browser tests included; under 3 minutes on
# 2 cores), one pytest-xdist worker per core. Extra arguments go to pytest, e.g.
# `bash scripts/test.sh -m "not slow"`; GENZOO_TEST_WORKERS=0 runs it in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/data_root.sh
export GENZOO_TEST_DATA=${GENZOO_TEST_DATA:-${GENZOO_DATA:-}}
.venv/bin/python -m pytest -n "${GENZOO_TEST_WORKERS:-auto}" --dist worksteal "$@"
