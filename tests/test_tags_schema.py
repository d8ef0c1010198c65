"""Tag schemas: shipped YAML, custom files, validation errors, order compilation."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tagpr_rewards.tags import TagSchema, list_schemas, load_schema

NATURAL_CHAINS = [
    "understand-task recall-history infer-preference answer",
    "understand-task recall-history analyze-query infer-preference verify answer",
    "understand-task analyze-query recall-history extract-preference compare-items infer-preference answer",
    "recall-history extract-preference infer-preference compare-items resolve-conflict verify answer",
    "understand-task recall-history infer-preference analyze-query infer-preference answer",
]
REJECTED_CHAINS = [
    "answer understand-task recall-history infer-preference",  # answer first
    "recall-history understand-task infer-preference answer",  # understand late
    "understand-task infer-preference answer",  # inference without evidence
    "understand-task recall-history verify infer-preference answer",  # verify in the middle
    "understand-task recall-history infer-preference",  # no answer
    "understand-task recall-history infer-preference recall-history answer",  # ends on evidence
]


def test_shipped_schemas_listed_and_loadable() -> None:
    assert list_schemas() == ["personalization-9", "r2p-3", "think-answer"]
    for name in list_schemas():
        s = load_schema(name)
        assert s.name == name
        assert s.answer_tag in s.tag_names
        assert s.order is not None and s.automaton is not None
        assert set(s.required) <= set(s.tag_names)
        assert all(meaning for _, meaning in s.tags), f"{name}: every tag has a one-line meaning"


def test_personalization9_is_our_nine_tag_reconstruction() -> None:
    s = load_schema("personalization-9")
    assert len(s.tags) == 9
    assert "not public" in s.provenance and "Ours" in s.provenance
    text = (Path(__file__).parents[1] / "tagpr_rewards/tags/schemas/personalization-9.yaml").read_text()
    assert "OUR reconstruction" in text


@pytest.mark.parametrize("chain", NATURAL_CHAINS)
def test_personalization9_accepts_natural_chains(chain: str) -> None:
    assert load_schema("personalization-9").accepts(chain.split())


@pytest.mark.parametrize("chain", REJECTED_CHAINS)
def test_personalization9_rejects_bad_orders(chain: str) -> None:
    assert not load_schema("personalization-9").accepts(chain.split())


def test_r2p_and_think_answer_orders() -> None:
    r2p = load_schema("r2p-3")
    assert r2p.accepts(["analyze-request", "build-profile", "answer"])
    assert not r2p.accepts(["build-profile", "analyze-request", "answer"])
    ta = load_schema("think-answer")
    assert ta.accepts(["think", "answer"]) and not ta.accepts(["think", "think", "answer"])
    assert not ta.allow_text_outside


def test_cached_hashable_picklable() -> None:
    s = load_schema("personalization-9")
    assert load_schema("personalization-9") is s
    assert load_schema(s) is s
    t = pickle.loads(pickle.dumps(s))
    assert t == s and hash(t) == hash(s) and t.name_key == s.name_key
    assert t.accepts(NATURAL_CHAINS[0].split())
    assert {s: 1}[t] == 1


def test_roundtrip_to_dict() -> None:
    for name in list_schemas():
        s = load_schema(name)
        t = TagSchema.from_dict(s.to_dict())
        assert t == TagSchema.from_dict(s.to_dict()) and t.name_key == s.name_key


def test_unknown_name_has_did_you_mean() -> None:
    with pytest.raises(KeyError, match="did you mean 'r2p-3'"):
        load_schema("r2p3")


CUSTOM = """
name: custom
tags:
  plan: Plan the answer.
  check: Check it.
  answer: The answer.
answer_tag: answer
wrapper: think
required: [plan, answer]
max_count: {plan: 2}
order: plan+ check? answer
allow_text_outside: false
"""


def test_custom_yaml_schema(tmp_path: Path) -> None:
    p = tmp_path / "custom.yaml"
    p.write_text(CUSTOM)
    s = load_schema(p)
    assert s.name == "custom" and s.wrapper == "think" and s.limit("plan") == 2 and s.limit("check") is None
    assert s.accepts(["plan", "plan", "check", "answer"]) and not s.accepts(["check", "answer"])
    assert load_schema(str(p)) is s  # cached by path and mtime
    assert s.source == str(p.resolve())


BAD = [
    ("unknown key", CUSTOM + "colour: blue\n", "unknown key 'colour'"),
    ("misspelt key", CUSTOM.replace("required:", "requird:"), "did you mean 'required'"),
    ("answer not a tag", CUSTOM.replace("answer_tag: answer", "answer_tag: final"),
     "answer_tag 'final' is not among the tags"),
    ("bad order regex", CUSTOM.replace("order: plan+ check? answer", "order: (plan+ check? answer"),
     "'(' is never closed"),
    ("dangling operator", CUSTOM.replace("order: plan+ check? answer", "order: + plan answer"),
     "nothing to apply to"),
    ("bad order char", CUSTOM.replace("order: plan+ check? answer", "order: plan{2} answer"),
     "unexpected character '{'"),
    ("unknown tag in order", CUSTOM.replace("order: plan+ check? answer", "order: plan+ chek answer"),
     "unknown tag 'chek'; did you mean 'check'"),
    ("order without answer", CUSTOM.replace("order: plan+ check? answer", "order: plan+ check?"),
     "must mention the answer tag"),
    ("required unknown", CUSTOM.replace("required: [plan, answer]", "required: [plan, verify]"),
     "'required' names unknown tag 'verify'"),
    ("bad max_count", CUSTOM.replace("max_count: {plan: 2}", "max_count: {plan: 0}"),
     "positive integer"),
    ("bad tag name", CUSTOM.replace("  check: Check it.", "  '1check': Check it."), "bad tag name '1check'"),
    ("wrapper is a tag", CUSTOM.replace("wrapper: think", "wrapper: plan"), "must not also be listed"),
    ("missing tags", "name: x\nanswer_tag: a\n", "missing required key 'tags'"),
    ("not a mapping", "- a\n- b\n", "expected a mapping"),
    ("bad yaml", "name: [unclosed\n", "not valid YAML"),
    ("bad unknown_tags", CUSTOM + "unknown_tags: ignore\n", "'unknown_tags' must be"),
]


@pytest.mark.parametrize(("label", "text", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_schema_errors_name_file_and_problem(tmp_path: Path, label: str, text: str, message: str) -> None:
    p = tmp_path / "bad_schema.yaml"
    p.write_text(text)
    with pytest.raises(ValueError) as exc:
        load_schema(p)
    assert str(p.resolve()) in str(exc.value) or "bad_schema.yaml" in str(exc.value)
    assert message in str(exc.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="file not found"):
        load_schema(tmp_path / "nope.yaml")


# -- the automaton agrees with the Python regex compiled from the same expression -----------

ORDERS = [
    "a b c",
    "a? (b | c)+ d* c",
    "(a b)* (c | a c?)+ b?",
    "a (b | (c d)+)* a?",
    "((a | b) c?)+ d",
    "",
]


def _schema(order: str) -> TagSchema:
    order = f"({order}) d" if order else "d"
    return TagSchema.from_dict({"name": "t", "tags": {"a": "", "b": "", "c": "", "d": ""},
                                "answer_tag": "d", "order": order})


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ORDERS), st.lists(st.sampled_from("abcd"), max_size=12))
def test_automaton_matches_python_regex(order: str, seq: list[str]) -> None:
    s = _schema(order)
    enc = s.encode(seq)
    assert enc is not None and s.order_regex is not None
    assert s.accepts(seq) == bool(re.fullmatch(s.order_regex, enc))
