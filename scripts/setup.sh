#!/usr/bin/env bash
# Create .venv and install genzoo with its test dependencies. Safe to run again.
#
# PyTorch is installed first, pinned (GENZOO_TORCH, default torch==2.13.0), so that pip never
# resolves a different build: on a CPU machine a bare "torch" would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${GENZOO_TORCH:-torch==2.13.0}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
# pip's output without the local index's "is ignored" notices; a failed install stops the script.
pip_install() {
    local output status=0
    output=$(.venv/bin/python -m pip install --quiet --disable-pip-version-check "$@" 2>&1) || status=$?
    printf '%s\n' "$output" | grep -v -e "is ignored: it is neither a file nor a directory" -e '^$' >&2 || true
    if [ "$status" -ne 0 ]; then
        echo "setup: pip install $* failed (exit $status)" >&2
        exit "$status"
    fi
}
pip_install "$TORCH_SPEC"
pip_install -e ".[test]"
.venv/bin/python -c "import genzoo, torch; print(f'genzoo {genzoo.__version__} with torch {torch.__version__} is ready in .venv')"
