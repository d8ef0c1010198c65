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

import contextlib
import glob
import json
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_path", "atomic_write", "clean_orphans", "atomic_write_json", "atomic_write_jsonl", "atomic_write_text", "read_jsonl"]


_HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:40] or "host"
#: a temporary file of another host (or of an older tagpr) is removed once this old
ORPHAN_AGE_S = 24 * 3600.0


def _tmp_prefix(p: Path) -> str:
    return f".{p.name}.tagpr-{_HOST}-{os.getpid()}-"


def clean_orphans(path: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files a killed write of ``path`` left behind; returns what was removed.

    A temporary file names its writer's host and process: it is an orphan when that process no
    longer runs on this host, or (other hosts, older tagpr) when it is older than
    :data:`ORPHAN_AGE_S`. A write in progress elsewhere is never touched. Called by every
    :func:`atomic_write`.
    """
    p = Path(path)
    removed: list[Path] = []
    try:
        candidates = list(p.parent.glob(f".{glob.escape(p.name)}.*.tmp"))
    except OSError:
        return removed
    now = time.time()
    for tmp in candidates:
        m = re.fullmatch(rf"\.{re.escape(p.name)}\.tagpr-(.+)-(\d+)-[^.]*\.tmp", tmp.name)
        orphan = False
        if m is not None and m.group(1) == _HOST:
            pid = int(m.group(2))
            if pid != os.getpid():
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    orphan = True
                except OSError:  # exists, but not ours to signal
                    pass
        if not orphan:
            try:
                orphan = now - tmp.stat().st_mtime > ORPHAN_AGE_S
            except OSError:
                continue
        if orphan:
            try:
                tmp.unlink()
                removed.append(tmp)
            except OSError:
                pass
    return removed


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[str]], Any]) -> Path:
    """Call ``write(f)`` on a temporary text file next to ``path``, then move it into place
    (temporary files of earlier killed writes of ``path`` are removed first, :func:`clean_orphans`)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    clean_orphans(p)
    fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(p), suffix=".tmp", dir=p.parent)
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


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path next to ``path`` for a library that writes files itself (``safetensors``,
    ``torch.save``); on a clean exit it is flushed to disk and moved into place, on an error removed.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "w.bin") as tmp:
    ...     _ = tmp.write_bytes(b"\\x00\\x01")
    >>> (d / "w.bin").read_bytes(), sorted(x.name for x in d.iterdir())
    (b'\\x00\\x01', ['w.bin'])
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    clean_orphans(p)
    fd, name = tempfile.mkstemp(prefix=_tmp_prefix(p), suffix=".tmp", dir=p.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp makes 0600: keep the user's umask instead
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
