#!/usr/bin/env bash
# Run HERE, in a set-up checkout (bash scripts/setup.sh), before a GPU check with the device tool.
# Writes .device-carry/ (git-ignored, ~50 MB): what the GPU machine's image lacks for tagpr-train,
#   whl/          wheels of the Python packages its image does not have (for its Python 3.12),
#                 at the versions constraints.txt pins (the image has torch, transformers,
#                 accelerate, sentence-transformers, pyarrow, pandas, ...; KINDS.md of the device tool)
#   minilm-fp16/  the offline MiniLM encoder with fp16 weights (the fp32 one is over the 64 MiB
#                 the tool carries); scripts/device/check.sh restores fp32 there
# Then, with the device tool:  run(command="bash scripts/device/check.sh", carry=[".device-carry"],
# timeout_s=600). docs/recipe.md, "On a GPU", says what it runs and what to read.
#   TAGPR_CARRY_PYTHON=3.11 bash scripts/device/prepare.sh   # wheels for another Python (a CPU rehearsal)
#   TAGPR_CARRY_DIR=/tmp/carry bash scripts/device/prepare.sh  # write it elsewhere
set -euo pipefail
cd "$(dirname "$0")/../.."
D=${TAGPR_CARRY_DIR:-.device-carry}
PKGS=(trl datasets dill multiprocess evaluate bm25s)
rm -rf "$D" && mkdir -p "$D/whl"
pins=()
for p in "${PKGS[@]}"; do
  pin=$(grep -i "^${p}==" constraints.txt) || { echo "constraints.txt pins no version of $p" >&2; exit 1; }
  pins+=("$pin")
done
python_=${PYTHON:-.venv/bin/python}
"$python_" -m pip download -q --no-deps --only-binary=:all: --python-version "${TAGPR_CARRY_PYTHON:-3.12}" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform any -d "$D/whl" "${pins[@]}"
"$python_" scripts/device/encoder_fp16.py pack "$D/minilm-fp16"
ls "$D/whl"
du -sh "$D"
