#!/usr/bin/env bash
# Create .venv and install tagpr with everything the demo and the tests need (CPU only), at the
# versions CI tested (constraints.txt: a `pip freeze` of the tested venv, tagpr itself left out).
# torch is pinned: an unpinned torch pulls multi-GB CUDA wheels on CPU machines.
#   TAGPR_CONSTRAINTS=none bash scripts/setup.sh   # newest versions within pyproject's bounds
#   PYTHON=python3.11 bash scripts/setup.sh        # another interpreter for the venv
# Idempotent; needs only PyPI (or the pip index your pip.conf names).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
CONSTRAINTS=${TAGPR_CONSTRAINTS:-constraints.txt}
C=()
if [ "$CONSTRAINTS" != "none" ]; then
  C=(-c "$CONSTRAINTS")
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q "${C[@]}" "torch==2.13.0"
python -m pip install -q "${C[@]}" -e ".[dev]"
# OpenRLHF pins transformers and needs flash-attn (CUDA) as a dependency: its reward loader
# runs on CPU, so install it without dependencies (see docs/trainers.md).
python -m pip install -q "${C[@]}" --no-deps "openrlhf==0.11.2" pylatexenc
