"""Atomic file writes and JSONL reading, shared by every tagpr package.

Nothing a user gave us is ever lost: every file is written to a temporary file in the same
directory, flushed to disk, then moved into place with ``os.replace``, so a killed process
leaves either the old file or the new one, never half of one.

A new file gets the mode ``open()`` would give it (``0o666`` less the process umask: 0644
under the usual umask 022), so a colleague or a Ray worker on a shared cluster can read it;
replacing a file keeps that file's mode. (``tempfile.mkstemp`` alone would make every file
0600.)

:func:`quiet_broken_pipe` makes a command line tool end quietly when its reader goes away
(``tagpr-eval compare A B | head``).

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
import logging
import math
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_path", "atomic_write", "atomic_write_json", "atomic_write_jsonl", "atomic_write_text", "clean_orphans",
           "current_umask", "json_text", "quiet_broken_pipe", "read_jsonl", "strict_json"]

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


logger = logging.getLogger("tagpr_rewards.files")

#: Exit status of a command whose output pipe was closed (128 + SIGPIPE, what a shell reports).
EXIT_BROKEN_PIPE = 141


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux ``/proc``).

    >>> 0 <= current_umask() <= 0o777
    True
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)  # elsewhere: set and restore (the only portable way to read it)
    os.umask(old)
    return old


def _mode_for(p: Path) -> int:
    try:
        return p.stat().st_mode & 0o7777  # replacing a file keeps its mode
    except OSError:
        return 0o666 & ~current_umask()


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[str]], Any]) -> Path:
    """Call ``write(f)`` on a temporary text file next to ``path``, then move it into place
    (temporary files of earlier killed writes of ``path`` are removed first, :func:`clean_orphans`).

    The file gets the umask's mode (or, when it replaces a file, that file's mode).
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    clean_orphans(p)
    mode = _mode_for(p)
    fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(p), suffix=".tmp", dir=p.parent)
    try:
        os.fchmod(fd, mode)  # mkstemp makes 0600; give the file the mode open() would
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
        os.chmod(tmp, _mode_for(p))  # mkstemp makes 0600: keep the user's umask (or the replaced file's mode)
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


def strict_json(obj: Any) -> tuple[Any, list[str]]:
    """``obj`` with every NaN/±inf float replaced by ``None``, and where they were.

    JSON has no NaN or Infinity: ``json.dumps`` writes them anyway (``Infinity``), and strict
    readers (``jq``, JavaScript, Go, ``json.loads(..., parse_constant=...)``) reject the file.

    >>> strict_json({"MAE": 0.5, "RMSE": float("inf"), "xs": [1.0, float("nan")]})
    ({'MAE': 0.5, 'RMSE': None, 'xs': [1.0, None]}, ['RMSE', 'xs[1]'])
    """
    where: list[str] = []

    def walk(v: Any, path: str) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            where.append(path or "(top level)")
            return None
        if isinstance(v, Mapping):
            return {k: walk(x, f"{path}.{k}" if path else str(k)) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [walk(x, f"{path}[{i}]") for i, x in enumerate(v)]
        return v

    return walk(obj, ""), where


def json_text(obj: Any, indent: int | None = None, what: str = "output") -> str:
    """``json.dumps`` that always gives strict JSON: non-finite numbers become ``null``, with
    one warning naming ``what`` and where they were.

    >>> json_text({"RMSE": float("inf")}, what="result")
    '{"RMSE": null}'
    """
    try:
        return json.dumps(obj, ensure_ascii=False, indent=indent, allow_nan=False)
    except ValueError:  # NaN or inf somewhere: only then pay for a walk
        clean, where = strict_json(obj)
        shown = ", ".join(where[:5]) + (f" and {len(where) - 5} more" if len(where) > 5 else "")
        logger.warning("%s: %d non-finite number(s) (NaN/inf) written as null, at %s", what, len(where), shown)
        return json.dumps(clean, ensure_ascii=False, indent=indent, allow_nan=False)


def atomic_write_json(path: str | os.PathLike[str], obj: Any, indent: int | None = 2) -> Path:
    """Atomic UTF-8 JSON (non-ASCII kept as is), ending in a newline. Always strict JSON:
    a NaN or infinity is written as ``null`` with a warning naming the file (see :func:`json_text`)."""
    return atomic_write_text(path, json_text(obj, indent=indent, what=str(path)) + "\n")


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


def quiet_broken_pipe(main: Callable[[], int]) -> int:
    """Run a CLI ``main()`` so that a closed output pipe ends it quietly (exit status 141).

    Without it, ``tagpr-eval compare A B | head`` ends in a ``BrokenPipeError`` traceback
    (and a second one when Python flushes stdout at exit). Other errors pass through.

    >>> quiet_broken_pipe(lambda: 0)
    0
    """
    import sys

    try:
        rc = main()
        sys.stdout.flush()  # a pending write fails here rather than at interpreter exit
        return rc
    except BrokenPipeError:
        # stdout is gone: point it at /dev/null so the flush at exit does not fail again
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):  # stdout without a file descriptor (captured)
            pass
        return EXIT_BROKEN_PIPE
