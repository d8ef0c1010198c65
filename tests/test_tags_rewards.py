"""Tag rewards: formulas, reasons, pickling, registry, one parse per completion, exact order credit."""

from __future__ import annotations

import pickle
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tagpr_rewards.base import Batch, Reward
from tagpr_rewards.registry import build_reward
from tagpr_rewards.tags import (
    TAG_REWARDS,
    DuplicateStepsReward,
    EmptyStepsReward,
    OverlongReward,
    TagCoverageReward,
    TagFormatReward,
    TagOrderReward,
    TagSchema,
    TagSpamReward,
    load_schema,
    order_credit,
)

P9 = "personalization-9"


def chain(*tags: str, content: str = "", answer: str = "sci-fi") -> str:
    parts = []
    for i, t in enumerate(tags):
        body = answer if t == "answer" else (content or f"Step {i} says something specific about {t}.")
        parts.append(f"<{t}>{body}</{t}>")
    return "\n".join(parts)


GOOD = chain("understand-task", "recall-history", "analyze-query", "infer-preference", "verify", "answer")


def test_tag_format() -> None:
    out = TagFormatReward(P9)([GOOD, "<answer>x", None])
    assert out.scores == [1.0, 0.0, 0.0]
    assert out.reasons[0] == "" and out.reasons[1].startswith("unclosed:")
    assert out.reasons[2] == "completion is None"
    assert out.components["n_errors"][:2] == [0.0, 1.0]


def test_tag_order_full_partial_zero() -> None:
    r = TagOrderReward(P9)
    swapped = chain("recall-history", "understand-task", "infer-preference", "answer")
    out = r([GOOD, swapped, "no tags", chain("answer")])
    assert out.scores[0] == 1.0
    # best accepted chains keep 3 of the 4 tags: recall infer answer (shortest, reported) or
    # understand recall infer answer; both give 3 / max(4, len)
    assert out.scores[1] == pytest.approx(3 / 4)
    assert out.components["lcs"][1] == 3 and out.components["nearest_len"][1] == 3
    assert out.scores[2] == 0.0 and out.reasons[2] == "no tags"
    # "answer" alone: shortest accepted chain is recall-history infer-preference answer
    assert out.scores[3] == pytest.approx(1 / 3)


def test_tag_order_long_unaccepted_sequences_score_zero() -> None:
    r = TagOrderReward(P9, max_tags=8)
    long_bad = chain(*(["answer"] + ["recall-history"] * 10))
    out = r([long_bad])
    assert out.scores == [0.0] and "max_tags" in out.reasons[0]
    # accepted long sequences still score 1
    ok = chain(*(["recall-history"] * 10 + ["infer-preference", "answer"]))
    assert r([ok]).scores == [1.0]


def test_tag_coverage() -> None:
    r = TagCoverageReward(P9)  # required: understand-task, recall-history, infer-preference, answer
    out = r([GOOD, chain("recall-history", "answer"), ""])
    assert out.scores == [1.0, 0.5, 0.0]
    assert out.reasons[1] == "missing: understand-task, infer-preference"
    assert out.components["n_required"] == [4.0, 4.0, 4.0]


def test_tag_spam() -> None:
    r = TagSpamReward(P9)  # understand-task max 1, default 4 per tag, 16 tags total
    assert r([GOOD]).scores == [0.0]
    two_understand = chain("understand-task", "understand-task", "recall-history", "infer-preference", "answer")
    out = r([two_understand])
    assert out.scores == [-0.25] and "understand-task x2 (limit 1)" in out.reasons[0]
    spam = chain(*(["recall-history"] * 30 + ["answer"]))
    out = r([spam])
    # 26 over the per-tag limit + 15 over the total limit
    assert out.components["excess"] == [41.0] and out.scores == [-1.0]
    assert TagSpamReward(P9, per_excess=0.01)([spam]).scores == [pytest.approx(-0.41)]


def test_empty_steps() -> None:
    r = EmptyStepsReward(P9, min_chars=10)
    text = chain("recall-history", "infer-preference", "answer").replace(
        "Step 1 says something specific about infer-preference.", " ok ")
    out = r([GOOD, text, chain("answer")])
    assert out.scores == [0.0, -0.5, 0.0]
    assert out.reasons[1] == "near-empty: infer-preference"
    # the answer is not a step: a one-character LaMP-3 rating is fine
    assert r([chain("recall-history", "answer", answer="4")]).scores == [0.0]


def test_duplicate_steps() -> None:
    r = DuplicateStepsReward(P9)
    same = "The user tagged three space films as sci-fi."
    copy = chain("recall-history", "compare-items", "infer-preference", "answer", content=same)
    out = r([GOOD, copy])
    assert out.scores[0] == 0.0
    assert out.scores[1] == pytest.approx(-2 / 3) and out.components["n_duplicates"][1] == 2.0
    near = (f"<recall-history>{same}</recall-history><infer-preference>the USER tagged three space "
            "films as sci-fi!!</infer-preference><answer>x</answer>")
    assert r([near]).scores == [-0.5]
    different = ("<recall-history>The user tagged three space films as sci-fi.</recall-history>"
                 "<infer-preference>This film is about a robot on Mars, so sci-fi.</infer-preference>"
                 "<answer>x</answer>")
    assert r([different]).scores == [0.0]


def test_overlong_uses_original_length() -> None:
    r = OverlongReward(max_chars=1000, buffer=200)
    out = r(["a" * 800, "a" * 900, "a" * 1000, "a" * 10_000])
    assert out.scores == [0.0, -0.5, -1.0, -1.0]
    huge = "a" * 300_000  # beyond the batch truncation: still counts at full length
    b = Batch.from_inputs([huge])
    assert len(b.completions[0]) < 300_000
    out = r.score(b)
    assert out.scores == [-1.0] and out.components["length"] == [300_000.0]
    with pytest.raises(ValueError, match="buffer"):
        OverlongReward(max_chars=10, buffer=20)


def _build(name: str, schema: str) -> Reward:
    # overlong reads no tags, so it takes no schema (an argument it would ignore is refused)
    return build_reward(name) if name == "overlong" else build_reward(name, schema=schema)


def test_overlong_refuses_a_schema() -> None:
    with pytest.raises(TypeError, match="overlong"):
        build_reward("overlong", schema=P9)


@pytest.mark.parametrize("name", sorted(TAG_REWARDS))
def test_non_text_gets_minimum_with_reason(name: str) -> None:
    r = _build(name, "think-answer")
    out = r([None, 3.5, "<think>t is long enough</think><answer>a</answer>"])
    assert out.scores[0] == r.low and out.scores[1] == r.low
    assert out.reasons[0] == "completion is None" and "not text" in out.reasons[1]
    assert all(len(v) == 3 for v in out.components.values())


@pytest.mark.parametrize("name", sorted(TAG_REWARDS))
def test_registered_picklable_named(name: str) -> None:
    r = _build(name, P9)
    assert isinstance(r, TAG_REWARDS[name]) and r.__name__ == name
    r2 = pickle.loads(pickle.dumps(r))
    assert r2([GOOD, "<answer>x"]).scores == r([GOOD, "<answer>x"]).scores


def test_custom_schema_path_in_reward(tmp_path) -> None:
    p = tmp_path / "s.yaml"
    p.write_text("name: s\ntags: {step: S., answer: A.}\nanswer_tag: answer\norder: step+ answer\n")
    assert TagOrderReward(str(p))(["<step>a</step><answer>b</answer>"]).scores == [1.0]


def test_one_parse_per_completion_across_rewards() -> None:
    b = Batch.from_inputs([GOOD, "<answer>x", "junk"])
    rewards = [_build(n, P9) for n in TAG_REWARDS]
    for r in rewards:
        r.score(b)
    parse_keys = [k for k in b._memo if isinstance(k, tuple) and k[0] == "parse"]
    assert parse_keys == [("parse", load_schema(P9).name_key)]
    assert len(b._memo[parse_keys[0]]) == 3
    # a second schema adds exactly one more parse list
    TagFormatReward("think-answer").score(b)
    TagOrderReward("think-answer").score(b)
    assert len([k for k in b._memo if k[0] == "parse"]) == 2


# -- order credit is exact: compare with brute force over the (bounded) language ------------

SMALL = TagSchema.from_dict({"name": "small", "tags": {"a": "", "b": "", "c": "", "d": ""},
                             "answer_tag": "d", "order": "a (b c)* c? d"})


def _lcs(x: tuple[str, ...], y: tuple[str, ...]) -> int:
    from tagpr_rewards.recall import lcs_length  # the textbook DP; the automaton's DP is under test

    return lcs_length(x, y)


@cache
def _language(schema: TagSchema, max_len: int) -> list[tuple[str, ...]]:
    """Every accepted sequence up to ``max_len`` tags (walking the automaton's paths)."""
    aut = schema.automaton
    assert aut is not None
    out = []
    frontier: list[tuple[int, tuple[str, ...]]] = [(0, ())]
    for _ in range(max_len + 1):
        nxt: list[tuple[int, tuple[str, ...]]] = []
        for q, t in frontier:
            if q in aut.final:
                out.append(t)
            nxt.extend((r, t + (aut.symbols[r - 1],)) for r in aut.succ[q])
        frontier = nxt
    return sorted(set(out))


def _brute(schema: TagSchema, seq: tuple[str, ...], max_len: int) -> float:
    return max((_lcs(seq, t) / max(len(seq), len(t)) for t in _language(schema, max_len)), default=0.0)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from("abcd"), min_size=1, max_size=6))
def test_order_credit_matches_brute_force(seq: list[str]) -> None:
    s = tuple(seq)
    assert order_credit(SMALL, s)[0] == pytest.approx(_brute(SMALL, s, 16))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["analyze-request", "build-profile", "answer"]), min_size=1, max_size=5))
def test_order_credit_matches_brute_force_r2p(seq: list[str]) -> None:
    s = load_schema("r2p-3")
    assert order_credit(s, tuple(seq))[0] == pytest.approx(_brute(s, tuple(seq), 3))
