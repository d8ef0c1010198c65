#!/usr/bin/env bash
# Set up (idempotent) and run the main job: the whole TagPR pipeline in miniature on the
# bundled synthetic LaMP-format data (data -> SFT -> PRMU -> RL stage 1 -> RL stage 2 -> eval),
# offline, on CPU. Output lands in runs/demo/ (re-running resumes finished stages).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false MPLBACKEND=Agg
mkdir -p runs/demo
echo "== rewards on the shipped sample completions"
tagpr-rewards score --sample --tasks LaMP-2 --preset stage2 --output runs/demo/sample_scores.jsonl
echo "== the pipeline: tagpr-train all --config tiny-cpu"
tagpr-train all --config tiny-cpu --output runs/demo "$@"
