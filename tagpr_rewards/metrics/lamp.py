"""LaMP task registry and the official scorer, offline.

Each LaMP task has a :class:`TaskSpec` (kind, label list, metric names and which are lower
-is-better). :func:`score_task` computes the exact result dict of the official LaMP scorer
(``{"accuracy", "f1"}``, ``{"MAE", "RMSE"}`` or ``{"rouge-1", "rouge-L"}``) with the metric
kernels of this package; :class:`LampAccumulator` does the same batch by batch.

ROUGE is reported as the exact mean by default. The official scorer instead reports a
bootstrap median (1000 unseeded resamples), which differs from the mean by about 1e-4..1e-3;
``bootstrap=1000, seed=...`` reproduces that aggregation, seeded (see
:mod:`tagpr_rewards.metrics.bootstrap`). Classification and rating metrics are never
bootstrapped by the official scorer, so ``bootstrap`` does not change them.

>>> get_task("lamp2").labels[:2]
('sci-fi', 'based on a book')
>>> score_task("LaMP-1", {"a": "[1]", "b": "[1]"}, {"a": "[1]", "b": "[2]"})
{'accuracy': 0.5, 'f1': 0.3333333333333333}
>>> score_task("LaMP-5", ["deep nets"], ["Deep nets for text"])
{'rouge-1': 0.6666666666666666, 'rouge-L': 0.6666666666666666}
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tagpr_rewards.metrics.bootstrap import DEFAULT_RESAMPLES, check_resamples, rouge_bootstrap
from tagpr_rewards.metrics.classification import ClassificationAccumulator
from tagpr_rewards.metrics.labels import LAMP1_LABELS, LAMP2_MOVIE_TAGS, LAMP2_NEWS_CATEGORIES
from tagpr_rewards.metrics.rating import RatingAccumulator
from tagpr_rewards.metrics.rouge import RougeAccumulator, rouge_per_sample
from tagpr_rewards.registry import unknown_name_error

__all__ = ["LampAccumulator", "TaskSpec", "align_predictions", "get_task", "list_tasks", "score_task"]

TaskKind = Literal["classification", "rating", "generation"]


@dataclass(frozen=True)
class TaskSpec:
    """What the harness and the rewards need to know about one LaMP task.

    Attributes:
        name: display name, e.g. ``"LaMP-2"`` (legacy news LaMP-2: ``"LaMP-2N"``).
        key: the name in LaMP files (``{"task": "LaMP_2", ...}``).
        kind: ``"classification"``, ``"rating"`` or ``"generation"``.
        description: one line.
        labels: the label list in official order (classification), else ``None``.
        metrics: the official result keys, in order.
        lower_better: the metrics where lower is better (``MAE``, ``RMSE``).
        legacy: True for the pre-2024 news LaMP-2.

    >>> t = get_task("LaMP-3")
    >>> t.metrics, t.lower_is_better, t.primary_metric
    (('MAE', 'RMSE'), {'MAE': True, 'RMSE': True}, 'MAE')
    """

    name: str
    key: str
    kind: TaskKind
    description: str
    labels: tuple[str, ...] | None
    metrics: tuple[str, ...]
    lower_better: tuple[str, ...] = ()
    legacy: bool = False

    @property
    def lower_is_better(self) -> dict[str, bool]:
        """Per metric: True when a lower value is better."""
        return {m: m in self.lower_better for m in self.metrics}

    @property
    def primary_metric(self) -> str:
        """The metric leaderboards sort by (the first official key)."""
        return self.metrics[0]

    def better(self, metric: str, a: float, b: float) -> bool:
        """Whether value ``a`` of ``metric`` is strictly better than ``b``.

        >>> get_task("LaMP-3").better("MAE", 0.2, 0.3)
        True
        """
        return a < b if metric in self.lower_better else a > b


_CLS = ("accuracy", "f1")
_RATING = ("MAE", "RMSE")
_GEN = ("rouge-1", "rouge-L")

_TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in (
        TaskSpec("LaMP-1", "LaMP_1", "classification", "personalised citation identification", LAMP1_LABELS, _CLS),
        TaskSpec("LaMP-2", "LaMP_2", "classification", "personalised movie tagging", LAMP2_MOVIE_TAGS, _CLS),
        TaskSpec("LaMP-2N", "LaMP_2", "classification", "personalised news categorisation (legacy LaMP-2)",
                 LAMP2_NEWS_CATEGORIES, _CLS, legacy=True),
        TaskSpec("LaMP-3", "LaMP_3", "rating", "personalised product rating", None, _RATING, _RATING),
        TaskSpec("LaMP-4", "LaMP_4", "generation", "personalised news headline generation", None, _GEN),
        TaskSpec("LaMP-5", "LaMP_5", "generation", "personalised scholarly title generation", None, _GEN),
        TaskSpec("LaMP-6", "LaMP_6", "generation", "personalised email subject generation", None, _GEN),
        TaskSpec("LaMP-7", "LaMP_7", "generation", "personalised tweet paraphrasing", None, _GEN),
    )
}

# normalised spelling ("lamp2", "lamp2news", ...) -> canonical name
_ALIASES: dict[str, str] = {re.sub(r"[^a-z0-9]", "", n.lower()): n for n in _TASKS}
_ALIASES.update({"lamp2news": "LaMP-2N", "lamp2legacy": "LaMP-2N", "lamp2movies": "LaMP-2",
                 "lamp2movie": "LaMP-2"})


def list_tasks() -> list[str]:
    """Canonical task names.

    >>> list_tasks()
    ['LaMP-1', 'LaMP-2', 'LaMP-2N', 'LaMP-3', 'LaMP-4', 'LaMP-5', 'LaMP-6', 'LaMP-7']
    """
    return list(_TASKS)


def get_task(name: str | TaskSpec) -> TaskSpec:
    """The :class:`TaskSpec` for a task name in any usual spelling.

    Accepts ``"LaMP-2"``, ``"LaMP_2"`` (file key), ``"lamp2"``, ``"LaMP 2"``; the legacy news
    LaMP-2 is ``"LaMP-2N"`` or ``"LaMP-2-news"``. Unknown names raise ``KeyError`` with a
    did-you-mean hint.

    >>> get_task("LaMP_4").name, get_task("lamp-2-news").name
    ('LaMP-4', 'LaMP-2N')
    """
    if isinstance(name, TaskSpec):
        return name
    key = re.sub(r"[^a-z0-9]", "", str(name).lower())
    if key in _ALIASES:
        return _TASKS[_ALIASES[key]]
    raise unknown_name_error("LaMP task", str(name), list_tasks())


def align_predictions(
    preds: Mapping[str, Any] | Sequence[Any],
    golds: Mapping[str, Any] | Sequence[Any],
) -> tuple[list[Any], list[Any], list[str] | None]:
    """Pair predictions with golds: ``(preds, golds, ids)`` in gold order.

    Dicts (id -> text) must have exactly the same id set, as the official scorer requires;
    aligned lists must have the same length (``ids`` is then ``None``).

    >>> align_predictions({"2": "b", "1": "a"}, {"1": "A", "2": "B"})
    (['a', 'b'], ['A', 'B'], ['1', '2'])
    """
    if isinstance(preds, Mapping) and isinstance(golds, Mapping):
        missing = [k for k in golds if k not in preds]
        extra = [k for k in preds if k not in golds]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"{len(missing)} gold id(s) have no prediction (e.g. {missing[:5]})")
            if extra:
                parts.append(f"{len(extra)} prediction id(s) are not in the golds (e.g. {extra[:5]})")
            raise ValueError(
                "; ".join(parts) + ". The official scorer requires exactly the gold ids; "
                "predict every gold id once and drop the others"
            )
        ids = list(golds)
        return [preds[k] for k in ids], [golds[k] for k in ids], [str(k) for k in ids]
    if isinstance(preds, Mapping) or isinstance(golds, Mapping):
        raise TypeError("pass predictions and golds both as dicts (id -> text) or both as aligned lists")
    if isinstance(preds, (str, bytes)) or isinstance(golds, (str, bytes)):
        raise TypeError("predictions and golds must be lists of strings or dicts, not a single string")
    preds = list(preds)
    golds = list(golds)
    if len(preds) != len(golds):
        raise ValueError(f"got {len(preds)} predictions for {len(golds)} golds; they must be aligned")
    return preds, golds, None


def _texts(values: list[Any], what: str, ids: list[str] | None) -> list[str]:
    out = []
    for i, v in enumerate(values):
        if isinstance(v, str):
            out.append(v)
        elif v is None and what == "prediction":
            out.append("")  # a missing prediction text scores as an empty answer
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append(str(v))
        else:
            where = f"id {ids[i]!r}" if ids is not None else f"position {i}"
            raise TypeError(f"{what} at {where} is {type(v).__name__}, expected a string")
    return out


class LampAccumulator:
    """Accumulate predictions batch by batch and compute the official result dict.

    States are the metric's sums/counts (a confusion count for classification), never lists.
    ROUGE is the exact mean (bootstrap needs every per-sample score; use :func:`score_task`).

    >>> acc = LampAccumulator("LaMP-3")
    >>> acc.update(["4"], ["5"]); acc.update({"x": "oops"}, {"x": "3"})
    >>> acc.compute()
    {'MAE': 1.5, 'RMSE': 1.5811388300841898}
    >>> acc.stats()["unparseable"]
    1
    """

    def __init__(self, task: str | TaskSpec) -> None:
        self.task = get_task(task)
        self._acc: ClassificationAccumulator | RatingAccumulator | RougeAccumulator
        if self.task.kind == "classification":
            assert self.task.labels is not None
            self._acc = ClassificationAccumulator(self.task.labels)
        elif self.task.kind == "rating":
            self._acc = RatingAccumulator()
        else:
            self._acc = RougeAccumulator()

    def reset(self) -> None:
        """Forget everything seen so far."""
        self._acc.reset()

    @property
    def count(self) -> int:
        """Number of samples added."""
        return self._acc.count

    def update(self, preds: Mapping[str, Any] | Sequence[Any], golds: Mapping[str, Any] | Sequence[Any]) -> None:
        """Add predictions and golds (dicts id -> text, or aligned lists)."""
        p, g, ids = align_predictions(preds, golds)
        self._update_aligned(p, g, ids)

    def _update_aligned(self, p: list[Any], g: list[Any], ids: list[str] | None) -> list[list[float]] | None:
        p = _texts(p, "prediction", ids)
        g = _texts(g, "gold", ids)
        acc = self._acc
        if isinstance(acc, RougeAccumulator):
            # the official scorer strips both sides (stripping never changes ROUGE tokens)
            r1, rl = rouge_per_sample(p, g)
            acc.add_scores(r1, rl)
            return [r1, rl]
        acc.update(p, g, ids)
        return None

    def compute(self) -> dict[str, float]:
        """The official result dict for everything added so far."""
        return self._acc.compute()

    def stats(self) -> dict[str, int]:
        """Counts worth reporting next to the metrics (``count``, ``invalid``/``unparseable``)."""
        acc = self._acc
        out = {"count": acc.count}
        if isinstance(acc, ClassificationAccumulator):
            out["invalid"] = acc.n_invalid
        elif isinstance(acc, RatingAccumulator):
            out["unparseable"] = acc.n_unparseable
            out["nonfinite"] = acc.n_nonfinite
        return out

    def __repr__(self) -> str:
        return f"LampAccumulator({self.task.name!r}, count={self.count})"


def score_task(
    task: str | TaskSpec,
    preds: Mapping[str, Any] | Sequence[Any],
    golds: Mapping[str, Any] | Sequence[Any],
    bootstrap: int | bool | None = None,
    seed: int | None = None,
) -> dict[str, float]:
    """Score predictions exactly as the official LaMP scorer; returns its result dict.

    Args:
        task: task name in any spelling accepted by :func:`get_task`, or a TaskSpec.
        preds, golds: dicts ``id -> text`` with exactly the same ids, or aligned lists.
        bootstrap: for generation tasks, ``None``/``0`` (default) reports the exact mean;
            ``True`` or a number of resamples reports the official bootstrap median
            (1000 resamples officially). Ignored for classification and rating tasks, which
            the official scorer does not bootstrap.
        seed: seed of the bootstrap (``None``: fresh randomness, like the official scorer).

    Returns:
        ``{"accuracy", "f1"}`` (LaMP-1, LaMP-2), ``{"MAE", "RMSE"}`` (LaMP-3) or
        ``{"rouge-1", "rouge-L"}`` (LaMP-4..7), values as Python floats.

    >>> score_task("LaMP-3", ["4", "nope"], ["4", "3"])
    {'MAE': 1.0, 'RMSE': 1.4142135623730951}
    >>> r = score_task("LaMP-4", ["a b", "c"], ["a b", "c d"], bootstrap=True, seed=0)
    >>> sorted(r)
    ['rouge-1', 'rouge-L']
    """
    spec = get_task(task)
    p, g, ids = align_predictions(preds, golds)
    if not g:
        raise ValueError(f"{spec.name}: nothing to score (no golds)")
    acc = LampAccumulator(spec)
    per_sample = acc._update_aligned(p, g, ids)
    n_boot = DEFAULT_RESAMPLES if bootstrap is True else (bootstrap or 0)
    if n_boot:
        check_resamples(n_boot)
    if spec.kind == "generation" and n_boot:
        assert per_sample is not None
        return rouge_bootstrap(per_sample[0], per_sample[1], n_samples=n_boot, seed=seed)
    return acc.compute()
