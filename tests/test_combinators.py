"""Combinators: weighted sum, gate, clip/scale, function wrapper, failure isolation, pickling."""

from __future__ import annotations

import math
import pickle

import pytest

from tagpr_rewards.base import Batch, Reward, RewardOutput
from tagpr_rewards.combinators import Clip, Gate, RewardFunction, Scale, WeightedSum


class Const(Reward):
    name = "const"

    def __init__(self, values: list[float | None], reason: str = "") -> None:
        self.values = values
        self.reason = reason

    def score(self, batch: Batch) -> RewardOutput:
        return RewardOutput(list(self.values[: len(batch)]), {"raw": list(self.values[: len(batch)])},
                            [self.reason] * len(batch))


class Boom(Reward):
    name = "boom"

    def score(self, batch: Batch) -> RewardOutput:
        raise RuntimeError("kaboom")


def module_level_len(completions, **kw):
    return [float(len(c)) for c in completions]


def test_weighted_sum_weights_and_components():
    r = WeightedSum({"a": (Const([1.0, 0.0]), 2.0), "b": (Const([0.5, 0.5]), -1.0)})
    out = r(["x", "y"])
    assert out.scores == [1.5, -0.5]
    assert out.components["a"] == [1.0, 0.0]
    assert out.components["b/raw"] == [0.5, 0.5]


def test_weighted_sum_none_handling():
    r = WeightedSum({"a": Const([None, None]), "b": Const([1.0, None])})
    assert r(["x", "y"]).scores == [1.0, None]
    r0 = WeightedSum({"a": Const([None, None]), "b": Const([1.0, None])}, none_as=0.0)
    assert r0(["x", "y"]).scores == [1.0, 0.0]


def test_non_finite_child_scores_are_not_applicable():
    r = WeightedSum({"a": Const([math.nan, math.inf]), "b": Const([1.0, 2.0])})
    assert r(["x", "y"]).scores == [1.0, 2.0]


def test_gate_credits_only_where_gate_passes_and_says_why():
    g = Gate(Const([0.7, 0.9]), Const([1.0, 0.0], reason="missing answer"), fail_score=0.0,
             reward_name="task", gate_name="format")
    out = g(["x", "y"])
    assert out.scores == [0.7, 0.0]
    assert out.reasons[1] == "gated: missing answer"
    # both children's scores stay visible, also where the gate failed
    assert out.components["task"] == [0.7, 0.9]
    assert out.components["format"] == [1.0, 0.0]


def test_scale_and_clip():
    assert Scale(Const([1.0, None]), scale=2.0, shift=-1.0)(["a", "b"]).scores == [1.0, None]
    assert Clip(Const([5.0, -5.0]), low=-1, high=1)(["a", "b"]).scores == [1.0, -1.0]
    with pytest.raises(ValueError):
        Clip(Const([0.0]), low=1, high=0)


def test_failing_child_does_not_kill_the_step(caplog):
    r = WeightedSum({"ok": Const([1.0]), "bad": Boom()})
    out = r(["x"])
    assert out.scores == [1.0]
    assert out.components["bad"] == [None]
    assert "kaboom" in out.reasons[0]
    assert any("kaboom" in rec.getMessage() for rec in caplog.records)


def test_function_wrapper_and_bad_function():
    assert RewardFunction(module_level_len)(["ab", ""]).scores == [2.0, 0.0]
    bad = RewardFunction(lambda c, **k: [1.0])  # wrong length
    assert bad(["a", "b"]).scores == [None, None]


def test_memo_shared_across_children():
    batch = Batch.from_inputs(["abc", "de"])
    calls = []

    def compute():
        calls.append(1)
        return [1, 2]

    assert batch.memo("k", compute) == [1, 2]
    assert batch.memo("k", compute) == [1, 2]
    assert len(calls) == 1


def test_composites_pickle():
    r = WeightedSum({"a": (Const([1.0]), 2.0), "g": Gate(Const([1.0]), Const([1.0]))})
    r2 = pickle.loads(pickle.dumps(r))
    assert r2(["x"]).scores == r(["x"]).scores
    assert r2.__name__ == "weighted_sum"


def test_batch_rejects_misaligned_columns():
    with pytest.raises(ValueError, match="references"):
        Batch.from_inputs(["a", "b"], references=["x"])


def test_non_text_completions_are_normalised():
    b = Batch.from_inputs([None, 3, [{"role": "assistant", "content": "hi"}], b"x"])
    assert b.completions == ["", "", "hi", "x"]
    assert b.problems[0] == "completion is None"
    assert b.problems[1].startswith("completion is not text")


class FailsOn(Reward):
    """Raises when any completion of its batch is ``bad`` (a per-sample failure)."""

    name = "fragile"

    def score(self, batch):
        if "bad" in batch.completions:
            raise ValueError("cannot score 'bad'")
        return RewardOutput([1.0] * len(batch), {"c": [0.5] * len(batch)})


def test_a_failing_sample_costs_only_itself_in_every_combinator(caplog):
    import logging

    comps = ["ok", "ok", "bad", "ok", "ok"]
    ids = [f"s{i}" for i in range(5)]
    wrapped = {
        "weighted_sum": WeightedSum({"f": (FailsOn(), 2.0)}),
        "gate": Gate(FailsOn(), Const([1.0] * 5), gate_name="g", reward_name="r"),
        "scale": WeightedSum({"s": Scale(FailsOn(), 3.0)}),
        "clip": WeightedSum({"c": Clip(FailsOn(), 0.0, 0.5)}),
        "nested": WeightedSum({"outer": WeightedSum({"inner": FailsOn()})}),
        "function": WeightedSum({"fn": RewardFunction(_fails_on_bad)}),
    }
    for kind, reward in wrapped.items():
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="tagpr_rewards"):
            out = reward(comps, id=ids)
        good = [out.scores[i] for i in (0, 1, 3, 4)]
        assert None not in good and len(set(good)) == 1, kind
        assert out.errors[2] and "cannot score 'bad'" in out.errors[2], kind
        assert out.errors[:2] == ["", ""] and out.errors[3:] == ["", ""], kind
        errs = [r for r in caplog.records if r.levelname == "ERROR"]
        assert len(errs) == 1 and "s2" in errs[0].getMessage(), kind  # logged once, naming the sample


def _fails_on_bad(completions, **kw):
    if "bad" in completions:
        raise ValueError("cannot score 'bad'")
    return [1.0] * len(completions)


def test_metadata_keys_never_collide_with_the_contract_arguments():
    def sees(completions, prompts=None, **kw):
        return [1.0 if p == "real prompt" else 0.0 for p in prompts]

    b = Batch.from_columns(["x"], ["real prompt"], columns={"prompts": ["meta"], "completions": ["meta"]})
    assert b.prompts == ["real prompt"] and b.columns["completions"] == ["meta"]
    out = WeightedSum({"f": RewardFunction(sees)}).score(b)
    assert out.scores == [1.0] and out.errors == [""]
