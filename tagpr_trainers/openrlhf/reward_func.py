"""OpenRLHF entry file: ``--reward.remote_url /path/to/trainers/openrlhf/reward_func.py``.

OpenRLHF 0.11 loads this file by path (``importlib.util.spec_from_file_location``) and calls
``reward_func(queries, prompts, labels)`` once per rollout sample. The reward is built once per
process from the YAML/JSON config named by ``$TAGPR_REWARD_CONFIG`` (default: stage 2 without
PRMU on the ``personalization-9`` schema, task from each label); see
:mod:`tagpr_trainers.openrlhf.remote_reward` for the config keys and docs/trainers.md for the label
format. Find the path with ``python -c "import tagpr_trainers.openrlhf as o; print(o.REWARD_FUNC_PATH)"``.

Returns what OpenRLHF's own example returns: ``{"rewards": tensor, "scores": tensor,
"extra_logs": {name: tensor}}``, one value per query. Never raises: an error is logged at ERROR
and the sample gets the configured fallback reward.
"""

from __future__ import annotations

from typing import Any

from tagpr_trainers.openrlhf.remote_reward import default_adapter


def reward_func(queries: list[str], prompts: list[str], labels: list[Any] | None = None,
                **kwargs: Any) -> dict[str, Any]:
    """Score ``queries`` (prompt + response text) with the configured tagpr composite."""
    import torch

    out = default_adapter()(queries, prompts, labels, **kwargs)
    return {
        "rewards": torch.tensor(out["rewards"], dtype=torch.float32),
        "scores": torch.tensor(out["scores"], dtype=torch.float32),
        "extra_logs": {k: torch.tensor(v, dtype=torch.float32) for k, v in out["extra_logs"].items()},
    }
