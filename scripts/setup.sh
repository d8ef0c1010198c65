#!/usr/bin/env bash
# Create .venv and install tagpr with everything the demo and the tests need (CPU only).
# torch is pinned: an unpinned torch pulls multi-GB CUDA wheels on CPU machines.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[dev]"
# OpenRLHF pins transformers and needs flash-attn (CUDA) as a dependency: its reward loader
# runs on CPU, so install it without dependencies (see docs/trainers.md).
python -m pip install -q --no-deps "openrlhf==0.11.2" pylatexenc
