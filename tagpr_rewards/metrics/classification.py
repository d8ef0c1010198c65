"""Accuracy and macro-F1 over a fixed label list, exactly as the official LaMP scorer.

Semantics (LaMP-1, LaMP-2): both sides are stripped of surrounding whitespace and matched
exactly and case-sensitively against the label list; a prediction that is not a label is
class -1, which is always wrong. ``accuracy`` is the plain accuracy; ``f1`` is the macro F1
over the *full* label list, including labels absent from golds and predictions (their F1 is
0), i.e. ``sklearn.metrics.f1_score(golds, preds, labels=range(len(labels)),
average="macro", zero_division=0)``. Per label, ``F1 = 2·TP / (2·TP + FP + FN)`` (0 when the
denominator is 0), which is what scikit-learn computes.

A gold that is not in the label list is a data error and raises ``ValueError`` naming it.

The accumulating form keeps a confusion count (gold label x predicted label or "invalid"),
so scoring in chunks equals scoring at once.

>>> classification_scores(["[1]", " [2] ", "2"], ["[1]", "[2]", "[2]"], ["[1]", "[2]"])
{'accuracy': 0.6666666666666666, 'f1': 0.8333333333333333}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["ClassificationAccumulator", "classification_scores", "label_index"]


def label_index(text: Any, labels: Sequence[str]) -> int:
    """Class id of ``text`` in ``labels`` after stripping; -1 when it is not a label.

    >>> label_index(" comedy\\n", ["sci-fi", "comedy"]), label_index("Comedy", ["sci-fi", "comedy"])
    (1, -1)
    """
    if not isinstance(text, str):
        return -1
    try:
        return list(labels).index(text.strip())
    except ValueError:
        return -1


class ClassificationAccumulator:
    """Accumulating accuracy / macro-F1 with a confusion count as state.

    ``confusion[g][p]`` counts gold class ``g`` predicted as ``p``; column ``len(labels)``
    counts predictions outside the label list.

    >>> acc = ClassificationAccumulator(["a", "b", "c"])
    >>> acc.update(["a", "x"], ["a", "b"])
    >>> acc.compute()
    {'accuracy': 0.5, 'f1': 0.3333333333333333}
    >>> acc.n_invalid
    1
    """

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = tuple(labels)
        if not self.labels:
            raise ValueError("ClassificationAccumulator needs a non-empty label list")
        self._index = {lab: i for i, lab in enumerate(self.labels)}
        if len(self._index) != len(self.labels):
            raise ValueError(f"label list has duplicates: {self.labels}")
        self.reset()

    def reset(self) -> None:
        """Forget everything seen so far."""
        n = len(self.labels)
        self.confusion = [[0] * (n + 1) for _ in range(n)]
        self.count = 0

    @property
    def n_invalid(self) -> int:
        """How many predictions were not in the label list (scored as wrong)."""
        return sum(row[-1] for row in self.confusion)

    def update(self, preds: Sequence[Any], golds: Sequence[Any], ids: Sequence[Any] | None = None) -> None:
        """Add aligned predictions and golds (``ids`` only name samples in errors)."""
        if len(preds) != len(golds):
            raise ValueError(f"got {len(preds)} predictions for {len(golds)} golds; they must be aligned")
        index = self._index
        invalid = len(self.labels)
        rows = []
        for i, g in enumerate(golds):
            gi = index.get(g.strip()) if isinstance(g, str) else None
            if gi is None:
                where = f"id {ids[i]!r}" if ids is not None else f"position {i}"
                raise ValueError(
                    f"gold {g!r} at {where} is not one of the {len(self.labels)} labels "
                    f"{list(self.labels)}; check that the golds belong to this task"
                )
            rows.append(gi)
        conf = self.confusion
        for gi, p in zip(rows, preds):
            pi = index.get(p.strip(), invalid) if isinstance(p, str) else invalid
            conf[gi][pi] += 1
        self.count += len(rows)

    def merge(self, other: ClassificationAccumulator) -> None:
        """Add the confusion counts of another accumulator over the same labels."""
        if other.labels != self.labels:
            raise ValueError("cannot merge accumulators over different label lists")
        for row, orow in zip(self.confusion, other.confusion):
            for j, v in enumerate(orow):
                row[j] += v
        self.count += other.count

    def per_label_f1(self) -> list[float]:
        """F1 of every label in list order (0.0 for labels with no TP, FP or FN)."""
        conf = self.confusion
        n = len(self.labels)
        out = []
        for k in range(n):
            tp = conf[k][k]
            fn = sum(conf[k]) - tp
            fp = sum(conf[g][k] for g in range(n)) - tp
            denom = 2 * tp + fp + fn
            out.append(2 * tp / denom if denom else 0.0)
        return out

    def compute(self) -> dict[str, float]:
        """``{"accuracy": ..., "f1": macro F1 over the full label list}``."""
        if not self.count:
            raise ValueError("ClassificationAccumulator.compute(): no samples were added")
        correct = sum(self.confusion[k][k] for k in range(len(self.labels)))
        f1s = self.per_label_f1()
        return {"accuracy": correct / self.count, "f1": sum(f1s) / len(f1s)}

    def __repr__(self) -> str:
        return f"ClassificationAccumulator(labels={len(self.labels)}, count={self.count})"


def classification_scores(preds: Sequence[Any], golds: Sequence[Any], labels: Sequence[str]) -> dict[str, float]:
    """Official LaMP-1/LaMP-2 ``{"accuracy", "f1"}`` of aligned predictions and golds.

    >>> from tagpr_rewards.metrics.labels import LAMP1_LABELS
    >>> classification_scores(["[1]"] * 4, ["[1]", "[2]", "[1]", "[2]"], LAMP1_LABELS)
    {'accuracy': 0.5, 'f1': 0.3333333333333333}
    """
    acc = ClassificationAccumulator(labels)
    acc.update(preds, golds)
    return acc.compute()
