"""Text plumbing shared by PRMU training, scoring and serving (light: no torch).

LaMP profile items differ per task; PRMU reads each as a *key* (what the item is about, matched
against the query) and a *value* (what the user did with it: the tag, the rating, the title).

>>> item_texts({"id": "1", "description": "A space crew wakes up.", "tag": "sci-fi"})
('A space crew wakes up.', 'sci-fi')
>>> query_content("Which tag does this movie relate to among the following tags? ... description: A heist.")
'A heist.'
>>> parse_profile('[{"id": "1", "text": "ok", "score": "4"}]')
([{'id': '1', 'text': 'ok', 'score': '4'}], None)
>>> parse_profile("not json")[1]
'profile is not valid JSON (Expecting value at char 0)'
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["answer_text", "item_texts", "parse_profile", "profile_hash", "query_content"]

#: the schema PRMU reads answers with when none is given (the package default)
DEFAULT_ANSWER_SCHEMA = "personalization-9"


def item_texts(item: Any, task: str | None = None) -> tuple[str, str]:
    """``(key, value)`` texts of one profile item (any LaMP task; unknown layouts degrade):
    :func:`tagpr_rewards.metrics.lamp.item_texts`, the task's ``TaskSpec`` fields.

    >>> item_texts({"id": "7", "text": "Great blender", "score": 5})
    ('Great blender', '5')
    >>> item_texts("just a string")
    ('just a string', 'just a string')
    """
    from tagpr_rewards.metrics.lamp import item_texts as spec_item_texts

    return spec_item_texts(item, task)


def query_content(text: str, task: str | None = None) -> str:
    """The part of a LaMP ``input`` after its instruction (the whole text when none is found):
    the task's query rule (:func:`tagpr_rewards.metrics.lamp.query_text`, the one retrieval uses).

    >>> query_content("Generate a headline for the following article: Rain falls.")
    'Rain falls.'
    >>> query_content("plain query")
    'plain query'
    """
    if not isinstance(text, str):
        return ""
    from tagpr_rewards.metrics.lamp import query_text

    return query_text(text, task) or text.strip()


def parse_profile(value: Any) -> tuple[list[Any], str | None]:
    """A profile column value (list of items, or a JSON string of one) → ``(items, problem)``.

    ``problem`` is ``None`` when the value was usable; otherwise items is ``[]`` (or what could
    be kept) and ``problem`` says why, for a logged warning.
    """
    if value is None:
        return [], "no profile"
    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            return [], f"profile is not valid JSON ({e.msg} at char {e.pos})"
        except UnicodeDecodeError:
            return [], "profile is not valid UTF-8 JSON"
    if isinstance(value, Mapping) and "profile" in value:
        value = value["profile"]
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return list(value), None
    return [], f"profile is a {type(value).__name__}, expected a list of items"


def profile_hash(items: Sequence[Any]) -> str:
    """A stable hash of a profile's content (the user-embedding cache key with the user id).

    >>> profile_hash([{"id": "1", "tag": "comedy"}]) == profile_hash([{"tag": "comedy", "id": "1"}])
    True
    """
    blob = json.dumps(list(items), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.blake2b(blob.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def answer_text(completion: str, schema: str | None = None) -> str:
    """The response PRMU scores: the answer :func:`tagpr_rewards.tags.extract_answer` finds (the
    one extractor of the package: the first closed answer tag, else the last line after the last
    schema tag), with ``schema`` (default ``personalization-9``).

    In a reward, :class:`~tagpr_rewards.prmu.reward.PRMUReward` reads the batch's memoised answers
    (``tagpr_rewards.task_rewards.batch_answers``) instead, so a completion is parsed once per step.

    >>> answer_text("<think>likes heists</think><answer> comedy </answer>", "think-answer")
    'comedy'
    >>> answer_text("comedy")
    'comedy'
    """
    from tagpr_rewards.tags import extract_answer

    return extract_answer(completion, schema or DEFAULT_ANSWER_SCHEMA).answer
