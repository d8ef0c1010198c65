#!/usr/bin/env bash
# Set up (idempotent) and run every check: ruff, mypy, doctests, unit and integration tests
# (--integration: a plain `pytest` skips the slow @pytest.mark.integration tests; CI runs this).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false MPLBACKEND=Agg
echo "== ruff"; ruff check .
echo "== mypy"; mypy
echo "== pytest"
python -m pytest -q -p no:cacheprovider --timeout=900 --integration \
  --doctest-modules tagpr_rewards tagpr_eval tagpr_trainers tests "$@"
