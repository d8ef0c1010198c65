"""Atomic writes, stage markers and resume for ``tagpr-train``.

A stage is *done* when ``RUN_DIR/stages/<stage>.json`` exists; it is written last, atomically,
after the stage's outputs were published. Stage outputs that are directories (models) are
written to a temporary sibling and moved into place with one ``os.replace``, so a reader never
sees half a model. A stage killed midway leaves no marker: the next run redoes it, and the
training stages resume from their last TRL checkpoint (``checkpoint-N`` with a
``trainer_state.json``).

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
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from tagpr_rewards.files import atomic_write_text as _atomic_write_text

__all__ = [
    "atomic_write_json",
    "atomic_write_text",
    "clear_marker",
    "is_done",
    "latest_checkpoint",
    "mark_done",
    "publish_dir",
    "read_marker",
    "staging_dir",
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


def mark_done(run_dir: str | Path, stage: str, outputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Record that ``stage`` finished (atomically); ``outputs`` are paths and figures to keep."""
    marker = {"stage": stage, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "outputs": outputs or {}}
    atomic_write_json(_marker(run_dir, stage), marker)
    return marker


def clear_marker(run_dir: str | Path, stage: str) -> None:
    """Forget that ``stage`` finished (``--force``)."""
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


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest complete TRL/transformers checkpoint (``checkpoint-N`` with ``trainer_state.json``).

    >>> latest_checkpoint("/nonexistent") is None
    True
    """
    d = Path(output_dir)
    if not d.is_dir():
        return None
    best: tuple[int, Path] | None = None
    for p in d.glob("checkpoint-*"):
        suffix = p.name.split("-", 1)[1]
        if not suffix.isdigit() or not (p / "trainer_state.json").is_file():
            continue
        if best is None or int(suffix) > best[0]:
            best = (int(suffix), p)
    return best[1] if best else None
