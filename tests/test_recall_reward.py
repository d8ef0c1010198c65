"""Recall grounding (our shaping term): scored against the prompt's own history items."""

from __future__ import annotations

import json
import logging

import pytest

from tagpr_rewards.presets import build_from_config, stage1
from tagpr_rewards.recall import RecallGroundingReward, lcs_ratio

ITEMS = [{"description": "A rocket lifts off from the moon base and never comes back home.", "tag": "sci-fi"},
         {"description": "Two rivals fall in love at the harbour.", "tag": "romance"},
         {"description": "A clown gets lost in the big city.", "tag": "comedy"},
         {"description": "The detective follows a cold trail.", "tag": "crime"}]
PROFILE = json.dumps(ITEMS)
# the prompt shows items 1, 0 and 3 (in that order), not item 2
PROMPT = ('the tag for the movie: "Two rivals fall in love at the harbour." is "romance" , and the tag for the '
          'movie: "A rocket lifts off from the moon base and never comes back home." is "sci-fi" , and the tag for the movie: "The '
          'detective follows a cold trail." is "crime" . Which tag does this movie relate to ... description: x')


def chain(recall: str) -> str:
    return (f"<understand-task>t</understand-task><recall-history>{recall}</recall-history>"
            "<infer-preference>p</infer-preference><answer>crime</answer>")


def test_scores_the_recalled_values_against_the_items_the_prompt_shows_in_order() -> None:
    r = RecallGroundingReward("LaMP-2")
    out = r([chain('love -> "romance"; space -> "sci-fi"; crime -> "crime".'),  # faithful
             chain('space -> "sci-fi"; love -> "romance"; crime -> "crime".'),  # out of order
             chain('love -> "romance"; x -> "comedy"; crime -> "crime".'),  # a prior, not the prompt's item
             chain("nothing quoted"),
             "<answer>crime</answer>"],  # no recall step
            prompts=[PROMPT] * 5, profile=[PROFILE] * 5)
    assert out.scores == pytest.approx([1.0, 2 * 2 / 6, 2 * 2 / 6, 0.0, 0.0])
    assert out.components["shown"] == [3.0] * 5
    assert out.components["recalled"] == [3.0, 3.0, 3.0, 0.0, 0.0]
    assert out.reasons[0] == "" and out.reasons[4] == "no recall-history/extract-preference step quotes a value"


def test_a_prompt_that_truncates_items_still_matches_them() -> None:
    short = PROMPT.replace(" and never comes back home.", "")  # the prompt truncated the item
    out = RecallGroundingReward("LaMP-2")([chain('"romance" "sci-fi" "crime"')], prompts=[short], profile=[PROFILE])
    assert out.scores == [1.0]


def test_no_shown_item_or_a_bad_profile_is_not_applicable_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    r = RecallGroundingReward("LaMP-2")
    with caplog.at_level(logging.WARNING, logger="tagpr_rewards"):
        out = r([chain('"romance"')] * 3, prompts=["no items here", PROMPT, PROMPT],
                profile=[PROFILE, "{not json", "{not json"])
    assert out.scores == [None, None, None]
    assert out.reasons[0] == "the prompt shows no profile item"
    assert "not valid JSON" in out.reasons[1]
    assert sum("not valid JSON" in m for m in caplog.messages) == 1


def test_bad_arguments_are_errors_at_construction() -> None:
    with pytest.raises(ValueError, match="has no tag 'recall-history', 'extract-preference'"):
        RecallGroundingReward("LaMP-2", schema="think-answer")
    with pytest.raises(KeyError):
        RecallGroundingReward("LaMP-99")


def test_the_presets_add_it_with_its_weight_and_only_when_asked() -> None:
    comps = [chain('love -> "romance"; space -> "sci-fi"; crime -> "crime".')]
    kw = dict(prompts=[PROMPT], profile=[PROFILE], references=["crime"])
    plain = stage1("LaMP-2")(comps, **kw)
    shaped = build_from_config({"preset": "stage1", "task": "LaMP-2", "recall": 0.25})(comps, **kw)
    assert "recall" not in plain.components
    assert shaped.components["recall"] == [1.0]
    assert shaped.scores[0] == pytest.approx(plain.scores[0] + 0.25)
    with pytest.raises(ValueError, match="recall must be >= 0"):
        stage1("LaMP-2", recall=-1)


def test_lcs_ratio() -> None:
    assert lcs_ratio(["a", "b", "c", "d"], ["a", "c", "d"]) == pytest.approx(6 / 7)
    assert lcs_ratio(["a"], ["b"]) == 0.0


def test_items_that_share_an_opening_sentence_are_told_apart() -> None:
    items = [{"description": "Every choice has a price. A pilot lands on mars.", "tag": "sci-fi"},
             {"description": "Every choice has a price. A chef opens a diner.", "tag": "comedy"}]
    prompt = 'the tag for the movie: "Every choice has a price. A chef opens a diner." is "comedy" . description: q'
    out = RecallGroundingReward("LaMP-2")([chain('"comedy"')], prompts=[prompt], profile=[json.dumps(items)])
    assert out.scores == [1.0] and out.components["shown"] == [1.0]


def test_a_duplicate_or_nested_item_text_is_one_shown_item() -> None:
    items = [*ITEMS, dict(ITEMS[1]), {"description": "A clown gets lost", "tag": "drama"},
             {"description": "rivals fall in love", "tag": "drama"}]
    out = RecallGroundingReward("LaMP-2")([chain('"romance" "sci-fi" "crime"')], prompts=[PROMPT],
                                         profile=[json.dumps(items)])
    assert out.components["shown"] == [3.0] and out.scores == [1.0]


def test_the_recall_is_the_first_listed_step_that_quotes_values() -> None:
    listing = 'love -> "romance"; space -> "sci-fi"; crime -> "crime".'
    as_extract = (f"<understand-task>t</understand-task><extract-preference>{listing}</extract-preference>"
                  '<extract-preference>habit: "crime"</extract-preference><answer>crime</answer>')
    out = RecallGroundingReward("LaMP-2")([as_extract, chain(listing)], prompts=[PROMPT] * 2, profile=[PROFILE] * 2)
    assert out.scores == [1.0, 1.0]
    only = RecallGroundingReward("LaMP-2", steps=["recall-history"])([as_extract], prompts=[PROMPT], profile=[PROFILE])
    assert only.scores == [0.0]
