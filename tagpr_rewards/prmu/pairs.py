"""Typed preference pairs for PRMU, built from LaMP-format records (light: no torch).

A record is a LaMP question with its gold: ``{"id", "input", "profile", "user_id", "output"}``
(dicts, or objects with those attributes such as ``tagpr_eval.data.LampSample``). Every pair
says ``chosen`` should score above ``rejected`` and carries its type:

* ``user_swap`` — same query, same response (the user's gold), scored under the true user versus
  another user: only the user changes, so query relevance cannot win it;
* ``other_user_gold`` — the user's gold beats another user's gold for the most similar query;
* ``degraded`` — the gold beats a corrupted copy (another label; truncated/perturbed text);
* ``length_matched`` — as ``degraded`` but the corruption has the gold's length;
* ``profile_copy`` — the gold beats a response that copies profile text;
* ``metric_ranked`` — between sampled candidates, the one with the higher task metric wins.

Everything is deterministic by ``seed``. Pair types and their mix are ours.

>>> recs = [{"id": f"{u}{i}", "input": f"description: movie {i}", "user_id": u, "output": t,
...          "profile": [{"id": "p", "description": f"movie {i}", "tag": t}]}
...         for u, t in (("a", "comedy"), ("b", "action"), ("c", "romance")) for i in range(2)]
>>> ps = build_pairs(recs, types=["user_swap", "degraded"], seed=0)
>>> sorted(ps.counts().items())
[('degraded', 6), ('user_swap', 12)]
>>> p = ps.pairs[0]
>>> p.chosen.response == p.rejected.response and p.chosen.user_id != p.rejected.user_id
True
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tagpr_rewards.prmu.texts import item_texts, query_content

__all__ = [
    "PAIR_TYPES",
    "Pair",
    "PairSet",
    "Side",
    "as_record",
    "build_pairs",
    "is_label_task",
    "sample_candidates",
    "shuffle_profiles",
    "split_users",
    "task_metric",
]

PAIR_TYPES = ("user_swap", "other_user_gold", "degraded", "length_matched", "profile_copy", "metric_ranked")


@dataclass(frozen=True)
class Side:
    """One scored side of a pair: a response to a query, under a user with a profile.

    ``profile`` is a key into :attr:`PairSet.profiles` (a record id), so profiles are stored once.
    """

    query: str
    response: str
    user_id: str
    profile: str


@dataclass(frozen=True)
class Pair:
    """``chosen`` should score above ``rejected``; ``user_id`` is the user the pair is about."""

    type: str
    user_id: str
    sample_id: str
    chosen: Side
    rejected: Side


@dataclass
class PairSet:
    """Pairs plus the profiles their sides point to."""

    pairs: list[Pair]
    profiles: dict[str, list[Any]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Number of pairs per type."""
        out: dict[str, int] = defaultdict(int)
        for p in self.pairs:
            out[p.type] += 1
        return dict(out)

    def of_type(self, *types: str) -> PairSet:
        """The pairs of the given types (profiles shared)."""
        return PairSet([p for p in self.pairs if p.type in types], self.profiles)

    def with_profile_size(self, k: int | None, seed: int = 0) -> PairSet:
        """Same pairs with every profile cut to ``k`` items (a seeded random subset; None = all).

        >>> ps = PairSet([], {"r1": [1, 2, 3, 4]})
        >>> len(ps.with_profile_size(2).profiles["r1"]), len(ps.with_profile_size(None).profiles["r1"])
        (2, 4)
        """
        if k is None:
            return self
        profiles = {}
        for key, items in self.profiles.items():
            if len(items) <= k:
                profiles[key] = list(items)
            else:
                rng = random.Random(f"{seed}:{key}")
                keep = sorted(rng.sample(range(len(items)), k))
                profiles[key] = [items[i] for i in keep]
        return PairSet(self.pairs, profiles)


def as_record(x: Any) -> dict[str, Any]:
    """A LaMP record as a dict (accepts dicts and objects with the LaMP attributes)."""
    if isinstance(x, Mapping):
        rec = dict(x)
    else:
        rec = {k: getattr(x, k, None) for k in ("id", "input", "profile", "user_id", "output")}
    missing = [k for k in ("id", "input", "output") if rec.get(k) is None]
    if missing:
        raise ValueError(f"record {rec.get('id')!r}: missing {missing}; PRMU pairs need id, input, "
                         "output (the gold) and a profile")
    rec["id"] = str(rec["id"])
    rec["user_id"] = str(rec["user_id"]) if rec.get("user_id") is not None else f"user-of-{rec['id']}"
    rec["profile"] = list(rec.get("profile") or [])
    rec["output"] = str(rec["output"])
    return rec


def is_label_task(records: Sequence[Mapping[str, Any]], task: str | None = None) -> bool:
    """Whether answers are labels from a small set (LaMP-1/2/3) rather than free text."""
    if task is not None:
        t = task.upper().replace("_", "-")
        if t.startswith(("LAMP-1", "LAMP-2", "LAMP-3")):
            return True
        if t.startswith("LAMP-"):
            return False
    outs = [str(r["output"]) for r in records]
    if not outs:
        return False
    return len(set(outs)) <= 50 and sum(len(o.split()) for o in outs) / len(outs) <= 3


_TOKEN = re.compile(r"[a-z0-9]+")


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def _rouge1(pred: str, gold: str) -> float:
    try:
        from tagpr_rewards.metrics import rouge_f

        return float(rouge_f(pred, gold)[0])
    except ImportError:
        p, g = _tokens(pred), _tokens(gold)
        if not p or not g:
            return 0.0
        gc: dict[str, int] = defaultdict(int)
        for t in g:
            gc[t] += 1
        hit = 0
        for t in p:
            if gc[t] > 0:
                gc[t] -= 1
                hit += 1
        if hit == 0:
            return 0.0
        prec, rec = hit / len(p), hit / len(g)
        return 2 * prec * rec / (prec + rec)


def task_metric(pred: str, gold: str, kind: str) -> float:
    """Per-sample task metric in [0, 1]: ``label`` exact match, ``rating`` 1 − |Δ|/4, ``text`` ROUGE-1 F.

    >>> task_metric("comedy", "comedy", "label"), task_metric("2", "4", "rating")
    (1.0, 0.5)
    """
    p, g = pred.strip(), gold.strip()
    if kind == "rating":
        try:
            return max(0.0, 1.0 - abs(float(p) - float(g)) / 4.0)
        except ValueError:
            return 0.0
    if kind == "label":
        return 1.0 if p == g else 0.0
    return _rouge1(p, g)


def _metric_kind(records: Sequence[Mapping[str, Any]], task: str | None) -> str:
    if task is not None and task.upper().replace("_", "-").startswith("LAMP-3"):
        return "rating"
    return "label" if is_label_task(records, task) else "text"


def split_users(records: Iterable[Any], heldout_fraction: float, seed: int = 0
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(train, heldout)`` records with disjoint users (seeded).

    >>> recs = [{"id": str(i), "input": "q", "output": "x", "user_id": str(i % 4)} for i in range(8)]
    >>> tr, ho = split_users(recs, 0.25, seed=1)
    >>> len(tr), len(ho), {r["user_id"] for r in tr} & {r["user_id"] for r in ho}
    (6, 2, set())
    """
    recs = [as_record(r) for r in records]
    users = sorted({r["user_id"] for r in recs})
    rng = random.Random(seed)
    rng.shuffle(users)
    n_ho = max(1, round(len(users) * heldout_fraction)) if heldout_fraction > 0 else 0
    held = set(users[:n_ho])
    return [r for r in recs if r["user_id"] not in held], [r for r in recs if r["user_id"] in held]


def shuffle_profiles(records: Iterable[Any], seed: int = 0) -> list[dict[str, Any]]:
    """Control: give every user another user's history (a seeded derangement of users)."""
    recs = [as_record(r) for r in records]
    users = sorted({r["user_id"] for r in recs})
    if len(users) < 2:
        return recs
    first: dict[str, list[Any]] = {}
    for r in recs:
        first.setdefault(r["user_id"], r["profile"])
    rng = random.Random(seed)
    perm = users[:]
    rng.shuffle(perm)
    shift = {u: perm[(i + 1) % len(perm)] for i, u in enumerate(perm)}
    return [{**r, "profile": list(first[shift[r["user_id"]]])} for r in recs]


def sample_candidates(record: Mapping[str, Any], n: int, rng: random.Random, vocab: Sequence[str],
                      label_task: bool, others: Sequence[str] = ()) -> list[str]:
    """Candidate answers standing in for a policy's samples (ours, for metric-ranked pairs and best-of-n).

    Label tasks: the gold (p=0.25), a label from the user's own profile (0.45), any label (0.3).
    Text tasks: the gold (0.2), a perturbed gold (0.3), a profile value (0.3), another answer (0.2).
    """
    gold = str(record["output"])
    prof_vals = [item_texts(it)[1] for it in record["profile"]] or [gold]
    out: list[str] = []
    for _ in range(n):
        x = rng.random()
        if label_task:
            if x < 0.25:
                out.append(gold)
            elif x < 0.70:
                out.append(rng.choice(prof_vals))
            else:
                out.append(rng.choice(list(vocab)) if vocab else gold)
        else:
            if x < 0.2:
                out.append(gold)
            elif x < 0.5:
                out.append(_perturb(gold, rng, list(vocab)))
            elif x < 0.8:
                out.append(rng.choice(prof_vals))
            else:
                out.append(rng.choice(list(others)) if others else _truncate(gold, rng))
    return out


def _truncate(text: str, rng: random.Random) -> str:
    words = text.split()
    if len(words) <= 1:
        return ""
    keep = max(1, int(len(words) * rng.uniform(0.3, 0.6)))
    return " ".join(words[:keep])


def _perturb(text: str, rng: random.Random, word_pool: list[str]) -> str:
    """Same number of words, about half replaced by words from elsewhere (length-matched)."""
    words = text.split()
    if not words:
        return ""
    pool = word_pool or words
    out = [rng.choice(pool) if rng.random() < 0.5 else w for w in words]
    if out == words:
        i = rng.randrange(len(words))
        out[i] = rng.choice(pool) + "x"
    return " ".join(out)


def build_pairs(
    records: Iterable[Any],
    types: Sequence[str] = PAIR_TYPES,
    seed: int = 0,
    swaps_per_sample: int = 2,
    candidates: Mapping[str, Sequence[str]] | None = None,
    n_candidates: int = 8,
    task: str | None = None,
    same_answer: Callable[[str, dict[str, Any]], bool] | None = None,
    max_ranked_per_sample: int = 4,
) -> PairSet:
    """Build typed pairs from LaMP records (see the module docstring), deterministic by ``seed``.

    Args:
        records: LaMP records with gold ``output`` (dicts or ``LampSample``-like objects).
        types: pair types to build (subset of :data:`PAIR_TYPES`).
        swaps_per_sample: user-swap pairs per record (each against a different other user).
        candidates: ``{record id: sampled answers}`` for metric-ranked pairs (e.g. a policy's
            samples); default: :func:`sample_candidates`.
        n_candidates: how many candidates to sample when ``candidates`` is not given.
        task: LaMP task name, to pick the metric (labels / rating / ROUGE); inferred when None.
        same_answer: optional ``(other_user_id, record) -> bool``: whether another user would give
            the same answer to this record (known for synthetic data). Such user swaps are skipped
            as ambiguous.
    """
    unknown = [t for t in types if t not in PAIR_TYPES]
    if unknown:
        raise ValueError(f"unknown pair type(s) {unknown}; known: {', '.join(PAIR_TYPES)}")
    recs = [as_record(r) for r in records]
    rng = random.Random(seed)
    label_task = is_label_task(recs, task)
    kind = _metric_kind(recs, task)
    profiles = {r["id"]: r["profile"] for r in recs}
    by_user: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in recs:
        by_user[r["user_id"]].append(r)
    users = sorted(by_user)
    vocab: list[str] = sorted({r["output"] for r in recs} | {item_texts(it)[1] for r in recs for it in r["profile"]}
                              ) if label_task else sorted({w for r in recs for w in r["output"].split()})
    golds = [r["output"] for r in recs]
    qtok = {r["id"]: set(_tokens(query_content(r["input"]))) for r in recs}
    pairs: list[Pair] = []

    def side(r: Mapping[str, Any], response: str, profile_of: Mapping[str, Any] | None = None) -> Side:
        owner = profile_of if profile_of is not None else r
        return Side(r["input"], response, owner["user_id"], owner["id"])

    for r in recs:
        u, gold = r["user_id"], r["output"]
        own = side(r, gold)

        def add(t: str, chosen: Side, rejected: Side, r: dict[str, Any] = r, u: str = u) -> None:
            pairs.append(Pair(t, u, r["id"], chosen, rejected))

        others = [o for o in users if o != u]
        if "user_swap" in types and others:
            picks = rng.sample(others, min(swaps_per_sample, len(others)))
            for o in picks:
                if same_answer is not None and same_answer(o, r):
                    continue
                orec = rng.choice(by_user[o])
                add("user_swap", own, side(r, gold, {"user_id": o, "id": orec["id"]}))
        if "other_user_gold" in types and others:
            pool = [x for o in rng.sample(others, min(20, len(others))) for x in by_user[o]]
            pool = [x for x in pool if x["output"].strip() != gold.strip()]
            if pool:
                best = max(pool, key=lambda x: (_jaccard(qtok[r["id"]], qtok[x["id"]]), -rng.random()))
                add("other_user_gold", own, side(r, best["output"]))
        if "degraded" in types:
            if label_task:
                alts = [v for v in vocab if v != gold]
                bad = rng.choice(alts) if alts else None
            else:
                bad = _truncate(gold, rng)
            if bad is not None and bad != gold:
                add("degraded", own, side(r, bad))
        if "length_matched" in types:
            if label_task:
                alts = [v for v in vocab if v != gold]
                bad = min(alts, key=lambda v: (abs(len(v) - len(gold)), rng.random())) if alts else None
            else:
                bad = _perturb(gold, rng, vocab)
            if bad is not None and bad != gold:
                add("length_matched", own, side(r, bad))
        if "profile_copy" in types and r["profile"]:
            key, val = item_texts(rng.choice(r["profile"]))
            src = key if label_task else val
            words = src.split()
            copy = " ".join(words[: max(len(gold.split()), 8)])
            if copy and copy.strip() != gold.strip():
                add("profile_copy", own, side(r, copy))
        if "metric_ranked" in types:
            if candidates is not None and r["id"] in candidates:
                cands = [str(c) for c in candidates[r["id"]]]
            else:
                cands = sample_candidates(r, n_candidates, rng, vocab, label_task, golds)
            uniq = list(dict.fromkeys(cands))
            scored = [(c, task_metric(c, gold, kind)) for c in uniq]
            ranked = [(a, b) for a, sa in scored for b, sb in scored if sa > sb + 1e-9]
            rng.shuffle(ranked)
            for a, b in ranked[:max_ranked_per_sample]:
                add("metric_ranked", side(r, a), side(r, b))
    return PairSet(pairs, profiles)


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0
