"""OpenRLHF entry file: ``--reward.remote_url /path/to/trainers/openrlhf/reward_func.py``.

OpenRLHF 0.11 loads this file by path (``importlib.util.spec_from_file_location``) and calls
``reward_func(queries, prompts, labels)`` once per rollout sample. The reward is built once per
process from the YAML/JSON config named by ``$TAGPR_REWARD_CONFIG`` (default: stage 2 without
PRMU on the ``personalization-9`` schema, task from each label); see
:mod:`tagpr_trainers.openrlhf.remote_reward` for the config keys and docs/trainers.md for the label
format. Find the path with ``python -c "import tagpr_trainers.openrlhf as o; print(o.REWARD_FUNC_PATH)"``.

Returns what OpenRLHF's own example returns: ``{"rewards": tensor, "scores": tensor,
"extra_logs": {name: tensor}}``, one value per query.

The reward is built when OpenRLHF imports this file: a typo'd config key or a missing config file
raises then (OpenRLHF's ``SingleTurnAgentExecutor`` fails to start, showing the message), never
``reward: None`` mid-run. Inside a step it never raises: an error is logged at ERROR and the sample
gets the configured fallback reward with ``tagpr/error`` 1.
"""

from __future__ import annotations

import logging
from typing import Any

from tagpr_trainers.openrlhf.remote_reward import CONFIG_ENV, default_adapter

try:
    _ADAPTER = default_adapter()
except Exception as e:  # fail loud at start-up (OpenRLHF shows an import error, not reward: None)
    raise RuntimeError(f"tagpr reward_func: cannot build the reward from ${CONFIG_ENV}: {type(e).__name__}: "
                       f"{e}") from e


def reward_func(queries: list[str], prompts: list[str], labels: list[Any] | None = None,
                **kwargs: Any) -> dict[str, Any]:
    """Score ``queries`` (prompt + response text) with the configured tagpr composite."""
    import torch

    try:
        out = default_adapter()(queries, prompts, labels, **kwargs)
    except Exception:  # the adapter catches its own errors; this is the last line of defence
        n = len(queries)
        logging.getLogger("tagpr_trainers.openrlhf").error(
            "tagpr reward_func failed on %d samples; giving them the fallback reward %s", n,
            _ADAPTER.fallback, exc_info=True)
        out = {"rewards": [_ADAPTER.fallback] * n, "scores": [_ADAPTER.fallback] * n,
               "extra_logs": {f"{_ADAPTER.log_prefix}{k}": [_ADAPTER.none_as] * n
                              for k in (_ADAPTER._log_components or [])}
               | {f"{_ADAPTER.log_prefix}error": [1.0] * n}}
    return {
        "rewards": torch.tensor(out["rewards"], dtype=torch.float32),
        "scores": torch.tensor(out["scores"], dtype=torch.float32),
        "extra_logs": {k: torch.tensor(v, dtype=torch.float32) for k, v in out["extra_logs"].items()},
    }
