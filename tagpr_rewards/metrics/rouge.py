"""ROUGE-1 and ROUGE-L F-measures, identical to Google's ``rouge_score`` (no stemmer).

The official LaMP scorer computes ROUGE with ``rouge_score.RougeScorer(use_stemmer=False)``
and its default tokenizer. This module reproduces those numbers bit for bit, an order of
magnitude faster, in pure Python:

* tokenisation: ``text.lower()`` first (exactly as ``rouge_score``: ``str.lower`` can map a
  non-ASCII character to ASCII, e.g. ``"İ"`` -> ``"i̇"``), then every run of characters outside
  ``[a-z0-9]`` is a separator. We do it with one ``bytes.translate`` + ``split`` on the UTF-8
  bytes: every non-ASCII character encodes to bytes >= 0x80, which the table maps to a space,
  so the tokens are the same as ``rouge_score``'s regex pipeline;
* ROUGE-1: clipped unigram overlap (``sum_t min(count_ref(t), count_pred(t))``), counted in
  the same pass as the LCS by giving each matching prediction token the lowest unused
  position of its reference bitmask;
* ROUGE-L: LCS length over the whole token sequence with the bit-parallel algorithm of
  Allison & Dix (1986) / Hyyrö (2004): one match bitmask per reference token (Python ints as
  bitsets), then per prediction token ``U = V & M; V = (V + U) | (V - U)``; the LCS length is
  the number of zero bits in the low ``m`` bits of ``V``. O(n) big-int operations instead of
  ``rouge_score``'s O(n*m) Python table;
* precision, recall and F-measure with the same float operations in the same order as
  ``rouge_score.rouge_scorer`` / ``rouge_score.scoring.fmeasure``, including its zero-length
  rules (an empty side scores 0.0).

Example:
    >>> rouge_tokenize("Café au lait, 2 cups!")
    ['caf', 'au', 'lait', '2', 'cups']
    >>> rouge_f("the cat sat on the mat", "the cat lay on a mat")
    (0.6666666666666666, 0.6666666666666666)
    >>> acc = RougeAccumulator()
    >>> acc.update(["a b c"], ["a b d"]); acc.update([""], ["x"])
    >>> acc.compute()
    {'rouge-1': 0.3333333333333333, 'rouge-L': 0.3333333333333333}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "RougeAccumulator",
    "rouge_batch",
    "rouge_f",
    "rouge_per_sample",
    "rouge_tokenize",
]

# bytes.translate tables. _ASCII_TABLE folds A-Z to a-z itself (for ASCII-only text, where
# str.lower() is exactly that); _LOWERED_TABLE is applied after str.lower().
_ALNUM = set(range(48, 58)) | set(range(97, 123))
_LOWERED_TABLE = bytes(c if c in _ALNUM else 32 for c in range(256))
_ASCII_TABLE = bytes(c + 32 if 65 <= c <= 90 else (c if c in _ALNUM else 32) for c in range(256))
# Single-bit masks for the common short reference (dict(zip(tokens, _BITS)) in C).
_BITS = [1 << i for i in range(1024)]


def _tokens(text: str) -> list[bytes]:
    """Tokens as ASCII bytes (the kernel's internal form of :func:`rouge_tokenize`)."""
    if text.isascii():  # O(1) in CPython
        return text.encode("ascii").translate(_ASCII_TABLE).split()
    # lower() first: it may turn non-ASCII characters into ASCII letters ("K" Kelvin -> "k").
    return text.lower().encode("utf-8", "surrogatepass").translate(_LOWERED_TABLE).split()


def rouge_tokenize(text: str) -> list[str]:
    """Tokenise like ``rouge_score``'s default tokenizer without stemming.

    Lowercase, then keep the runs of ``[a-z0-9]``; everything else (punctuation, spaces,
    non-ASCII letters) separates tokens.

    >>> rouge_tokenize("Hello, WORLD! naïve 42x")
    ['hello', 'world', 'na', 've', '42x']
    >>> rouge_tokenize("\\u212a")  # KELVIN SIGN lowercases to ASCII 'k'
    ['k']
    """
    return [t.decode("ascii") for t in _tokens(text)]


def _index_reference(tokens: list[bytes]) -> tuple[int, dict[bytes, int]]:
    """``(m, masks)``: for every distinct token, the bitmask of its positions."""
    m = len(tokens)
    if m <= 12:  # short texts rarely repeat a token: try the C-level build first
        masks = dict(zip(tokens, _BITS))
        if len(masks) == m:
            return m, masks
    masks = {}
    get = masks.get
    if m <= len(_BITS):
        for t, bit in zip(tokens, _BITS):
            masks[t] = get(t, 0) | bit
    else:
        bit = 1
        for t in tokens:
            masks[t] = get(t, 0) | bit
            bit <<= 1
    return m, masks


def rouge_per_sample(
    preds: Sequence[str], refs: Sequence[str], backend: str = "auto"
) -> tuple[list[float], list[float]]:
    """Per-sample ``(rouge1_f, rougeL_f)`` lists for aligned predictions and references.

    This is the one kernel behind every function and class here. References that occur more
    than once in the batch (e.g. the GRPO group of one prompt) are indexed once.

    Args:
        preds, refs: aligned strings.
        backend: ``"auto"`` (default: ``"rouge_score_rs"`` when that package is installed,
            else ``"python"``), ``"python"`` (this module's pure-Python kernel) or
            ``"rouge_score_rs"``: the Rust package ``rouge-score-rs`` (``score_batch`` on all
            cores), which gives bit-identical numbers on our parity tests (10,000 random pairs
            with punctuation, digits, accents, non-ASCII and empty strings) and is ~2.7x faster.

    >>> rouge_per_sample(["a b", ""], ["b a", "a"])
    ([1.0, 0.0], [0.5, 0.0])
    """
    if len(preds) != len(refs):
        raise ValueError(f"got {len(preds)} predictions for {len(refs)} references; they must be aligned")
    if backend == "auto":
        if _rs_available() and all(type(x) is str for x in preds) and all(type(x) is str for x in refs):
            try:
                return _rouge_score_rs(preds, refs)
            except (UnicodeError, ValueError, TypeError):
                pass  # e.g. lone surrogates cannot cross into Rust: the Python kernel takes them
        backend = "python"
    if backend != "python":
        if backend != "rouge_score_rs":
            raise ValueError(f"unknown ROUGE backend {backend!r}; use 'auto', 'python' or 'rouge_score_rs'")
        return _rouge_score_rs(preds, refs)
    out1: list[float] = []
    outl: list[float] = []
    try:
        _kernel(preds, refs, out1.append, outl.append)
    except (AttributeError, TypeError):
        _check_texts(preds, "preds")
        _check_texts(refs, "refs")
        raise
    return out1, outl


def _kernel(preds: Sequence[str], refs: Sequence[str], add1: Any, addl: Any) -> None:
    # _tokens and _index_reference are inlined for the common short texts (this loop is the
    # hot path of evaluation and of the ROUGE reward).
    ref_cache: dict[str, tuple[int, dict[bytes, int]]] = {}
    table = _ASCII_TABLE
    bits = _BITS
    for pred, ref in zip(preds, refs):
        index = ref_cache.get(ref)
        if index is None:
            rtoks = ref.encode("ascii").translate(table).split() if ref.isascii() else _tokens(ref)
            m = len(rtoks)
            masks = dict(zip(rtoks, bits)) if m <= 12 else {}
            if len(masks) != m:  # repeated tokens (or a long text): OR the positions together
                if m <= len(bits):
                    masks = {}
                    get = masks.get
                    for t, bit in zip(rtoks, bits):
                        masks[t] = get(t, 0) | bit
                else:
                    m, masks = _index_reference(rtoks)
            index = ref_cache[ref] = (m, masks)
        else:
            m, masks = index
        ptoks = pred.encode("ascii").translate(table).split() if pred.isascii() else _tokens(pred)
        n = len(ptoks)
        if not m or not n:
            add1(0.0)
            addl(0.0)
            continue
        # One pass over the prediction tokens found in the reference (absent tokens change
        # nothing for either metric).
        # ROUGE-L: bit-parallel LCS (Allison-Dix / Hyyro): V starts all ones; per token with
        # match mask M: U = V & M; V = (V + U) | (V - U). Carries above bit m never reach the
        # low m bits, so V is masked once at the end; LCS = zeros among the low m bits.
        # ROUGE-1: clipped unigram overlap = greedy matching of each prediction token to an
        # unused reference position of the same token (lowest free bit of M & ~used).
        full = (1 << m) - 1
        v = full
        used = 0
        for mask in filter(None, map(masks.get, ptoks)):
            u = v & mask
            v = (v + u) | (v - u)
            free = mask & ~used
            used |= free & -free
        inter = used.bit_count()
        lcs = m - (v & full).bit_count()
        # rouge_score: precision = hits / max(n, 1), recall = hits / max(m, 1) (n, m >= 1 here);
        # F = rouge_score.scoring.fmeasure, same operations in the same order.
        p = inter / n
        r = inter / m
        add1(2 * p * r / (p + r) if p + r > 0 else 0.0)
        p = lcs / n
        r = lcs / m
        addl(2 * p * r / (p + r) if p + r > 0 else 0.0)


def rouge_f(pred: str, ref: str) -> tuple[float, float]:
    """ROUGE-1 F and ROUGE-L F of one prediction against one reference.

    Same numbers as ``rouge_score.rouge_scorer.RougeScorer(["rouge1", "rougeL"])
    .score(ref, pred)`` (``fmeasure`` fields). Note the argument order: prediction first.

    >>> rouge_f("police arrest man", "Man arrested by police")
    (0.5714285714285715, 0.28571428571428575)
    >>> rouge_f("", "anything")
    (0.0, 0.0)
    """
    r1, rl = rouge_per_sample((pred,), (ref,))
    return r1[0], rl[0]


class RougeAccumulator:
    """Accumulating ROUGE-1/ROUGE-L F means (torchmetrics-style update/compute/reset).

    States are two sums and a count, so memory stays constant however many batches are fed.

    >>> acc = RougeAccumulator()
    >>> acc.update(["a b"], ["a b"])
    >>> acc.update(["a"], ["b"])
    >>> acc.compute(), acc.count
    ({'rouge-1': 0.5, 'rouge-L': 0.5}, 2)
    """

    def __init__(self, backend: str = "auto") -> None:
        self.backend = backend
        self.reset()

    def reset(self) -> None:
        """Forget everything seen so far."""
        self.sum_rouge1 = 0.0
        self.sum_rougeL = 0.0
        self.count = 0

    def update(self, preds: Sequence[str], refs: Sequence[str]) -> None:
        """Add aligned predictions and references."""
        r1, rl = rouge_per_sample(preds, refs, backend=self.backend)
        self.add_scores(r1, rl)

    def add_scores(self, rouge1: Sequence[float], rougeL: Sequence[float]) -> None:
        """Add already computed per-sample F-measures (e.g. from :func:`rouge_per_sample`)."""
        self.sum_rouge1 = sum(rouge1, self.sum_rouge1)
        self.sum_rougeL = sum(rougeL, self.sum_rougeL)
        self.count += len(rouge1)

    def merge(self, other: RougeAccumulator) -> None:
        """Add the states of another accumulator (e.g. from another worker)."""
        self.sum_rouge1 += other.sum_rouge1
        self.sum_rougeL += other.sum_rougeL
        self.count += other.count

    def compute(self) -> dict[str, float]:
        """``{"rouge-1": mean F, "rouge-L": mean F}``; raises ValueError when empty."""
        if not self.count:
            raise ValueError("RougeAccumulator.compute(): no samples were added")
        return {"rouge-1": self.sum_rouge1 / self.count, "rouge-L": self.sum_rougeL / self.count}

    def __repr__(self) -> str:
        return f"RougeAccumulator(count={self.count})"


def rouge_batch(preds: Sequence[str], refs: Sequence[str], backend: str = "auto") -> dict[str, float]:
    """Mean ROUGE-1 F and ROUGE-L F over aligned predictions and references.

    The plain mean (the official scorer's bootstrap median is
    :func:`tagpr_rewards.metrics.bootstrap.rouge_bootstrap`); per-sample values come from
    :func:`rouge_per_sample`.

    >>> rouge_batch(["a b", "c"], ["a b", "d"])
    {'rouge-1': 0.5, 'rouge-L': 0.5}
    """
    acc = RougeAccumulator(backend)
    acc.update(preds, refs)
    return acc.compute()


_RS_SCORERS: list[Any] = []
_RS_AVAILABLE: list[bool] = []


def _rs_available() -> bool:
    if not _RS_AVAILABLE:
        import importlib.util

        _RS_AVAILABLE.append(importlib.util.find_spec("rouge_score_rs") is not None)
    return _RS_AVAILABLE[0]


def _rouge_score_rs(preds: Sequence[str], refs: Sequence[str]) -> tuple[list[float], list[float]]:
    if not _RS_SCORERS:
        try:
            from rouge_score_rs import rouge_scorer
        except ImportError as e:
            raise ImportError(
                "backend='rouge_score_rs' needs the optional package: pip install rouge-score-rs"
            ) from e
        _RS_SCORERS.append(rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=False))
    _check_texts(preds, "preds")
    _check_texts(refs, "refs")
    scores = _RS_SCORERS[0].score_batch(list(refs), list(preds))
    return [float(s["rouge1"].fmeasure) for s in scores], [float(s["rougeL"].fmeasure) for s in scores]


def _check_texts(values: Sequence[Any], what: str) -> None:
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise TypeError(f"{what}[{i}] is {type(v).__name__} ({v!r:.40}), expected str")
