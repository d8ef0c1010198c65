"""The text side of OpenRLHF's reward protocol, shared by the in-process entry file
(``tagpr_trainers/openrlhf``) and the remote reward server (``tagpr-rm serve``).

OpenRLHF sends ``query`` = decoded prompt + response (special tokens kept, the prompt possibly
cut from the left) and ``prompts`` = the prompt text; these helpers recover the response and
fix the set of logged component keys (OpenRLHF concatenates ``extra_logs`` per key, so every
sample must carry the same keys).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

__all__ = ["reward_component_names", "split_response", "strip_special_tokens"]

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
        anchor = prompt[-8:]
        pos = query.find(anchor)
        while pos >= 0:
            end = pos + len(anchor)
            if prompt.endswith(query[:end]):
                return query[end:], "truncated"
            pos = query.find(anchor, pos + 1)
        for n in (200, 64, 16):
            if n > len(prompt) and n != 16:
                continue
            idx = query.find(prompt[-n:])
            if idx >= 0:
                return query[idx + len(prompt[-n:]):], "tail"
    if marker and marker in query:
        return query.rsplit(marker, 1)[1], "marker"
    return query, "none"


def reward_component_names(reward: Any) -> list[str]:
    """The component keys the reward reports (from one empty sample)."""
    from tagpr_rewards.base import Batch

    try:
        out = reward.score(Batch.from_inputs([""], [""], [""], ["dry-run-user"], profile=[[]], query=[""]))
        return list(out.components)
    except Exception as e:  # only the logged key set depends on it
        logger.warning("dry run of the reward failed (%s); only the error flag will be logged", e)
        return []


