"""`step_consistency` (ours): the chain's habit step and answer follow its own listing."""

from __future__ import annotations

import pytest

from tagpr_rewards.consistency import StepConsistencyReward, listed_pairs
from tagpr_rewards.presets import build_from_config, stage1, stage2


def chain(listing: str, topic: str, habit: str, answer: str) -> str:
    """A completion in the template teacher's listing-chain wording."""
    return ("<understand-task>The task asks for one tag from the list for this movie.</understand-task>"
            f"<recall-history>The user's history items: {listing}</recall-history>"
            f"<analyze-query>The query movie is about {topic}.</analyze-query>"
            f"<extract-preference>The user's habit for {topic}: {habit}.</extract-preference>"
            f"<infer-preference>So this user would want \"{answer}\".</infer-preference>"
            f"<answer>{answer}</answer>")


LISTING = 'sports -> "thought-provoking"; sports -> "based on a book"; romance -> "based on a book"; school -> "comedy".'


def test_a_chain_that_follows_its_listing_scores_1_and_each_broken_step_costs() -> None:
    r = StepConsistencyReward()
    good = chain(LISTING, "sports", '"thought-provoking", "based on a book"', "thought-provoking")
    # seen on an RL model (seed 1): the habit repeats the first listed tag, whatever its topic
    repeats = chain(LISTING, "sports", '"thought-provoking", "thought-provoking", "thought-provoking"',
                    "thought-provoking")
    wrong_vote = chain(LISTING, "sports", '"thought-provoking", "based on a book"', "comedy")
    out = r([good, repeats, wrong_vote])
    assert out.components["habit"] == [1.0, pytest.approx(2 * 1 / 5), 1.0]
    assert out.components["vote"] == [1.0, 1.0, 0.0]
    assert out.scores == [1.0, pytest.approx(0.7), 0.5]
    assert out.reasons[0] == "" and "'sports'" in out.reasons[1] and "'comedy'" in out.reasons[2]


def test_a_topic_with_no_listed_item_falls_back_to_the_most_used_tag() -> None:
    r = StepConsistencyReward()
    fallback = chain(LISTING, "space", 'none; most used: "based on a book"', "based on a book")
    other = chain(LISTING, "space", 'none; most used: "comedy"', "comedy")
    silent = chain(LISTING, "space", "none", "based on a book")
    assert r([fallback, other, silent]).scores == [1.0, 0.5, 1.0]


def test_a_chain_without_its_steps_scores_0_with_a_reason() -> None:
    r = StepConsistencyReward()
    no_listing = chain("none.", "sports", '"comedy"', "comedy")
    no_habit = ('<recall-history>items: a -> "x".</recall-history><analyze-query>about a.</analyze-query>'
                "<answer>x</answer>")
    out = r([no_listing, no_habit, "<answer>x</answer>", "no tags at all"])
    assert out.scores == [0.0, 0.0, 0.0, 0.0]
    assert "no a listing" in out.reasons[0] and "extract-preference" in out.reasons[1]


def test_bad_arguments_are_errors_at_construction() -> None:
    with pytest.raises(ValueError, match="has no tag 'recall-history', 'extract-preference', 'analyze-query'"):
        StepConsistencyReward(schema="think-answer")
    assert listed_pairs('a -> "x"; b-c -> "y z"') == [("a", "x"), ("b-c", "y z")]


def test_the_presets_add_it_with_its_weight_and_only_when_asked() -> None:
    good = chain(LISTING, "sports", '"thought-provoking", "based on a book"', "thought-provoking")
    broken = chain(LISTING, "sports", '"comedy"', "comedy")
    kw = dict(references=["thought-provoking"] * 2)
    for preset, plain in (("stage1", stage1("LaMP-2")), ("stage2", stage2("LaMP-2"))):
        shaped = build_from_config({"preset": preset, "task": "LaMP-2", "consistency": 0.5})
        p, s = plain([good, broken], **kw), shaped([good, broken], **kw)
        # broken: the habit quotes no listed tag (0), the answer is its vote (1)
        assert "consistency" not in p.components and s.components["consistency"] == [1.0, 0.5]
        assert s.scores == [pytest.approx(p.scores[0] + 0.5), pytest.approx(p.scores[1] + 0.25)]
    with pytest.raises(ValueError, match="consistency must be >= 0"):
        stage1("LaMP-2", consistency=-1)
