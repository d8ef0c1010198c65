"""Download the official LaMP files into a local cache (stdlib ``urllib`` only).

The cache uses the same layout :func:`tagpr_eval.data.load_task` reads:
``CACHE/LaMP-k/{split}_questions.json`` (+ ``_outputs.json`` for train and dev); the time-based
split goes under ``CACHE/time/``. :func:`download` returns the directory to pass to
``load_task``. Official URLs (the LaMP download page):
``{base}/LaMP_{k}/{split}/{split}_questions.json``, LaMP-2 (movies) under ``LaMP_2/new/``,
the time split under ``{base}/time/``.

Each file is fetched into ``NAME.part`` (an interrupted download resumes with an HTTP
``Range`` request), hashed while it streams, checked against the ``Content-Length``, moved
into place atomically, and its SHA-256 is recorded in ``manifest.json`` in the cache. A cached
file is re-hashed before reuse; a file that no longer matches its recorded hash is fetched
again, and a fresh download that does not match the recorded hash is an error (the server's
file changed or the transfer is corrupt; ``refresh=True`` accepts the new file).

LaMP data is CC BY-NC-SA 4.0 plus each source's terms; LaMP-6 (Avocado) needs an LDC licence
and is not downloadable.

>>> official_urls("LaMP-2", "dev")["questions"]
'https://ciir.cs.umass.edu/downloads/LaMP/LaMP_2/new/dev/dev_questions.json'
>>> official_urls("LaMP-4", "train", time_split=True)["outputs"]
'https://ciir.cs.umass.edu/downloads/LaMP/time/LaMP_4/train/train_outputs.json'
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tagpr_eval.data.lamp_files import canonical_task, load_outputs, load_questions, write_json_atomic

__all__ = ["OFFICIAL_BASE_URL", "DownloadError", "default_cache_dir", "download", "official_urls", "sha256_file"]

logger = logging.getLogger("tagpr_eval.download")

OFFICIAL_BASE_URL = "https://ciir.cs.umass.edu/downloads/LaMP"
MANIFEST = "manifest.json"
_CHUNK = 1 << 16


class DownloadError(RuntimeError):
    """A download failed or a file does not match its recorded checksum."""


def default_cache_dir() -> Path:
    """``$TAGPR_CACHE/lamp`` or ``~/.cache/tagpr/lamp``."""
    root = os.environ.get("TAGPR_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "tagpr")
    return Path(root) / "lamp"


def official_urls(task: str, split: str, time_split: bool = False,
                  base_url: str = OFFICIAL_BASE_URL) -> dict[str, str]:
    """``{"questions": url, "outputs": url}`` for one task and split (no outputs for test)."""
    name = canonical_task(task)
    if name == "LaMP-6":
        raise DownloadError(
            "LaMP-6 (email subjects) uses the Avocado corpus, which needs an LDC licence; it cannot be "
            "downloaded: build its files yourself with the LaMP repository's scripts and pass --data DIR"
        )
    if split not in ("train", "dev", "test"):
        raise DownloadError(f"unknown split {split!r}; use train, dev or test")
    num = name.split("-")[1].rstrip("N")
    folder = f"LaMP_{num}"
    if name == "LaMP-2":
        folder += "/new"  # the movie-tagging LaMP-2 (March 2024); the legacy news one sits at LaMP_2/
    root = base_url.rstrip("/") + ("/time" if time_split else "")
    urls = {"questions": f"{root}/{folder}/{split}/{split}_questions.json"}
    if split != "test":
        urls["outputs"] = f"{root}/{folder}/{split}/{split}_outputs.json"
    return urls


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_manifest(root: Path) -> dict[str, Any]:
    p = root / MANIFEST
    if not p.exists():
        return {}
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise DownloadError(f"{p}: unreadable manifest ({e}); delete it to re-download and re-record checksums") from None
    return data if isinstance(data, dict) else {}


def _fetch(url: str, dest: Path, progress: bool, timeout: float) -> tuple[str, int]:
    """Download ``url`` to ``dest`` via ``dest.part`` (resuming it); returns (sha256, size)."""
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "tagpr-eval"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # our partial file is not a prefix the server accepts: restart
            part.unlink()
            return _fetch(url, dest, progress, timeout)
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        raise DownloadError(f"{url}: cannot connect ({getattr(e, 'reason', e)}); check the network or --base-url") from None
    h = hashlib.sha256()
    with resp:
        status = getattr(resp, "status", 200)
        length = resp.headers.get("Content-Length")
        if have and status == 206:
            with open(part, "rb") as f:  # hash what we already have
                for chunk in iter(lambda: f.read(_CHUNK), b""):
                    h.update(chunk)
            mode, start = "ab", have
        else:
            mode, start = "wb", 0  # server ignored the range: start over
        total = start + int(length) if length is not None else None
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, initial=start, unit="B", unit_scale=True, desc=dest.name, leave=False)
        size = start
        try:
            with open(part, mode) as f:
                while True:
                    chunk = resp.read(_CHUNK)
                    if not chunk:
                        break
                    f.write(chunk)
                    h.update(chunk)
                    size += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
        except (OSError, urllib.error.URLError) as e:
            raise DownloadError(f"{url}: transfer interrupted after {size} bytes ({e}); run again to resume") from None
        finally:
            if bar is not None:
                bar.close()
    if total is not None and size != total:
        raise DownloadError(f"{url}: got {size} of {total} bytes; run again to resume from {part}")
    os.replace(part, dest)
    return h.hexdigest(), size


def _validate(path: Path, kind: str, task: str) -> None:
    if kind == "questions":
        load_questions(path, task)
    else:
        load_outputs(path, task)


def download(
    tasks: str | Iterable[str],
    split: str | Iterable[str] = "dev",
    cache_dir: str | os.PathLike[str] | None = None,
    base_url: str = OFFICIAL_BASE_URL,
    time_split: bool = False,
    progress: bool = True,
    refresh: bool = False,
    validate: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Fetch the official LaMP files for ``tasks`` and ``split`` into the cache; return the data dir.

    Args:
        tasks: one task name or several (``"LaMP-2"``, ``["LaMP-1", "LaMP-4"]``).
        split: ``train``, ``dev`` or ``test`` (or several).
        cache_dir: the cache (default :func:`default_cache_dir`).
        base_url: where the files live (a mirror, or a local server in tests).
        time_split: the time-based split (stored under ``CACHE/time``).
        progress: tqdm progress bars.
        refresh: download again even when a cached copy matches, and accept a new checksum.
        validate: check every file with the LaMP loaders after download.
        timeout: socket timeout in seconds.

    Returns:
        The directory to pass as ``load_task(data_dir, task, split)``.
    """
    task_list = [tasks] if isinstance(tasks, str) else list(tasks)
    splits = [split] if isinstance(split, str) else list(split)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    data_dir = root / "time" if time_split else root
    data_dir.mkdir(parents=True, exist_ok=True)
    manifest = _read_manifest(data_dir)
    for t in task_list:
        name = canonical_task(t)
        for sp in splits:
            for kind, url in official_urls(name, sp, time_split, base_url).items():
                rel = f"{name}/{sp}_{kind}.json"
                dest = data_dir / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                rec = manifest.get(rel)
                if dest.exists() and rec and not refresh:
                    if sha256_file(dest) == rec.get("sha256"):
                        logger.info("%s: cached copy matches its checksum", dest)
                        continue
                    logger.warning("%s: does not match its recorded sha256 (corrupted?); downloading again", dest)
                    dest.unlink()
                digest, size = _fetch(url, dest, progress, timeout)
                if rec and not refresh and rec.get("sha256") != digest:
                    bad = dest.with_name(dest.name + ".mismatch")
                    os.replace(dest, bad)
                    raise DownloadError(
                        f"{url}: sha256 {digest} does not match {rec.get('sha256')} recorded in "
                        f"{data_dir / MANIFEST} on {rec.get('downloaded_at')}; the server's file changed or the "
                        f"transfer is corrupt (kept as {bad}); rerun with refresh=True (CLI: --refresh) to accept it"
                    )
                if validate:
                    _validate(dest, kind, name)
                manifest[rel] = {"url": url, "sha256": digest, "size": size,
                                 "downloaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
                write_json_atomic(data_dir / MANIFEST, manifest, indent=1)
    return data_dir
