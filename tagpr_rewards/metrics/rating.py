"""MAE and RMSE of rating predictions, exactly as the official LaMP-3 scorer.

Semantics: the stripped prediction is parsed with Python's ``float``. When parsing fails it
is replaced by whichever of 1.0 and 5.0 is farther from the gold (5.0 when the gold is 3).
No clipping, no rounding. ``nan`` and ``inf`` (also ``"1e999"``) parse as floats in Python and
break the official scorer; here they count as unparseable, are replaced the same way and are
counted (``n_nonfinite``) and logged. ``MAE`` is the mean absolute error, ``RMSE`` the square
root of the mean squared error (scikit-learn's arithmetic).

>>> rating_scores(["4", " 2.5 ", "five"], ["5", "2", "3"])
{'MAE': 1.1666666666666667, 'RMSE': 1.3228756555322954}
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

__all__ = ["RatingAccumulator", "parse_rating", "rating_fallback", "rating_scores"]

logger = logging.getLogger("tagpr_rewards")


def parse_rating(text: Any) -> float | None:
    """The rating in ``text`` as the official scorer reads it; ``None`` if unparseable.

    ``float(text.strip())``; non-finite values (``nan``, ``inf``) are ``None``. Numbers
    (``int``/``float``) are accepted as they are.

    >>> parse_rating(" 4 "), parse_rating("3.5"), parse_rating("4 stars"), parse_rating("nan")
    (4.0, 3.5, None, None)
    """
    if isinstance(text, bool):
        return None
    if isinstance(text, (int, float)):
        value = float(text)
    elif isinstance(text, str):
        try:
            value = float(text.strip())
        except ValueError:
            return None
    else:
        return None
    return value if math.isfinite(value) else None


def _is_nonfinite_number(text: Any) -> bool:
    try:
        return not math.isfinite(float(text.strip() if isinstance(text, str) else text))
    except (ValueError, TypeError):
        return False


def rating_fallback(gold: float) -> float:
    """The value an unparseable prediction is scored as: 1.0 or 5.0, whichever is farther.

    >>> rating_fallback(1.0), rating_fallback(3.0), rating_fallback(4.0)
    (5.0, 5.0, 1.0)
    """
    return 1.0 if abs(1 - gold) > abs(5 - gold) else 5.0


class RatingAccumulator:
    """Accumulating MAE/RMSE; states are sums of absolute and squared errors and counts.

    >>> acc = RatingAccumulator()
    >>> acc.update(["1", "x"], ["2", "4"])
    >>> acc.compute(), acc.n_unparseable
    ({'MAE': 2.0, 'RMSE': 2.23606797749979}, 1)
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget everything seen so far."""
        self.sum_abs = 0.0
        self.sum_sq = 0.0
        self.count = 0
        self.n_unparseable = 0  # includes the non-finite ones
        self.n_nonfinite = 0

    def update(self, preds: Sequence[Any], golds: Sequence[Any], ids: Sequence[Any] | None = None) -> None:
        """Add aligned predictions and golds (``ids`` only name samples in messages)."""
        if len(preds) != len(golds):
            raise ValueError(f"got {len(preds)} predictions for {len(golds)} golds; they must be aligned")
        gvals = []
        for i, g in enumerate(golds):
            gv = parse_rating(g)
            if gv is None:
                where = f"id {ids[i]!r}" if ids is not None else f"position {i}"
                raise ValueError(f"gold rating {g!r} at {where} is not a finite number; check the gold file")
            gvals.append(gv)
        sum_abs = self.sum_abs
        sum_sq = self.sum_sq
        nonfinite: list[str] = []
        for i, (p, gv) in enumerate(zip(preds, gvals)):
            pv = parse_rating(p)
            if pv is None:
                self.n_unparseable += 1
                if _is_nonfinite_number(p):
                    self.n_nonfinite += 1
                    nonfinite.append(repr(ids[i]) if ids is not None else str(i))
                pv = rating_fallback(gv)
            err = pv - gv
            sum_abs += abs(err)
            sum_sq += err * err
        self.sum_abs = sum_abs
        self.sum_sq = sum_sq
        self.count += len(gvals)
        if nonfinite:
            logger.warning(
                "%d rating prediction(s) are nan/inf (%s %s); scored as unparseable "
                "(the official scorer would crash on them)",
                len(nonfinite), "ids" if ids is not None else "positions", ", ".join(nonfinite[:5]),
            )

    def merge(self, other: RatingAccumulator) -> None:
        """Add the states of another accumulator."""
        self.sum_abs += other.sum_abs
        self.sum_sq += other.sum_sq
        self.count += other.count
        self.n_unparseable += other.n_unparseable
        self.n_nonfinite += other.n_nonfinite

    def compute(self) -> dict[str, float]:
        """``{"MAE": ..., "RMSE": ...}``."""
        if not self.count:
            raise ValueError("RatingAccumulator.compute(): no samples were added")
        return {"MAE": self.sum_abs / self.count, "RMSE": math.sqrt(self.sum_sq / self.count)}

    def __repr__(self) -> str:
        return f"RatingAccumulator(count={self.count}, unparseable={self.n_unparseable})"


def rating_scores(preds: Sequence[Any], golds: Sequence[Any]) -> dict[str, float]:
    """Official LaMP-3 ``{"MAE", "RMSE"}`` of aligned predictions and golds.

    >>> rating_scores(["5", "1"], ["4", "1"])
    {'MAE': 0.5, 'RMSE': 0.7071067811865476}
    """
    acc = RatingAccumulator()
    acc.update(preds, golds)
    return acc.compute()
