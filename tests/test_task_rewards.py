"""LaMP task rewards: extraction, official semantics, robustness, pickling, registry."""

from __future__ import annotations

import math
import pickle

import pytest

import tagpr_rewards.task_rewards  # noqa: F401  (registers the rewards)
from tagpr_rewards.base import Batch
from tagpr_rewards.metrics import rouge_f
from tagpr_rewards.registry import build_reward, reward_names
from tagpr_rewards.task_rewards import (
    LabelMatchReward,
    RatingReward,
    RougeReward,
    batch_answers,
    lamp_task_reward,
    normalize_label,
)

S = "think-answer"


def tagged(answer: str) -> str:
    return f"<think>the user likes this</think><answer>{answer}</answer>"


def test_registered_names() -> None:
    names = reward_names()
    for n in ("lamp_task", "label_match", "rating", "rouge"):
        assert n in names
    r = build_reward("lamp_task", task="LaMP-2", schema=S, lenient=True).scorer("LaMP-2")
    assert isinstance(r, LabelMatchReward) and r.lenient and r.labels is not None and len(r.labels) == 15


def test_mixed_task_batch_scores_each_row_with_its_own_metric() -> None:
    r = build_reward("lamp_task", task="LaMP-2", schema=S)
    out = r([tagged("sci-fi"), tagged("4"), tagged("police arrest man"), tagged("comedy")],
            references=["sci-fi", "5", "Man arrested by police", "sci-fi"],
            task=["LaMP-2", "LaMP_3", "LaMP-4", None])
    assert out.scores[0] == 1.0
    assert out.scores[1] == 0.75  # rating metric, not label match (which would give 0)
    assert out.scores[2] == lamp_task_reward("LaMP-4", schema=S)([tagged("police arrest man")],
                                                                    references=["Man arrested by police"]).scores[0]
    assert out.scores[3] == 0.0  # no task in the row: the default task's label match
    assert out.components["abs_error"] == [None, 1.0, None, None]
    # a one-task reward without a task column scores as before
    assert r([tagged("4")], references=["5"]).scores == [0.0]


def test_unknown_task_in_a_row_costs_that_row_only(caplog: pytest.LogCaptureFixture) -> None:
    r = build_reward("lamp_task", schema=S)
    out = r([tagged("sci-fi"), tagged("sci-fi"), tagged("sci-fi")], references=["sci-fi"] * 3,
            task=["LaMP-2", "LaMP-99", None])
    assert out.scores[0] == 1.0 and out.scores[1] is None and out.scores[2] is None
    assert "unknown task 'LaMP-99'" in out.reasons[1] and "no task" in out.reasons[2]


def test_label_match_strict_is_official() -> None:
    r = lamp_task_reward("LaMP-1", schema=S)
    out = r([tagged("[1]"), tagged(" [2] "), tagged("1"), tagged("[1]."), "[1]"],
            references=["[1]", "[2]", "[1]", "[1]", "[1]"])
    assert out.scores == [1.0, 1.0, 0.0, 0.0, 1.0]
    assert out.components["answer_from_tag"] == [1.0, 1.0, 1.0, 1.0, 0.0]
    assert out.components["valid_label"] == [1.0, 1.0, 0.0, 0.0, 1.0]
    assert "not a label" in out.reasons[2]
    assert out.reasons[4].startswith("answer from fallback-last-line")


def test_label_match_lenient() -> None:
    r = lamp_task_reward("LaMP-2", schema=S, lenient=True)
    out = r([tagged("Sci-Fi."), tagged('"comedy"'), tagged("DARK comedy"), tagged("drama")],
            references=["sci-fi", "comedy", "dark comedy", "comedy"])
    assert out.scores == [1.0, 1.0, 1.0, 0.0]
    assert out.components["valid_label"] == [1.0, 1.0, 1.0, 0.0]
    assert lamp_task_reward("LaMP-1", schema=S, lenient=True)([tagged("1")], references=["[1]"]).scores == [1.0]
    assert normalize_label("(Based on a Book)") == normalize_label("based on a book")


def test_rating_reward() -> None:
    r = lamp_task_reward("LaMP-3", schema=S)
    out = r([tagged("5"), tagged("3.5"), tagged("4 stars"), tagged("nan"), tagged("inf"), tagged("-20"), tagged("1")],
            references=["5", "4", "4", "3", "3", "5", 4])
    assert out.scores == [1.0, 0.875, 0.0, 0.0, 0.0, 0.0, 0.25]
    assert out.components["parsed"] == [1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0]
    # abs_error follows the official scorer (unparseable: farther of 1 and 5)
    assert out.components["abs_error"] == [0.0, 0.5, 3.0, 2.0, 2.0, 25.0, 3.0]
    lenient = RatingReward(lenient=True, schema=S)
    assert lenient([tagged("4 stars"), tagged("rated 2.5/5")], references=["4", "3"]).scores == [1.0, 0.875]
    bad_ref = r([tagged("4")], references=["four"])
    assert bad_ref.scores == [0.0] and "reference" in bad_ref.reasons[0]


def test_rouge_reward_variants() -> None:
    pred, ref = "police arrest man downtown", "Man arrested by police downtown"
    r1, rl = rouge_f(pred, ref)
    assert RougeReward("rouge-1", schema=S)([tagged(pred)], references=[ref]).scores == [r1]
    assert RougeReward("rougeL", schema=S)([tagged(pred)], references=[ref]).scores == [rl]
    mix = lamp_task_reward("LaMP-4", schema=S)([tagged(pred)], references=[ref])
    assert mix.scores[0] == pytest.approx(0.5 * r1 + 0.5 * rl, abs=1e-15)
    assert mix.components["rouge-1"] == [r1] and mix.components["rouge-L"] == [rl]
    w = RougeReward({"rouge-1": 3, "rouge-L": 1}, schema=S)
    assert w.weights == {"rouge-1": 0.75, "rouge-L": 0.25}
    with pytest.raises(KeyError, match="did you mean"):
        RougeReward("rouge-2", schema=S)
    with pytest.raises(ValueError, match="all be zero"):
        RougeReward({"rouge-1": 0}, schema=S)
    with pytest.raises(ValueError, match="generation tasks"):
        lamp_task_reward("LaMP-2", schema=S, rouge="rouge-1")


def test_missing_references_are_not_applicable() -> None:
    r = lamp_task_reward("LaMP-2", schema=S)
    out = r([tagged("comedy")])
    assert out.scores == [None] and "no reference" in out.reasons[0]
    out = r([tagged("comedy"), tagged("comedy"), tagged("comedy")], references=["comedy", None, ["x"]])
    assert out.scores == [1.0, None, None]
    assert "not text" in out.reasons[2]


def test_reference_column_from_dataset() -> None:
    # TRL passes dataset columns as keyword arguments: the column is named "reference"
    r = lamp_task_reward("LaMP-7", schema=S, rouge="rouge-1")
    out = r([tagged("a b c")], reference=["a b c"], user_id=["u1"])
    assert out.scores == [1.0]


def test_bad_completions_never_raise() -> None:
    completions = [None, 42, {"role": "assistant", "content": tagged("comedy")}, "", "<answer>", "x" * 300_000,
                   [{"role": "assistant", "content": "<think>a</think><answer>comedy</answer>"}], b"comedy"]
    for task in ("LaMP-1", "LaMP-2", "LaMP-3", "LaMP-5"):
        r = lamp_task_reward(task, schema=S)
        out = r(completions, references=["comedy"] * len(completions))
        assert len(out.scores) == len(completions)
        assert all(s is not None and math.isfinite(s) and 0.0 <= s <= 1.0 for s in out.scores)
        assert out.scores[0] == 0.0 and "no answer" in out.reasons[0]
        assert "completion is None" in out.reasons[0]
    out = lamp_task_reward("LaMP-2", schema=S)(completions, references=["comedy"] * len(completions))
    assert out.scores[2] == 1.0 and out.scores[6] == 1.0 and out.scores[7] == 1.0


def test_rewards_pickle_and_keep_behaviour() -> None:
    for task in ("LaMP-1", "LaMP-2", "LaMP-2N", "LaMP-3", "LaMP-4"):
        r = lamp_task_reward(task, schema="personalization-9", lenient=task != "LaMP-4")
        r2 = pickle.loads(pickle.dumps(r))
        assert type(r2) is type(r) and vars(r2) == vars(r)
        assert r2.__name__ == r.name
        c = ["<answer>comedy</answer>", "3"]
        assert r2(c, references=["comedy", "3"]).scores == r(c, references=["comedy", "3"]).scores


def test_answers_are_memoised_per_batch() -> None:
    b = Batch.from_inputs([tagged("comedy"), "plain"], references=["comedy", "plain"])
    a1 = batch_answers(b, S)
    assert a1 is batch_answers(b, S)
    assert [a.method for a in a1] == ["tag", "fallback-last-line"]
    r = LabelMatchReward(schema=S)
    assert r.score(b).scores == [1.0, 1.0]


def test_unknown_schema_fails_early() -> None:
    with pytest.raises(KeyError):
        LabelMatchReward(schema="no-such-schema")
