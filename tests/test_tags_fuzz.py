"""Property/fuzz test: no tag reward raises on any input and every score stays in [low, high]."""

from __future__ import annotations

import math

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

REWARDS = [build_reward(name, schema=s) for name in sorted(TAG_REWARDS) for s in SCHEMAS]
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
