#!/usr/bin/env bash
# Run ON a GPU machine lent by the device tool, from the repo root, after scripts/device/prepare.sh
# here:  run(command="bash scripts/device/check.sh", carry=[".device-carry"], timeout_s=600)
# Issue 8's GPU check in one call: `tagpr-train all --config cuda-smoke` (the main job on CUDA in
# bf16; stage 2 must no longer collapse to 0) and `tagpr-train all --config tiny-learn` on CUDA, side
# by side on the one GPU (both are tiny; the machine has 16 cores). Each run's log, its comparison
# table and its timings come back under $OUT (8 files at most); every run is bounded by
# TAGPR_CHECK_LIMIT seconds (default 510) so the call ends, with its logs, inside the tool's 600 s.
# A rehearsal on CPU (tests/test_device_check.py runs one, shrunk, in the suite):
#   TAGPR_CHECK_DEVICE=cpu TAGPR_CHECK_SET="--set eval.limit=8 ..." bash scripts/device/check.sh
# TAGPR_CARRY_DIR (default .device-carry) is what prepare.sh wrote; TAGPR_CHECK_WORK (default
# /tmp/tagpr-check) receives the installed wheels, the fp32 encoder and the run directories.
set -uo pipefail
cd "$(dirname "$0")/../.."
D=${TAGPR_CARRY_DIR:-.device-carry}
OUT=${OUT:-/tmp/tagpr-check-out}
LIMIT=${TAGPR_CHECK_LIMIT:-510}
DEVICE=${TAGPR_CHECK_DEVICE:-cuda}
WORK=${TAGPR_CHECK_WORK:-/tmp/tagpr-check}
RUNS=$WORK/runs SITE=$WORK/site ENCODER=$WORK/minilm
[ -d "$D/whl" ] && [ -d "$D/minilm-fp16" ] || { echo "no $D: run scripts/device/prepare.sh here and carry $D" >&2; exit 2; }
rm -rf "$SITE" "$RUNS" && mkdir -p "$OUT" "$RUNS"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" "$D"/whl/*.whl || exit 3
export PYTHONPATH="$SITE:$PWD" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 \
  TOKENIZERS_PARALLELISM=false MPLBACKEND=Agg PYTHONUNBUFFERED=1
python3 scripts/device/encoder_fp16.py unpack "$D/minilm-fp16" "$ENCODER" || exit 4
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
  python3 - <<'PY'
import importlib.metadata as md, platform, torch
print("python", platform.python_version(), "| cuda available:", torch.cuda.is_available(),
      "|", torch.cuda.get_device_name() if torch.cuda.is_available() else "-",
      "| bf16:", torch.cuda.is_available() and torch.cuda.is_bf16_supported())
print(" ".join(f"{p} {md.version(p)}" for p in ("torch", "transformers", "trl", "datasets", "accelerate",
                                               "sentence-transformers")))
import trl
print("trl from", trl.__file__)
PY
} 2>&1 | tee "$OUT/env.txt"
[ "$DEVICE" = cpu ] || python3 -c "import torch, sys; sys.exit(not torch.cuda.is_available())" \
  || { echo "CUDA is not available here" | tee -a "$OUT/env.txt"; exit 5; }

ENC=(--set "data.tagger.encoder=$ENCODER" --set "prmu.model.encoder=$ENCODER")
# shellcheck disable=SC2206  # TAGPR_CHECK_SET holds further --set KEY=VALUE words (a CPU rehearsal shrinks the runs)
EXTRA=(${TAGPR_CHECK_SET:-})
one() {  # name config [more args]: one whole run, bounded, its log and results under $OUT
  local name=$1 config=$2; shift 2
  local start=$SECONDS
  timeout -k 10 "$LIMIT" python3 -m tagpr_trainers.cli all --config "$config" --output "$RUNS/$name" \
    --device "$DEVICE" "${ENC[@]}" "${EXTRA[@]}" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "$name: rc=$rc after $((SECONDS - start)) s" | tee -a "$OUT/summary.txt"
  [ -f "$RUNS/$name/eval/comparison.md" ] && cp "$RUNS/$name/eval/comparison.md" "$OUT/$name-comparison.md"
  [ -f "$RUNS/$name/timings.json" ] && cp "$RUNS/$name/timings.json" "$OUT/$name-timings.json"
  return $rc
}
one cuda-smoke cuda-smoke & a=$!
one tiny-learn tiny-learn & b=$!
wait $a; ra=$?
wait $b; rb=$?
for name in cuda-smoke tiny-learn; do
  echo "== $name"; [ -f "$OUT/$name-comparison.md" ] && cat "$OUT/$name-comparison.md" || tail -n 30 "$OUT/$name.log"
done
exit $(( ra != 0 || rb != 0 ))
