"""OpenRLHF integration: reward entry file, data export and launch scripts (light to import).

* ``REWARD_FUNC_PATH`` — the file to pass as ``--reward.remote_url`` (see ``reward_func.py``);
* :mod:`tagpr_trainers.openrlhf.export` — SFT / RL JSONL in the layout ``train_sft`` / ``train_ppo_ray`` read;
* :mod:`tagpr_trainers.openrlhf.launch` — the shipped launch scripts and a check of their flags against
  the installed OpenRLHF's argument parsers.

>>> REWARD_FUNC_PATH.name, SCRIPTS_DIR.name
('reward_func.py', 'scripts')
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["REWARD_FUNC_PATH", "SCRIPTS_DIR"]

#: The entry file for ``--reward.remote_url`` (OpenRLHF loads it by path).
REWARD_FUNC_PATH = Path(__file__).resolve().parent / "reward_func.py"
#: The shipped launch scripts (``train_sft.sh``, ``train_grpo.sh``).
SCRIPTS_DIR = Path(__file__).resolve().parent / "scripts"

#: modules reachable as attributes, imported on first use (``tagpr_trainers.openrlhf.export``)
SUBMODULES = ("export", "launch", "remote_reward")


def __getattr__(name: str) -> object:
    if name in SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
