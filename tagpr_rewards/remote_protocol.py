"""The text side of OpenRLHF's reward protocol, shared by the in-process entry file
(``tagpr_trainers/openrlhf``) and the remote reward server (``tagpr-rm serve``).

OpenRLHF sends ``query`` = decoded prompt + response (special tokens kept, the prompt possibly
cut from the left) and ``prompts`` = the prompt text; these helpers recover the response and
fix the set of logged component keys (OpenRLHF concatenates ``extra_logs`` per key, so every
sample must carry the same keys).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["read_label", "reward_component_names", "split_response", "strip_special_tokens"]

logger = logging.getLogger("tagpr_rewards")

# Special tokens of common chat templates: <|im_end|>, <|eot_id|>, <|end|>, <｜end▁of▁sentence｜>,
# </s>, <eos>, [PAD]... Schema tags such as <think> or <answer> never match.
_SPECIAL_RE = re.compile(
    r"<\|[^<>|\s]{1,64}\|>|<｜[^<>]{1,64}｜>|</?s>|<(?:eos|bos|pad|unk|mask)>|\[(?:PAD|CLS|SEP|UNK|MASK)\]"
)

def strip_special_tokens(text: str, extra: Sequence[str] = ()) -> str:
    """Remove special tokens (common chat-template forms plus ``extra``) and outer whitespace.

    >>> strip_special_tokens("<answer>sci-fi</answer><|im_end|>\\n<|endoftext|>")
    '<answer>sci-fi</answer>'
    >>> strip_special_tokens("a<EOT>b", extra=["<EOT>"])
    'ab'
    """
    for tok in extra:
        if tok:
            text = text.replace(tok, "")
    return _SPECIAL_RE.sub("", text).strip()


def split_response(query: str, prompt: str, marker: str | None = None) -> tuple[str, str]:
    """The response part of ``query`` (= prompt + response) and how it was found.

    Returns ``(response, method)``, method one of ``"prefix"`` (``query`` starts with
    ``prompt``), ``"truncated"`` (``query`` starts with the end of ``prompt``: OpenRLHF cut a
    long prompt from the left), ``"tail"`` (the prompt's last characters were found: the
    decoded prompt differs slightly from the prompt text), ``"marker"`` (after the last
    ``marker``), ``"none"`` (the whole query).

    >>> split_response("<|user|>hi<|assistant|>yo", "<|user|>hi<|assistant|>")
    ('yo', 'prefix')
    >>> split_response("hi<|assistant|>yo", "<|user|>hi<|assistant|>")
    ('yo', 'truncated')
    >>> split_response("<|user|>Which tág?<|end|><|assistant|>yo", "<|user|>Which tag?<|end|><|assistant|>")
    ('yo', 'tail')
    """
    if prompt and query.startswith(prompt):
        return query[len(prompt):], "prefix"
    if prompt:
        found = _truncated_prompt_end(query, prompt)
        if found is not None:
            return query[found:], "truncated"
        for n in (200, 64, 16):
            if n > len(prompt) and n != 16:
                continue
            idx = query.find(prompt[-n:])
            if idx >= 0:
                return query[idx + len(prompt[-n:]):], "tail"
    if marker and marker in query:
        return query.rsplit(marker, 1)[1], "marker"
    return query, "none"


#: Bounds of the left-truncation search (linear time whatever the input): occurrences of the
#: prompt's last characters examined, and full comparisons made, before the search gives up and
#: :func:`split_response` falls back to its ``"tail"`` rule.
MAX_ANCHOR_CANDIDATES = 4096
MAX_FULL_CHECKS = 8
_HEAD = 64


def _truncated_prompt_end(query: str, prompt: str) -> int | None:
    """The smallest ``end >= 8`` with ``query[:end]`` a suffix of ``prompt`` (OpenRLHF cut the prompt
    from the left), or ``None``. Each candidate is screened on its first 64 characters in O(1) and
    at most :data:`MAX_FULL_CHECKS` full comparisons are made, so the cost is linear in the lengths
    (the naive scan was quadratic: 18 s for a hostile 4 MB query).

    >>> _truncated_prompt_end("lo world|>yo", "hello world|>"), _truncated_prompt_end("xyz", "hello world|>")
    (10, None)
    """
    anchor = prompt[-8:]
    limit = min(len(query), len(prompt))
    head = query[:_HEAD]
    plen = len(prompt)
    full = 0
    pos = query.find(anchor, 0, limit)
    for _ in range(MAX_ANCHOR_CANDIDATES):
        if pos < 0:
            return None
        end = pos + len(anchor)
        if prompt.startswith(head[:end], plen - end):  # the first <= 64 characters agree
            if end <= _HEAD:
                return end
            full += 1
            if prompt.endswith(query[:end]):
                return end
            if full >= MAX_FULL_CHECKS:
                return None
        pos = query.find(anchor, pos + 1, limit)
    return None


def read_label(label: Any) -> tuple[dict[str, Any], str | None]:
    """A sample's label → ``(metadata, problem)``; ``problem`` is ``None`` when the label is usable.

    A label is a JSON object (string or mapping) of metadata (``reference``, ``user_id``,
    ``profile``, ``task``, ``query``, ``id``); ``None`` or ``""`` is no metadata. A JSON number or
    string, or plain text that does not look like JSON, is the gold answer (``reference``). What
    looks like JSON but is not (``{not json``), JSON ``null``, ``true``/``false``, an array, or JSON nested
    deeper than Python can decode is a *problem*: the caller flags the sample (``tagpr/error``)
    instead of scoring the label text as the gold answer. (OUR rule: OpenRLHF passes labels as is.)

    >>> read_label('{"user_id": "u7"}'), read_label("sci-fi"), read_label("42")
    (({'user_id': 'u7'}, None), ({'reference': 'sci-fi'}, None), ({'reference': '42'}, None))
    >>> [read_label(x)[1] for x in ("{not json", "null", "[1, 2]")]  # doctest: +NORMALIZE_WHITESPACE
    ['label looks like JSON but is not valid JSON (Expecting property name enclosed in double quotes at char 1)',
     'label is JSON null, expected a JSON object', 'label is a JSON array, expected a JSON object']
    """
    if label is None:
        return {}, None
    if isinstance(label, Mapping):
        return dict(label), None
    if isinstance(label, bytes):
        label = label.decode("utf-8", "replace")
    if not isinstance(label, str):
        if isinstance(label, (int, float)) and not isinstance(label, bool):
            return {"reference": label}, None
        return {}, f"label is a {type(label).__name__}, expected a JSON object string"
    text = label.strip()
    if not text:
        return {}, None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        if text[0] in "{[":
            return {}, f"label looks like JSON but is not valid JSON ({e.msg} at char {e.pos})"
        return {"reference": label}, None
    except RecursionError:
        return {}, "label nests deeper than JSON decoding allows"
    if isinstance(value, Mapping):
        return dict(value), None
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return {"reference": label}, None
    kind = {type(None): "null", bool: "true/false", list: "an array"}.get(type(value), type(value).__name__)
    if kind == "an array":
        return {}, "label is a JSON array, expected a JSON object"
    return {}, f"label is JSON {kind}, expected a JSON object"


def reward_component_names(reward: Any) -> list[str]:
    """The component keys the reward reports (from one empty sample)."""
    from tagpr_rewards.base import Batch

    try:
        out = reward.score(Batch.from_inputs([""], [""], [""], ["dry-run-user"], profile=[[]], query=[""]))
        return list(out.components)
    except Exception as e:  # only the logged key set depends on it
        logger.warning("dry run of the reward failed (%s); only the error flag will be logged", e)
        return []


