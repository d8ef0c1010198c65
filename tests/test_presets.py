"""Stage presets and config-built rewards."""

from __future__ import annotations

import pickle

import pytest

from tagpr_rewards import build_reward, reward_names
from tagpr_rewards.base import Batch, Reward, RewardOutput
from tagpr_rewards.presets import build_from_config, stage1, stage2

GOOD = ("<understand-task>Pick a tag.</understand-task>"
        "<recall-history>Space films were tagged sci-fi.</recall-history>"
        "<infer-preference>This user calls space stories sci-fi.</infer-preference>"
        "<answer>sci-fi</answer>")


class Fixed(Reward):
    """A stand-in user reward with a known value (the PRMU slot accepts any reward)."""

    name = "fixed"
    low, high = None, None

    def __init__(self, value: float) -> None:
        self.value = value

    def score(self, batch: Batch) -> RewardOutput:
        return RewardOutput([self.value] * len(batch), {"interaction": [self.value] * len(batch)})


def test_stage1_is_format_gated_task_reward():
    r = stage1("LaMP-2")
    out = r([GOOD, GOOD.replace("sci-fi</answer>", "comedy</answer>"), "sci-fi"],
            references=["sci-fi"] * 3)
    assert out.scores == [1.0, 0.0, 0.0]
    assert out.components["base/task"] == [1.0, 0.0, 1.0]  # the task score is kept even when gated
    assert out.reasons[2].startswith("base: gated")


def test_stage2_formula_with_any_reward_in_prmu_slot():
    alpha, beta, gamma = 1.0, 0.5, 0.25
    r = stage2("LaMP-2", prmu=Fixed(0.8), alpha=alpha, beta=beta, gamma=gamma)
    out = r([GOOD], references=["sci-fi"])
    c = out.components
    expected = alpha * c["base"][0] + beta * c["tag"][0] + gamma * c["prmu"][0]
    assert out.scores[0] == pytest.approx(expected)
    assert c["prmu/interaction"] == [0.8]
    assert c["base"] == [1.0] and c["tag"] == [1.0]


def test_stage2_without_prmu_has_no_prmu_term():
    out = stage2("LaMP-2")([GOOD], references=["sci-fi"])
    assert "prmu" not in out.components
    assert out.scores[0] == pytest.approx(1.0 + 0.5 * 1.0)


def test_tag_reward_weights_unknown_term_is_named():
    with pytest.raises(KeyError, match="did you mean 'tag_order'"):
        stage2("LaMP-2", tag_weights={"tag_ordr": 1.0})


def test_build_from_config_preset_and_errors():
    r = build_from_config({"preset": "stage2", "task": "LaMP-3", "schema": "think-answer", "beta": 0.0})
    out = r(["<think>lenient user</think><answer>4</answer>"], references=["5"])
    assert out.scores[0] == pytest.approx(0.75)
    with pytest.raises(ValueError, match="cfg.yaml.*did you mean 'alpha'"):
        build_from_config({"preset": "stage2", "task": "LaMP-2", "alpah": 1}, source="cfg.yaml")
    with pytest.raises(ValueError, match="unknown preset 'stage3'; did you mean 'stage"):
        build_from_config({"preset": "stage3", "task": "LaMP-2"})
    with pytest.raises(ValueError, match="did you mean 'tag_format'"):
        build_from_config({"type": "tag_fromat"})


def test_build_from_config_nested_nodes():
    cfg = {"type": "weighted_sum", "children": {
        "gated": {"type": "gate", "weight": 2.0,
                  "reward": {"type": "lamp_task", "task": "LaMP-2", "schema": "think-answer"},
                  "gate": {"type": "tag_format", "schema": "think-answer"}},
        "order": {"type": "clip", "low": 0.0, "high": 0.5,
                  "reward": {"type": "tag_order", "schema": "think-answer"}},
    }}
    r = build_from_config(cfg)
    out = r(["<think>x</think><answer>comedy</answer>"], references=["comedy"])
    assert out.scores == [2.0 * 1.0 + 0.5]


def test_registry_lists_builtin_rewards_and_builds_by_name():
    names = reward_names()
    for n in ("tag_format", "tag_order", "tag_coverage", "tag_spam", "empty_steps",
              "duplicate_steps", "overlong", "lamp_task", "weighted_sum", "gate", "prmu"):
        assert n in names
    r = build_reward("tag_order", schema="r2p-3")
    assert r.__name__ == "tag_order"


def test_presets_pickle_and_score_identically():
    r = stage2("LaMP-2", prmu=Fixed(0.1))
    r2 = pickle.loads(pickle.dumps(r))
    assert r2([GOOD], references=["sci-fi"]).scores == r([GOOD], references=["sci-fi"]).scores


def test_composite_parses_each_completion_once_per_schema():
    from tagpr_rewards.tags import parser

    calls = {"n": 0}
    real = parser.parse_tags

    def counting(text, schema):
        calls["n"] += 1
        return real(text, schema)

    parser.parse_tags = counting
    try:
        batch = Batch.from_inputs([GOOD, "<answer>x</answer>", "junk"], references=["sci-fi"] * 3)
        stage2("LaMP-2").score(batch)
    finally:
        parser.parse_tags = real
    # three completions, one schema: exactly three parses although eight tag rewards ran
    assert calls["n"] == 3


def test_format_credit_grades_completions_without_tags_and_is_off_by_default():
    from tagpr_rewards.presets import stage1

    texts = ["no tags at all", "an answer", "<answer>sci-fi", "<understand-task>t</understand-task><answer>x</answer>"]
    plain = stage1("LaMP-2")(texts, references=["sci-fi"] * 4)
    assert "format_credit" not in plain.components and plain.scores[:3] == [0.0, 0.0, 0.0]
    shaped = stage1("LaMP-2", format_credit=0.5)(texts, references=["sci-fi"] * 4)
    credit = shaped.components["format_credit"]
    assert credit[0] < credit[1] < credit[2] < credit[3] <= 1.0  # closer to the format: more credit
    assert shaped.scores == [plain.scores[i] + 0.5 * credit[i] for i in range(4)]
    r = build_from_config({"preset": "stage2", "task": "LaMP-2", "format_credit": 0.25})
    assert r.children["format_credit"][1] == 0.25
    with pytest.raises(ValueError, match="format_credit must be >= 0"):
        stage1("LaMP-2", format_credit=-1)
