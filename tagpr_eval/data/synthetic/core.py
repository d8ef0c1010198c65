"""Shared pieces of the synthetic generator: the task list, the official-style instructions,
the user and task types, random helpers, and the :class:`Family` interface each task family
implements (our design, not LaMP's)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tagpr_eval.data.lamp_files import LampSample, LampTaskData
from tagpr_rewards.metrics.labels import LAMP2_MOVIE_TAGS
from tagpr_rewards.metrics.lamp import get_task

#: task -> its family, filled by :mod:`tagpr_eval.data.synthetic.families` when the package is
#: imported (so this bottom module never imports the families that build on it)
_FAMILIES: dict[str, Any] = {}


def registered_family(task: str) -> Any:
    """The family registered for ``task`` (see :func:`tagpr_eval.data.synthetic.families.family_of`)."""
    try:
        return _FAMILIES[task]
    except KeyError:
        raise ValueError(f"no synthetic generator registered for {task!r}; import tagpr_eval.data.synthetic "
                         "(it registers every family)") from None

SYNTHETIC_TASKS = ("LaMP-1", "LaMP-2", "LaMP-3", "LaMP-4", "LaMP-5", "LaMP-6", "LaMP-7")

LAMP2_TAGS: list[str] = list(LAMP2_MOVIE_TAGS)

#: Official-style instructions; the query follows the task's query marker (its TaskSpec).
INSTRUCTIONS = {
    "LaMP-1": 'For an author who has written the paper with the title "{title}", which reference is related? '
              'Just answer with [1] or [2] without explanation. [1]: "{ref1}" [2]: "{ref2}"',
    "LaMP-2": "Which tag does this movie relate to among the following tags? Just answer with the tag name "
              "without further explanation. tags: [" + ", ".join(LAMP2_TAGS) + "] description: {text}",
    "LaMP-3": "What is the score of the following review on a scale of 1 to 5? just answer with 1, 2, 3, 4, "
              "or 5 without further explanation. review: {text}",
    "LaMP-4": "Generate a headline for the following article: {text}",
    "LaMP-5": "Generate a title for the following abstract of a paper: {text}",
    "LaMP-6": "Generate a subject for the following email: {text}",
    "LaMP-7": "Paraphrase the following tweet without any explanation before or after it: {text}",
}


@dataclass
class SyntheticUser:
    """A synthetic user's latent preferences (what the oracle and the template teacher know).

    * ``interests``: topic → weight (LaMP-1/2/3 topics; profile items follow it);
    * LaMP-2: ``topic_tags`` (personal tag for opinionated topics) and ``favourite_tag`` (all
      other topics);
    * LaMP-3: ``leniency`` (added to every rating) and ``topic_bias`` (per product category);
    * LaMP-4..7: ``style`` (one value per style dimension, see
      :data:`tagpr_eval.data.synthetic.styled.STYLE_CHOICES`).
    """

    user_id: str
    task: str
    interests: dict[str, float] = field(default_factory=dict)
    topic_tags: dict[str, str] = field(default_factory=dict)
    favourite_tag: str | None = None
    leniency: float = 0.0
    topic_bias: dict[str, float] = field(default_factory=dict)
    style: dict[str, str] = field(default_factory=dict)

    def tag_for(self, topic: str) -> str:
        """LaMP-2: the user's (noise-free) tag for a topic."""
        return self.topic_tags.get(topic) or self.favourite_tag or LAMP2_TAGS[0]

    def rule(self, topic: str | None = None) -> str:
        """A one-line statement of the user's rule (for topic ``topic`` when given)."""
        return registered_family(self.task).rule(self, topic)


@dataclass
class SyntheticTask:
    """A generated task: the LaMP data, the users by id, and the generation settings."""

    data: LampTaskData
    users: dict[str, SyntheticUser]
    settings: dict[str, Any] = field(default_factory=dict)

    def oracle(self) -> dict[str, str]:
        """``{question id: oracle answer}`` (noise-free)."""
        out = {}
        for s in self.data.samples:
            user = self.users[s.user_id or ""]
            out[s.id] = registered_family(user.task).oracle(user, s)
        return out


@dataclass
class Explanation:
    """What the template teacher needs to write a reasoning chain for one question.

    ``topic``: the query's content topic (LaMP-1: the correct candidate's topic; LaMP-4..7:
    ``None``); ``content``: the task's content key (LaMP-3 sentiment level, LaMP-4..7 core text);
    ``evidence``: indices of profile items that show the rule (same topic, or same style);
    ``rule``: the user's rule in words; ``used_fallback``: LaMP-2, the favourite tag decided;
    ``answer``: the oracle answer.
    """

    task: str
    topic: str | None
    content: Any
    evidence: list[int]
    rule: str
    used_fallback: bool
    answer: str


class Family(Protocol):
    """What one task family (movies, citations, reviews, styled text) implements. The generator,
    the oracle and ``explain`` call these and nothing else task-specific; random draws happen
    in the order the generator calls them (the pinned data depends on that order)."""

    tasks: tuple[str, ...]

    def catalog(self, task: str, rng: random.Random, per_topic: int) -> Any:
        """Shared pools of inputs, so that different users are asked about the same inputs."""

    def make_user(self, task: str, rng: random.Random, uid: str) -> SyntheticUser:
        """A user with random latent preferences."""

    def fill_item(self, task: str, rng: random.Random, user: SyntheticUser, cat: Any, item: dict[str, Any],
                  noise: float) -> None:
        """Fill one profile item's fields (``id`` and ``date`` are the generator's)."""

    def make_input(self, task: str, rng: random.Random, user: SyntheticUser, cat: Any) -> str:
        """One question's ``input``."""

    def noisy_answer(self, task: str, rng: random.Random, user: SyntheticUser, sample: LampSample,
                     answer: str) -> str:
        """A gold that deviates from the user's rule (called only when gold noise strikes)."""

    def oracle(self, user: SyntheticUser, sample: LampSample) -> str:
        """The noise-free personalized answer."""

    def topic(self, task: str, text: str) -> str | None:
        """The content topic of a question's text (``None`` for the styled-text tasks)."""

    def explain(self, user: SyntheticUser, sample: LampSample, answer: str) -> Explanation:
        """What a template teacher needs to write the reasoning."""

    def rule(self, user: SyntheticUser, topic: str | None) -> str:
        """The user's rule in words."""


def _weighted(rng: random.Random, items: Sequence[str], weights: Sequence[float]) -> str:
    return rng.choices(list(items), weights=list(weights), k=1)[0]


def _interests(rng: random.Random, topics: Sequence[str], n_fav: int) -> dict[str, float]:
    favs = rng.sample(list(topics), n_fav)
    w = {t: 0.04 for t in topics}
    raw = [rng.uniform(0.5, 1.5) for _ in favs]
    tot = sum(raw)
    for t, r in zip(favs, raw):
        w[t] += r / tot
    z = sum(w.values())
    return {t: w[t] / z for t in topics}


def _query(task: str, text: str) -> str:
    """The question's content: the task's query rule (``TaskSpec.query``, the one retrieval uses)."""
    return get_task(task).query(text)


def _detect_task(text: str) -> str:
    for task, ins in INSTRUCTIONS.items():
        head = ins.split("{", 1)[0]
        if text.startswith(head[:40]):
            return task
    raise ValueError(f"not a synthetic LaMP input: {text[:80]!r}")


def _date(rng: random.Random, task: str, j: int) -> str | int:
    year = 2005 + j // 4
    if task in ("LaMP-1", "LaMP-5"):
        return year
    return f"{year}-{(j % 12) + 1:02d}-{rng.randint(1, 28):02d}"


def _topic_draw(rng: random.Random, user: SyntheticUser, mix: float) -> str:
    topics = list(user.interests)
    if rng.random() < mix:
        return rng.choice(topics)
    return _weighted(rng, topics, [user.interests[t] for t in topics])
