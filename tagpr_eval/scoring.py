"""Offline drop-in for the official LaMP scorer (``eval_task.py``).

:func:`score_files` reads an official-format golds file and prediction file
(``{"task": "LaMP_2", "golds": [{"id", "output"}, ...]}``), checks that they pair up, and
returns exactly the official result dict (``{"accuracy", "f1"}``, ``{"MAE", "RMSE"}`` or
``{"rouge-1", "rouge-L"}``), computed by :func:`tagpr_rewards.metrics.lamp.score_task` (the one
metric implementation of tagpr).

Where we are stricter than the official scorer, we say so with a :class:`ScoringError`
naming the file and the id: missing/extra ids (the official scorer aborts too), duplicate ids
(the official scorer silently keeps the last), a task that differs between the files, malformed
JSON (file, line, column), and values of the wrong type. The files are read by the one reader
of the layout (:func:`tagpr_eval.data.lamp_files.read_outputs`: UTF-8 with or without a BOM), so
``tagpr-eval run``'s loader gives them the same verdict. Numbers given as outputs are scored as
their text; ``nan``/``inf`` ratings are scored as unparseable (the
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

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tagpr_eval.data.lamp_files import LampDataError, LampOutputs, read_outputs

__all__ = ["OutputsFile", "ScoreReport", "ScoringError", "metric_path", "read_outputs_file", "score_files",
           "score_outputs"]

_MAX_LISTED = 5


class ScoringError(ValueError):
    """The files cannot be scored; the message names the file, the id and what to do."""


#: A parsed official-format outputs/predictions file (the reader's :class:`LampOutputs`).
OutputsFile = LampOutputs


@dataclass
class ScoreReport:
    """The official result dict plus notes (non-fatal findings worth telling the user)."""

    task: str
    result: dict[str, float]
    n: int
    notes: list[str] = field(default_factory=list)


def _list_ids(ids: Sequence[str]) -> str:
    shown = ", ".join(repr(i) for i in list(ids)[:_MAX_LISTED])
    more = len(ids) - _MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def read_outputs_file(path: str | Path, role: str = "predictions") -> LampOutputs:
    """Read and validate one official-format file (``role`` is "golds" or "predictions") with
    the one reader of the layout, :func:`tagpr_eval.data.lamp_files.read_outputs` (so loading
    and scoring give a file the same verdict); its errors become :class:`ScoringError`.
    """
    try:
        return read_outputs(path, role=role)
    except LampDataError as e:
        raise ScoringError(str(e)) from None


def _is_nonfinite(text: str) -> bool:
    try:
        return not math.isfinite(float(text))
    except (ValueError, OverflowError):
        return False


def score_outputs(golds: OutputsFile, preds: OutputsFile, bootstrap: int | None = None,
                  seed: int | None = None, task: str | None = None) -> ScoreReport:
    """Pair two parsed files by id and score them (see :func:`score_files`)."""
    from tagpr_rewards.metrics.lamp import IdMismatchError, get_task, pair_by_id, score_task

    spec = get_task(golds.task)
    if task is not None:
        try:
            want = get_task(task)
        except (KeyError, ValueError) as e:
            raise ScoringError(f"--task {task!r}: {e.args[0] if e.args else e}") from e
        if want.key != spec.key:
            raise ScoringError(f"{golds.path}: golds are for {golds.raw_task!r} but --task is {task!r}")
        spec = want  # e.g. LaMP-2N: the legacy news LaMP-2 shares the file key LaMP_2
    if get_task(preds.task).key != spec.key:
        raise ScoringError(f"wrong task: {preds.path} is for {preds.raw_task!r} but {golds.path} is for "
                           f"{golds.raw_task!r}; score predictions against the golds of the same task")
    try:
        gold_ids, pred_list, gold_list = pair_by_id(golds.outputs, preds.outputs)
    except IdMismatchError as e:
        raise ScoringError(f"ids do not match between {golds.path} and {preds.path}: {e}. "
                           "Predict every gold id exactly once.") from None
    if not gold_ids:
        raise ScoringError(f"{golds.path}: no golds to score")
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
                               f"{golds.outputs[badg[0]]!r}")
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
                       f"{preds.outputs[bid]!r}; ratings are 1..5)")
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
