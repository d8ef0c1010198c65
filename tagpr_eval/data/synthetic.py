"""Synthetic LaMP-format data with known latent user preferences (our design, not LaMP's).

Users with hidden preferences produce profiles and questions in the exact LaMP layouts
(LaMP-1..7), so the right personalized answer is known (:func:`oracle_answer`) and two users
can need different answers for the same input. It is built to be hard enough that simple
heuristics do not saturate it (see docs/data.md, "Synthetic data"):

* **LaMP-2** (movie tagging, the main training task): each movie description is generated
  from a main content topic (space, romance, crime, …: three sentences) plus, 40% of the
  time, one distracting sentence about another topic, and filler. Each user maps some topics to a personal tag (one user tags space
  stories "sci-fi", another "dystopia"), every other topic to a favourite tag, and their
  profile tags carry label noise. The oracle applies the user's mapping to the query's topic.
  Measured ladder (defaults, dev): profile-majority ≈ 0.3 < nearest-profile-item (BM25)
  ≈ 0.6 < same-topic profile vote ≈ 0.75 < oracle ≈ 0.95 accuracy.
* **LaMP-1**: the user's research interests decide which of two candidate references is cited;
  the paper title is about the wrong candidate's topic half of the time.
* **LaMP-3**: rating = 3 + review sentiment + the user's leniency + a per-category bias (+ noise).
* **LaMP-4/5/6/7**: the content comes from the input; the user's style (prefix, casing,
  length, signature words) decides the surface form, and the user's earlier outputs show it.

Golds are the oracle answer with ``gold_noise`` applied (default 0.05: a random other label,
rating ±1, or a dropped style element); the oracle is the noise-free answer. Everything is
deterministic by ``seed`` (and task and split); splits have disjoint users.

>>> st = generate_task("LaMP-2", n_users=3, questions_per_user=2, profile_size=6, seed=1)
>>> len(st.data), sorted(st.users)[:1]
(6, ['ud0000'])
>>> s = st.data.samples[0]
>>> oracle_answer(st.users[s.user_id], s) in LAMP2_TAGS
True
>>> sample_topic(s) in LAMP2_TOPICS
True
"""

from __future__ import annotations

import math
import os
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tagpr_eval.data.lamp_files import LampSample, LampTaskData, canonical_task, write_task
from tagpr_rewards.metrics.labels import LAMP2_MOVIE_TAGS

__all__ = [
    "INSTRUCTIONS",
    "LAMP2_TAGS",
    "LAMP2_TOPICS",
    "SYNTHETIC_TASKS",
    "Explanation",
    "SyntheticTask",
    "SyntheticUser",
    "explain",
    "generate_task",
    "heuristic_scores",
    "oracle_answer",
    "sample_topic",
    "write_synthetic",
]

SYNTHETIC_TASKS = ("LaMP-1", "LaMP-2", "LaMP-3", "LaMP-4", "LaMP-5", "LaMP-6", "LaMP-7")

LAMP2_TAGS: list[str] = list(LAMP2_MOVIE_TAGS)

#: Official-style instructions; the query follows the last marker.
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

# ---------------------------------------------------------------------------------------------
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

# LaMP-1: research areas. (title phrases, abstract words)
_L1: dict[str, tuple[list[str], list[str]]] = {
    "graphs": (["Graph Neural Networks", "Message Passing on Graphs", "Node Embeddings", "Link Prediction"],
               ["graph", "nodes", "edges", "neighbourhood", "adjacency"]),
    "vision": (["Image Segmentation", "Object Detection", "Visual Recognition", "Convolutional Features"],
               ["images", "pixels", "detector", "segmentation", "convolutional"]),
    "speech": (["Speech Recognition", "Acoustic Modeling", "Speaker Verification", "Spoken Language"],
               ["audio", "acoustic", "phonemes", "speaker", "spectrogram"]),
    "retrieval": (["Document Ranking", "Query Expansion", "Dense Retrieval", "Search Engines"],
                  ["queries", "documents", "ranking", "relevance", "index"]),
    "robotics": (["Robot Manipulation", "Legged Locomotion", "Motion Planning", "Grasp Synthesis"],
                 ["robot", "gripper", "trajectory", "actuators", "manipulation"]),
    "security": (["Malware Detection", "Side-Channel Attacks", "Secure Protocols", "Intrusion Detection"],
                 ["attacks", "encryption", "adversary", "malware", "protocol"]),
    "databases": (["Query Optimization", "Transaction Processing", "Index Structures", "Join Algorithms"],
                  ["transactions", "joins", "tables", "optimizer", "storage"]),
    "biology": (["Protein Folding", "Gene Expression Analysis", "Sequence Alignment", "Single-Cell Genomics"],
                ["protein", "genes", "sequences", "cells", "genome"]),
}
_L1_WORD_TOPIC = {w.lower(): t for t, (ph, ws) in _L1.items() for p in ph for w in p.split()} | {
    w: t for t, (_, ws) in _L1.items() for w in ws
}
_L1_PREFIX = ["Towards", "Learning", "Revisiting", "Scalable", "Efficient", "Robust", "On"]

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

# LaMP-4..7 content pieces.
_ENTITIES = ["City Council", "Local Schools", "Tech Giant", "Star Striker", "Health Officials", "Central Bank",
             "Climate Scientists", "Farmers", "Transit Authority", "Museum", "Startup", "Senate"]
_ACTIONS = ["approves", "rejects", "unveils", "delays", "expands", "cuts", "announces", "reviews"]
_OBJECTS = ["new budget", "housing plan", "vaccine program", "stadium deal", "rate hike", "bike lanes",
            "water rules", "school lunches", "data center", "art exhibit", "tax break", "rail line"]
_PLACES = ["Boston", "Denver", "Austin", "Seattle", "Atlanta", "Chicago", "Phoenix", "Portland"]
_METHODS = ["contrastive pretraining", "sparse attention", "graph rewiring", "curriculum learning",
            "low-rank adaptation", "diffusion sampling", "knowledge distillation", "active learning"]
_PROBLEMS = ["document ranking", "protein design", "speech translation", "code generation",
             "traffic forecasting", "medical imaging", "fraud detection", "robot navigation"]
_EMAIL_TOPICS = ["budget review", "project timeline", "client meeting", "server outage", "hiring plan",
                 "quarterly report", "contract renewal", "team offsite", "product launch", "security audit"]
_EMAIL_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
_TWEET_SUBJ = ["coffee", "the game", "this weather", "my new phone", "the concert", "monday mornings",
               "the traffic", "pizza night", "the season finale", "my cat", "the gym", "the new album"]
_TWEET_FEEL = ["is amazing", "is annoying", "made my day", "is overrated", "is the best thing ever",
               "is driving me crazy", "was worth it", "needs to stop"]
_EMPHASIS = {"is amazing": "is so amazing", "is annoying": "is so annoying", "made my day": "totally made my day",
             "is overrated": "is so overrated", "is the best thing ever": "is literally the best thing ever",
             "is driving me crazy": "is really driving me crazy", "was worth it": "was so worth it",
             "needs to stop": "really needs to stop"}

# Styles (LaMP-4..7): each user picks one value per dimension.
_STYLE_CHOICES: dict[str, dict[str, list[str]]] = {
    "LaMP-4": {"prefix": ["", "BREAKING:", "Opinion:", "Watch:"], "casing": ["title", "sentence", "lower"],
               "length": ["short", "long"], "signature": ["", "experts say", "here's why", "report"]},
    "LaMP-5": {"form": ["plain", "towards", "colon", "question"], "signature": ["", "Efficient", "Scalable", "Robust"],
               "length": ["short", "long"]},
    "LaMP-6": {"prefix": ["", "Re:", "FYI:", "[team]"], "casing": ["sentence", "lower"],
               "signature": ["", "quick question", "urgent", "update"], "length": ["short", "long"]},
    "LaMP-7": {"casing": ["keep", "lower"], "slang": ["none", "abbrev"], "signoff": ["", "lol", "#blessed", "smh"],
               "emphasis": ["none", "so"]},
}


@dataclass
class SyntheticUser:
    """A synthetic user's latent preferences (what the oracle and the template teacher know).

    * ``interests``: topic → weight (LaMP-1/2/3 topics; profile items follow it);
    * LaMP-2: ``topic_tags`` (personal tag for opinionated topics) and ``favourite_tag`` (all
      other topics);
    * LaMP-3: ``leniency`` (added to every rating) and ``topic_bias`` (per product category);
    * LaMP-4..7: ``style`` (one value per style dimension, see :data:`_STYLE_CHOICES`).
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
        if self.task == "LaMP-2":
            if topic is not None:
                if topic in self.topic_tags:
                    return f"tags {topic} movies {self.topic_tags[topic]!r}"
                return f"has no special tag for {topic} movies and uses the favourite tag {self.favourite_tag!r}"
            parts = [f"{t}→{g!r}" for t, g in sorted(self.topic_tags.items())]
            return f"tags {', '.join(parts)}; otherwise {self.favourite_tag!r}"
        if self.task == "LaMP-1":
            top = sorted(self.interests, key=lambda t: -self.interests[t])
            return f"cites work on {', '.join(top[:3])}"
        if self.task == "LaMP-3":
            bias = ", ".join(f"{c} {b:+.0f}" for c, b in sorted(self.topic_bias.items()))
            return f"rates with leniency {self.leniency:+.1f}" + (f" and category bias {bias}" if bias else "")
        return "writes with " + ", ".join(f"{k}={v!r}" for k, v in sorted(self.style.items()))


@dataclass
class SyntheticTask:
    """A generated task: the LaMP data, the users by id, and the generation settings."""

    data: LampTaskData
    users: dict[str, SyntheticUser]
    settings: dict[str, Any] = field(default_factory=dict)

    def oracle(self) -> dict[str, str]:
        """``{question id: oracle answer}`` (noise-free)."""
        return {s.id: oracle_answer(self.users[s.user_id or ""], s) for s in self.data.samples}


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


# ---------------------------------------------------------------------------------------------
# helpers


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


def _after(text: str, marker: str) -> str:
    i = text.find(marker)
    return text[i + len(marker):].strip() if i >= 0 else text.strip()


def _detect_task(text: str) -> str:
    for task, ins in INSTRUCTIONS.items():
        head = ins.split("{", 1)[0]
        if text.startswith(head[:40]):
            return task
    raise ValueError(f"not a synthetic LaMP input: {text[:80]!r}")


# ---------------------------------------------------------------------------------------------
# LaMP-2


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


# ---------------------------------------------------------------------------------------------
# LaMP-1


def _l1_title(rng: random.Random, topic: str) -> str:
    phrase = rng.choice(_L1[topic][0])
    return f"{rng.choice(_L1_PREFIX)} {phrase} with {rng.choice(['Limited Data', 'Noisy Labels', 'Transformers', 'Guarantees', 'Priors'])}"


def _l1_abstract(rng: random.Random, topic: str) -> str:
    ws = _L1[topic][1]
    a, b, c = rng.sample(ws, 3)
    return (f"We study {a} and {b} in a new setting. Our method models {c} explicitly and improves "
            f"results on standard {a} benchmarks.")


def _l1_topic_of(title: str) -> str | None:
    counts: Counter[str] = Counter(_L1_WORD_TOPIC[w] for w in re.findall(r"[a-z\-]+", title.lower())
                                   if w in _L1_WORD_TOPIC)
    return counts.most_common(1)[0][0] if counts else None


def _l1_quoted(text: str) -> list[str]:
    return re.findall(r'"([^"]*)"', text)


# ---------------------------------------------------------------------------------------------
# LaMP-3


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


# ---------------------------------------------------------------------------------------------
# generation tasks: content (neutral) -> styled output


def _title_case(s: str) -> str:
    return " ".join(w[:1].upper() + w[1:] if w.lower() not in {"a", "the", "in", "of", "for", "on", "to", "with"} or i == 0
                    else w for i, w in enumerate(s.split()))


def _casing(s: str, how: str) -> str:
    if how == "title":
        return _title_case(s)
    if how == "lower":
        return s.lower()
    if how == "sentence":
        return s[:1].upper() + s[1:]
    return s


def _content(task: str, rng: random.Random) -> tuple[str, str]:
    """(core content, full input text) for a generation task."""
    if task == "LaMP-4":
        core = f"{rng.choice(_ENTITIES)} {rng.choice(_ACTIONS)} {rng.choice(_OBJECTS)} in {rng.choice(_PLACES)}"
        body = f"{core}. Officials said the decision followed months of debate. " + rng.choice(
            ["Residents reacted with mixed feelings.", "Critics called it rushed.", "Supporters welcomed the move."])
        return core, body
    if task == "LaMP-5":
        core = f"{rng.choice(_METHODS)} for {rng.choice(_PROBLEMS)}"
        body = (f"We propose {core}. Existing approaches struggle with scale and noise. "
                f"Experiments on three benchmarks show consistent gains over strong baselines.")
        return core, body
    if task == "LaMP-6":
        core = f"{rng.choice(_EMAIL_TOPICS)} on {rng.choice(_EMAIL_DAYS)}"
        body = (f"Hi all, writing about the {core}. Please send me your comments before then. "
                f"Thanks, {rng.choice(['Ann', 'Bob', 'Carla', 'Dev', 'Eli'])}")
        return core, body
    if task == "LaMP-7":
        core = f"{rng.choice(_TWEET_SUBJ)} {rng.choice(_TWEET_FEEL)}"
        return core, f"Honestly, {core}."
    raise ValueError(task)


def _core_from_input(task: str, text: str) -> str:
    query = _after(text, ":") if task != "LaMP-4" else _after(text, "article:")
    if task == "LaMP-4":
        return query.split(". ", 1)[0]
    if task == "LaMP-5":
        m = re.match(r"We propose (.+?)\. ", query)
        return m.group(1) if m else query.split(". ", 1)[0]
    if task == "LaMP-6":
        m = re.search(r"writing about the (.+?)\. ", query)
        return m.group(1) if m else query.split(". ", 1)[0]
    if task == "LaMP-7":
        return query.removeprefix("Honestly, ").rstrip(".")
    raise ValueError(task)


_ABBREV = {"you": "u", "to": "2", "great": "gr8", "the": "da", "is": "iz", "my": "ma", "this": "dis"}


def _styled(task: str, core: str, style: dict[str, str], drop: str | None = None) -> str:
    st = {k: ("" if k == drop else v) for k, v in style.items()}
    if task == "LaMP-4":
        words = core.split()
        if st.get("length") == "short" and " in " in core:
            words = core.rsplit(" in ", 1)[0].split()
        s = _casing(" ".join(words), st.get("casing", "sentence"))
        if st.get("signature"):
            s = f"{s}, {st['signature']}" if st["signature"] != "report" else f"{s} (report)"
        if st.get("prefix"):
            s = f"{st['prefix']} {s}"
        return s
    if task == "LaMP-5":
        method, problem = core.split(" for ", 1)
        method_t = _title_case(method)
        sig = f"{st['signature']} " if st.get("signature") else ""
        form = st.get("form", "plain")
        if form == "towards":
            s = f"Towards {sig}{_title_case(problem)} with {method_t}"
        elif form == "colon":
            acro = "".join(w[0].upper() for w in method.replace("-", " ").split())
            s = f"{acro}: {sig}{method_t} for {_title_case(problem)}"
        elif form == "question":
            s = f"Can {sig}{method_t} Improve {_title_case(problem)}?"
        else:
            s = f"{sig}{method_t} for {_title_case(problem)}"
        if st.get("length") == "long":
            s += " and Beyond" if form != "question" else ""
        return s.strip()
    if task == "LaMP-6":
        s = core if st.get("length") == "long" else core.rsplit(" on ", 1)[0]
        if st.get("signature"):
            s = f"{st['signature']}: {s}"
        s = _casing(s, st.get("casing", "sentence"))
        if st.get("prefix"):
            s = f"{st['prefix']} {s}"
        return s
    if task == "LaMP-7":
        s = core
        if st.get("emphasis") == "so":
            for plain, strong in _EMPHASIS.items():
                if s.endswith(plain):
                    s = s[: -len(plain)] + strong
                    break
        if st.get("slang") == "abbrev":
            s = " ".join(_ABBREV.get(w, w) for w in s.split())
        if st.get("casing") == "lower":
            s = s.lower()
        else:
            s = s[:1].upper() + s[1:]
        if st.get("signoff"):
            s = f"{s} {st['signoff']}"
        return s
    raise ValueError(task)


# ---------------------------------------------------------------------------------------------
# public API


def sample_topic(sample: LampSample | str, task: str | None = None) -> str | None:
    """The content topic of a synthetic question (read back from its text).

    LaMP-2: the movie's main topic; LaMP-1: the topic of the paper title in the input;
    LaMP-3: the product category; LaMP-4..7: ``None`` (no topic, see :func:`explain`).

    >>> st = generate_task("LaMP-2", n_users=2, questions_per_user=1, profile_size=3)
    >>> sample_topic(st.data.samples[0]) in LAMP2_TOPICS
    True
    """
    text = sample if isinstance(sample, str) else sample.input
    task = canonical_task(task) if task else _detect_task(text)
    if task == "LaMP-2":
        return _l2_topic_of(_after(text, "description:"))
    if task == "LaMP-1":
        q = _l1_quoted(text)
        return _l1_topic_of(q[0]) if q else None
    if task == "LaMP-3":
        return _l3_parse(_after(text, "review:"))[0]
    return None


def oracle_answer(user: SyntheticUser, sample: LampSample) -> str:
    """The noise-free personalized answer of ``user`` to ``sample`` (read from the sample's text).

    >>> st = generate_task("LaMP-3", n_users=2, questions_per_user=2, profile_size=4)
    >>> s = st.data.samples[0]
    >>> oracle_answer(st.users[s.user_id], s) in {"1", "2", "3", "4", "5"}
    True
    """
    task = user.task
    text = sample.input
    if task == "LaMP-2":
        topic = _l2_topic_of(_after(text, "description:"))
        return user.tag_for(topic) if topic else (user.favourite_tag or LAMP2_TAGS[0])
    if task == "LaMP-1":
        q = _l1_quoted(text)
        refs = q[1:3]
        scores = [user.interests.get(_l1_topic_of(r) or "", 0.0) for r in refs]
        return "[1]" if scores[0] >= scores[1] else "[2]"
    if task == "LaMP-3":
        cat, level = _l3_parse(_after(text, "review:"))
        return str(_l3_rating(user, cat, level))
    return _styled(task, _core_from_input(task, text), user.style)


def explain(user: SyntheticUser, sample: LampSample) -> Explanation:
    """Everything a template teacher needs to write the reasoning for ``sample``.

    >>> st = generate_task("LaMP-2", n_users=2, questions_per_user=1, profile_size=10)
    >>> s = st.data.samples[0]
    >>> e = explain(st.users[s.user_id], s)
    >>> e.answer == oracle_answer(st.users[s.user_id], s), all(0 <= i < 10 for i in e.evidence)
    (True, True)
    """
    task = user.task
    answer = oracle_answer(user, sample)
    if task == "LaMP-2":
        topic = sample_topic(sample, task)
        evidence = [i for i, it in enumerate(sample.profile) if _l2_topic_of(it["description"]) == topic]
        return Explanation(task, topic, topic, evidence, user.rule(topic), topic not in user.topic_tags, answer)
    if task == "LaMP-1":
        refs = _l1_quoted(sample.input)[1:3]
        topic = _l1_topic_of(refs[0 if answer == "[1]" else 1])
        evidence = [i for i, it in enumerate(sample.profile) if _l1_topic_of(it["title"]) == topic]
        return Explanation(task, topic, refs, evidence, user.rule(), False, answer)
    if task == "LaMP-3":
        cat, level = _l3_parse(_after(sample.input, "review:"))
        evidence = [i for i, it in enumerate(sample.profile) if _l3_parse(it["text"])[0] == cat]
        return Explanation(task, cat, level, evidence, user.rule(), False, answer)
    core = _core_from_input(task, sample.input)
    return Explanation(task, None, core, list(range(len(sample.profile))), user.rule(), False, answer)


def _split_code(split: str) -> str:
    return {"train": "1", "dev": "0", "test": "2"}.get(split, "3")


def generate_task(
    task: str,
    n_users: int = 100,
    questions_per_user: int = 4,
    profile_size: int = 20,
    seed: int = 0,
    split: str = "dev",
    label_noise: float = 0.1,
    gold_noise: float = 0.05,
) -> SyntheticTask:
    """Generate one synthetic LaMP task (deterministic by ``seed``, ``task`` and ``split``).

    Args:
        task: LaMP-1..LaMP-7 (any spelling ``get_task`` accepts).
        n_users: users (disjoint across splits: user ids start with the split's letter).
        questions_per_user: questions per user; the user's questions share one profile.
        profile_size: profile items per user (not every topic is covered).
        seed: random seed.
        split: ``train``, ``dev`` or ``test`` (all get golds: the data is ours).
        label_noise: probability that a profile item's label (LaMP-2 tag, LaMP-1 topic,
            LaMP-3 rating, LaMP-4..7 style element) deviates from the user's rule.
        gold_noise: the same for the gold outputs (the oracle stays noise-free).

    Question ids are strings with a leading split digit (``"0…"`` for dev, so leading zeros
    are exercised). Every question carries ``user_id``.

    >>> a = generate_task("LaMP-2", n_users=5, seed=3)
    >>> b = generate_task("LaMP-2", n_users=5, seed=3)
    >>> [s.input for s in a.data] == [s.input for s in b.data], a.data.samples[0].id
    (True, '0000000')
    """
    name = canonical_task(task)
    if name not in SYNTHETIC_TASKS:
        raise ValueError(f"no synthetic generator for {name!r} (have {', '.join(SYNTHETIC_TASKS)})")
    if n_users < 1 or questions_per_user < 1 or profile_size < 1:
        raise ValueError("n_users, questions_per_user and profile_size must be >= 1")
    rng = random.Random(f"tagpr-synthetic:{seed}:{name}:{split}")
    catalog = _Catalog(name, rng)
    users: dict[str, SyntheticUser] = {}
    samples: list[LampSample] = []
    code = _split_code(split)
    for u in range(n_users):
        uid = f"u{split[:1]}{u:04d}"
        user = _make_user(name, rng, uid)
        users[uid] = user
        profile = _make_profile(name, rng, user, catalog, profile_size, label_noise, f"{code}{u:04d}")
        for q in range(questions_per_user):
            qid = f"{code}{u:04d}{q:02d}"
            inp = _make_input(name, rng, user, catalog)
            s = LampSample(id=qid, input=inp, profile=[dict(it) for it in profile], user_id=uid)
            s.output = _noisy_gold(name, rng, user, s, gold_noise)
            samples.append(s)
    data = LampTaskData(task=name, split=split, samples=samples,
                        meta={"synthetic": True, "seed": seed})
    settings = dict(task=name, n_users=n_users, questions_per_user=questions_per_user, profile_size=profile_size,
                    seed=seed, split=split, label_noise=label_noise, gold_noise=gold_noise)
    return SyntheticTask(data=data, users=users, settings=settings)


class _Catalog:
    """Shared pools of items (movies, reviews, papers, articles) so that different users are
    asked about the same inputs."""

    def __init__(self, task: str, rng: random.Random, per_topic: int = 25) -> None:
        self.task = task
        self.movies: dict[str, list[str]] = {}
        self.pool: list[tuple[str, str]] = []
        if task == "LaMP-2":
            self.movies = {t: [_l2_movie(rng, t) for _ in range(per_topic)] for t in LAMP2_TOPICS}
        elif task == "LaMP-1":
            # per topic pair: (paper title, [1], [2]); the title is about either topic, the
            # candidates come in either order
            self.papers: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
            for a in _L1:
                for b in _L1:
                    if a < b:
                        entries = []
                        for _ in range(6):
                            refs = [_l1_title(rng, a), _l1_title(rng, b)]
                            rng.shuffle(refs)
                            entries.append((_l1_title(rng, rng.choice((a, b))), refs[0], refs[1]))
                        self.papers[(a, b)] = entries
        elif task == "LaMP-3":
            self.reviews = {c: [( _l3_review(rng, c, lvl), lvl) for lvl in range(-2, 3) for _ in range(4)]
                            for c in _L3_CATS}
        elif task in ("LaMP-4", "LaMP-5", "LaMP-6", "LaMP-7"):
            self.pool = [_content(task, rng) for _ in range(per_topic * 8)]


def _make_user(task: str, rng: random.Random, uid: str) -> SyntheticUser:
    if task == "LaMP-2":
        return _l2_user(rng, uid)
    if task == "LaMP-1":
        return SyntheticUser(uid, task, interests=_interests(rng, list(_L1), rng.randint(2, 3)))
    if task == "LaMP-3":
        bias = {c: rng.choice([-1.0, 1.0]) for c in rng.sample(list(_L3_CATS), rng.randint(0, 2))}
        return SyntheticUser(uid, task, interests=_interests(rng, list(_L3_CATS), 3),
                             leniency=round(rng.uniform(-1.2, 1.2), 2), topic_bias=bias)
    style = {k: rng.choice(v) for k, v in _STYLE_CHOICES[task].items()}
    return SyntheticUser(uid, task, style=style)


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


def _make_profile(task: str, rng: random.Random, user: SyntheticUser, cat: _Catalog, n: int, noise: float,
                  prefix: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for j in range(n):
        item: dict[str, Any] = {"id": f"{prefix}{j:03d}"}
        if task == "LaMP-2":
            t = _topic_draw(rng, user, 0.1)
            item["description"] = rng.choice(cat.movies[t])
            item["tag"] = _noisy_tag(rng, user.tag_for(t), noise)
        elif task == "LaMP-1":
            t = _topic_draw(rng, user, 0.05)
            if rng.random() < noise:
                t = rng.choice(list(_L1))
            item["title"] = _l1_title(rng, t)
            item["abstract"] = _l1_abstract(rng, t)
        elif task == "LaMP-3":
            c = _topic_draw(rng, user, 0.2)
            text, lvl = rng.choice(cat.reviews[c])
            r = _l3_rating(user, c, lvl)
            if rng.random() < noise:
                r = min(5, max(1, r + rng.choice([-1, 1])))
            item["text"] = text
            item["score"] = str(r)
        else:
            core, body = rng.choice(cat.pool)
            drop = rng.choice(list(user.style)) if rng.random() < noise else None
            out = _styled(task, core, user.style, drop)
            if task == "LaMP-7":
                item["text"] = out
            elif task == "LaMP-5":
                item["title"], item["abstract"] = out, body
            else:
                item["title"], item["text"] = out, body
        item["date"] = _date(rng, task, j)
        items.append(item)
    return items


def _make_input(task: str, rng: random.Random, user: SyntheticUser, cat: _Catalog) -> str:
    ins = INSTRUCTIONS[task]
    if task == "LaMP-2":
        t = _topic_draw(rng, user, 0.4)
        return ins.format(text=rng.choice(cat.movies[t]))
    if task == "LaMP-1":
        # the cited reference is on one of the user's favourite topics, the other one is not
        low = min(user.interests.values())
        favs = [t for t in _L1 if user.interests[t] > low]
        good = _weighted(rng, favs, [user.interests[t] for t in favs])
        bad = rng.choice([t for t in _L1 if user.interests[t] == low])
        # a shared pool per topic pair: users with other interests see the same inputs
        title, ref_a, ref_b = rng.choice(cat.papers[tuple(sorted((good, bad)))])  # type: ignore[index]
        return ins.format(title=title, ref1=ref_a, ref2=ref_b)
    if task == "LaMP-3":
        c = _topic_draw(rng, user, 0.3)
        return ins.format(text=rng.choice(cat.reviews[c])[0])
    core, body = rng.choice(cat.pool)
    return ins.format(text=body)


def _noisy_gold(task: str, rng: random.Random, user: SyntheticUser, s: LampSample, p: float) -> str:
    ans = oracle_answer(user, s)
    if rng.random() >= p:
        return ans
    if task == "LaMP-2":
        return _noisy_tag(rng, ans, 1.0)
    if task == "LaMP-1":
        return "[2]" if ans == "[1]" else "[1]"
    if task == "LaMP-3":
        r = int(ans)
        return str(r + 1 if r == 1 else r - 1 if r == 5 else r + rng.choice([-1, 1]))
    drop = rng.choice(list(user.style))
    return _styled(task, _core_from_input(task, s.input), user.style, drop)


def write_synthetic(
    out_dir: str | os.PathLike[str],
    tasks: Iterable[str] = ("LaMP-2",),
    seed: int = 0,
    splits: Iterable[str] = ("train", "dev"),
    **kwargs: Any,
) -> dict[str, dict[str, Path]]:
    """Generate and write synthetic tasks in the official layout ``out_dir/LaMP-k/{split}_*.json``.

    ``kwargs`` go to :func:`generate_task`. Also writes ``out_dir/LaMP-k/{split}_users.json``
    with the latent preferences (not part of LaMP; for teachers and analysis).

    >>> import tempfile
    >>> paths = write_synthetic(tempfile.mkdtemp(), ["LaMP-2"], splits=["dev"], n_users=3)
    >>> sorted(paths["LaMP-2/dev"])
    ['outputs', 'questions', 'users']
    """
    from dataclasses import asdict

    from tagpr_eval.data.lamp_files import write_json_atomic

    written: dict[str, dict[str, Path]] = {}
    for t in tasks:
        for split in splits:
            st = generate_task(t, seed=seed, split=split, **kwargs)
            paths = write_task(st.data, out_dir)
            paths["users"] = write_json_atomic(
                Path(out_dir) / st.data.task / f"{split}_users.json",
                {"settings": st.settings, "users": [asdict(u) for u in st.users.values()]},
            )
            written[f"{st.data.task}/{split}"] = paths
    return written


def heuristic_scores(st: SyntheticTask) -> dict[str, float]:
    """Accuracy of simple heuristics and the oracle against the golds (LaMP-1, LaMP-2).

    ``majority`` (the profile's most common label), ``nearest`` (the label of the profile item
    with the highest word overlap with the query), ``topic_vote`` (majority label among profile
    items of the query's topic, else the profile majority — what a careful reader of the
    profile can do; LaMP-2 only) and ``oracle``.
    """
    from tagpr_eval.retrieval import get_retriever, profile_document, retrieval_query

    task = st.data.task
    bm25 = get_retriever("bm25")
    hits: Counter[str] = Counter()
    n = 0
    for s in st.data.samples:
        gold = s.output
        user = st.users[s.user_id or ""]
        if task == "LaMP-2":
            labels = [it["tag"] for it in s.profile]
        elif task == "LaMP-1":
            labels = []
        else:
            raise ValueError("heuristic_scores covers LaMP-1 and LaMP-2")
        n += 1
        hits["oracle"] += oracle_answer(user, s) == gold
        docs = [profile_document(task, it) for it in s.profile]
        top = bm25.top_k(retrieval_query(task, s.input), docs, 1)
        if task == "LaMP-2":
            maj = Counter(labels).most_common(1)[0][0]
            hits["majority"] += maj == gold
            hits["nearest"] += labels[top[0]] == gold
            topic = sample_topic(s, task)
            same = [it["tag"] for it in s.profile if _l2_topic_of(it["description"]) == topic]
            vote = Counter(same).most_common(1)[0][0] if same else maj
            hits["topic_vote"] += vote == gold
        else:  # LaMP-1: pick the candidate sharing more words with the nearest profile item / title
            refs = _l1_quoted(s.input)[1:3]
            near = docs[top[0]].lower().split()
            ov = [len(set(r.lower().split()) & set(near)) for r in refs]
            hits["nearest"] += ("[1]" if ov[0] >= ov[1] else "[2]") == gold
            title = set(_l1_quoted(s.input)[0].lower().split())
            ovt = [len(set(r.lower().split()) & title) for r in refs]
            hits["title_overlap"] += ("[1]" if ovt[0] >= ovt[1] else "[2]") == gold
            hits["majority"] += gold == "[1]"
    return {k: v / max(n, 1) for k, v in sorted(hits.items())}
