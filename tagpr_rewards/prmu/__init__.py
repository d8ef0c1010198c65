"""PRMU — Personalization Reward Model with User Embeddings (our architecture; the paper's is not public).

Importing this package is light; torch and sentence-transformers load when a heavy name is used:

* :class:`PRMUConfig`, :class:`TrainConfig` (light) — architecture and recipe;
* :func:`build_pairs` (light) — typed preference pairs from LaMP records;
* :class:`PRMUModel` — encoder + heads, safetensors checkpoints, cached batched scoring;
* :func:`train_prmu` — Bradley–Terry training with atomic checkpoints and resume;
* :func:`evaluate_prmu` — held-out evaluation with controls, cold start and best-of-n;
* :class:`PRMUReward` — the reward (registry name ``prmu``);
* :func:`create_app` / :func:`serve` — the batching OpenRLHF remote-reward server.

>>> import tagpr_rewards.prmu as prmu
>>> prmu.PRMUConfig().pooling
'attention'

"""

from __future__ import annotations

import importlib
from typing import Any

from tagpr_rewards.prmu.config import PRMUConfig, TrainConfig
from tagpr_rewards.prmu.pairs import PAIR_TYPES, Pair, PairSet, build_pairs

__all__ = [
    "PAIR_TYPES",
    "PRMUConfig",
    "PRMUModel",
    "PRMUReward",
    "Pair",
    "PairSet",
    "TrainConfig",
    "build_pairs",
    "create_app",
    "evaluate_prmu",
    "serve",
    "train_prmu",
]

_LAZY = {
    "PRMUModel": "tagpr_rewards.prmu.model",
    "PRMUReward": "tagpr_rewards.prmu.reward",
    "train_prmu": "tagpr_rewards.prmu.train",
    "evaluate_prmu": "tagpr_rewards.prmu.evaluate",
    "create_app": "tagpr_rewards.prmu.server",
    "serve": "tagpr_rewards.prmu.server",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tagpr_rewards.prmu' has no attribute {name!r}")
