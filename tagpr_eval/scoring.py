"""Offline drop-in for the official LaMP scorer (``eval_task.py``).

:func:`score_files` reads an official-format golds file and prediction file
(``{"task": "LaMP_2", "golds": [{"id", "output"}, ...]}``), checks that they pair up, and
returns exactly the official result dict (``{"accuracy", "f1"}``, ``{"MAE", "RMSE"}`` or
``{"rouge-1", "rouge-L"}``), computed by :func:`tagpr_rewards.metrics.lamp.score_task` (the one
metric implementation of tagpr).

Where we are stricter than the official scorer, we say so with a :class:`ScoringError`
naming the file and the id: missing/extra ids (the official scorer aborts too), duplicate ids
(the official scorer silently keeps the last), a task that differs between the files, malformed
JSON (file, line, column), and values of the wrong type. Numbers given as prediction
outputs are scored as their text; ``nan``/``inf`` ratings are scored as unparseable (the
farther of 1 and 5), and the :class:`ScoreReport` notes say so.

>>> import json, tempfile, os
>>> d = tempfile.mkdtemp()
>>> g = os.path.join(d, "g.json"); p = os.path.join(d, "p.json")
>>> _ = open(g, "w").write(json.dumps({"task": "LaMP_3", "golds": [{"id": "01", "output": "4"}]}))
>>> _ = open(p, "w").write(json.dumps({"task": "LaMP_3", "golds": [{"id": "01", "output": "5"}]}))
>>> score_files(g, p).result
{'MAE': 1.0, 'RMSE': 1.0}
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["OutputsFile", "ScoreReport", "ScoringError", "metric_path", "read_outputs_file", "score_files",
           "score_outputs"]

_MAX_LISTED = 5


class ScoringError(ValueError):
    """The files cannot be scored; the message names the file, the id and what to do."""


@dataclass
class OutputsFile:
    """A parsed official-format outputs/predictions file."""

    path: str
    task: str  # as written in the file ("LaMP_2")
    entries: list[tuple[str, str]]  # (id, output) in file order
    notes: list[str] = field(default_factory=list)


@dataclass
class ScoreReport:
    """The official result dict plus notes (non-fatal findings worth telling the user)."""

    task: str
    result: dict[str, float]
    n: int
    notes: list[str] = field(default_factory=list)


def _short(v: Any, n: int = 60) -> str:
    r = repr(v)
    return r if len(r) <= n else r[: n - 3] + "..."


def _list_ids(ids: Sequence[str]) -> str:
    shown = ", ".join(repr(i) for i in list(ids)[:_MAX_LISTED])
    more = len(ids) - _MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def read_outputs_file(path: str | Path, role: str = "predictions") -> OutputsFile:
    """Read and validate one official-format file (``role`` is "golds" or "predictions").

    Prediction outputs that are numbers become their text (noted); any other non-string
    output, a non-string id, a missing key or a duplicate id is a :class:`ScoringError`.
    """
    p = str(path)
    try:
        raw = Path(p).read_bytes()
    except FileNotFoundError as e:
        raise ScoringError(f"{p}: {role} file not found") from e
    except OSError as e:
        raise ScoringError(f"{p}: cannot read {role} file: {e.strerror or e}") from e
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ScoringError(f"{p}: {role} file is not UTF-8 (byte {e.start}); save it as UTF-8 JSON") from e
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise ScoringError(f"{p}:{e.lineno}:{e.colno}: malformed JSON in {role} file: {e.msg}") from e
    except RecursionError as e:
        raise ScoringError(f"{p}: {role} file nests too deeply to be a LaMP outputs file") from e
    except ValueError as e:  # e.g. an integer of more than 4,300 digits (Python's int limit)
        raise ScoringError(f"{p}: {role} file holds a value JSON cannot read here: {e}; "
                           "LaMP outputs are strings: quote the value") from e
    expect = 'expected {"task": "LaMP_k", "golds": [{"id": "...", "output": "..."}, ...]}'
    if not isinstance(obj, dict):
        raise ScoringError(f"{p}: {role} file holds a JSON {type(obj).__name__}; {expect}")
    for key in ("task", "golds"):
        if key not in obj:
            raise ScoringError(f"{p}: {role} file has no {key!r} key; {expect}")
    task = obj["task"]
    if not isinstance(task, str):
        raise ScoringError(f"{p}: 'task' must be a string like \"LaMP_2\", got {_short(task)}")
    items = obj["golds"]
    if not isinstance(items, list):
        raise ScoringError(f"{p}: 'golds' must be a list of {{\"id\", \"output\"}} objects, got "
                           f"{type(items).__name__} (predictions also sit under the key 'golds')")
    notes: list[str] = []
    entries: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    numeric: list[str] = []
    for i, it in enumerate(items):
        # fast path: a well-formed entry (messages are only built for bad ones)
        if type(it) is dict:
            sid = it.get("id")
            out = it.get("output")
            if type(sid) is str and type(out) is str and sid not in seen:
                seen[sid] = i
                entries.append((sid, out))
                continue
        sid, out = _check_entry(p, role, i, it, seen)
        if out is None:  # a number given as a prediction output
            numeric.append(sid)
            v = it["output"]
            out = repr(v) if isinstance(v, float) and not math.isfinite(v) else str(v)
        seen[sid] = i
        entries.append((sid, out))
    if numeric:
        notes.append(f"{p}: {len(numeric)} outputs were numbers, scored as their text (ids {_list_ids(numeric)})")
    return OutputsFile(path=p, task=task, entries=entries, notes=notes)


def _check_entry(p: str, role: str, i: int, it: Any, seen: dict[str, int]) -> tuple[str, str | None]:
    """Validate one entry the fast path refused; returns (id, output) or (id, None) for a numeric
    prediction output, or raises a ScoringError naming the file and the id."""
    where = f"{p}: golds[{i}]"
    if not isinstance(it, dict):
        raise ScoringError(f"{where} must be an object with 'id' and 'output', got {_short(it)}")
    if "id" not in it:
        raise ScoringError(f"{where} has no 'id' key")
    sid = it["id"]
    if not isinstance(sid, str):
        raise ScoringError(f"{where}: id must be a string (LaMP ids are strings such as \"0177\"), "
                           f"got {type(sid).__name__} {_short(sid)}; quote it")
    where = f"{p}: id {sid!r} (golds[{i}])"
    if "output" not in it:
        raise ScoringError(f"{where} has no 'output' key")
    out = it["output"]
    if isinstance(out, bool) or not isinstance(out, (str, int, float)):
        raise ScoringError(f"{where}: output must be a string, got {type(out).__name__} {_short(out)}")
    if sid in seen:
        raise ScoringError(f"{p}: duplicate id {sid!r} (golds[{seen[sid]}] and golds[{i}]); "
                           "each id must appear once (the official scorer silently keeps the last)")
    if not isinstance(out, str):
        if role == "golds":
            raise ScoringError(f"{where}: gold output must be a string, got {type(out).__name__} {_short(out)}")
        return sid, None
    return sid, out


def _is_nonfinite(text: str) -> bool:
    try:
        return not math.isfinite(float(text))
    except (ValueError, OverflowError):
        return False


def score_outputs(golds: OutputsFile, preds: OutputsFile, bootstrap: int | None = None,
                  seed: int | None = None, task: str | None = None) -> ScoreReport:
    """Pair two parsed files by id and score them (see :func:`score_files`)."""
    from tagpr_rewards.metrics.lamp import get_task, score_task

    try:
        spec = get_task(golds.task)
    except (KeyError, ValueError) as e:
        raise ScoringError(f"{golds.path}: unknown task {golds.task!r}: {e.args[0] if e.args else e}") from e
    if task is not None:
        try:
            want = get_task(task)
        except (KeyError, ValueError) as e:
            raise ScoringError(f"--task {task!r}: {e.args[0] if e.args else e}") from e
        if want.key != spec.key:
            raise ScoringError(f"{golds.path}: golds are for {golds.task!r} but --task is {task!r}")
        spec = want  # e.g. LaMP-2N: the legacy news LaMP-2 shares the file key LaMP_2
    try:
        pspec = get_task(preds.task)
    except (KeyError, ValueError) as e:
        raise ScoringError(f"{preds.path}: unknown task {preds.task!r}: {e.args[0] if e.args else e}") from e
    if pspec.key != spec.key:
        raise ScoringError(f"wrong task: {preds.path} is for {preds.task!r} but {golds.path} is for "
                           f"{golds.task!r}; score predictions against the golds of the same task")
    pred_map = dict(preds.entries)
    gold_ids = [i for i, _ in golds.entries]
    gold_set = set(gold_ids)
    missing = [i for i in gold_ids if i not in pred_map]
    extra = [i for i, _ in preds.entries if i not in gold_set]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} gold ids have no prediction (first: {_list_ids(missing)})")
        if extra:
            parts.append(f"{len(extra)} prediction ids are not in the golds (first: {_list_ids(extra)})")
        raise ScoringError(f"ids do not match between {golds.path} and {preds.path}: " + "; ".join(parts)
                           + ". Predict every gold id exactly once.")
    if not gold_ids:
        raise ScoringError(f"{golds.path}: no golds to score")
    pred_list = [pred_map[i] for i in gold_ids]
    gold_list = [o for _, o in golds.entries]
    notes = list(golds.notes) + list(preds.notes)
    if task is None and spec.key == "LaMP_2":
        legacy = get_task("LaMP-2N")
        movie, news = set(spec.labels or ()), set(legacy.labels or ())
        stripped = {g.strip() for g in gold_list}
        if not stripped <= movie and stripped <= news:
            spec = legacy
            notes.append(f"{golds.path}: golds are news categories: scored as the legacy news LaMP-2 "
                         "(LaMP-2N); pass --task LaMP-2N to say so")
    if spec.kind == "rating":
        bad = [i for i, o in zip(gold_ids, pred_list) if _is_nonfinite(o)]
        if bad:
            notes.append(f"{len(bad)} rating predictions are nan/inf (ids {_list_ids(bad)}); "
                         "scored as unparseable: the farther of 1 and 5 from the gold")
        badg = [i for i, o in zip(gold_ids, gold_list) if _num(o) is None]
        if badg:
            raise ScoringError(f"{golds.path}: gold ratings must be finite numbers; id {badg[0]!r} is "
                               f"{dict(golds.entries)[badg[0]]!r}")
    try:
        result = score_task(spec.name, pred_list, gold_list, bootstrap=bootstrap, seed=seed)
    except (ValueError, TypeError) as e:
        raise ScoringError(f"{golds.path} vs {preds.path}: {e}") from e
    bad_metrics = [k for k, v in result.items() if not math.isfinite(v)]
    if bad_metrics:
        why = ""
        if spec.kind == "rating":
            nums = [(abs(v), i) for i, o in zip(gold_ids, pred_list) if (v := _num(o)) is not None]
            if nums:
                big, bid = max(nums)
                why = (f": a rating prediction is so large that its error overflows (id {bid!r} predicts "
                       f"{dict(preds.entries)[bid]!r}; ratings are 1..5)")
        notes.append(f"{', '.join(bad_metrics)} is not finite{why}; JSON output writes it as null")
    return ScoreReport(task=spec.key, result=dict(result), n=len(gold_ids), notes=notes)


def _num(text: str) -> float | None:
    try:
        v = float(text)
    except (ValueError, OverflowError):
        return None
    return v if math.isfinite(v) else None


def score_files(golds: str | Path, preds: str | Path, bootstrap: int | None = None,
                seed: int | None = None, task: str | None = None) -> ScoreReport:
    """Score an official-format prediction file against a golds file, fully offline.

    Args:
        golds: path of the outputs (golds) file.
        preds: path of the predictions file (same layout).
        bootstrap: ROUGE by a bootstrap of this many resamples (the official scorer's
            aggregation, which is unseeded there); default: the exact mean.
        seed: seed of the bootstrap.
        task: if given, the task the files must be for.

    Returns:
        a :class:`ScoreReport` whose ``result`` is exactly the official result dict.

    Raises:
        ScoringError: with a message naming the file, the id and what to do.
    """
    g = read_outputs_file(golds, "golds")
    p = read_outputs_file(preds, "predictions")
    return score_outputs(g, p, bootstrap=bootstrap, seed=seed, task=task)


def metric_path() -> Path:
    """Path of the ``evaluate`` metric module shipped in the package (load it offline by path).

    >>> metric_path().name
    'lamp_metric.py'
    """
    return Path(__file__).resolve().parent / "metric" / "lamp_metric.py"
