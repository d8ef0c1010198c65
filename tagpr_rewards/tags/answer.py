"""Answer extraction from a tagged completion, with a documented fallback.

Rule (used by the LaMP task rewards and the eval harness):

1. ``method="tag"``: the stripped content of the **first** closed answer tag, when non-empty.
   (A second answer tag is a ``duplicate_answer`` format error anyway; the first one is what
   the model committed to.)
2. ``method="fallback-last-line"``: no closed answer tag. The *region* is the text after the
   last closing schema tag, or after an answer tag that was opened but never closed (a
   truncated output), or the whole text when there are no schema tags. Tag tokens are removed
   from the region and the answer is its last non-empty line, stripped, with a leading
   ``Answer:`` / ``Final answer:`` label removed.
3. ``method="empty"``: nothing is left (empty answer tag, or an empty region).

>>> extract_answer("<think>x</think><answer> comedy </answer>", "think-answer")
AnswerExtraction(answer='comedy', method='tag')
>>> extract_answer("<think>x</think>\\nFinal answer: comedy", "think-answer")
AnswerExtraction(answer='comedy', method='fallback-last-line')
>>> extract_answer("<think>x</think><answer>  </answer>", "think-answer")
AnswerExtraction(answer='', method='empty')
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from tagpr_rewards.base import to_text
from tagpr_rewards.tags.parser import TAG_TOKEN_RE, TagParse, parse_tags
from tagpr_rewards.tags.schema import TagSchema, load_schema

_LABEL_RE = re.compile(r"^(?:the\s+)?(?:final\s+)?answer(?:\s+is)?\s*[:：]\s*", re.IGNORECASE)

METHODS = ("tag", "fallback-last-line", "empty")


class AnswerExtraction(NamedTuple):
    """The extracted answer and how it was found (``tag``, ``fallback-last-line``, ``empty``)."""

    answer: str
    method: str


def extract_answer(text: Any, schema: TagSchema | str = "personalization-9",
                   parse: TagParse | None = None) -> AnswerExtraction:
    """Extract the answer from ``text`` (see the module docstring for the rule).

    Args:
        text: the completion (non-strings are converted; never raises).
        schema: a :class:`TagSchema` or a shipped name / YAML path.
        parse: the already computed :func:`parse_tags` result for ``text``, to avoid a rescan.

    >>> extract_answer("<answer>sci-fi", "personalization-9")
    AnswerExtraction(answer='sci-fi', method='fallback-last-line')
    >>> extract_answer("", "personalization-9")
    AnswerExtraction(answer='', method='empty')
    """
    if not isinstance(schema, TagSchema):
        schema = load_schema(schema)
    if not isinstance(text, str):
        try:
            text = to_text(text)[0]
        except Exception:  # noqa: BLE001
            text = ""
    if parse is None:
        parse = parse_tags(text, schema)
    if parse.answer is not None:
        return AnswerExtraction(parse.answer, "tag") if parse.answer else AnswerExtraction("", "empty")

    known = schema.meanings
    wrapper = schema.wrapper
    region_start = 0
    for m in TAG_TOKEN_RE.finditer(text):
        name = m.group(2)
        if name in known or name == wrapper:
            if m.group(1) or name == schema.answer_tag:  # closing tag, or an unclosed <answer>
                region_start = m.end()
    region = TAG_TOKEN_RE.sub("", text[region_start:])
    for line in reversed(region.splitlines()):
        line = line.strip()
        if line:
            line = _LABEL_RE.sub("", line).strip()
            if line:
                return AnswerExtraction(line, "fallback-last-line")
            break
    return AnswerExtraction("", "empty")
