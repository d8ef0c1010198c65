"""The run context shared by the stages: config, run directory layout, device and dtype.

Run directory layout (``run.output_dir``)::

    config.yaml            resolved config of the last invocation
    stages/<stage>.json    stage markers (a stage is done when its marker exists)
    data/lamp/             synthetic LaMP files (data.source: synthetic)
    data/sft.jsonl, data/rl.jsonl, data/chains.jsonl, data/report.{json,md}
    base/                  the tiny base model (model.base: tiny)
    sft/model, sft/trainer/checkpoint-N
    prmu/model
    rl1/model, rl1/trainer/…, rl2/model, rl2/trainer/…
    eval/<model>/…         tagpr_eval run directories; eval/comparison.{md,json}; plots/*.png

>>> from tagpr_trainers.recipe.config import load_recipe_config
>>> ctx = RunContext(load_recipe_config("tiny-cpu", ["run.output_dir=/tmp/x", "run.device=cpu"]))
>>> str(ctx.path("sft_model")), ctx.device, ctx.dtype_name
('/tmp/x/sft/model', 'cpu', 'float32')
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tagpr_trainers.recipe.config import RecipeConfig

__all__ = ["RunContext", "resolve_device", "resolve_dtype"]

logger = logging.getLogger("tagpr_trainers.recipe")

_PATHS = {
    "data": "data",
    "lamp": "data/lamp",
    "sft_data": "data/sft.jsonl",
    "rl_data": "data/rl.jsonl",
    "data_report": "data/report.json",
    "base_model": "base",
    "sft_model": "sft/model",
    "sft_trainer": "sft/trainer",
    "prmu_model": "prmu/model",
    "rl1_model": "rl1/model",
    "rl1_trainer": "rl1/trainer",
    "rl2_model": "rl2/model",
    "rl2_trainer": "rl2/trainer",
    "eval": "eval",
    "plots": "plots",
}


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``."""
    if device != "auto":
        if device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise RuntimeError("run.device=cuda but no CUDA device is visible; use run.device=auto or cpu")
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str, device: str) -> str:
    """``auto`` -> ``bfloat16`` on CUDA (when supported), ``float32`` on CPU.

    >>> resolve_dtype("auto", "cpu"), resolve_dtype("float16", "cuda")
    ('float32', 'float16')
    """
    if dtype != "auto":
        return dtype
    if device == "cuda":
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "float32"


@dataclass
class RunContext:
    """What every stage gets: the config, paths, device/dtype, and the dry-run flag."""

    cfg: RecipeConfig
    dry_run: bool = False
    force: bool = False
    progress: bool = True
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.run_dir = Path(self.cfg.run.output_dir)
        self.device = resolve_device(self.cfg.run.device)
        self.dtype_name = resolve_dtype(self.cfg.run.dtype, self.device)

    def path(self, name: str) -> Path:
        """A path of the run layout (see module docstring); in a dry run, under ``dry-run/``."""
        root = self.run_dir / "dry-run" if self.dry_run else self.run_dir
        return root / _PATHS[name]

    @property
    def torch_dtype(self) -> Any:
        import torch

        return getattr(torch, self.dtype_name)

    @property
    def lamp_dir(self) -> Path:
        """The LaMP-layout data directory (written by the data stage for synthetic data)."""
        return self.path("lamp") if self.cfg.data.source == "synthetic" else Path(self.cfg.data.source)

    @property
    def use_cuda(self) -> bool:
        return self.device == "cuda"

    def trainer_precision(self) -> dict[str, Any]:
        """``bf16``/``fp16``/``use_cpu`` keyword arguments for TRL configs (TRL defaults to bf16)."""
        return {"bf16": self.dtype_name == "bfloat16" and self.use_cuda,
                "fp16": self.dtype_name == "float16" and self.use_cuda,
                "use_cpu": not self.use_cuda}

    def base_model_path(self) -> str:
        """The base policy: the tiny model directory or ``model.base``."""
        if self.cfg.model.base == "tiny":
            return str(self.path("base_model"))
        return self.cfg.model.base

    def model_path(self, which: str) -> str:
        """``base``, ``sft``, ``rl1`` or ``rl2`` -> the model directory or hub id."""
        if which == "base":
            return self.base_model_path()
        return str(self.path(f"{which}_model"))
