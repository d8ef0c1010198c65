"""LaMP task registry, official scorer and accumulator."""

from __future__ import annotations

import pickle
import random

import pytest
from rouge_score import rouge_scorer

from tagpr_rewards.metrics import LampAccumulator, get_task, list_tasks, score_task
from tagpr_rewards.metrics.labels import LAMP2_MOVIE_TAGS


@pytest.mark.parametrize(
    "spelling, name",
    [
        ("LaMP-2", "LaMP-2"), ("LaMP_2", "LaMP-2"), ("lamp2", "LaMP-2"), ("LAMP 2", "LaMP-2"),
        ("LaMP-2N", "LaMP-2N"), ("LaMP-2-news", "LaMP-2N"), ("lamp_2_news", "LaMP-2N"),
        ("LaMP-1", "LaMP-1"), ("LaMP_7", "LaMP-7"), ("lamp-3", "LaMP-3"),
    ],
)
def test_get_task_spellings(spelling: str, name: str) -> None:
    assert get_task(spelling).name == name


def test_task_specs() -> None:
    assert list_tasks() == ["LaMP-1", "LaMP-2", "LaMP-2N", "LaMP-3", "LaMP-4", "LaMP-5", "LaMP-6", "LaMP-7"]
    t2 = get_task("LaMP-2")
    assert t2.key == "LaMP_2" and t2.kind == "classification" and t2.labels == LAMP2_MOVIE_TAGS
    assert len(t2.labels) == 15 and not t2.legacy
    news = get_task("LaMP-2N")
    assert news.legacy and news.key == "LaMP_2" and news.labels is not None and news.labels[0] == "food & drink"
    assert get_task("LaMP-3").lower_is_better == {"MAE": True, "RMSE": True}
    assert get_task("LaMP-4").lower_is_better == {"rouge-1": False, "rouge-L": False}
    assert get_task("LaMP-1").metrics == ("accuracy", "f1")
    assert get_task(t2) is t2
    assert pickle.loads(pickle.dumps(t2)) == t2
    hash(t2)


def test_unknown_task_did_you_mean() -> None:
    with pytest.raises(KeyError, match="did you mean 'LaMP-3'"):
        get_task("LaMP-33")
    with pytest.raises(KeyError, match="known: LaMP-1"):
        get_task("squad")


def test_result_dict_keys_and_types() -> None:
    cases = {
        "LaMP-1": (["[1]", "[2]"], ["[1]", "[1]"], {"accuracy", "f1"}),
        "LaMP-2": (["comedy"], ["comedy"], {"accuracy", "f1"}),
        "LaMP-2N": (["sports"], ["sports"], {"accuracy", "f1"}),
        "LaMP-3": (["4"], ["5"], {"MAE", "RMSE"}),
        "LaMP-4": (["a b"], ["a c"], {"rouge-1", "rouge-L"}),
        "LaMP-7": ([""], ["x"], {"rouge-1", "rouge-L"}),
    }
    for task, (p, g, keys) in cases.items():
        r = score_task(task, p, g)
        assert set(r) == keys, task
        assert all(type(v) is float for v in r.values()), task


def test_dicts_are_paired_by_id_and_ids_must_match() -> None:
    golds = {"0177": "[1]", "0002": "[2]"}
    assert score_task("LaMP-1", {"0002": "[2]", "0177": "[1]"}, golds)["accuracy"] == 1.0
    with pytest.raises(ValueError, match="'0002'"):
        score_task("LaMP-1", {"0177": "[1]"}, golds)
    with pytest.raises(ValueError, match="not in the golds.*'x'"):
        score_task("LaMP-1", {"0177": "[1]", "0002": "[2]", "x": "[1]"}, golds)
    with pytest.raises(TypeError, match="both as dicts"):
        score_task("LaMP-1", ["[1]", "[2]"], golds)
    with pytest.raises(ValueError, match="aligned"):
        score_task("LaMP-1", ["[1]"], ["[1]", "[2]"])
    with pytest.raises(ValueError, match="nothing to score"):
        score_task("LaMP-1", [], [])
    with pytest.raises(ValueError, match="id '0177'"):
        score_task("LaMP-1", {"0177": "[1]"}, {"0177": "[7]"})
    with pytest.raises(TypeError, match="gold at id '9'"):
        score_task("LaMP-4", {"9": "a"}, {"9": None})
    assert score_task("LaMP-4", {"9": None}, {"9": "a"}) == {"rouge-1": 0.0, "rouge-L": 0.0}


def test_whitespace_is_stripped_and_matching_is_case_sensitive() -> None:
    r = score_task("LaMP-2", [" comedy\n", "Comedy", "sci-fi"], ["comedy", "comedy", " sci-fi "])
    assert r["accuracy"] == 2 / 3


def test_rating_task_official_rules() -> None:
    assert score_task("LaMP-3", ["oops"], ["3"]) == {"MAE": 2.0, "RMSE": 2.0}
    assert score_task("LaMP-3", ["nan", "inf"], ["3", "1"]) == {"MAE": 3.0, "RMSE": pytest.approx(10 ** 0.5)}
    assert score_task("LaMP-3", [4], [5])["MAE"] == 1.0  # numbers are accepted


def _official_rouge_mean(preds: list[str], golds: list[str]) -> dict[str, float]:
    sc = rouge_scorer.RougeScorer(["rouge1", "rougeL"])
    s = [sc.score(g.strip(), p.strip()) for p, g in zip(preds, golds)]
    return {"rouge-1": sum(x["rouge1"].fmeasure for x in s) / len(s),
            "rouge-L": sum(x["rougeL"].fmeasure for x in s) / len(s)}


def test_generation_mean_and_bootstrap() -> None:
    rng = random.Random(0)
    vocab = "the a new study shows how deep learning helps users write better titles".split()
    golds = [" ".join(rng.choice(vocab) for _ in range(rng.randint(3, 15))) for _ in range(200)]
    preds = [" ".join(rng.choice(vocab) for _ in range(rng.randint(0, 15))) for _ in range(200)]
    mean = score_task("LaMP-5", preds, golds)
    ref = _official_rouge_mean(preds, golds)
    assert abs(mean["rouge-1"] - ref["rouge-1"]) <= 1e-12 and abs(mean["rouge-L"] - ref["rouge-L"]) <= 1e-12
    b1 = score_task("LaMP-5", preds, golds, bootstrap=1000, seed=1)
    assert score_task("LaMP-5", preds, golds, bootstrap=True, seed=1) == b1  # True = 1000 resamples
    assert b1 != mean and abs(b1["rouge-1"] - mean["rouge-1"]) < 0.01
    b2 = score_task("LaMP-5", preds, golds, bootstrap=1000, seed=2)
    assert b2 != b1
    # the official scorer never bootstraps accuracy / MAE
    assert score_task("LaMP-1", ["[1]", "[2]"], ["[1]", "[1]"], bootstrap=1000, seed=0) == \
        score_task("LaMP-1", ["[1]", "[2]"], ["[1]", "[1]"])


def test_accumulator_chunks_equal_score_task() -> None:
    rng = random.Random(8)
    for task, make in (
        ("LaMP-2", lambda: rng.choice(LAMP2_MOVIE_TAGS)),
        ("LaMP-3", lambda: str(rng.randint(1, 5))),
        ("LaMP-4", lambda: " ".join(rng.choice("ab cd ef gh ij".split()) for _ in range(rng.randint(1, 8)))),
    ):
        golds = {f"{i:04d}": make() for i in range(300)}
        preds = {k: (make() if rng.random() < 0.9 else "??") for k in golds}
        whole = score_task(task, preds, golds)
        acc = LampAccumulator(task)
        keys = list(golds)
        for i in range(0, 300, 41):
            chunk = keys[i:i + 41]
            acc.update({k: preds[k] for k in chunk}, {k: golds[k] for k in chunk})
        got = acc.compute()
        assert set(got) == set(whole)
        for k in whole:
            assert abs(got[k] - whole[k]) <= 1e-12, (task, k)
        assert acc.stats()["count"] == 300
        acc.reset()
        assert acc.count == 0
