"""The official LaMP ROUGE aggregation: bootstrap median of resample means, seeded.

The LaMP scorer calls Hugging Face ``evaluate``'s ``rouge`` metric with its defaults
(``rouge_types = ["rouge1", "rouge2", "rougeL", "rougeLsum"]``, ``use_aggregator=True``),
which feeds every sample to ``rouge_score.scoring.BootstrapAggregator()`` (1000 resamples)
and reports ``aggregate()[type].mid.fmeasure``: the 50th percentile (median) over resamples
of the mean F-measure. The aggregator draws its resamples from NumPy's global legacy random
state, one ``np.random.choice(n, size=n)`` per resample, rouge type after rouge type.

:func:`rouge_bootstrap` reproduces that with a private ``numpy.random.RandomState(seed)``:
with the same seed it consumes the random stream exactly as the official scorer does after
``np.random.seed(seed)`` (draws for ROUGE-2 and ROUGE-Lsum are made and discarded so that
ROUGE-L sees the same resamples), so its numbers equal the official ones for that seed.

>>> rouge_bootstrap([1.0, 0.0, 0.5], [1.0, 0.0, 0.25], seed=0)
{'rouge-1': 0.5, 'rouge-L': 0.4166666666666667}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["DEFAULT_RESAMPLES", "MAX_RESAMPLES", "OFFICIAL_ROUGE_TYPES", "bootstrap_medians", "check_resamples",
           "rouge_bootstrap"]

#: resamples used by ``rouge_score.scoring.BootstrapAggregator`` by default
DEFAULT_RESAMPLES = 1000
#: the most resamples we run (our bound, 10x the official 1000): time grows with
#: resamples x samples (about 3.5 s per 1000 resamples of 100,000 samples), so
#: ``--bootstrap 1000000000`` would never end
MAX_RESAMPLES = 10_000


def check_resamples(n: Any, what: str = "bootstrap") -> int:
    """``n`` as a number of resamples in ``1..MAX_RESAMPLES``, else a ``ValueError`` saying why.

    >>> check_resamples(1000)
    1000
    >>> check_resamples(10**9)
    Traceback (most recent call last):
    ...
    ValueError: bootstrap: 1000000000 resamples is more than the 10000 we allow (the official scorer uses 1000; time grows with resamples x samples)
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise ValueError(f"{what}: the number of resamples must be an integer, got {n!r}")
    if n < 1:
        raise ValueError(f"{what}: the number of resamples must be positive, got {n}")
    if n > MAX_RESAMPLES:
        raise ValueError(f"{what}: {n} resamples is more than the {MAX_RESAMPLES} we allow (the official scorer "
                         f"uses {DEFAULT_RESAMPLES}; time grows with resamples x samples)")
    return n
#: rouge types the official scorer computes, in the order they consume the random stream
OFFICIAL_ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
_CHUNK_VALUES = 4_000_000  # bound on resample-index matrix size (32 MB of int64)


def bootstrap_medians(
    columns: Sequence[Sequence[float] | None],
    n_samples: int = DEFAULT_RESAMPLES,
    seed: int | None = None,
) -> list[float | None]:
    """Median over ``n_samples`` bootstrap resamples of each column's mean.

    Columns are resampled one after the other from one ``RandomState(seed)`` stream, each
    with ``n_samples`` draws of ``size=len(column)`` indices, as
    ``rouge_score.scoring.BootstrapAggregator`` does per score type. A ``None`` column
    consumes its draws (sized like the others) but yields ``None``.

    >>> bootstrap_medians([[0.0, 1.0]], n_samples=5, seed=1)
    [1.0]
    """
    import numpy as np

    check_resamples(n_samples, "n_samples")
    sizes = {len(c) for c in columns if c is not None}
    if len(sizes) != 1:
        raise ValueError(f"bootstrap columns must be non-empty and of equal length, got sizes {sorted(sizes)}")
    n = sizes.pop()
    if n == 0:
        raise ValueError("cannot bootstrap zero samples")
    rng = np.random.RandomState(seed)
    out: list[float | None] = []
    # np.random.choice(np.arange(n), size=n) == randint(0, n, size=n) on the legacy stream,
    # and a (k, n) randint block draws the same numbers as k successive calls.
    rows_per_chunk = max(1, _CHUNK_VALUES // n)
    # trailing None columns need no draws: nothing after them reads the stream
    last = max(i for i, c in enumerate(columns) if c is not None)
    for pos, col in enumerate(columns):
        if pos > last:
            out.append(None)
            continue
        values = None if col is None else np.asarray(col, dtype=np.float64)
        means = np.empty(n_samples, dtype=np.float64)
        done = 0
        while done < n_samples:
            k = min(rows_per_chunk, n_samples - done)
            idx = rng.randint(0, n, size=(k, n))
            if values is not None:
                means[done:done + k] = values[idx].mean(axis=1)
            done += k
        out.append(None if values is None else float(np.percentile(means, 50)))
    return out


def rouge_bootstrap(
    rouge1: Sequence[float],
    rougeL: Sequence[float],
    n_samples: int = DEFAULT_RESAMPLES,
    seed: int | None = None,
) -> dict[str, float]:
    """The official LaMP ROUGE aggregation of per-sample F-measures, seeded.

    ``seed=None`` draws fresh entropy (run-to-run variation, like the official scorer).

    >>> r = rouge_bootstrap([0.2, 0.4, 0.9, 0.1], [0.2, 0.3, 0.8, 0.1], seed=3)
    >>> sorted(r)
    ['rouge-1', 'rouge-L']
    """
    cols: dict[str, Any] = {"rouge1": rouge1, "rouge2": None, "rougeL": rougeL, "rougeLsum": None}
    med = bootstrap_medians([cols[t] for t in OFFICIAL_ROUGE_TYPES], n_samples=n_samples, seed=seed)
    r1, rl = med[0], med[2]
    assert r1 is not None and rl is not None
    return {"rouge-1": r1, "rouge-L": rl}
