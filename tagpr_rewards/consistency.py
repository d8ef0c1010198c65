"""Step consistency: does the chain carry out its own steps? (OUR shaping term.)

The TagPR paper does not describe one. A listing chain (the template teacher's, docs/recipe.md)
lists the history as ``key -> "value"`` pairs, names the query's key, quotes the values listed
under that key (the *habit*), then answers with their most common one. On the pretrained tiny
models the listing usually copies the tags right, but the habit step quotes exactly the listed
values of the named key for only 18-36% of the questions (the chain audit,
:mod:`tagpr_trainers.data_pipeline.listing_audit`, measures the same step). As a reward term it
moves that step without moving accuracy (docs/recipe.md, "Nor does a step-consistency term"). This reward checks
each step against the steps before it, in the completion alone — no label, nothing the prompt
does not show:

* the **listing** is the ``key -> "value"`` pairs of the first of ``list_steps`` that has any;
* the **named key** is the last word of the ``query_step`` span (``The query movie is about
  space.`` names ``space``);
* ``habit = 2·LCS(quoted, listed) / (|quoted| + |listed|)`` where ``quoted`` are the strings the
  ``habit_step`` span quotes and ``listed`` the values listed under the named key (with no such
  value: the most common listed value, the chain's fallback, or nothing);
* ``vote`` = 1 when the answer is the most common of the habit's quoted values (ties: the first),
  or of all listed values when the habit quotes none;
* ``score = (habit + vote) / 2``. A completion with no listing, no named key or no habit span
  scores 0 (with a reason). Whether the listing itself is right is the recall term's
  (:mod:`tagpr_rewards.recall`); this one only asks that later steps follow it.

>>> chain = ('<recall-history>items: space -> "sci-fi"; family -> "comedy"; space -> "action".</recall-history>'
...          '<analyze-query>The query movie is about space.</analyze-query>'
...          '<extract-preference>The habit for space: "sci-fi", "action".</extract-preference>'
...          '<answer>sci-fi</answer>')
>>> r = StepConsistencyReward()
>>> out = r([chain, chain.replace('"sci-fi", "action"', '"comedy"'), '<answer>sci-fi</answer>'])
>>> out.scores, out.components["habit"], out.components["vote"]
([1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0])
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from tagpr_rewards.base import Batch, Reward, RewardOutput
from tagpr_rewards.metrics.lamp import quoted_strings
from tagpr_rewards.recall import lcs_ratio
from tagpr_rewards.registry import register_reward
from tagpr_rewards.tags import batch_parses, load_schema

__all__ = ["StepConsistencyReward", "listed_pairs"]

_PAIR = re.compile(r'([^\s;:]+) -> "([^"]*)"')
_WORD = re.compile(r"[\w-]+")


def listed_pairs(text: str) -> list[tuple[str, str]]:
    """The ``key -> "value"`` pairs of ``text``, in order (the chain audit reads listings with it too).

    >>> listed_pairs('items: space -> "sci-fi"; family -> "comedy".')
    [('space', 'sci-fi'), ('family', 'comedy')]
    """
    return _PAIR.findall(text)


def _vote(values: Sequence[str]) -> str | None:
    return Counter(values).most_common(1)[0][0] if values else None  # Counter keeps first-seen order on ties


@register_reward("step_consistency")
class StepConsistencyReward(Reward):
    """Whether the habit step quotes what the listing gave the named key, and the answer is their
    vote (OUR shaping term; the module docstring gives the exact rule).

    Args:
        schema: the tag schema of the completions.
        list_steps: the tags that may hold the listing; the first with a ``key -> "value"`` pair is it.
        query_step: the tag whose last word names the query's key.
        habit_step: the tag that quotes the values of the named key.
    """

    name = "step_consistency"
    low, high = 0.0, 1.0

    def __init__(self, schema: str = "personalization-9",
                 list_steps: Sequence[str] = ("recall-history", "extract-preference"),
                 query_step: str = "analyze-query", habit_step: str = "extract-preference") -> None:
        sch = load_schema(schema)
        names = [t for t, _ in sch.tags]
        missing = [s for s in (*list_steps, query_step, habit_step) if s not in names]
        if missing or not list_steps:
            raise ValueError(f"schema {sch.name!r} has no tag {', '.join(map(repr, missing)) or '(none given)'}; "
                             f"pass list_steps=, query_step=, habit_step= from {', '.join(names)}")
        self.schema, self.list_steps, self.query_step, self.habit_step = schema, tuple(list_steps), query_step, habit_step

    def score(self, batch: Batch) -> RewardOutput:
        scores: list[float | None] = []
        habit_c: list[float | None] = []
        vote_c: list[float | None] = []
        reasons: list[str] = []
        for p in batch_parses(batch, self.schema):
            listing = next((pairs for s in p.spans if s.tag in self.list_steps if (pairs := listed_pairs(s.content))),
                           None)
            query = next((s.content for s in p.spans if s.tag == self.query_step), "")
            words = _WORD.findall(query)
            habit_span = next((s for s in p.spans if s.tag == self.habit_step and not listed_pairs(s.content)), None)
            if listing is None or not words or habit_span is None:
                missing = ("a listing" if listing is None else f"a named key ({self.query_step})" if not words
                           else f"a {self.habit_step} step after the listing")
                scores.append(0.0)
                habit_c.append(0.0)
                vote_c.append(0.0)
                reasons.append(f"no {missing}")
                continue
            key = words[-1]
            expected = [v for k, v in listing if k == key]
            quoted = [q.strip() for q in quoted_strings(habit_span.content)]
            fallback = _vote([v for _, v in listing])
            habit = lcs_ratio(quoted, expected) if expected else float(not quoted or quoted == [fallback])
            vote = float(p.answer is not None and p.answer == _vote(quoted or [v for _, v in listing]))
            scores.append((habit + vote) / 2)
            habit_c.append(habit)
            vote_c.append(vote)
            reasons.append("" if habit == vote == 1.0 else
                           f"habit quotes {quoted} for {key!r}, listed {expected}; answer {p.answer!r}")
        return RewardOutput(scores, {"habit": habit_c, "vote": vote_c}, reasons)
