"""Atomic file writes and JSONL reading, shared by every tagpr package.

Nothing a user gave us is ever lost: every file is written to a temporary file in the same
directory, flushed to disk, then moved into place with ``os.replace``, so a killed process
leaves either the old file or the new one, never half of one.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> atomic_write_jsonl(d / "rows.jsonl", [{"a": 1}, {"b": "é"}])
2
>>> read_jsonl(d / "rows.jsonl")
[{'a': 1}, {'b': 'é'}]
>>> atomic_write_json(d / "x" / "obj.json", {"k": [1, 2]}).read_text()
'{\\n  "k": [\\n    1,\\n    2\\n  ]\\n}\\n'
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write", "atomic_write_json", "atomic_write_jsonl", "atomic_write_text", "read_jsonl"]


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[str]], Any]) -> Path:
    """Call ``write(f)`` on a temporary text file next to ``path``, then move it into place."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically; returns the path."""
    return atomic_write(path, lambda f: f.write(text))


def atomic_write_json(path: str | os.PathLike[str], obj: Any, indent: int | None = 2) -> Path:
    """Atomic UTF-8 JSON (non-ASCII kept as is), ending in a newline."""
    return atomic_write_text(path, json.dumps(obj, ensure_ascii=False, indent=indent) + "\n")


def atomic_write_jsonl(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]],
                       default: Callable[[Any], Any] | None = None) -> int:
    """Write rows as JSON lines atomically (streamed); returns the number of rows."""
    count = [0]

    def write(f: IO[str]) -> None:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, default=default) + "\n")
            count[0] += 1

    atomic_write(path, write)
    return count[0]


def read_jsonl(path: str | os.PathLike[str], hint: str = "fix or remove the line") -> list[dict[str, Any]]:
    """Rows of a JSONL file (blank lines skipped); a bad line is a ``ValueError`` naming the
    file and the line, followed by ``hint`` (what to do)."""
    p = Path(path)
    rows = []
    with p.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{p}:{lineno}: not valid JSON ({e.msg} at column {e.colno}); {hint}") from e
    return rows
