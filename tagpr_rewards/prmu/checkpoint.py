"""PRMU checkpoint I/O: ``model.safetensors`` + ``config.json`` in one directory.

Both files are written atomically through :mod:`tagpr_rewards.files` (fsync'd temporary file,
then ``os.replace``), the weights first and ``config.json`` last, so a directory with a
``config.json`` is complete: a killed save leaves the previous checkpoint readable.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from tagpr_rewards.files import atomic_path, atomic_write_text
from tagpr_rewards.prmu.config import PRMUConfig, config_diff
from tagpr_rewards.prmu.encoder import TextEncoder
from tagpr_rewards.prmu.head import PRMUHead

__all__ = ["CONFIG_FILE", "FORMAT_VERSION", "WEIGHTS_FILE", "CheckpointError", "load_checkpoint", "read_meta",
           "save_checkpoint"]

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


class CheckpointError(ValueError):
    """A PRMU checkpoint is missing, corrupt, or was made with other settings."""


def save_checkpoint(model: Any, directory: str | os.PathLike[str],
                    extra: dict[str, Any] | None = None) -> Path:
    """Write a :class:`~tagpr_rewards.prmu.model.PRMUModel`'s ``model.safetensors`` + ``config.json``
    atomically (config last = commit)."""
    from safetensors.torch import save_file

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    tensors = {f"head.{k}": v.detach().to("cpu", torch.float32).contiguous()
               for k, v in model.head.state_dict().items()}
    if not model.config.freeze_encoder:
        tensors.update({f"encoder.{k}": v.detach().to("cpu").contiguous()
                        for k, v in model.encoder.model.state_dict().items()})
    with atomic_path(d / WEIGHTS_FILE) as tmp:  # fsync'd, moved into place
        save_file(tensors, str(tmp))
    meta = {
        "format": "tagpr-prmu",
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "encoder_dim": model.encoder.dim,
        "user_index": model.user_index,
        **(extra or {}),
    }
    atomic_write_text(d / CONFIG_FILE, json.dumps(meta, indent=2, sort_keys=True))
    return d


def read_meta(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The checkpoint's ``config.json`` (raises :class:`CheckpointError` with what to do)."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: not a PRMU checkpoint (no {CONFIG_FILE}); train one with "
                              "`tagpr-prmu train --output DIR` or pass the directory it wrote")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: line {e.lineno}: invalid JSON ({e.msg}); re-save the checkpoint") from e
    if meta.get("format") != "tagpr-prmu" or meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: format {meta.get('format')!r} v{meta.get('format_version')!r}, "
                              f"expected 'tagpr-prmu' v{FORMAT_VERSION}")
    return meta  # type: ignore[no-any-return]


def load_checkpoint(
    directory: str | os.PathLike[str],
    device: str = "cpu",
    expect: PRMUConfig | dict[str, Any] | None = None,
    encoder: TextEncoder | None = None,
) -> tuple[PRMUConfig, PRMUHead, dict[str, int], TextEncoder]:
    """``(config, head, user_index, encoder)`` of a checkpoint; with ``expect``, settings that
    differ are a :class:`CheckpointError` (``PRMUModel.load`` builds the model from them)."""
    from safetensors.torch import load_file

    meta = read_meta(directory)
    try:
        config = PRMUConfig.from_dict(meta["config"])
    except (ValueError, TypeError, KeyError) as e:
        raise CheckpointError(f"{Path(directory) / CONFIG_FILE}: bad config: {e}") from e
    if expect is not None:
        want = expect.to_dict() if isinstance(expect, PRMUConfig) else {**config.to_dict(), **expect}
        diff = config_diff(config.to_dict(), want)
        if diff:
            detail = ", ".join(f"{k}: checkpoint={a!r}, requested={b!r}" for k, (a, b) in diff.items())
            raise CheckpointError(f"{directory}: checkpoint was made with other settings ({detail}); "
                                  "use the checkpoint's settings or train a new model")
    wpath = Path(directory) / WEIGHTS_FILE
    if not wpath.is_file():
        raise CheckpointError(f"{wpath}: missing weights file; the checkpoint is incomplete")
    enc = encoder if encoder is not None else TextEncoder(config.encoder, device, config.max_chars)
    if enc.dim != meta.get("encoder_dim"):
        raise CheckpointError(f"{directory}: checkpoint expects encoder dim {meta.get('encoder_dim')}, "
                              f"encoder {config.encoder!r} gives {enc.dim}")
    tensors = load_file(str(wpath))
    user_index = {str(k): int(v) for k, v in meta.get("user_index", {}).items()}
    head = PRMUHead(enc.dim, config, n_users=len(user_index))
    head_sd = {k[5:]: v for k, v in tensors.items() if k.startswith("head.")}
    missing, unexpected = head.load_state_dict(head_sd, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{wpath}: weights do not match the config (missing {missing}, "
                              f"unexpected {unexpected}); the checkpoint is from another version")
    enc_sd = {k[8:]: v for k, v in tensors.items() if k.startswith("encoder.")}
    if enc_sd:
        enc.model.load_state_dict(enc_sd)
    return config, head, user_index, enc
