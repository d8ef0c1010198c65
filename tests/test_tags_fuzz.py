"""Property/fuzz test: no tag reward raises on any input and every score stays in [low, high]."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tagpr_rewards.base import Batch
from tagpr_rewards.registry import build_reward
from tagpr_rewards.tags import TAG_REWARDS, extract_answer, list_schemas, load_schema, parse_tags

SCHEMAS = [load_schema(n) for n in list_schemas()]
ALL_TAGS = sorted({t for s in SCHEMAS for t in s.tag_names} | {"think", "foo", "Answer"})
TOKENS = [f"<{t}>" for t in ALL_TAGS] + [f"</{t}>" for t in ALL_TAGS] + [
    "<", ">", "</", "<3", "a < b", "\x00", "\n", " ", "é", "😀", "\udcff", "x" * 50, "<answer x=1>", "<br/>",
]

token_soup = st.lists(st.sampled_from(TOKENS), max_size=60).map("".join)
# well-formed-ish chains with random tags and contents, sometimes unclosed/interleaved
chains = st.lists(
    st.tuples(st.sampled_from(ALL_TAGS), st.text(max_size=40), st.sampled_from(["ok", "unclosed", "swap"])),
    max_size=20,
).map(lambda items: "".join(
    f"<{t}>{c}</{t}>" if how == "ok" else (f"<{t}>{c}" if how == "unclosed" else f"</{t}>{c}<{t}>")
    for t, c, how in items))
# large strings, up to about 1 MB (the batch truncates; the overlong reward sees the full length)
big = st.builds(lambda unit, size: (unit * (size // len(unit) + 1))[:size],
                st.sampled_from(["<answer>", "a", "<recall-history>x</recall-history>", "\x00<", "é😀"]),
                st.integers(1_000, 1_000_000))
non_text = st.one_of(
    st.none(), st.integers(), st.floats(allow_nan=True), st.booleans(), st.binary(max_size=50),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
    st.lists(st.fixed_dictionaries({"role": st.just("assistant"), "content": token_soup}), max_size=2),
    st.lists(st.integers(), max_size=3),
)
completion = st.one_of(
    st.text(max_size=300), token_soup, chains, non_text,
    st.sampled_from(["", "<", "</x>", "\x00" * 100, "<answer>" + "y" * 10 + "</answer>"]),
    big,
)

REWARDS = [build_reward(name, schema=s) for name in sorted(TAG_REWARDS) if name != "overlong" for s in SCHEMAS]
REWARDS.append(build_reward("overlong"))  # it reads no tags, so it takes no schema
SEEN = {"completions": 0}


def _check_batch(completions: list[object]) -> None:
    batch = Batch.from_inputs(completions)
    n = len(completions)
    for r in REWARDS:
        out = r.score(batch)
        assert len(out.scores) == n and len(out.reasons) == n
        for s in out.scores:
            assert s is not None and math.isfinite(s) and r.low <= s <= r.high, (r.name, s)
        for vals in out.components.values():
            assert len(vals) == n
    for text in completions:
        for s in SCHEMAS:
            ex = extract_answer(text, s)
            assert isinstance(ex.answer, str) and ex.method in ("tag", "fallback-last-line", "empty")
    SEEN["completions"] += n


@settings(max_examples=260, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(completion, min_size=8, max_size=8))
def _fuzz(completions: list[object]) -> None:
    _check_batch(completions)


def test_fuzz_at_least_2000_completions() -> None:
    SEEN["completions"] = 0
    _fuzz()
    assert SEEN["completions"] >= 2000


def test_one_megabyte_inputs() -> None:
    mb = 1_000_000
    _check_batch(["<answer>" * (mb // 8), "a" * mb, "<recall-history>" + "x" * mb + "</recall-history>",
                  "<" * mb, "\x00" * mb])
    # the parser itself (no batch truncation) on a full 1 MB string of tags
    p = parse_tags("<verify>x</verify>" * (mb // 18) + "<answer>a</answer>", "personalization-9")
    assert p.valid and len(p.tag_sequence) == mb // 18 + 1


# -- the fast path decides exactly what the full parser decides ---------------------------------

from tagpr_rewards.tags import TagSchema  # noqa: E402
from tagpr_rewards.tags.parser import _parse_scan, fast_matcher  # noqa: E402

FAST_SCHEMAS = SCHEMAS + [
    TagSchema.from_dict({"name": "wrapped", "tags": {"plan": "P.", "check": "C.", "answer": "A."},
                         "answer_tag": "answer", "wrapper": "think", "order": "plan+ check? answer",
                         "allow_text_outside": False}),
    TagSchema.from_dict({"name": "ambiguous", "tags": {"verify": "V.", "think": "T.", "answer": "A."},
                         "answer_tag": "answer", "order": "(verify | verify think)* verify? answer"}),
    TagSchema.from_dict({"name": "lenient", "tags": {"think": "T.", "answer": "A."}, "answer_tag": "answer",
                         "unknown_tags": "text", "order": "think* answer"}),
    TagSchema.from_dict({"name": "any-order", "tags": {"verify": "V.", "think": "T.", "answer": "A."},
                         "answer_tag": "answer", "allow_text_outside": False}),
]
# flat chains of the schemas' own tags: the inputs the fast path accepts most often
own_chains = st.lists(
    st.tuples(st.sampled_from(["", " ", "\n", "x", "text <3", "<foo>"]),
              st.sampled_from(ALL_TAGS + ["plan", "check"]),
              st.sampled_from(["", " ", "a", "a < b", "\n\t", "<b>x</b>", "\u00a0", "\x1c"])),
    max_size=10,
).map(lambda items: "".join(f"{g}<{t}>{c}</{t}>" for g, t, c in items))
wrapped_chains = own_chains.map(lambda s: "<think>" + s + "</think>")
fast_inputs = st.one_of(st.text(max_size=200), token_soup, chains, own_chains, wrapped_chains,
                        st.tuples(wrapped_chains, st.sampled_from(["<answer>x</answer>", "<answer> </answer>"]))
                        .map("".join))
GAPS = ["", "", "", "", "", " ", "\n", "\n", "\u2003", "x", "<3", "a < b", "<foo>"]
GOOD_CONTENTS = ["a", "step text", " a ", "a < b", "\u00a0x", "x\x00", "é😀"]
BAD_CONTENTS = ["", " ", "\n", "\u00a0", "\x1c", "<b>x</b>", "<think>"]


def _walk(schema: TagSchema, rnd: Any, max_len: int = 8) -> list[str]:
    """A random tag sequence: mostly a walk of the order's automaton (accepted), else any tags.
    (Hypothesis' ``random()`` leans towards 0, so 0 picks the common case.)"""
    aut = schema.automaton
    if aut is None or rnd.random() > 0.8:
        return [rnd.choice(schema.step_tags or (schema.answer_tag,)) for _ in range(rnd.randint(0, 5))]
    seq: list[str] = []
    q = 0
    while aut.succ[q] and len(seq) < max_len:
        if q in aut.final and rnd.random() < 0.5:
            break
        q = rnd.choice(aut.succ[q])
        seq.append(aut.symbols[q - 1])
    return [t for t in seq if t != schema.answer_tag]


def _schema_chain(schema: TagSchema) -> st.SearchStrategy[str]:
    """Chains of ``schema``'s own tags, mostly well formed and in order (a valid chain is rare in
    random text)."""

    def build(rnd: Any) -> str:
        def content() -> str:
            return rnd.choice(BAD_CONTENTS if rnd.random() > 0.95 else GOOD_CONTENTS)

        body = "".join(f"{rnd.choice(GAPS)}<{t}>{content()}</{t}>" for t in _walk(schema, rnd))
        if schema.wrapper and rnd.random() < 0.9:  # (hypothesis' random() leans to 0)
            body = f"<{schema.wrapper}>{body}{rnd.choice(GAPS)}</{schema.wrapper}>"
        tail = rnd.choice(["", "", "", "", " \n", "\n", "tail"])
        return f"{body}{rnd.choice(GAPS)}<{schema.answer_tag}>{content()}</{schema.answer_tag}>{tail}"

    return st.randoms(use_true_random=False).map(build)


schema_and_text = st.sampled_from(FAST_SCHEMAS).flatmap(
    lambda s: st.tuples(st.just(s), st.one_of(_schema_chain(s), _schema_chain(s), fast_inputs)))


@settings(max_examples=1200, deadline=None, suppress_health_check=list(HealthCheck))
@given(schema_and_text)
def test_fast_path_verdict_equals_the_full_parser(case: tuple[TagSchema, str]) -> None:
    schema, text = case
    full = _parse_scan(text, schema)
    m = fast_matcher(schema)
    fast = m.parse(text)
    in_order = schema.accepts(full.tag_sequence)
    expected = full.valid and (in_order or not m.order_in_regex)
    assert (fast is not None) == expected, (text, full.error_codes, in_order)
    assert m.matches([text]) == [expected]
    if fast is not None:
        assert fast == full and fast.spans == full.spans
        assert fast.order_accepted is (True if m.order_in_regex else None)
    assert parse_tags(text, schema) == full
