"""Classification and rating kernels against scikit-learn, official LaMP semantics."""

from __future__ import annotations

import logging
import math
import pickle
import random

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, mean_squared_error

from tagpr_rewards.metrics import (
    LAMP1_LABELS,
    LAMP2_MOVIE_TAGS,
    LAMP2_NEWS_CATEGORIES,
    ClassificationAccumulator,
    RatingAccumulator,
    classification_scores,
    label_index,
    parse_rating,
    rating_fallback,
    rating_scores,
)


def _official_classification(preds: list[str], golds: list[str], labels: tuple[str, ...]) -> dict[str, float]:
    """The official LaMP computation, written with scikit-learn."""
    def to_id(x: str) -> int:
        try:
            return labels.index(x.strip())
        except ValueError:
            return -1

    p = [to_id(x) for x in preds]
    g = [to_id(x) for x in golds]
    return {
        "accuracy": float(accuracy_score(g, p)),
        "f1": float(f1_score(g, p, labels=list(range(len(labels))), average="macro", zero_division=0)),
    }


def _random_predictions(rng: random.Random, labels: tuple[str, ...], n: int, n_used: int) -> tuple[list[str], list[str]]:
    used = labels[:n_used]  # a subset of labels, so some labels are absent from everything
    junk = ["", "  ", "Comedy", "sci fi", "[3]", "1", "none", "comedy.", "\tcomedy"]
    golds = [rng.choice(used) + rng.choice(("", " ", "\n")) for _ in range(n)]
    preds = []
    for g in golds:
        u = rng.random()
        if u < 0.4:
            preds.append(" " + g.strip() + " ")
        elif u < 0.8:
            preds.append(rng.choice(labels))
        else:
            preds.append(rng.choice(junk))
    return preds, golds


@pytest.mark.parametrize("labels", [LAMP1_LABELS, LAMP2_MOVIE_TAGS, LAMP2_NEWS_CATEGORIES])
def test_classification_matches_sklearn_on_random_data(labels: tuple[str, ...]) -> None:
    rng = random.Random(len(labels))
    for trial in range(40):
        n = rng.randint(1, 300)
        preds, golds = _random_predictions(rng, labels, n, n_used=rng.randint(1, len(labels)))
        ours = classification_scores(preds, golds, labels)
        ref = _official_classification(preds, golds, labels)
        assert abs(ours["accuracy"] - ref["accuracy"]) <= 1e-12, trial
        assert abs(ours["f1"] - ref["f1"]) <= 1e-12, trial


def test_labels_with_no_support_and_no_prediction_count_as_zero() -> None:
    # only 2 of the 15 movie tags appear anywhere: perfect predictions still score 2/15
    preds = ["comedy", "sci-fi", "comedy"]
    r = classification_scores(preds, preds, LAMP2_MOVIE_TAGS)
    assert r == {"accuracy": 1.0, "f1": 2 / 15}
    assert r == _official_classification(preds, preds, LAMP2_MOVIE_TAGS)


def test_lamp1_sanity_always_first() -> None:
    golds = ["[1]", "[2]"] * 50
    r = classification_scores(["[1]"] * 100, golds, LAMP1_LABELS)
    assert r["accuracy"] == 0.5 and abs(r["f1"] - 1 / 3) < 1e-12


def test_official_string_semantics() -> None:
    assert label_index("  [1]\n", LAMP1_LABELS) == 0
    assert label_index("1", LAMP1_LABELS) == -1  # only "[1]" is the label
    assert label_index("[1].", LAMP1_LABELS) == -1
    assert label_index("Comedy", LAMP2_MOVIE_TAGS) == -1  # case-sensitive
    assert label_index(None, LAMP2_MOVIE_TAGS) == -1
    r = classification_scores(["1", "[2]"], ["[1]", "[2]"], LAMP1_LABELS)
    assert r["accuracy"] == 0.5


def test_invalid_gold_raises_with_position() -> None:
    with pytest.raises(ValueError, match="position 1"):
        classification_scores(["[1]", "[1]"], ["[1]", "[3]"], LAMP1_LABELS)
    acc = ClassificationAccumulator(LAMP1_LABELS)
    with pytest.raises(ValueError, match="id 'q7'"):
        acc.update(["[1]"], ["bad"], ids=["q7"])
    with pytest.raises(ValueError, match="duplicates"):
        ClassificationAccumulator(["a", "a"])


def test_classification_accumulator_chunked_equals_whole() -> None:
    rng = random.Random(11)
    preds, golds = _random_predictions(rng, LAMP2_MOVIE_TAGS, 500, n_used=9)
    whole = classification_scores(preds, golds, LAMP2_MOVIE_TAGS)
    acc = ClassificationAccumulator(LAMP2_MOVIE_TAGS)
    for i in range(0, 500, 37):
        acc.update(preds[i:i + 37], golds[i:i + 37])
    assert acc.compute() == whole
    assert acc.count == 500
    assert acc.n_invalid == sum(label_index(p, LAMP2_MOVIE_TAGS) < 0 for p in preds)
    other = pickle.loads(pickle.dumps(acc))
    other.merge(acc)
    assert other.compute() == whole and other.count == 1000
    acc.reset()
    with pytest.raises(ValueError, match="no samples"):
        acc.compute()


# ----------------------------------------------------------------------------- rating


def _official_rating(preds: list[str], golds: list[str]) -> dict[str, float]:
    """The official LaMP-3 computation (nan/inf treated as unparseable), with scikit-learn."""
    def to_float(x: str, gold: str) -> float:
        try:
            v = float(x.strip())
            if math.isfinite(v):
                return v
        except ValueError:
            pass
        g = float(gold)
        return 1.0 if abs(1 - g) > abs(5 - g) else 5.0

    p = [to_float(x, g) for x, g in zip(preds, golds)]
    g = [float(x) for x in golds]
    return {"MAE": float(mean_absolute_error(g, p)), "RMSE": float(np.sqrt(mean_squared_error(g, p)))}


def test_rating_matches_sklearn_on_random_data() -> None:
    rng = random.Random(3)
    junk = ["", "five", "4 stars", "nan", "inf", "-inf", "NaN", "1e999", "3,5", "[4]", " ", "★★★"]
    for _ in range(60):
        n = rng.randint(1, 300)
        golds = [str(rng.randint(1, 5)) for _ in range(n)]
        preds = []
        for _ in range(n):
            u = rng.random()
            if u < 0.5:
                preds.append(str(rng.randint(1, 5)))
            elif u < 0.75:
                preds.append(f" {rng.uniform(-3, 9):.3f}\n")
            else:
                preds.append(rng.choice(junk))
        ours = rating_scores(preds, golds)
        ref = _official_rating(preds, golds)
        assert abs(ours["MAE"] - ref["MAE"]) <= 1e-12
        assert abs(ours["RMSE"] - ref["RMSE"]) <= 1e-12


def test_rating_official_edge_cases(caplog: pytest.LogCaptureFixture) -> None:
    assert rating_fallback(3.0) == 5.0 and rating_fallback(1.0) == 5.0 and rating_fallback(2.0) == 5.0
    assert rating_fallback(4.0) == 1.0 and rating_fallback(5.0) == 1.0
    assert rating_scores(["x"], ["3"]) == {"MAE": 2.0, "RMSE": 2.0}  # gold 3 -> 5.0
    assert rating_scores(["7"], ["1"]) == {"MAE": 6.0, "RMSE": 6.0}  # no clipping
    assert rating_scores(["4.4"], ["4"])["MAE"] == pytest.approx(0.4, abs=1e-12)  # no rounding
    assert parse_rating(" 1_0 ") == 10.0  # Python float() syntax, as the official scorer
    for bad in ("nan", "inf", "-Infinity", "1e999", "", None, "4 stars"):
        assert parse_rating(bad) is None
    acc = RatingAccumulator()
    with caplog.at_level(logging.WARNING, logger="tagpr_rewards"):
        acc.update(["nan", "inf", "oops", "4"], ["1", "5", "3", "4"], ids=["a", "b", "c", "d"])
    assert acc.n_nonfinite == 2 and acc.n_unparseable == 3
    assert "nan/inf" in caplog.text and "'a'" in caplog.text
    # nan for gold 1 -> 5.0 (err 4), inf for gold 5 -> 1.0 (err 4), oops for gold 3 -> 5.0 (err 2)
    assert acc.compute()["MAE"] == (4 + 4 + 2 + 0) / 4


def test_rating_bad_gold_raises() -> None:
    with pytest.raises(ValueError, match="position 0"):
        rating_scores(["3"], ["three"])
    with pytest.raises(ValueError, match="aligned"):
        rating_scores(["3"], [])


def test_rating_accumulator_chunked_equals_whole() -> None:
    rng = random.Random(5)
    golds = [str(rng.randint(1, 5)) for _ in range(400)]
    preds = [rng.choice(["1", "2", "3.5", "x", "5", "nan"]) for _ in range(400)]
    whole = rating_scores(preds, golds)
    acc = RatingAccumulator()
    for i in range(0, 400, 33):
        acc.update(preds[i:i + 33], golds[i:i + 33])
    chunked = acc.compute()
    assert abs(chunked["MAE"] - whole["MAE"]) <= 1e-12 and abs(chunked["RMSE"] - whole["RMSE"]) <= 1e-12
    m = RatingAccumulator()
    m.merge(acc)
    assert m.count == 400 and m.n_unparseable == acc.n_unparseable
