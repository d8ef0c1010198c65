"""Recall grounding: does the chain's recall step quote what the prompt's history items say?

OUR shaping term (the TagPR paper does not describe one). A personalization chain recalls the
user's history before it reasons about it; a small policy often "recalls" a prior instead of the
items in its context (measured on the tiny model: docs/recipe.md, "Learning in miniature"). This
reward checks the recall against the prompt itself, with no label the prompt does not carry:

* the **shown items** are the sample's profile items (the ``profile`` column) whose text
  (the task's ``item_key``, e.g. a LaMP-2 movie's description; whitespace-normalised) occurs
  in the prompt, or, for an item the prompt truncated, whose text starts with one of the
  prompt's double-quoted strings (20 characters or more), in the order they occur. Whole texts,
  not fixed-length prefixes: synthetic and real items often open with the same stock sentence;
* their **values** are the task's ``item_value`` of each (a LaMP-2 item's tag);
* the **recalled values** are the double-quoted strings, in order, of the completion's recall:
  the first of its ``steps`` spans that quotes anything (``recall-history``, else
  ``extract-preference`` in ``personalization-9``: taggers differ on which of the two a listing
  of the history gets; our embedding tagger gave 781 / 673 of tiny-cpu's 1,460 kept chains);
* ``score = 2·LCS(recalled, values) / (|recalled| + |values|)`` in [0, 1]: 1 when every shown
  item's value is quoted, in prompt order, and nothing else is.

A completion whose steps quote nothing scores 0. A sample whose prompt shows no profile item (k = 0, no
profile column, or a task without item values) scores ``None`` (not applicable), with a reason,
and a bad profile value is logged once per reward. Components: ``recalled`` (quoted strings
found), ``shown`` (items found in the prompt).

>>> import json
>>> profile = json.dumps([{"description": "A rocket lifts off.", "tag": "sci-fi"},
...                       {"description": "Two rivals fall in love.", "tag": "romance"},
...                       {"description": "A clown gets lost.", "tag": "comedy"}])
>>> prompt = ('the tag for the movie: "Two rivals fall in love." is "romance" , and the tag for the '
...           'movie: "A rocket lifts off." is "sci-fi" . Which tag ...')
>>> r = RecallGroundingReward("LaMP-2")
>>> out = r(['<recall-history>love -> "romance"; space -> "sci-fi"</recall-history><answer>x</answer>',
...          '<recall-history>space -> "sci-fi"</recall-history><answer>x</answer>',
...          '<answer>sci-fi</answer>'], prompts=[prompt] * 3, profile=[profile] * 3)
>>> [round(s, 3) for s in out.scores], out.components["shown"]
([1.0, 0.667, 0.0], [2.0, 2.0, 2.0])
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from tagpr_rewards.base import Batch, Reward, RewardOutput
from tagpr_rewards.metrics.lamp import get_task, quoted_strings
from tagpr_rewards.registry import register_reward
from tagpr_rewards.tags import batch_parses, load_schema

__all__ = ["RecallGroundingReward", "lcs_length", "lcs_ratio"]

logger = logging.getLogger("tagpr_rewards")

#: the shortest quoted prefix of an item's text that counts as the item, truncated by the prompt
MIN_PREFIX_CHARS = 20


def lcs_length(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Length of the longest common subsequence of ``a`` and ``b`` (dynamic programming).

    >>> lcs_length("abcd", "acd"), lcs_length([], ["x"])
    (3, 0)
    """
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def lcs_ratio(a: Sequence[str], b: Sequence[str]) -> float:
    """``2·LCS(a, b) / (|a| + |b|)``; 1.0 when both are empty.

    >>> lcs_ratio(["x", "y", "z"], ["x", "z"]), lcs_ratio([], []), lcs_ratio(["x"], [])
    (0.8, 1.0, 0.0)
    """
    if not a and not b:
        return 1.0
    return 2.0 * lcs_length(a, b) / (len(a) + len(b))


@register_reward("recall_grounding")
class RecallGroundingReward(Reward):
    """How faithfully the recall step quotes the values of the history items the prompt shows
    (OUR shaping term; see the module docstring for the exact rule).

    Args:
        task: the LaMP task whose ``item_key``/``item_value`` name an item's text and value
            (a ``task`` column, when present, overrides it per row).
        schema: the tag schema of the completions.
        steps: the schema tags that may hold the recall; the first such span that quotes
            anything is it.
    """

    name = "recall_grounding"
    low, high = 0.0, 1.0
    required_columns: tuple[str, ...] = ("profile",)

    def __init__(self, task: str = "LaMP-2", schema: str = "personalization-9",
                 steps: Sequence[str] = ("recall-history", "extract-preference")) -> None:
        sch = load_schema(schema)
        names = [t for t, _ in sch.tags]
        missing = [s for s in steps if s not in names]
        if missing or not steps:
            raise ValueError(f"schema {sch.name!r} has no tag {', '.join(map(repr, missing)) or '(none given)'}; "
                             f"pass steps= from {', '.join(names)}")
        get_task(task)  # an unknown task is an error here, not a None per row
        self.task, self.schema, self.steps = task, schema, tuple(steps)
        self._warned: set[str] = set()

    def _shown_values(self, prompt: str, profile: Any, task: str) -> tuple[list[str] | None, str]:
        from tagpr_rewards.prmu.texts import parse_profile

        spec = get_task(task)
        if spec.item_value is None:
            return None, f"{task} items have no value to recall"
        items, problem = parse_profile(profile)
        if problem is not None:
            if problem not in self._warned:
                self._warned.add(problem)
                logger.warning("%s: %s; such rows get no recall score", self.name, problem)
            return None, problem
        text = " ".join(prompt.split())
        keys = [(" ".join(k.split()), v) for k, v in (spec.item_texts(it) if isinstance(it, dict) else ("", "")
                                                       for it in items)]
        taken: list[tuple[int, int, str]] = []  # (start, stop, value) of each shown item

        def place(needle: str, value: str) -> bool:
            # the first occurrence of needle that no longer item already took (identical items are
            # shown once each; a text inside a longer item's text is that item's)
            pos = text.find(needle)
            while pos >= 0:
                if not any(s < pos + len(needle) and pos < e for s, e, _ in taken):
                    taken.append((pos, pos + len(needle), value))
                    return True
                pos = text.find(needle, pos + 1)
            return False

        unplaced = [j for j in sorted(range(len(keys)), key=lambda j: -len(keys[j][0]))
                    if not (keys[j][0] and place(*keys[j]))]
        # an item the prompt truncated: a quoted string of the prompt that is a prefix of its text
        for q in quoted_strings(text):
            q = q.strip()
            hit = next((j for j in unplaced if len(q) >= MIN_PREFIX_CHARS and keys[j][0].startswith(q)), None)
            if hit is not None and place(q, keys[hit][1]):
                unplaced.remove(hit)
        if not taken:
            return None, "the prompt shows no profile item"
        values = [v for _, _, v in sorted(taken)]
        return values, ""

    def score(self, batch: Batch) -> RewardOutput:
        n = len(batch)
        parses = batch_parses(batch, self.schema)
        prompts = batch.prompts or [""] * n
        profiles = batch.columns.get("profile") or [None] * n
        tasks = batch.columns.get("task") or [None] * n
        scores: list[float | None] = []
        recalled_c: list[float | None] = []
        shown_c: list[float | None] = []
        reasons: list[str] = []
        shown: dict[tuple[str, str, str], tuple[list[str] | None, str]] = {}  # a GRPO group shares its prompt
        for i in range(n):
            key = (str(prompts[i] or ""), str(profiles[i]), str(tasks[i] or self.task))
            if key not in shown:
                shown[key] = self._shown_values(key[0], profiles[i], key[2])
            values, why = shown[key]
            recalled = next((qs for s in parses[i].spans if s.tag in self.steps
                             if (qs := [q.strip() for q in quoted_strings(s.content)])), [])
            recalled_c.append(float(len(recalled)))
            shown_c.append(None if values is None else float(len(values)))
            if values is None:
                scores.append(None)
                reasons.append(why)
            elif not recalled:
                scores.append(0.0)
                reasons.append(f"no {'/'.join(self.steps)} step quotes a value")
            else:
                score = lcs_ratio(recalled, values)
                scores.append(score)
                reasons.append("" if score == 1.0 else f"recalled {len(recalled)} values, "
                               f"{round(score * (len(recalled) + len(values)) / 2)} of {len(values)} shown in order")
        return RewardOutput(scores, {"recalled": recalled_c, "shown": shown_c}, reasons)
