"""Stage ``prmu``: train the Personalization Reward Model with User embeddings (tagpr_rewards.prmu)
on the training split, then measure its pairwise accuracy on held-out users."""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from tagpr_trainers.recipe.checkpoints import atomic_write_json
from tagpr_trainers.recipe.context import RunContext

__all__ = ["heldout_accuracy", "run"]

logger = logging.getLogger("tagpr_trainers.recipe")


def heldout_accuracy(result: Any, train_config: Any, task: str) -> dict[str, Any]:
    """Pairwise accuracy (chosen scored above rejected) on the held-out users' pairs, per pair type."""
    from tagpr_rewards.prmu.pairs import build_pairs
    from tagpr_rewards.prmu.train import score_pairs

    if not result.heldout_records:
        return {"pairs": 0}
    pairs = build_pairs(result.heldout_records, train_config.pair_types, train_config.seed + 1,
                        train_config.swaps_per_sample, n_candidates=train_config.candidates, task=task)
    scores = score_pairs(result.model, pairs, result.store)
    by_type: dict[str, list[float]] = defaultdict(list)
    inter: dict[str, list[float]] = defaultdict(list)
    for p, c, r, ci, ri in zip(pairs.pairs, scores["chosen"], scores["rejected"], scores["chosen_interaction"],
                               scores["rejected_interaction"]):
        by_type[p.type].append(float(c > r))
        inter[p.type].append(float(ci > ri))
    n = sum(len(v) for v in by_type.values())
    return {
        "pairs": n,
        "heldout_users": len(result.heldout_users),
        "accuracy": round(sum(sum(v) for v in by_type.values()) / n, 4) if n else None,
        "accuracy_by_type": {t: round(sum(v) / len(v), 4) for t, v in sorted(by_type.items())},
        "interaction_accuracy_by_type": {t: round(sum(v) / len(v), 4) for t, v in sorted(inter.items())},
    }


def run(ctx: RunContext) -> dict[str, Any]:
    """Train (or resume) the PRMU into ``prmu/model``; return its held-out pairwise accuracy."""
    if not ctx.cfg.prmu.enabled:
        return {"skipped": "prmu.enabled is false"}
    from tagpr_eval.data import load_task
    from tagpr_rewards.prmu.config import PRMUConfig, TrainConfig
    from tagpr_rewards.prmu.train import train_prmu

    task = ctx.cfg.data.tasks[0]
    records = list(load_task(ctx.lamp_dir, task, ctx.cfg.data.train_split).samples)
    cfg = PRMUConfig.from_dict(ctx.cfg.prmu.model)
    train = {"seed": ctx.cfg.run.seed, **ctx.cfg.prmu.train}
    if ctx.dry_run:
        train.update(epochs=1)
    tcfg = TrainConfig.from_dict(train)
    out = ctx.path("prmu_model")
    result = train_prmu(records, cfg, tcfg, out_dir=out, resume=True, task=task, progress=ctx.progress)
    metrics = heldout_accuracy(result, tcfg, task)
    hist = result.history
    metrics.update(task=task, model=str(out), train_pairs=len(result.train_pairs.pairs),
                   final_train_loss=hist[-1]["loss"] if hist else None,
                   final_train_acc=hist[-1]["train_acc"] if hist else None)
    atomic_write_json(out.parent / "metrics.json", metrics)
    logger.info("prmu: held-out pairwise accuracy %s (%s pairs)", metrics.get("accuracy"), metrics.get("pairs"))
    return metrics
