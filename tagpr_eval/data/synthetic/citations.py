"""LaMP-1 (citation identification): research areas, users, generator, oracle.

The user's research interests decide which of two candidate references is cited; the paper
title is about the wrong candidate's topic half of the time (our design, see docs/data.md).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from typing import Any

from tagpr_eval.data.lamp_files import LampSample
from tagpr_eval.data.synthetic.core import (
    INSTRUCTIONS,
    Explanation,
    SyntheticUser,
    _interests,
    _topic_draw,
    _weighted,
)

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


class Citations:
    """The LaMP-1 family (see :class:`~tagpr_eval.data.synthetic.core.Family`)."""

    tasks: tuple[str, ...] = ("LaMP-1",)

    def catalog(self, task: str, rng: random.Random, per_topic: int) -> dict[tuple[str, str], list[tuple[str, str, str]]]:
        """Per topic pair: (paper title, [1], [2]); the title is about either topic, the
        candidates come in either order."""
        papers: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
        for a in _L1:
            for b in _L1:
                if a < b:
                    entries = []
                    for _ in range(6):
                        refs = [_l1_title(rng, a), _l1_title(rng, b)]
                        rng.shuffle(refs)
                        entries.append((_l1_title(rng, rng.choice((a, b))), refs[0], refs[1]))
                    papers[(a, b)] = entries
        return papers

    def make_user(self, task: str, rng: random.Random, uid: str) -> SyntheticUser:
        return SyntheticUser(uid, task, interests=_interests(rng, list(_L1), rng.randint(2, 3)))

    def fill_item(self, task: str, rng: random.Random, user: SyntheticUser, cat: Any, item: dict[str, Any],
                  noise: float) -> None:
        t = _topic_draw(rng, user, 0.05)
        if rng.random() < noise:
            t = rng.choice(list(_L1))
        item["title"] = _l1_title(rng, t)
        item["abstract"] = _l1_abstract(rng, t)

    def make_input(self, task: str, rng: random.Random, user: SyntheticUser, cat: Any) -> str:
        # the cited reference is on one of the user's favourite topics, the other one is not
        low = min(user.interests.values())
        favs = [t for t in _L1 if user.interests[t] > low]
        good = _weighted(rng, favs, [user.interests[t] for t in favs])
        bad = rng.choice([t for t in _L1 if user.interests[t] == low])
        # a shared pool per topic pair: users with other interests see the same inputs
        title, ref_a, ref_b = rng.choice(cat[tuple(sorted((good, bad)))])
        return INSTRUCTIONS[task].format(title=title, ref1=ref_a, ref2=ref_b)

    def noisy_answer(self, task: str, rng: random.Random, user: SyntheticUser, sample: LampSample,
                     answer: str) -> str:
        return "[2]" if answer == "[1]" else "[1]"

    def topic(self, task: str, text: str) -> str | None:
        q = _l1_quoted(text)
        return _l1_topic_of(q[0]) if q else None

    def oracle(self, user: SyntheticUser, sample: LampSample) -> str:
        refs = _l1_quoted(sample.input)[1:3]
        scores = [user.interests.get(_l1_topic_of(r) or "", 0.0) for r in refs]
        return "[1]" if scores[0] >= scores[1] else "[2]"

    def explain(self, user: SyntheticUser, sample: LampSample, answer: str) -> Explanation:
        refs = _l1_quoted(sample.input)[1:3]
        topic = _l1_topic_of(refs[0 if answer == "[1]" else 1])
        evidence = [i for i, it in enumerate(sample.profile) if _l1_topic_of(it["title"]) == topic]
        return Explanation(user.task, topic, refs, evidence, user.rule(), False, answer)

    def rule(self, user: SyntheticUser, topic: str | None) -> str:
        top = sorted(user.interests, key=lambda t: -user.interests[t])
        return f"cites work on {', '.join(top[:3])}"
