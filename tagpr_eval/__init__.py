"""tagpr_eval: the LaMP evaluation harness (data, retrieval, prompts, backends, scoring).

Importing the package is light (no torch, datasets, bm25s or sentence-transformers); the
public names below load their modules on first use.

>>> import tagpr_eval
>>> tagpr_eval.load_task("synthetic", "LaMP-2").task
'LaMP-2'
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> module that defines it (imported on first attribute access)
_LAZY = {
    "LampSample": "tagpr_eval.data.lamp_files",
    "LampTaskData": "tagpr_eval.data.lamp_files",
    "LampDataError": "tagpr_eval.data.lamp_files",
    "load_task": "tagpr_eval.data",
    "load_questions": "tagpr_eval.data.lamp_files",
    "load_outputs": "tagpr_eval.data.lamp_files",
    "write_task": "tagpr_eval.data.lamp_files",
    "generate_task": "tagpr_eval.data.synthetic",
    "get_retriever": "tagpr_eval.retrieval",
    "build_prompt": "tagpr_eval.prompts",
    "to_dataset": "tagpr_eval.dataset",
    "evaluate_run": "tagpr_eval.runner",
    "EvalConfig": "tagpr_eval.config",
    "GenerationConfig": "tagpr_eval.config",
    "score_files": "tagpr_eval.scoring",
    "get_backend": "tagpr_eval.backends",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'tagpr_eval' has no attribute {name!r}")
    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
