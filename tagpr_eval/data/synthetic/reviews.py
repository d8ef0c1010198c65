"""LaMP-3 (product rating): categories, sentiment phrases, users, generator, oracle.

Rating = 3 + review sentiment + the user's leniency + a per-category bias (+ noise), clipped
to 1..5 (our design, see docs/data.md).
"""

from __future__ import annotations

import math
import random
import re
from typing import Any

from tagpr_eval.data.lamp_files import LampSample
from tagpr_eval.data.synthetic.core import (
    INSTRUCTIONS,
    Explanation,
    SyntheticUser,
    _interests,
    _query,
    _topic_draw,
)

# LaMP-3: product categories, sentiment phrases by level -2..2.
_L3_CATS: dict[str, list[str]] = {
    "electronics": ["headphones", "charger", "laptop", "speaker", "camera"],
    "kitchen": ["blender", "skillet", "kettle", "toaster", "knife"],
    "books": ["novel", "cookbook", "biography", "paperback", "anthology"],
    "toys": ["puzzle", "doll", "lego", "drone", "boardgame"],
    "beauty": ["shampoo", "lipstick", "moisturizer", "perfume", "serum"],
    "garden": ["hose", "shovel", "planter", "sprinkler", "fertilizer"],
}
_L3_SENT: dict[int, list[str]] = {
    -2: ["broke after two days", "a complete waste of money", "stopped working immediately"],
    -1: ["is disappointing", "feels cheap", "does not quite work as described"],
    0: ["is okay for the price", "does the job, nothing special", "is average overall"],
    1: ["works well", "is a solid purchase", "is better than expected"],
    2: ["is absolutely perfect", "exceeded every expectation", "is the best I have ever owned"],
}
_L3_PHRASE_LEVEL = {p: lvl for lvl, ps in _L3_SENT.items() for p in ps}
_L3_WORD_CAT = {w: c for c, ws in _L3_CATS.items() for w in ws}
_L3_FILLER = ["Shipping was quick.", "I bought it as a gift.", "The box was a bit damaged.",
              "I have used it for a month.", "My sister recommended it."]


def _l3_review(rng: random.Random, cat: str, level: int) -> str:
    prod = rng.choice(_L3_CATS[cat])
    sents = [f"This {prod} {rng.choice(_L3_SENT[level])}."]
    if rng.random() < 0.7:
        sents.append(rng.choice(_L3_FILLER))
    rng.shuffle(sents)
    return " ".join(sents)


def _l3_parse(text: str) -> tuple[str | None, int]:
    low = text.lower()
    level = 0
    for p, lvl in _L3_PHRASE_LEVEL.items():
        if p.lower() in low:
            level = lvl
            break
    cat = next((_L3_WORD_CAT[w] for w in re.findall(r"[a-z]+", low) if w in _L3_WORD_CAT), None)
    return cat, level


def _l3_rating(user: SyntheticUser, cat: str | None, level: int) -> int:
    raw = 3 + level + user.leniency + (user.topic_bias.get(cat, 0.0) if cat else 0.0)
    return int(min(5, max(1, math.floor(raw + 0.5))))


class Reviews:
    """The LaMP-3 family (see :class:`~tagpr_eval.data.synthetic.core.Family`)."""

    tasks: tuple[str, ...] = ("LaMP-3",)

    def catalog(self, task: str, rng: random.Random, per_topic: int) -> dict[str, list[tuple[str, int]]]:
        """Reviews per category, four per sentiment level."""
        return {c: [(_l3_review(rng, c, lvl), lvl) for lvl in range(-2, 3) for _ in range(4)] for c in _L3_CATS}

    def make_user(self, task: str, rng: random.Random, uid: str) -> SyntheticUser:
        bias = {c: rng.choice([-1.0, 1.0]) for c in rng.sample(list(_L3_CATS), rng.randint(0, 2))}
        return SyntheticUser(uid, task, interests=_interests(rng, list(_L3_CATS), 3),
                             leniency=round(rng.uniform(-1.2, 1.2), 2), topic_bias=bias)

    def fill_item(self, task: str, rng: random.Random, user: SyntheticUser, cat: Any, item: dict[str, Any],
                  noise: float) -> None:
        c = _topic_draw(rng, user, 0.2)
        text, lvl = rng.choice(cat[c])
        r = _l3_rating(user, c, lvl)
        if rng.random() < noise:
            r = min(5, max(1, r + rng.choice([-1, 1])))
        item["text"] = text
        item["score"] = str(r)

    def make_input(self, task: str, rng: random.Random, user: SyntheticUser, cat: Any) -> str:
        c = _topic_draw(rng, user, 0.3)
        return INSTRUCTIONS[task].format(text=rng.choice(cat[c])[0])

    def noisy_answer(self, task: str, rng: random.Random, user: SyntheticUser, sample: LampSample,
                     answer: str) -> str:
        r = int(answer)
        return str(r + 1 if r == 1 else r - 1 if r == 5 else r + rng.choice([-1, 1]))

    def topic(self, task: str, text: str) -> str | None:
        return _l3_parse(_query("LaMP-3", text))[0]

    def oracle(self, user: SyntheticUser, sample: LampSample) -> str:
        cat, level = _l3_parse(_query("LaMP-3", sample.input))
        return str(_l3_rating(user, cat, level))

    def explain(self, user: SyntheticUser, sample: LampSample, answer: str) -> Explanation:
        cat, level = _l3_parse(_query("LaMP-3", sample.input))
        evidence = [i for i, it in enumerate(sample.profile) if _l3_parse(it["text"])[0] == cat]
        return Explanation(user.task, cat, level, evidence, user.rule(), False, answer)

    def rule(self, user: SyntheticUser, topic: str | None) -> str:
        bias = ", ".join(f"{c} {b:+.0f}" for c, b in sorted(user.topic_bias.items()))
        return f"rates with leniency {user.leniency:+.1f}" + (f" and category bias {bias}" if bias else "")
