"""LaMP-2 (movie tagging), the main training task: vocabulary, users, generator, oracle.

Each movie description is generated from a main content topic (three sentences) plus, 40% of
the time, one distracting sentence about another topic, and filler. Each user maps some topics
to a personal tag and every other topic to a favourite tag; profile tags carry label noise.
The oracle applies the user's mapping to the query's topic (our design, see docs/data.md).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from typing import Any

from tagpr_eval.data.lamp_files import LampSample
from tagpr_eval.data.synthetic.core import (
    INSTRUCTIONS,
    LAMP2_TAGS,
    Explanation,
    SyntheticUser,
    _interests,
    _query,
    _topic_draw,
    _weighted,
)

# LaMP-2 vocabulary: every topic word belongs to exactly one topic (sample_topic relies on it).
# topic: (characters, objects, settings, plausible tags with decreasing weight)
_L2: dict[str, tuple[list[str], list[str], list[str], list[str]]] = {
    "space": (["astronaut", "cosmonaut", "pilot", "alien", "navigator", "engineer"],
              ["starship", "rocket", "asteroid", "wormhole", "satellite", "reactor"],
              ["orbit", "galaxy", "mars", "moonbase", "nebula", "spaceport"],
              ["sci-fi", "dystopia", "thought-provoking", "classic", "action"]),
    "romance": (["bride", "widow", "suitor", "lover", "fiance", "sweetheart"],
                ["letter", "ring", "bouquet", "kiss", "wedding", "diary"],
                ["paris", "vineyard", "ballroom", "cafe", "seaside", "chapel"],
                ["romance", "comedy", "classic", "based on a book", "twist ending"]),
    "crime": (["detective", "gangster", "mobster", "hitman", "smuggler", "inspector"],
              ["pistol", "ransom", "cocaine", "evidence", "vault", "badge"],
              ["precinct", "alley", "casino", "prison", "docks", "underworld"],
              ["violence", "twist ending", "dark comedy", "true story", "action"]),
    "war": (["soldier", "general", "sniper", "medic", "sergeant", "pow"],
            ["rifle", "tank", "grenade", "trench", "bomber", "medal"],
            ["battlefield", "normandy", "frontline", "bunker", "barracks", "stalingrad"],
            ["true story", "violence", "classic", "action", "social commentary"]),
    "school": (["teenager", "teacher", "principal", "cheerleader", "nerd", "freshman"],
               ["homework", "prom", "locker", "yearbook", "exam", "detention"],
               ["highschool", "campus", "classroom", "dormitory", "cafeteria", "gym"],
               ["comedy", "psychology", "social commentary", "romance", "based on a book"]),
    "magic": (["wizard", "witch", "sorcerer", "dragon", "elf", "apprentice"],
              ["wand", "spellbook", "potion", "amulet", "curse", "prophecy"],
              ["kingdom", "castle", "enchanted", "realm", "tower", "forest"],
              ["fantasy", "based on a book", "classic", "comedy", "twist ending"]),
    "horror": (["ghost", "vampire", "demon", "killer", "zombie", "exorcist"],
               ["corpse", "chainsaw", "ritual", "mask", "coffin", "skull"],
               ["graveyard", "asylum", "cabin", "crypt", "mansion", "basement"],
               ["violence", "twist ending", "psychology", "dark comedy", "thought-provoking"]),
    "sports": (["boxer", "coach", "quarterback", "striker", "rookie", "champion"],
               ["trophy", "ball", "gloves", "scoreboard", "playoffs", "contract"],
               ["stadium", "arena", "ring", "league", "locker-room", "olympics"],
               ["true story", "comedy", "action", "social commentary", "psychology"]),
    "family": (["grandmother", "stepfather", "sibling", "toddler", "uncle", "orphan"],
               ["inheritance", "thanksgiving", "photo-album", "recipe", "farmhouse", "reunion"],
               ["suburbs", "hometown", "kitchen", "porch", "countryside", "attic"],
               ["comedy", "classic", "thought-provoking", "psychology", "based on a book"]),
    "politics": (["senator", "president", "journalist", "lobbyist", "activist", "diplomat"],
                 ["election", "scandal", "treaty", "ballot", "speech", "leak"],
                 ["washington", "parliament", "embassy", "whitehouse", "congress", "capitol"],
                 ["social commentary", "true story", "dystopia", "thought-provoking", "dark comedy"]),
    "ocean": (["sailor", "captain", "diver", "pirate", "fisherman", "castaway"],
              ["shipwreck", "treasure", "harpoon", "submarine", "raft", "anchor"],
              ["island", "reef", "atlantic", "lighthouse", "harbor", "lagoon"],
              ["action", "classic", "true story", "fantasy", "based on a book"]),
    "music": (["singer", "drummer", "guitarist", "composer", "rapper", "pianist"],
              ["album", "concert", "record", "melody", "microphone", "tour"],
              ["nightclub", "studio", "nashville", "broadway", "festival", "conservatory"],
              ["true story", "romance", "comedy", "psychology", "classic"]),
}
# 4 words per slot (of the 6 listed): enough overlap between movies of one topic that the
# nearest-item heuristic lands near 0.6 (tuned, see heuristic_scores / docs/data.md).
_L2 = {t: (c[:4], o[:4], s[:4], tags) for t, (c, o, s, tags) in _L2.items()}
LAMP2_TOPICS = list(_L2)
_TAG_WEIGHTS = [0.36, 0.24, 0.17, 0.13, 0.10]
_L2_TEMPLATES = [
    "A {c} must {v} the {o} in the {s}.",
    "In the {s}, a {c} {v2} a {o}.",
    "The {c} finds a {o} near the {s}.",
    "When a {o} appears in the {s}, one {c} has to {v}.",
    "A lonely {c} {v2} the {o} far from the {s}.",
]
_VERBS = ["protect", "recover", "destroy", "understand", "escape", "find", "hide", "win back"]
_VERBS2 = ["chases", "guards", "discovers", "loses", "steals", "repairs", "follows", "hides"]
_FILLER = [
    "Nothing is what it seems.", "Old friends return with new secrets.", "Time is running out.",
    "The journey changes everyone involved.", "It is a story about trust and betrayal.",
    "Every choice has a price.", "Years later, the truth comes out.", "No one is ready for what follows.",
]
_WORD_TOPIC = {w: t for t, (c, o, s, _) in _L2.items() for w in (*c, *o, *s)}


def _l2_sentence(rng: random.Random, topic: str) -> str:
    c, o, s, _ = _L2[topic]
    return rng.choice(_L2_TEMPLATES).format(c=rng.choice(c), o=rng.choice(o), s=rng.choice(s),
                                            v=rng.choice(_VERBS), v2=rng.choice(_VERBS2))


def _l2_movie(rng: random.Random, topic: str) -> str:
    sents = [_l2_sentence(rng, topic) for _ in range(3)]
    if rng.random() < 0.4:  # a distracting secondary topic (one sentence: the main topic still wins)
        other = rng.choice([t for t in LAMP2_TOPICS if t != topic])
        sents.insert(rng.randrange(4), _l2_sentence(rng, other))
    if rng.random() < 0.7:
        sents.insert(rng.randrange(len(sents) + 1), rng.choice(_FILLER))
    # the main topic must win the word count (sample_topic); move it first on a tie
    text = " ".join(sents)
    if _l2_topic_of(text) != topic:
        text = " ".join([s for s in sents if _l2_topic_of(s) == topic] + [s for s in sents if _l2_topic_of(s) != topic])
    return text


def _l2_topic_of(text: str) -> str | None:
    counts: Counter[str] = Counter()
    first: dict[str, int] = {}
    for i, w in enumerate(re.findall(r"[a-z\-]+", text.lower())):
        t = _WORD_TOPIC.get(w)
        if t:
            counts[t] += 1
            first.setdefault(t, i)
    if not counts:
        return None
    return max(counts, key=lambda t: (counts[t], -first[t]))


def _l2_user(rng: random.Random, uid: str) -> SyntheticUser:
    interests = _interests(rng, LAMP2_TOPICS, rng.randint(4, 6))
    fav = rng.choice(LAMP2_TAGS)
    tags = {}
    for t in LAMP2_TOPICS:
        if rng.random() < 0.7:  # opinionated topic
            cands = _L2[t][3]
            tags[t] = _weighted(rng, cands, _TAG_WEIGHTS[: len(cands)])
    return SyntheticUser(uid, "LaMP-2", interests=interests, topic_tags=tags, favourite_tag=fav)


def _noisy_tag(rng: random.Random, tag: str, p: float) -> str:
    return rng.choice([t for t in LAMP2_TAGS if t != tag]) if rng.random() < p else tag


class Movies:
    """The LaMP-2 family (see :class:`~tagpr_eval.data.synthetic.core.Family`)."""

    tasks: tuple[str, ...] = ("LaMP-2",)

    def catalog(self, task: str, rng: random.Random, per_topic: int) -> dict[str, list[str]]:
        """Movie descriptions per topic."""
        return {t: [_l2_movie(rng, t) for _ in range(per_topic)] for t in LAMP2_TOPICS}

    def make_user(self, task: str, rng: random.Random, uid: str) -> SyntheticUser:
        return _l2_user(rng, uid)

    def fill_item(self, task: str, rng: random.Random, user: SyntheticUser, cat: Any, item: dict[str, Any],
                  noise: float) -> None:
        t = _topic_draw(rng, user, 0.1)
        item["description"] = rng.choice(cat[t])
        item["tag"] = _noisy_tag(rng, user.tag_for(t), noise)

    def make_input(self, task: str, rng: random.Random, user: SyntheticUser, cat: Any) -> str:
        t = _topic_draw(rng, user, 0.4)
        return INSTRUCTIONS[task].format(text=rng.choice(cat[t]))

    def noisy_answer(self, task: str, rng: random.Random, user: SyntheticUser, sample: LampSample,
                     answer: str) -> str:
        return _noisy_tag(rng, answer, 1.0)

    def topic(self, task: str, text: str) -> str | None:
        return _l2_topic_of(_query("LaMP-2", text))

    def oracle(self, user: SyntheticUser, sample: LampSample) -> str:
        topic = self.topic(user.task, sample.input)
        return user.tag_for(topic) if topic else (user.favourite_tag or LAMP2_TAGS[0])

    def explain(self, user: SyntheticUser, sample: LampSample, answer: str) -> Explanation:
        topic = self.topic(user.task, sample.input)
        evidence = [i for i, it in enumerate(sample.profile) if _l2_topic_of(it["description"]) == topic]
        return Explanation(user.task, topic, topic, evidence, user.rule(topic), topic not in user.topic_tags, answer)

    def rule(self, user: SyntheticUser, topic: str | None) -> str:
        if topic is not None:
            if topic in user.topic_tags:
                return f"tags {topic} movies {user.topic_tags[topic]!r}"
            return f"has no special tag for {topic} movies and uses the favourite tag {user.favourite_tag!r}"
        parts = [f"{t}→{g!r}" for t, g in sorted(user.topic_tags.items())]
        return f"tags {', '.join(parts)}; otherwise {user.favourite_tag!r}"
