"""Tag schemas, the single-pass tag parser, answer extraction and the tag rewards.

>>> from tagpr_rewards.tags import load_schema, parse_tags, extract_answer
>>> s = load_schema("r2p-3")
>>> text = ("<analyze-request>Tag the movie.</analyze-request>"
...         "<build-profile>Likes space films.</build-profile><answer>sci-fi</answer>")
>>> parse_tags(text, s).valid, extract_answer(text, s).answer
(True, 'sci-fi')
"""

from __future__ import annotations

from tagpr_rewards.tags.answer import AnswerExtraction, extract_answer
from tagpr_rewards.tags.parser import (
    ERROR_CODES,
    TagError,
    TagParse,
    TagSpan,
    batch_parses,
    parse_tags,
)
from tagpr_rewards.tags.rewards import (
    TAG_REWARDS,
    DuplicateStepsReward,
    EmptyStepsReward,
    OverlongReward,
    TagCoverageReward,
    TagFormatReward,
    TagOrderReward,
    TagSpamReward,
    order_credit,
)
from tagpr_rewards.tags.schema import TagSchema, list_schemas, load_schema

__all__ = [
    "ERROR_CODES",
    "TAG_REWARDS",
    "DuplicateStepsReward",
    "EmptyStepsReward",
    "OverlongReward",
    "TagCoverageReward",
    "TagFormatReward",
    "TagOrderReward",
    "TagSpamReward",
    "order_credit",
    "AnswerExtraction",
    "TagError",
    "TagParse",
    "TagSchema",
    "TagSpan",
    "batch_parses",
    "extract_answer",
    "list_schemas",
    "load_schema",
    "parse_tags",
]
