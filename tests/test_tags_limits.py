"""Bounded time and memory for adversarial tag inputs (issue 12 item 3) and the length cap.

Each hostile input runs in a subprocess with a generous wall-clock guard (30 s) that catches
hangs only; no test asserts a speed. Before the depth cap, the first input took 16.8 s and
741 MB, 6,000 nested ``<recall-history>`` took 19 s and ``duplicate_steps`` grew quadratically
with depth.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from tagpr_rewards import base
from tagpr_rewards.base import Batch
from tagpr_rewards.tags import TagFormatReward, TagSpamReward, parse_tags
from tagpr_rewards.tags.parser import MAX_DEPTH, _parse_scan

HANG_GUARD_S = 30

_PROBE = r"""
import json, sys
from tagpr_rewards.presets import stage2
from tagpr_rewards.tags import DuplicateStepsReward, parse_tags
case = sys.argv[1]
if case == "think-10k":
    text = "<think>" * 10000 + "x" + "</think>" * 10000
    out = stage2("LaMP-2", schema="think-answer")([text], references=["x"])
    res = {"score": out.scores[0], "reason": out.reasons[0]}
elif case == "recall-6k":
    text = "<recall-history>" * 6000 + "x" + "</recall-history>" * 6000 + "<answer>a</answer>"
    p = parse_tags(text, "personalization-9")
    res = {"codes": p.error_codes}
elif case == "duplicate-4k":
    text = "<recall-history>" * 4000 + "likes sci-fi" + "</recall-history>" * 4000 + "<answer>a</answer>"
    out = DuplicateStepsReward("personalization-9")([text])
    res = {"score": out.scores[0]}
elif case == "depth-64-wide":  # the deepest nesting still parsed, with 150 KB inside
    text = "<recall-history>" * 64 + "word " * 30000 + "</recall-history>" * 64 + "<answer>a</answer>"
    out = DuplicateStepsReward("personalization-9")([text])
    res = {"score": out.scores[0], "reason": out.reasons[0]}
print(json.dumps(res))
"""


def _probe(case: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", _PROBE, case], capture_output=True, text=True,
                          timeout=HANG_GUARD_S, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_think_10000_deep_in_stage2_returns_with_a_defined_score() -> None:
    res = _probe("think-10k")
    # format invalid (nested): the task credit is gated off; the parse stops at the depth cap,
    # so order and coverage find no closed tag; only the overlong term (150 KB) is left: 0.5 * -1
    assert res["score"] == -0.5
    assert res["reason"].startswith("base: gated: nested: <think> opened inside <think>")
    assert "tag_order: no tags" in res["reason"]


def test_6000_nested_recall_history_stops_at_the_depth_cap() -> None:
    codes = _probe("recall-6k")["codes"]
    assert codes[-1] == "too_deep" and codes[0] == "nested"


def test_duplicate_steps_at_depth_4000_returns() -> None:
    assert _probe("duplicate-4k")["score"] == 0.0  # no closed step before the cap


def test_nesting_up_to_the_cap_reads_a_bounded_amount_of_content() -> None:
    res = _probe("depth-64-wide")
    # 64 overlapping copies of 150 KB: the steps past the content budget are named in the reason
    assert res["score"] < 0 and "not compared (content budget)" in res["reason"]


def test_too_deep_error_is_recorded_even_when_the_error_list_is_full() -> None:
    p = _parse_scan("<verify>" * (MAX_DEPTH + 10) + "x", _schema())
    assert p.error_codes[-1] == "too_deep" and len(p.errors) <= 64
    assert "not parsed" in p.errors[-1].message and p.tag_sequence == []
    # just under the cap: ordinary nested/unclosed errors, everything parsed
    q = parse_tags("<verify>" * MAX_DEPTH + "x" + "</verify>" * MAX_DEPTH + "<answer>a</answer>",
                   "personalization-9")
    assert "too_deep" not in q.error_codes and len(q.tag_sequence) == MAX_DEPTH + 1


def test_unmatched_closes_under_a_deep_stack() -> None:
    # every </compare-items> closes nothing: decided without walking the stack
    text = "<verify>" * 60 + "</compare-items>" * 5000
    p = parse_tags(text, "personalization-9")
    assert p.error_codes.count("unexpected_close") > 0 and "too_deep" not in p.error_codes


def _schema() -> Any:
    from tagpr_rewards.tags import load_schema

    return load_schema("personalization-9")


# -- the length cap -----------------------------------------------------------------------------

VALID_MB = "<verify>" + "x" * 1_000_000 + "</verify><answer>a</answer>"


def test_a_capped_completion_says_so_in_every_tag_reason() -> None:
    b = Batch.from_inputs([VALID_MB, "<verify>ok then</verify><answer>a</answer>"])
    assert b.lengths[0] == len(VALID_MB) and len(b.completions[0]) == base.MAX_COMPLETION_CHARS
    fmt = TagFormatReward("personalization-9").score(b)
    assert fmt.scores == [0.0, 1.0]
    assert fmt.reasons[0] == (f"capped: {len(VALID_MB)} chars, only the first {base.MAX_COMPLETION_CHARS} were "
                              "checked (TAGPR_MAX_COMPLETION_CHARS); unclosed: <verify> is never closed")
    assert fmt.reasons[1] == ""
    spam = TagSpamReward("personalization-9").score(b)
    assert spam.reasons[0].startswith("capped: ") and spam.reasons[1] == ""


def test_the_cap_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "MAX_COMPLETION_CHARS", 2_000_000)
    out = TagFormatReward("personalization-9")([VALID_MB])
    assert out.scores == [1.0] and out.reasons == [""]


def test_the_cap_is_read_from_the_environment() -> None:
    code = "from tagpr_rewards import base; print(base.MAX_COMPLETION_CHARS)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "TAGPR_MAX_COMPLETION_CHARS": "1500000"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "1500000"
    env["TAGPR_MAX_COMPLETION_CHARS"] = "lots"
    bad = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert bad.returncode != 0 and "TAGPR_MAX_COMPLETION_CHARS" in bad.stderr
