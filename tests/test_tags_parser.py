"""The single-pass tag parser, batch memoisation and answer extraction."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tagpr_rewards.base import Batch
from tagpr_rewards.tags import (
    ERROR_CODES,
    TagSchema,
    TagSpan,
    batch_parses,
    extract_answer,
    load_schema,
    parse_tags,
)
from tagpr_rewards.tags.parser import _parse_scan

P9 = "personalization-9"
GOOD = (
    "<understand-task>Pick one tag for the movie.</understand-task>\n"
    "<recall-history>The user tagged three space films as sci-fi.</recall-history>\n"
    "<infer-preference>This space movie should be sci-fi for them.</infer-preference>\n"
    "<answer>sci-fi</answer>"
)

WRAPPED = TagSchema.from_dict({
    "name": "wrapped",
    "tags": {"plan": "Plan.", "check": "Check.", "answer": "Answer."},
    "answer_tag": "answer",
    "wrapper": "think",
    "order": "plan+ check? answer",
    "allow_text_outside": False,
})


def codes(text: object, schema: str | TagSchema = P9) -> list[str]:
    return parse_tags(text, schema).error_codes


def test_valid_chain_spans_sequence_answer() -> None:
    p = parse_tags(GOOD, P9)
    assert p.valid and p.errors == []
    assert p.tag_sequence == ["understand-task", "recall-history", "infer-preference", "answer"]
    assert p.answer == "sci-fi"
    first = p.spans[0]
    assert isinstance(first, TagSpan) and first.tag == "understand-task"
    assert GOOD[first.start:first.end] == "<understand-task>Pick one tag for the movie.</understand-task>"
    assert all(GOOD[s.start:s.end] == f"<{s.tag}>{s.content}</{s.tag}>" for s in p.spans)
    assert p.n_tokens == 8


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<foo>x</foo><answer>a</answer>", ["unknown_tag", "unknown_tag"]),
        ("<verify>x<answer>a</answer>", ["nested", "unclosed"]),
        ("<answer>a", ["unclosed"]),
        ("</verify><answer>a</answer>", ["unexpected_close"]),
        ("<verify>x<recall-history>y</verify></recall-history><answer>a</answer>",
         ["nested", "nested", "unexpected_close"]),
        ("<answer>a</answer><answer>b</answer>", ["duplicate_answer"]),
        ("<verify>x</verify>", ["missing_answer"]),
        ("<answer>a</answer> and more", ["text_after_answer"]),
        ("<answer>a</answer><verify>late</verify>", ["text_after_answer"]),
        ("<verify>   </verify><answer>a</answer>", ["empty_step"]),
        ("<verify>x</verify><answer> </answer>", ["empty_step"]),
        (None, ["not_text", "missing_answer"]),
    ],
)
def test_error_codes(text: str, expected: list[str]) -> None:
    assert codes(text) == expected
    assert set(expected) <= set(ERROR_CODES)


def test_text_outside_only_when_forbidden() -> None:
    assert codes("hello <answer>a</answer>", P9) == []  # personalization-9 tolerates text
    assert codes("hello <think>t</think><answer>a</answer>", "think-answer") == ["text_outside"]
    assert codes("<think>t</think> between <answer>a</answer>", "think-answer") == ["text_outside"]
    assert codes("  \n<think>t</think>\n<answer>a</answer>\n", "think-answer") == []


def test_wrapper_rules() -> None:
    assert codes("<think><plan>p</plan><check>c</check></think><answer>a</answer>", WRAPPED) == []
    assert codes("<plan>p</plan><answer>a</answer>", WRAPPED) == ["missing_wrapper"]
    assert codes("<answer>a</answer>", WRAPPED) == ["missing_wrapper"]
    assert codes("<think><plan>p</plan><answer>a</answer></think>", WRAPPED) == ["nested"]
    assert codes("<think><plan>p</plan></think><think></think><answer>a</answer>", WRAPPED) == [
        "duplicate_wrapper"]
    assert codes("<think>free text<plan>p</plan></think><answer>a</answer>", WRAPPED) == ["text_outside"]
    p = parse_tags("<think><plan>p</plan></think><answer>a</answer>", WRAPPED)
    assert p.tag_sequence == ["plan", "answer"] and [s.tag for s in p.spans] == ["think", "plan", "answer"]


@pytest.mark.parametrize(
    "text",
    ["a < b <answer>x</answer>", "<3 <answer>x</answer>", "<< <answer>x</answer>",
     "< answer> <answer>x</answer>", "<answer x=1> <answer>x</answer>", "<br/> <answer>x</answer>",
     "x <- y <answer>x</answer>", "<answer>a<b</answer>"],
)
def test_things_that_are_text(text: str) -> None:
    assert codes(text) == []


def test_unknown_tags_as_text_option() -> None:
    s = TagSchema.from_dict({"name": "lenient", "tags": {"answer": "A."}, "answer_tag": "answer",
                             "unknown_tags": "text"})
    assert codes("<b>bold</b><answer>x</answer>", s) == []


def test_unknown_tag_inside_content_is_an_error_and_stays_content() -> None:
    p = parse_tags("<verify>use <b>bold</b></verify><answer>x</answer>", P9)
    assert p.error_codes == ["unknown_tag", "unknown_tag"]
    assert p.spans[0].content == "use <b>bold</b>"


def test_first_answer_is_the_answer() -> None:
    assert parse_tags("<answer>one</answer><answer>two</answer>", P9).answer == "one"


def test_errors_are_capped_and_adversarial_inputs_do_not_raise() -> None:
    p = parse_tags("<foo>" * 100_000, P9)
    assert len(p.errors) == 64 and not p.valid
    for text in ["", "<", "</x>", "\x00" * 10, "<answer>" * 1000, "</answer>" * 1000, "é<answer>ü</answer>",
                 "<answer>\udcff</answer>", 42, b"<answer>x</answer>", [{"content": "<answer>x</answer>"}]]:
        parse_tags(text, P9)
    assert parse_tags(b"<answer>x</answer>", P9).answer == "x"


def test_parse_pickles() -> None:
    p = parse_tags(GOOD, P9)
    q = pickle.loads(pickle.dumps(p))
    assert q == p and q.spans == p.spans and q.answer == "sci-fi"


def test_to_dict() -> None:
    d = parse_tags("<answer>a", P9).to_dict()
    assert d["valid"] is False and d["errors"][0]["code"] == "unclosed" and d["answer"] is None


# -- the fast path for flat valid chains equals the full scan ---------------------------------

TOKENS = ["<answer>", "</answer>", "<verify>", "</verify>", "<recall-history>", "</recall-history>",
          "<think>", "</think>", "<foo>", " ", "\n", "x", "text", "<", ">", "</", "\x00", "é"]


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=30),
       st.sampled_from(["personalization-9", "think-answer", "r2p-3"]))
def test_fast_path_equals_full_scan(tokens: list[str], schema: str) -> None:
    text = "".join(tokens)
    s = load_schema(schema)
    fast, slow = parse_tags(text, s), _parse_scan(text, s)
    assert fast == slow
    assert fast.spans == slow.spans


FLAT_TAGS = ["answer", "verify", "recall-history", "think", "analyze-request", "build-profile"]
pieces = st.sampled_from(["", " ", "\n", "x", "junk text", "\x00"])


@settings(max_examples=600, deadline=None)
@given(st.lists(st.tuples(pieces, st.sampled_from(FLAT_TAGS), pieces), max_size=8), pieces,
       st.one_of(st.none(), st.sampled_from(FLAT_TAGS)),
       st.sampled_from(["personalization-9", "think-answer", "r2p-3"]))
def test_fast_path_equals_full_scan_on_flat_chains(pairs: list[tuple[str, str, str]], tail: str,
                                                   unclosed: str | None, schema: str) -> None:
    text = "".join(f"{gap}<{t}>{c}</{t}>" for gap, t, c in pairs) + tail
    if unclosed:  # a generation cut off inside a tag
        text += f"<{unclosed}>{tail}"
    s = load_schema(schema)
    fast, slow = parse_tags(text, s), _parse_scan(text, s)
    assert fast == slow
    assert fast.spans == slow.spans and fast.errors == slow.errors


# -- batch memo ------------------------------------------------------------------------------

def test_batch_parses_memoised_per_schema() -> None:
    b = Batch.from_inputs([GOOD, "<answer>x</answer>"])
    a1 = batch_parses(b, P9)
    assert batch_parses(b, load_schema(P9)) is a1
    batch_parses(b, "think-answer")
    keys = [k for k in b._memo if k[0] == "parse"]
    assert len(keys) == 2


# -- answer extraction -------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "answer", "method"),
    [
        (GOOD, "sci-fi", "tag"),
        ("<answer>  comedy\n</answer>", "comedy", "tag"),
        ("<answer>first</answer><answer>second</answer>", "first", "tag"),
        ("<answer> </answer>", "", "empty"),
        ("<recall-history>likes comedy</recall-history>\ncomedy", "comedy", "fallback-last-line"),
        ("<recall-history>h</recall-history>\nsome words\nAnswer: comedy\n\n", "comedy", "fallback-last-line"),
        ("<recall-history>h</recall-history><answer>truncated answ", "truncated answ", "fallback-last-line"),
        ("no tags at all\nfinal answer is: 4", "4", "fallback-last-line"),
        ("<recall-history>history only</recall-history>", "", "empty"),
        ("", "", "empty"),
        (None, "", "empty"),
    ],
)
def test_extract_answer(text: str, answer: str, method: str) -> None:
    got = extract_answer(text, P9)
    assert (got.answer, got.method) == (answer, method)


def test_extract_answer_reuses_a_parse() -> None:
    p = parse_tags(GOOD, P9)
    assert extract_answer(GOOD, P9, parse=p).answer == "sci-fi"
