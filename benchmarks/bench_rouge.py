"""ROUGE-1 + ROUGE-L on LaMP-length pairs: ours vs rouge_score (the official kernel) vs rouge_score_rs.

Run:
    pytest benchmarks/bench_rouge.py -o python_files='bench_*.py' --benchmark-only \
        --benchmark-group-by=group --benchmark-columns=min,median,mean,rounds

Every contender scores the same 2,000 (prediction, reference) pairs of 5-30 words (headline /
title / tweet length, Zipfian English-like vocabulary, capitals and punctuation, predictions
that overlap their reference like a model output does). Each is checked to give the same
scores before it is timed. Figures: docs/benchmarks/metrics.md.
"""

from __future__ import annotations

import random

import pytest
from rouge_score import rouge_scorer

from tagpr_rewards.metrics import rouge_f, rouge_per_sample

N_PAIRS = 2000
_COMMON = ("the a of to in and for on is with new how at by from as its after over up more will "
           "be are us your what why best can this you first police man day study says city").split()


def lamp_like_pairs(n: int = N_PAIRS, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    syll = ["ra", "to", "mi", "ne", "ko", "sa", "li", "ver", "den", "gar", "pol", "tic", "ex", "an", "us"]
    vocab = list(_COMMON) + ["".join(rng.choice(syll) for _ in range(rng.randint(1, 4))) for _ in range(20000)]
    weights = [1.0 / (i + 1) for i in range(len(vocab))]  # Zipf

    def words(k: int) -> list[str]:
        return rng.choices(vocab, weights, k=k)

    def render(ws: list[str]) -> str:
        out = []
        for w in ws:
            if rng.random() < 0.2:
                w = w.capitalize()
            if rng.random() < 0.08:
                w += rng.choice([",", ":", "'s", "!", "?"])
            out.append(w)
        return " ".join(out) + rng.choice(["", ".", "", "!"])

    preds, refs = [], []
    for _ in range(n):
        ref = words(rng.randint(5, 30))
        pred = [w if rng.random() < 0.5 else words(1)[0] for w in ref]
        if rng.random() < 0.3:
            rng.shuffle(pred)
        k = rng.randint(5, 30)
        pred = (pred + words(k))[:k]
        preds.append(render(pred))
        refs.append(render(ref))
    return preds, refs


PREDS, REFS = lamp_like_pairs()
_RS = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=False)
EXPECTED = [(s["rouge1"].fmeasure, s["rougeL"].fmeasure) for s in (_RS.score(r, p) for p, r in zip(PREDS, REFS))]


def _rouge_score() -> list[tuple[float, float]]:
    out = []
    for p, r in zip(PREDS, REFS):
        s = _RS.score(r, p)
        out.append((s["rouge1"].fmeasure, s["rougeL"].fmeasure))
    return out


def _ours_batch() -> list[tuple[float, float]]:
    r1, rl = rouge_per_sample(PREDS, REFS)
    return list(zip(r1, rl))


def _ours_per_pair() -> list[tuple[float, float]]:
    return [rouge_f(p, r) for p, r in zip(PREDS, REFS)]


def _ours_rs_backend() -> list[tuple[float, float]]:
    r1, rl = rouge_per_sample(PREDS, REFS, backend="rouge_score_rs")
    return list(zip(r1, rl))


@pytest.mark.parametrize(
    "name, fn",
    [("rouge_score (official)", _rouge_score), ("tagpr batch", _ours_batch), ("tagpr per-pair", _ours_per_pair),
     ("tagpr backend=rouge_score_rs", _ours_rs_backend)],
)
def test_rouge_lamp_pairs(benchmark, name, fn) -> None:  # type: ignore[no-untyped-def]
    if "rouge_score_rs" in name:
        pytest.importorskip("rouge_score_rs")
    benchmark.group = f"ROUGE-1+ROUGE-L, {N_PAIRS} LaMP-length pairs"
    benchmark.name = name
    assert fn() == EXPECTED
    benchmark(fn)


def test_rouge_score_rs(benchmark) -> None:  # type: ignore[no-untyped-def]
    rs = pytest.importorskip("rouge_score_rs.rouge_scorer")
    scorer = rs.RougeScorer(["rouge1", "rougeL"], use_stemmer=False)

    def per_pair() -> list[tuple[float, float]]:
        out = []
        for p, r in zip(PREDS, REFS):
            s = scorer.score(r, p)
            out.append((s["rouge1"].fmeasure, s["rougeL"].fmeasure))
        return out

    benchmark.group = f"ROUGE-1+ROUGE-L, {N_PAIRS} LaMP-length pairs"
    benchmark.name = "rouge_score_rs per-pair"
    assert per_pair() == EXPECTED
    benchmark(per_pair)


def test_rouge_score_rs_batch(benchmark) -> None:  # type: ignore[no-untyped-def]
    rs = pytest.importorskip("rouge_score_rs.rouge_scorer")
    scorer = rs.RougeScorer(["rouge1", "rougeL"], use_stemmer=False)

    def batch() -> list[tuple[float, float]]:
        return [(s["rouge1"].fmeasure, s["rougeL"].fmeasure) for s in scorer.score_batch(REFS, PREDS)]

    benchmark.group = f"ROUGE-1+ROUGE-L, {N_PAIRS} LaMP-length pairs"
    benchmark.name = "rouge_score_rs score_batch (all cores)"
    assert batch() == EXPECTED
    benchmark(batch)
