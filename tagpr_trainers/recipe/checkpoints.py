"""Atomic writes, stage markers and resume for ``tagpr-train``.

A stage is *done* when ``RUN_DIR/stages/<stage>.json`` exists; it is written last, atomically,
after the stage's outputs were published. Stage outputs that are directories (models) are
written to a temporary sibling and moved into place with one ``os.replace``, so a reader never
sees half a model. A stage killed midway leaves no marker: the next run redoes it, and the
training stages resume from their last *complete* TRL checkpoint (:func:`checkpoint_problem`:
valid ``trainer_state.json``, whole weights and optimizer files); a torn newer one is passed over
with a warning. A marker records the config inputs the stage was built from
(:meth:`tagpr_trainers.recipe.context.RunContext.check_inputs` refuses a finished stage whose
inputs changed; ``--force`` redoes it). RL resume is exact: transformers restores the optimizer,
scheduler and RNG states and skips the current epoch's batches, and
:func:`tagpr_trainers.recipe.stages.rl.restore_sampler` replays the finished epochs of TRL's
prompt sampler (tested bit-identical on CPU, mid-epoch and across an epoch boundary).

>>> import tempfile
>>> run = Path(tempfile.mkdtemp())
>>> is_done(run, "sft")
False
>>> mark_done(run, "sft", {"model": "sft/model"})["outputs"]
{'model': 'sft/model'}
>>> is_done(run, "sft"), read_marker(run, "sft")["stage"]
(True, 'sft')
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from tagpr_rewards.files import atomic_write_text as _atomic_write_text

logger = logging.getLogger("tagpr_trainers.recipe")

__all__ = [
    "atomic_write_json",
    "atomic_write_text",
    "checkpoint_problem",
    "is_done",
    "latest_checkpoint",
    "mark_done",
    "publish_dir",
    "read_marker",
    "staging_dir",
    "unmark",
]


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` via a temporary file in the same directory and ``os.replace``.

    >>> import tempfile
    >>> p = atomic_write_text(Path(tempfile.mkdtemp()) / "a" / "b.txt", "hi")
    >>> p.read_text()
    'hi'
    """
    return _atomic_write_text(path, text)


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """:func:`atomic_write_text` of ``json.dumps(obj, indent=2)``."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def _marker(run_dir: str | Path, stage: str) -> Path:
    return Path(run_dir) / "stages" / f"{stage}.json"


def is_done(run_dir: str | Path, stage: str) -> bool:
    """Whether ``stage`` finished in ``run_dir``."""
    return _marker(run_dir, stage).is_file()


def read_marker(run_dir: str | Path, stage: str) -> dict[str, Any]:
    """The marker of a finished stage (``{}`` when it has not finished)."""
    p = _marker(run_dir, stage)
    if not p.is_file():
        return {}
    return dict(json.loads(p.read_text(encoding="utf-8")))


def mark_done(run_dir: str | Path, stage: str, outputs: dict[str, Any] | None = None,
              inputs: dict[str, Any] | None = None, fingerprint: str | None = None) -> dict[str, Any]:
    """Record that ``stage`` finished (atomically); ``outputs`` are paths and figures to keep,
    ``inputs`` the config values it was built from (and their ``fingerprint``), ``machine`` what
    it ran on (:func:`tagpr_eval.results.machine_info`: a tiny model can land elsewhere on
    another CPU)."""
    from tagpr_eval.results import machine_info

    marker: dict[str, Any] = {"stage": stage, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                              "outputs": outputs or {}, "machine": machine_info()}
    if inputs is not None:
        marker["fingerprint"] = fingerprint
        marker["inputs"] = inputs
    atomic_write_json(_marker(run_dir, stage), marker)
    return marker


def unmark(run_dir: str | Path, stage: str) -> None:
    """Forget that ``stage`` finished (its marker removed; nothing when it had none)."""
    _marker(run_dir, stage).unlink(missing_ok=True)


def staging_dir(final: str | Path) -> Path:
    """A fresh temporary sibling of ``final`` to build a directory in before :func:`publish_dir`."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp-"))


def publish_dir(tmp: str | Path, final: str | Path) -> Path:
    """Move the finished directory ``tmp`` to ``final`` (replacing an old one) with ``os.replace``.

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> t = staging_dir(root / "model"); _ = (t / "w.bin").write_text("1")
    >>> publish_dir(t, root / "model").joinpath("w.bin").read_text()
    '1'
    """
    tmp, final = Path(tmp), Path(final)
    old: Path | None = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final


_WEIGHT_FILES = ("model.safetensors", "adapter_model.safetensors", "pytorch_model.bin", "adapter_model.bin")


def _safetensors_ok(path: Path) -> str | None:
    """Why a ``.safetensors`` file is not complete (``None`` when it is): header and data length."""
    import struct

    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return f"{path.name} is truncated ({size} bytes)"
            (n,) = struct.unpack("<Q", head)
            if n > size - 8:
                return f"{path.name} is truncated (header of {n} bytes, file of {size})"
            meta = json.loads(f.read(n))
    except (OSError, ValueError) as e:
        return f"{path.name} is unreadable ({type(e).__name__}: {e})"
    end = max((int(v["data_offsets"][1]) for k, v in meta.items() if k != "__metadata__"), default=0)
    if 8 + n + end > size:
        return f"{path.name} is truncated ({size} of {8 + n + end} bytes)"
    return None


def checkpoint_problem(path: str | Path) -> str | None:
    """Why ``path`` is not a complete TRL/transformers checkpoint, or ``None`` when it is.

    Complete means: ``trainer_state.json`` is valid JSON with a ``global_step``, the model
    weights are there and whole (safetensors header and data length; a ``.bin``/``.pt`` must be
    a whole zip archive, as ``torch.save`` writes it), and so are ``optimizer.pt`` and
    ``scheduler.pt`` when present.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp()) / "checkpoint-4"; d.mkdir()
    >>> _ = (d / "trainer_state.json").write_text('{"global_step": 4, "log_hi')
    >>> checkpoint_problem(d)
    'trainer_state.json is not valid JSON (Unterminated string starting at: line 1 column 20 (char 19))'
    """
    import zipfile

    p = Path(path)
    state = p / "trainer_state.json"
    try:
        data = json.loads(state.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "no trainer_state.json"
    except (OSError, ValueError) as e:
        return f"trainer_state.json is not valid JSON ({e})"
    if not isinstance(data, dict) or not isinstance(data.get("global_step"), int):
        return "trainer_state.json has no global_step"
    weights = [p / w for w in _WEIGHT_FILES if (p / w).is_file()]
    index = sorted(p.glob("*.safetensors.index.json"))
    if index:
        try:
            shards = set(json.loads(index[0].read_text(encoding="utf-8"))["weight_map"].values())
        except (OSError, ValueError, KeyError) as e:
            return f"{index[0].name} is unreadable ({e})"
        for shard in sorted(shards):
            if not (p / shard).is_file():
                return f"weight shard {shard} is missing"
            weights.append(p / shard)
    if not weights:
        return "no model weights (model.safetensors)"
    for w in weights:
        why = _safetensors_ok(w) if w.suffix == ".safetensors" else (
            None if zipfile.is_zipfile(w) else f"{w.name} is not a whole torch archive")
        if why:
            return why
    for extra in ("optimizer.pt", "scheduler.pt"):
        f = p / extra
        if f.exists() and not zipfile.is_zipfile(f):
            return f"{extra} is not a whole torch archive"
    return None


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest *complete* TRL/transformers checkpoint ``checkpoint-N`` (:func:`checkpoint_problem`).

    An incomplete newer one (a kill while TRL wrote it: TRL writes ``trainer_state.json`` and
    the weights non-atomically) is passed over with a warning naming what is wrong, and the
    previous one is used.

    >>> latest_checkpoint("/nonexistent") is None
    True
    """
    d = Path(output_dir)
    if not d.is_dir():
        return None
    found: list[tuple[int, Path]] = []
    for p in d.glob("checkpoint-*"):
        suffix = p.name.split("-", 1)[1]
        if suffix.isdigit() and p.is_dir():
            found.append((int(suffix), p))
    for _, p in sorted(found, reverse=True):
        why = checkpoint_problem(p)
        if why is None:
            return p
        logger.warning("%s is incomplete (%s); not resuming from it, falling back to the previous checkpoint", p, why)
    return None
