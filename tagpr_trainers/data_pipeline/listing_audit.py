"""Where a model's listing chain goes wrong, step by step (synthetic LaMP-2 only; ours).

The template teacher's listing chain (:meth:`TemplateTeacher._lamp2_listing`) is four small
steps: list every retrieved item as ``topic -> "tag"``, name the query's topic, quote the tags of
the same-topic items, vote. On synthetic data each step can be checked: the items and their tags
are in the prompt, and the generator reads an item's topic back from its text
(:func:`tagpr_eval.data.synthetic.sample_topic`, the same introspection the teacher used to write
its wording). The audit never feeds anything to a model; it says which step a model's greedy chains
fail, which is where a reward has to push (docs/recipe.md, "Where the headroom is").

Rates over the questions whose prompt shows the official LaMP-2 items (``prompt_style: lamp``):

* ``accuracy`` — the answer is the gold tag;
* ``rule_accuracy`` — the chain's own rule applied to the true topics of the shown items is right:
  the ceiling of the taught chain at this retriever and k;
* ``agrees_with_rule`` — the answer is what the rule gives on the true topics;
* ``tags_copied`` — the listing quotes every shown item's tag, in prompt order, and nothing else;
* ``topics_named`` — the listing names every shown item's topic right (per question), and
  ``item_topics_named`` the share of items, over all listed items;
* ``query_topic_named`` — the query's topic is named right;
* ``habit_follows_listing`` — the habit step quotes exactly the listed tags of the named topic
  (or says none when the listing has no such item);
* ``answer_follows_listing`` — the answer is the rule applied to the model's *own* listing and
  topic: the chain executed consistently, right or wrong;
* ``own_listing_accuracy`` — that consistent answer is the gold tag.

>>> prompt = ('the tag for the movie: "A pilot flies the rocket to the mars." is "sci-fi" , and the tag '
...           'for the movie: "A grandmother bakes for the thanksgiving." is "comedy" . Which tag does this '
...           'movie relate to among the following tags? Just answer with the tag name without further '
...           'explanation. tags: [sci-fi, comedy] description: An alien lands near the moonbase.')
>>> chain = ('<recall-history>The user\\'s history items: space -> "sci-fi"; family -> "comedy".</recall-history>'
...          '<analyze-query>The query movie is about space.</analyze-query>'
...          '<extract-preference>The user\\'s habit for space: "sci-fi".</extract-preference>'
...          '<answer>sci-fi</answer>')
>>> a = audit_listing([{"task": "LaMP-2", "prompt": prompt, "raw_output": chain, "answer": "sci-fi",
...                     "gold": "sci-fi"}])
>>> a["n"], a["accuracy"], a["rule_accuracy"], a["tags_copied"], a["topics_named"], a["answer_follows_listing"]
(1, 1.0, 1.0, 1.0, 1.0, 1.0)
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tagpr_rewards.consistency import listed_pairs

__all__ = ["AUDIT_FIELDS", "audit_listing", "audit_table", "audits_run", "listing_vote"]

#: the rates :func:`audit_listing` reports, in table order, with their table labels
AUDIT_FIELDS = {
    "accuracy": "accuracy",
    "rule_accuracy": "rule on true topics (ceiling)",
    "agrees_with_rule": "answer = rule on true topics",
    "tags_copied": "tags copied in order",
    "topics_named": "item topics all named",
    "item_topics_named": "item topics named (per item)",
    "query_topic_named": "query topic named",
    "habit_follows_listing": "habit step follows own listing",
    "answer_follows_listing": "answer = rule on own listing",
    "own_listing_accuracy": "rule on own listing is right",
}

_ITEM = re.compile(r'the tag for the movie: "(.*?)" is "(.*?)" ')
_QUERY = re.compile(r"is about ([^\s.]+)\.")
_HABIT = re.compile(r"habit for ([^\s:]+): (.*?)(?:\.\s*<|\.?$)", re.S)


def audits_run(data: Any) -> bool:
    """Whether a recipe run's chains are the ones this audit reads: the template teacher's listing
    chain on synthetic LaMP-2 (``data`` is the run's ``data`` config section).

    >>> from tagpr_trainers.recipe.config import load_recipe_config
    >>> audits_run(load_recipe_config("tiny-cpu").data)
    True
    >>> audits_run(load_recipe_config("tiny-cpu", ["data.teacher.chain=prose"]).data)
    False
    """
    return (data.source == "synthetic" and "LaMP-2" in data.tasks and data.teacher.kind == "template"
            and data.teacher.chain == "listing")


def listing_vote(listed: Sequence[tuple[str, str]], topic: str | None) -> str | None:
    """The listing chain's rule: the most common tag of the listed items about ``topic``, else of
    all of them (ties: the first listed), ``None`` for an empty listing.

    >>> listing_vote([("space", "sci-fi"), ("family", "comedy"), ("family", "comedy")], "space")
    'sci-fi'
    >>> listing_vote([("space", "sci-fi"), ("family", "comedy"), ("family", "comedy")], "war")
    'comedy'
    """
    same = [tag for t, tag in listed if t == topic]
    pool = same or [tag for _, tag in listed]
    return Counter(pool).most_common(1)[0][0] if pool else None


def _truth(prompt: str) -> tuple[list[tuple[str, str]], str] | None:
    from tagpr_eval.data.synthetic import sample_topic

    items = _ITEM.findall(prompt)
    if not items or " description: " not in prompt:
        return None
    query = prompt.rsplit(" description: ", 1)[1]
    return ([(sample_topic(d, "LaMP-2") or "unknown", tag) for d, tag in items],
            sample_topic(query, "LaMP-2") or "unknown")


def audit_listing(samples: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Step-by-step rates (module docstring) over the LaMP-2 ``samples`` of a ``tagpr_eval`` run
    (rows of its ``samples.jsonl``: ``task``, ``prompt``, ``raw_output``, ``answer``, ``gold``).

    Returns the rates, ``n`` (questions audited) and ``skipped`` (rows of another task or with a
    prompt that shows no official LaMP-2 item, e.g. the tagged prompt style or k = 0)."""
    counts: Counter[str] = Counter()
    n = skipped = items_total = 0
    for s in samples:
        prompt = s.get("prompt")
        truth = _truth(prompt) if s.get("task") == "LaMP-2" and isinstance(prompt, str) else None
        if truth is None:
            skipped += 1
            continue
        shown, topic = truth
        n += 1
        out = str(s.get("raw_output") or "")
        gold, answer = s.get("gold"), s.get("answer")
        first = next((ln for ln in re.split(r"</[^>]+>", out) if ' -> "' in ln), "")
        listed = listed_pairs(first)
        m = _QUERY.search(out)
        named = m.group(1) if m else None
        rule = listing_vote(shown, topic)
        own = listing_vote(listed, named)
        counts["accuracy"] += answer == gold
        counts["rule_accuracy"] += rule == gold
        counts["agrees_with_rule"] += answer == rule
        counts["tags_copied"] += [t for _, t in listed] == [t for _, t in shown]
        aligned = len(listed) == len(shown)
        counts["topics_named"] += aligned and all(a == b for (a, _), (b, _) in zip(listed, shown))
        counts["item_topics_named"] += sum(a == b for (a, _), (b, _) in zip(listed, shown))
        items_total += len(shown)
        counts["query_topic_named"] += named == topic
        h = _HABIT.search(out)
        if h:
            quoted = re.findall(r'"([^"]*)"', h.group(2))
            same = [t for a, t in listed if a == h.group(1)]
            counts["habit_follows_listing"] += (quoted == same) if same else h.group(2).startswith("none")
        counts["answer_follows_listing"] += own is not None and answer == own
        counts["own_listing_accuracy"] += own is not None and own == gold
    rates: dict[str, Any] = {k: (counts[k] / (items_total if k == "item_topics_named" else n)) if n else None
                             for k in AUDIT_FIELDS}
    return {"n": n, "skipped": skipped, **rates}


def audit_table(audits: Mapping[str, Mapping[str, Any]]) -> str:
    """A markdown table, one column per audited model (``{label: audit_listing(...)}``).

    >>> print(audit_table({"SFT": {"n": 2, "accuracy": 0.5}}).splitlines()[2])
    | accuracy | 0.500 |
    """
    names = list(audits)
    lines = ["| step | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key, label in AUDIT_FIELDS.items():
        vals = [audits[m].get(key) for m in names]
        if all(v is None for v in vals):
            continue
        lines.append(f"| {label} | " + " | ".join("–" if v is None else f"{v:.3f}" for v in vals) + " |")
    lines.append("| questions audited | " + " | ".join(str(audits[m].get("n", 0)) for m in names) + " |")
    return "\n".join(lines)
