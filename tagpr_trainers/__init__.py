"""tagpr trainers: TRL and OpenRLHF adapters, the tagged-chain data pipeline and the ``tagpr-train`` recipe.

The adapters are attributes of the package, imported on first use:
``tagpr_trainers.trl_adapter`` (TRL ``reward_funcs``), ``tagpr_trainers.openrlhf`` (the OpenRLHF
reward function, export and launch scripts), ``tagpr_trainers.data_pipeline`` and
``tagpr_trainers.recipe``. Importing this package (and the adapters) is light: no torch, TRL or
OpenRLHF until they are used.

>>> import subprocess, sys
>>> code = ("import sys, tagpr_trainers; tagpr_trainers.trl_adapter, tagpr_trainers.openrlhf.export, "
...         "tagpr_trainers.openrlhf.remote_reward, tagpr_trainers.openrlhf.launch; "
...         "print(sorted(m for m in ('torch', 'trl', 'openrlhf', 'transformers') if m in sys.modules))")
>>> subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip()
'[]'
>>> import tagpr_trainers
>>> tagpr_trainers.trl_adapter.__name__
'tagpr_trainers.trl_adapter'
"""

from __future__ import annotations

import importlib
from typing import Any

#: the subpackages and modules reachable as attributes after ``import tagpr_trainers``
SUBMODULES = ("trl_adapter", "openrlhf", "data_pipeline", "recipe")

__all__ = list(SUBMODULES)


def __getattr__(name: str) -> Any:
    if name in SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(SUBMODULES))
