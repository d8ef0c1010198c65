"""Evaluation of a PRMU that cannot flatter it: held-out users, controls, cold start, best-of-n.

* pairwise accuracy per pair type on users never seen in training, macro-averaged over users
  (each user's accuracy counts once), with a bootstrap confidence interval over users; a tie
  (equal up to float noise) counts 0.5;
* the same numbers for controls trained and evaluated the same way: ``no_user`` (no user input:
  the interaction is 0), ``shuffled_profile`` (histories permuted among users), ``id_only``
  (a per-user vector only — 0 for unseen users) and ``profile_similarity`` (untrained: mean
  cosine between the response and the user's profile values);
* user-swap accuracy by profile size (0, 1, 2, 4, 8, all items) for cold start;
* downstream: picking the best of ``n`` sampled answers by PRMU versus at random (task metric).

On synthetic data these are pipeline checks, not comparisons with published reward models.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

import torch

from tagpr_rewards.prmu.config import PRMUConfig, TrainConfig
from tagpr_rewards.prmu.encoder import TextEncoder
from tagpr_rewards.prmu.model import PRMUModel
from tagpr_rewards.prmu.pairs import (
    PairSet,
    _metric_kind,
    build_pairs,
    is_label_task,
    sample_candidates,
    task_metric,
)
from tagpr_rewards.prmu.texts import item_texts
from tagpr_rewards.prmu.train import EmbeddingStore, TrainResult, score_pairs, train_prmu

__all__ = ["PROFILE_SIZES", "best_of_n", "evaluate_prmu", "macro_accuracy", "profile_similarity_scores",
           "render_markdown"]

PROFILE_SIZES: tuple[int | None, ...] = (0, 1, 2, 4, 8, None)
Scorer = Callable[[PairSet], tuple[list[float], list[float]]]


def macro_accuracy(pairs: PairSet, chosen: Sequence[float], rejected: Sequence[float],
                   n_boot: int = 1000, seed: int = 0) -> dict[str, dict[str, float]]:
    """Per pair type: macro-over-users accuracy with a 95% bootstrap CI over users.

    >>> from tagpr_rewards.prmu.pairs import Pair, Side
    >>> s = Side("q", "r", "u", "p")
    >>> ps = PairSet([Pair("user_swap", u, "1", s, s) for u in "abcd"])
    >>> macro_accuracy(ps, [1, 1, 0, 0.5], [0, 0, 1, 0.5])["user_swap"]["acc"]
    0.625
    """
    per: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for p, c, r in zip(pairs.pairs, chosen, rejected):
        # equal up to float noise (batch position can change the last bits) = a tie
        tie = abs(c - r) <= 1e-5 * max(1.0, abs(c), abs(r))
        per[p.type][p.user_id].append(0.5 if tie else 1.0 if c > r else 0.0)
    out: dict[str, dict[str, float]] = {}
    rng = random.Random(seed)
    for t, users in sorted(per.items()):
        means = [sum(v) / len(v) for v in users.values()]
        acc = sum(means) / len(means)
        boots = sorted(sum(rng.choices(means, k=len(means))) / len(means) for _ in range(n_boot))
        out[t] = {"acc": acc, "lo": boots[int(0.025 * n_boot)], "hi": boots[min(n_boot - 1, int(0.975 * n_boot))],
                  "n_pairs": float(sum(len(v) for v in users.values())), "n_users": float(len(means))}
    return out


def profile_similarity_scores(store: EmbeddingStore, pairs: PairSet) -> tuple[list[float], list[float]]:
    """Control: untrained score = mean cosine between the response and the profile's values."""
    out: list[list[float]] = [[], []]
    emb = store.matrix
    for p in pairs.pairs:
        for j, side in enumerate((p.chosen, p.rejected)):
            vals = [item_texts(it)[1] for it in pairs.profiles.get(side.profile, [])]
            if not vals:
                out[j].append(0.0)
                continue
            rows = store.ids(vals + [side.response])
            emb = store.matrix
            v = emb[rows[:-1]]
            out[j].append(float((v @ emb[rows[-1]]).mean()))
    return out[0], out[1]


def _model_scorer(model: PRMUModel, store: EmbeddingStore) -> Scorer:
    def f(pairs: PairSet) -> tuple[list[float], list[float]]:
        s = score_pairs(model, pairs, store)
        return s["chosen"], s["rejected"]
    return f


def best_of_n(model: PRMUModel, records: Sequence[dict[str, Any]], n: int = 8, seed: int = 0,
              task: str | None = None, candidates: dict[str, Sequence[str]] | None = None,
              store: EmbeddingStore | None = None) -> dict[str, float]:
    """Task metric of the PRMU-picked answer among ``n`` candidates vs a random pick and the best.

    Candidates come from ``candidates`` (e.g. a policy's samples) or
    :func:`~tagpr_rewards.prmu.pairs.sample_candidates`. ``random`` is the expected metric of a
    uniform pick (the candidates' mean), ``oracle`` the best candidate's.
    """
    from tagpr_rewards.prmu.pairs import Pair, Side

    rng = random.Random(seed)
    label = is_label_task(records, task)
    kind = _metric_kind(records, task)
    vocab = sorted({r["output"] for r in records} | {item_texts(it)[1] for r in records for it in r["profile"]}
                   ) if label else sorted({w for r in records for w in r["output"].split()})
    golds = [r["output"] for r in records]
    pairs: list[Pair] = []
    cands_all: list[list[str]] = []
    for r in records:
        cs = list(candidates[r["id"]]) if candidates and r["id"] in candidates else \
            sample_candidates(r, n, rng, vocab, label, golds)
        cands_all.append(cs)
        for c in cs:
            s = Side(r["input"], c, r["user_id"], r["id"])
            pairs.append(Pair("candidate", r["user_id"], r["id"], s, s))
    ps = PairSet(pairs, {r["id"]: r["profile"] for r in records})
    scores = score_pairs(model, ps, store)["chosen"]
    tot = {"prmu": 0.0, "random": 0.0, "oracle": 0.0}
    k = 0
    for r, cs in zip(records, cands_all):
        sc = scores[k: k + len(cs)]
        k += len(cs)
        ms = [task_metric(c, r["output"], kind) for c in cs]
        tot["prmu"] += ms[max(range(len(cs)), key=lambda i: sc[i])]
        tot["random"] += sum(ms) / len(ms)
        tot["oracle"] += max(ms)
    m = max(1, len(records))
    out = {k2: v / m for k2, v in tot.items()}
    out["gain"] = out["prmu"] - out["random"]
    out["n_samples"] = float(len(records))
    out["n_candidates"] = float(n)
    return out


def evaluate_prmu(
    records: Iterable[Any],
    config: PRMUConfig | None = None,
    train_config: TrainConfig | None = None,
    controls: bool = True,
    profile_sizes: Sequence[int | None] = PROFILE_SIZES,
    n_best: int = 8,
    task: str | None = None,
    same_answer: Callable[[str, dict[str, Any]], bool] | None = None,
    encoder: TextEncoder | None = None,
    trained: TrainResult | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Train PRMU (unless ``trained`` is given) and the controls, and evaluate all on held-out users.

    Returns a JSON-able report: ``pair_accuracy[model][pair type] = {acc, lo, hi, n_pairs,
    n_users}``, ``profile_size[model][k]`` (user-swap accuracy), ``best_of_n``, ``settings``.
    """
    cfg = config or PRMUConfig()
    tcfg = train_config or TrainConfig()
    recs = list(records)
    enc = encoder if encoder is not None else (trained.model.encoder if trained else TextEncoder(cfg.encoder))
    store = trained.store if trained is not None and trained.store is not None else EmbeddingStore(enc)
    main = trained or train_prmu(recs, cfg, tcfg, encoder=enc, store=store, task=task,
                                 same_answer=same_answer, progress=progress)
    eval_seed = tcfg.seed + 1
    heldout = main.heldout_records

    def pairs_for(held: list[dict[str, Any]]) -> PairSet:
        return build_pairs(held, tcfg.pair_types, eval_seed, tcfg.swaps_per_sample,
                           n_candidates=tcfg.candidates, task=task, same_answer=same_answer)

    eval_pairs = pairs_for(heldout)
    report: dict[str, Any] = {"pair_accuracy": {}, "profile_size": {}, "best_of_n": {}, "settings": {
        "model": cfg.to_dict(), "train": tcfg.to_dict(), "n_records": len(recs),
        "n_train_users": len(main.train_users), "n_heldout_users": len(main.heldout_users),
        "eval_pairs": eval_pairs.counts(), "train_pairs": main.train_pairs.counts(),
        "ambiguous_swaps_removed": same_answer is not None,
    }}
    scorers: dict[str, tuple[Scorer, PairSet]] = {"prmu": (_model_scorer(main.model, store), eval_pairs)}
    if controls:
        for name, mc, tc in (
            ("no_user", replace(cfg, user_input="none"), tcfg),
            ("id_only", replace(cfg, user_input="id"), tcfg),
            ("shuffled_profile", cfg, replace(tcfg, shuffle_profiles=True)),
        ):
            res = train_prmu(recs, mc, tc, encoder=enc, store=store, task=task, same_answer=same_answer,
                             progress=progress)
            ps = eval_pairs if name != "shuffled_profile" else pairs_for(res.heldout_records)
            scorers[name] = (_model_scorer(res.model, store), ps)
        scorers["profile_similarity"] = (lambda p: profile_similarity_scores(store, p), eval_pairs)
    for name, (scorer, ps) in scorers.items():
        c, r = scorer(ps)
        report["pair_accuracy"][name] = macro_accuracy(ps, c, r, seed=tcfg.seed)
        if name in ("prmu", "no_user", "profile_similarity"):
            swaps = ps.of_type("user_swap")
            sizes: dict[str, float] = {}
            for k in profile_sizes:
                sub = swaps.with_profile_size(k, seed=tcfg.seed)
                cs, rs = scorer(sub)
                acc = macro_accuracy(sub, cs, rs, n_boot=200, seed=tcfg.seed).get("user_swap", {}).get("acc")
                sizes["all" if k is None else str(k)] = float("nan") if acc is None else acc
            report["profile_size"][name] = sizes
    if n_best > 0 and heldout:
        report["best_of_n"] = best_of_n(main.model, heldout, n_best, eval_seed, task, store=store)
    interaction_share = _interaction_share(main.model, eval_pairs, store)
    report["interaction"] = interaction_share
    return report


def _interaction_share(model: PRMUModel, pairs: PairSet, store: EmbeddingStore) -> dict[str, float]:
    """How much of the score margin the interaction carries (what moves a GRPO policy)."""
    s = score_pairs(model, pairs, store)
    if not pairs.pairs:
        return {}
    gi = torch.tensor(s["chosen_generic"]) - torch.tensor(s["rejected_generic"])
    ii = torch.tensor(s["chosen_interaction"]) - torch.tensor(s["rejected_interaction"])
    return {"mean_abs_generic_margin": float(gi.abs().mean()), "mean_abs_interaction_margin": float(ii.abs().mean()),
            "interaction_only_acc": float(((ii > 0).float() + 0.5 * (ii == 0).float()).mean())}


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown tables (pair accuracy with CIs, cold start, best-of-n)."""
    lines: list[str] = []
    acc = report.get("pair_accuracy", {})
    types = sorted({t for v in acc.values() for t in v})
    if acc:
        lines += ["| model | " + " | ".join(types) + " |", "|---|" + "---|" * len(types)]
        for name, per in acc.items():
            cells = [f"{per[t]['acc']:.3f} [{per[t]['lo']:.3f}, {per[t]['hi']:.3f}]" if t in per else "–"
                     for t in types]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    ps = report.get("profile_size", {})
    if ps:
        ks = list(next(iter(ps.values())).keys())
        lines += ["", "| user-swap acc by profile size | " + " | ".join(ks) + " |", "|---|" + "---|" * len(ks)]
        for name, row in ps.items():
            lines.append(f"| {name} | " + " | ".join(f"{row[k]:.3f}" for k in ks) + " |")
    bo = report.get("best_of_n")
    if bo:
        lines += ["", "| best-of-n | PRMU pick | random pick | gain | oracle |", "|---|---|---|---|---|",
                  f"| n={int(bo['n_candidates'])}, {int(bo['n_samples'])} samples | {bo['prmu']:.3f} | "
                  f"{bo['random']:.3f} | {bo['gain']:+.3f} | {bo['oracle']:.3f} |"]
    return "\n".join(lines) + "\n"
