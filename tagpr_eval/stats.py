"""Confidence intervals for comparing models on the same questions (paired) and across seeds.

Used by ``tagpr-train ablate`` to report every learning claim as mean ± 95% CI:

* :func:`paired_bootstrap` — the difference of two models' mean scores on the *same* questions,
  resampling questions (the pairing removes the questions' own difficulty from the noise);
* :func:`seed_ci` — the mean over independent runs (seeds) with a Student-t interval.

>>> r = paired_bootstrap([0, 1, 0, 0, 0, 1, 0, 1], [1, 1, 0, 1, 0, 1, 1, 1], n_boot=2000, seed=0)
>>> round(r.delta, 3), r.excludes_zero
(0.375, True)
>>> round(seed_ci([0.6, 0.62, 0.64]).half_width, 3)
0.05
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Interval", "PairedDelta", "paired_bootstrap", "relative_bootstrap", "seed_ci", "stratified_bootstrap"]

# two-sided 97.5% quantiles of Student's t for 1..30 degrees of freedom (no scipy needed)
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042]


@dataclass(frozen=True)
class Interval:
    """A mean with a symmetric 95% interval (``half_width`` is ``nan`` for a single value)."""

    mean: float
    half_width: float
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.3f}" if math.isnan(self.half_width) else f"{self.mean:.3f} ± {self.half_width:.3f}"


@dataclass(frozen=True)
class PairedDelta:
    """``b − a`` on the same questions: the point estimate and a percentile bootstrap 95% CI."""

    delta: float
    low: float
    high: float
    n: int

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def __str__(self) -> str:
        return f"{self.delta:+.3f} [{self.low:+.3f}, {self.high:+.3f}]"


def seed_ci(values: Sequence[float]) -> Interval:
    """Mean across seeds with a Student-t 95% half-width (``nan`` with one seed)."""
    xs = [float(v) for v in values]
    n = len(xs)
    if n == 0:
        raise ValueError("seed_ci needs at least one value")
    mean = sum(xs) / n
    if n == 1:
        return Interval(mean, float("nan"), 1)
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    t = _T975[min(n - 1, len(_T975)) - 1]
    return Interval(mean, t * sd / math.sqrt(n), n)


def _resample(n: int, n_boot: int, seed: int):  # type: ignore[no-untyped-def]
    import numpy as np

    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def paired_bootstrap(a: Sequence[float], b: Sequence[float], n_boot: int = 10_000, seed: int = 0) -> PairedDelta:
    """``mean(b) − mean(a)`` over paired questions with a percentile bootstrap 95% CI.

    Args:
        a, b: per-question scores of two models on the same questions, in the same order.
        n_boot: bootstrap resamples; seed: their seed (results are reproducible).
    """
    import numpy as np

    if len(a) != len(b) or not a:
        raise ValueError(f"paired_bootstrap needs two non-empty score lists of one length (got {len(a)}, {len(b)})")
    d = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    idx = _resample(len(d), n_boot, seed)
    boots = d[idx].mean(axis=1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return PairedDelta(float(d.mean()), float(lo), float(hi), len(d))


def relative_bootstrap(a: Sequence[float], b: Sequence[float], n_boot: int = 10_000, seed: int = 0) -> PairedDelta:
    """``mean(b) / mean(a) − 1`` (relative improvement, higher is better) with a paired bootstrap CI."""
    import numpy as np

    if len(a) != len(b) or not a:
        raise ValueError(f"relative_bootstrap needs two non-empty score lists of one length (got {len(a)}, {len(b)})")
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if xa.mean() == 0:
        return PairedDelta(float("nan"), float("nan"), float("nan"), len(xa))
    idx = _resample(len(xa), n_boot, seed)
    ma, mb = xa[idx].mean(axis=1), xb[idx].mean(axis=1)
    ok = ma > 0
    rel = mb[ok] / ma[ok] - 1
    lo, hi = np.percentile(rel, [2.5, 97.5])
    return PairedDelta(float(xb.mean() / xa.mean() - 1), float(lo), float(hi), len(xa))


def stratified_bootstrap(groups: Sequence[tuple[Sequence[float], Sequence[float]]], n_boot: int = 10_000,
                         seed: int = 0) -> PairedDelta:
    """``mean(b − a)`` pooled over groups of paired questions (one group per seed: each seed has
    its own dev questions), with a 95% CI that resamples the questions *within* each group.

    This is the paired bootstrap over every (seed, question) pair with the seeds kept apart: the
    interval reflects the questions, not the spread between seeds (:func:`seed_ci` gives that,
    and with three seeds its Student-t factor of 4.3 makes it wide). For the CI of one model's
    accuracy, pass ``a`` as zeros.

    >>> d = stratified_bootstrap([([0, 0, 1, 1], [1, 1, 1, 1]), ([1, 0], [1, 0])], n_boot=200)
    >>> round(d.delta, 3), d.n
    (0.333, 6)
    """
    import numpy as np

    if not groups:
        raise ValueError("stratified_bootstrap needs at least one group of paired scores")
    diffs = []
    for i, (a, b) in enumerate(groups):
        if len(a) != len(b) or not a:
            raise ValueError(f"stratified_bootstrap: group {i} needs two non-empty score lists of one length "
                             f"(got {len(a)}, {len(b)})")
        diffs.append(np.asarray(b, dtype=float) - np.asarray(a, dtype=float))
    n = sum(len(d) for d in diffs)
    total = np.zeros(n_boot)
    for i, d in enumerate(diffs):
        total += d[_resample(len(d), n_boot, seed + i)].sum(axis=1)
    lo, hi = np.percentile(total / n, [2.5, 97.5])
    return PairedDelta(float(sum(d.sum() for d in diffs) / n), float(lo), float(hi), n)
