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
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["answer_text", "item_texts", "parse_profile", "profile_hash", "query_content"]

# (key field, value field) by the fields a LaMP item carries, most specific first.
_ITEM_FIELDS: tuple[tuple[str, str], ...] = (
    ("description", "tag"),       # LaMP-2 (movies)
    ("text", "category"),         # LaMP-2 legacy (news)
    ("text", "score"),            # LaMP-3
    ("abstract", "title"),        # LaMP-1, LaMP-5
    ("text", "title"),            # LaMP-4, LaMP-6
)

# Where the content starts in the official LaMP prompts (the instruction before it is the same
# for every sample and would dominate a sentence embedding).
_QUERY_MARKERS = (
    r"description:\s*",
    r"following (?:movie|article|news article|paper|abstract|product review|tweet|email)[^:]*:\s*",
    r"review:\s*",
    r"article:\s*",
    r"abstract:\s*",
    r"tweet:\s*",
    r"paper:\s*",
)
_MARKER_RE = re.compile("|".join(f"(?:{m})" for m in _QUERY_MARKERS), re.IGNORECASE)
_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)


def item_texts(item: Any) -> tuple[str, str]:
    """``(key, value)`` texts of one profile item (any LaMP task; unknown layouts degrade).

    >>> item_texts({"id": "7", "text": "Great blender", "score": 5})
    ('Great blender', '5')
    >>> item_texts("just a string")
    ('just a string', 'just a string')
    """
    if not isinstance(item, Mapping):
        s = "" if item is None else str(item)
        return s, s
    for k, v in _ITEM_FIELDS:
        if k in item and v in item:
            return str(item[k]), str(item[v])
    fields = [str(val) for key, val in item.items() if key not in ("id", "date") and val is not None]
    if not fields:
        return "", ""
    if len(fields) == 1:
        return fields[0], fields[0]
    return fields[0], fields[1]


def query_content(text: str) -> str:
    """The part of a LaMP ``input`` after its instruction (the whole text when none is found).

    >>> query_content("Generate a headline for the following article: Rain falls.")
    'Rain falls.'
    >>> query_content("plain query")
    'plain query'
    """
    if not isinstance(text, str):
        return ""
    last = None
    for m in _MARKER_RE.finditer(text):
        last = m
    if last is not None and text[last.end():].strip():
        return text[last.end():].strip()
    return text.strip()


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
    """The response PRMU scores: the answer of a tagged completion, else the whole text.

    With ``schema`` set, the schema's answer tag is used (``tagpr_rewards.tags``); without it,
    an ``<answer>…</answer>`` span if present, else the stripped completion.

    >>> answer_text("<think>likes heists</think><answer> comedy </answer>")
    'comedy'
    >>> answer_text("comedy")
    'comedy'
    """
    if schema is not None:
        try:
            from tagpr_rewards.tags import extract_answer, load_schema

            return extract_answer(completion, load_schema(schema)).answer.strip()
        except ImportError:  # tags module absent: fall back to the generic rule
            pass
    m = _ANSWER_RE.search(completion)
    if m is not None:
        return m.group(1).strip()
    return completion.strip()
