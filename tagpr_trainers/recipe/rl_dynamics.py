"""How far an RL stage moved its policy, read from TRL's GRPO log (``rl{1,2}/log_history.json``).

Accuracy on unseen users says *whether* a stage helped; these numbers say *why not* when it did
not (docs/recipe.md, "What RL does to it"): whether the groups gave a gradient at all
(``frac_reward_zero_std``: groups whose completions all scored alike), how far the policy went
from its reference (``kl``), how much it still explores (``entropy``), and whether the reward on
the training rollouts rose (``reward``). Each is summarised as its mean over the first quarter of
the logged steps and over the last quarter (at least one step each), so a stage of any length reads
the same way.

>>> hist = [{"step": s, "reward": 0.4 + 0.01 * s, "kl": 0.001 * s, "frac_reward_zero_std": 0.5,
...          "entropy": 0.06} for s in range(1, 9)] + [{"step": 8, "train_runtime": 12.0}]
>>> d = rl_dynamics(hist)
>>> d["reward"], d["kl"]
({'first': 0.415, 'last': 0.475, 'steps': 8}, {'first': 0.0015, 'last': 0.0075, 'steps': 8})
>>> rl_dynamics([{"step": 1, "loss": 0.0}])
{}
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["DYNAMICS_FIELDS", "rl_dynamics"]

#: the GRPO log keys summarised (TRL's names, logged by every GRPO run), with their table labels
DYNAMICS_FIELDS = {
    "reward": "reward of the sampled completions (training prompts)",
    "frac_reward_zero_std": "groups without reward variance (no gradient)",
    "kl": "KL to the reference model",
    "entropy": "entropy per token",
}


def rl_dynamics(history: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """``{key: {"first", "last", "steps"}}`` for each :data:`DYNAMICS_FIELDS` key the log has: the
    mean over the first and the last quarter of the steps that logged it (a step that reuses its
    rollouts, ``num_iterations`` > 1, logs no reward and counts only for the keys it has)."""
    rows = [h for h in history if isinstance(h, Mapping)]
    out: dict[str, dict[str, float]] = {}
    for key in DYNAMICS_FIELDS:
        vals = []
        for h in rows:
            try:
                v = float(h[key])
            except (KeyError, TypeError, ValueError):
                continue
            if math.isfinite(v):
                vals.append(v)
        if vals:
            q = max(1, len(vals) // 4)
            out[key] = {"first": round(sum(vals[:q]) / q, 6), "last": round(sum(vals[-q:]) / q, 6),
                        "steps": len(vals)}
    return out
