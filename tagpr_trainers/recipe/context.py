"""The run context shared by the stages: config, run directory layout, device and dtype.

Run directory layout (``run.output_dir``)::

    config.yaml            resolved config of the last invocation (written after the checks below)
    stages/<stage>.json    stage markers (a stage is done when its marker exists); each records the
                           config keys the stage was built from (``inputs``) and their fingerprint:
                           a finished stage whose inputs changed is refused (``--force`` redoes it),
                           and the ``machine`` it ran on (CPU model and vector extensions)
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

__all__ = ["RESUME_STATE", "STAGE_INPUTS", "RunContext", "StageInputsChanged", "cpu_cores", "resolve_device", "resolve_dtype",
           "stage_inputs"]

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
    "direct_data": "data/direct.jsonl",
    "direct_model": "direct/model",
    "direct_trainer": "direct/trainer",
    "prmu_model": "prmu/model",
    "rl1_model": "rl1/model",
    "rl1_trainer": "rl1/trainer",
    "rl1_prompts": "rl1/prompts.jsonl",
    "rl1_prompt_filter": "rl1/prompt_filter.json",
    "rl2_model": "rl2/model",
    "rl2_trainer": "rl2/trainer",
    "rl2_prompts": "rl2/prompts.jsonl",
    "rl2_prompt_filter": "rl2/prompt_filter.json",
    "eval": "eval",
    "plots": "plots",
}


#: What each stage's outputs are built from: dotted config prefixes, its own and its inputs'.
#: (``run.output_dir``, ``run.device``, ``run.threads``, progress and ``eval``'s batch size do
#: not change what a stage produces; ``description`` is a comment.)
STAGE_INPUTS: dict[str, tuple[str, ...]] = {
    "data": ("run.seed", "data."),
    "sft": ("run.seed", "data.", "model.", "sft.", "run.dtype", "run.fp32_master_weights"),
    "prmu": ("run.seed", "data.", "prmu."),
}
STAGE_INPUTS["rl1"] = (*STAGE_INPUTS["sft"], "rl.stage1.", "rl.prompt_filter.", "rl.seed")
STAGE_INPUTS["rl2"] = (*STAGE_INPUTS["rl1"], "prmu.", "rl.stage2.")
STAGE_INPUTS["rl"] = STAGE_INPUTS["rl2"]
STAGE_INPUTS["eval"] = (*STAGE_INPUTS["rl2"], "eval.")

#: The stages a stage reads the outputs of (checked before it runs).
UPSTREAM: dict[str, tuple[str, ...]] = {
    "data": (), "sft": ("data",), "prmu": ("data",), "rl1": ("data", "sft"), "rl2": ("data", "sft", "prmu", "rl1"),
    "rl": ("data", "sft", "prmu"), "eval": ("data", "sft", "prmu", "rl1", "rl2"),
}


#: What a stage resumes from (``_PATHS`` names): checkpoints an interrupted run left. A forced
#: run (``--force``) removes them first, so it redoes the stage instead of continuing an earlier
#: run's checkpoints (before 2026-12-06 ``--force`` on ``rl`` resumed the last run's GRPO checkpoint).
RESUME_STATE: dict[str, tuple[str, ...]] = {
    # the tiny base is built (and pretrained) by the sft stage from its inputs: --force rebuilds it too
    "sft": ("base_model", "sft_trainer", "direct_trainer"), "prmu": ("prmu_model",), "rl1": ("rl1_trainer", "rl1_prompts", "rl1_prompt_filter"), "rl2": ("rl2_trainer", "rl2_prompts", "rl2_prompt_filter"),
}


def _changes(changed: dict[str, tuple[Any, Any]], limit: int = 8) -> str:
    """``key: old -> new, …`` of the first ``limit`` changed inputs (and how many more)."""
    lines = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in list(changed.items())[:limit])
    return lines + (f" (+{len(changed) - limit} more)" if len(changed) > limit else "")


class StageInputsChanged(RuntimeError):
    """A finished stage was built with another config than the one given (the message says what changed)."""


class _NotRecorded:
    def __repr__(self) -> str:
        return "<not recorded>"


#: what :meth:`RunContext.changed_inputs` reports for a key one side does not have
NOT_RECORDED: Any = _NotRecorded()


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict) and d and prefix.count(".") < 3:
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): d}


def stage_inputs(cfg: RecipeConfig, stage: str) -> dict[str, Any]:
    """The config values ``stage``'s outputs are built from (dotted keys, see :data:`STAGE_INPUTS`).

    >>> from tagpr_trainers.recipe.config import load_recipe_config
    >>> inp = stage_inputs(load_recipe_config("tiny-cpu"), "sft")
    >>> inp["sft.epochs"], "rl.stage1.max_steps" in inp, "run.output_dir" in inp
    (6.0, False, False)
    """
    import dataclasses

    flat = _flatten(dataclasses.asdict(cfg))
    keep = STAGE_INPUTS[stage]
    # an empty trl_args, a prompt filter that is off, one that does not refilter or keeps every
    # informative prompt (max_pass_rate 1) and an unset rl.seed (all newer than some runs) leave
    # the fingerprint as it was; stage 1 never depends on the refilter
    filter_off = flat.get("rl.prompt_filter.samples") == 0
    return {k: v for k, v in sorted(flat.items())
            if any(k == p or (p.endswith(".") and k.startswith(p)) for p in keep)
            and not (k.endswith(".trl_args") and v == {})
            and not (filter_off and k.startswith("rl.prompt_filter."))
            and not (k == "rl.prompt_filter.refilter" and (not v or "rl.stage2." not in keep))
            and not (k == "rl.seed" and v is None)
            and not (k == "rl.prompt_filter.max_pass_rate" and v == 1.0)}


def fingerprint(inputs: dict[str, Any]) -> str:
    """A short stable hash of a stage's inputs."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cpu_cores() -> list[int | None]:
    """The CPU cores this process may run on (its affinity; ``None`` entries where the platform
    does not tell which, e.g. macOS)."""
    import os

    if hasattr(os, "sched_getaffinity"):
        return list[int | None](sorted(os.sched_getaffinity(0)))
    return [None] * (os.cpu_count() or 1)


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

    def inputs(self, stage: str) -> dict[str, Any]:
        """:func:`stage_inputs` of this run's config."""
        return stage_inputs(self.cfg, stage)

    def changed_inputs(self, stage: str) -> dict[str, tuple[Any, Any]] | None:
        """For a finished stage: ``{key: (recorded, now)}`` of the inputs that changed (``{}``: none);
        ``None`` when the stage is not done or its marker records no inputs (an older run)."""
        from tagpr_trainers.recipe.checkpoints import is_done, read_marker

        if not is_done(self.run_dir, stage):
            return None
        old = read_marker(self.run_dir, stage).get("inputs")
        if not isinstance(old, dict):
            logger.warning("%s: stages/%s.json records no config fingerprint (an older run directory); "
                           "trusting it", stage, stage)
            return None
        return self._diff_inputs(stage, old)

    def _diff_inputs(self, stage: str, old: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
        """``{key: (recorded, now)}`` of the inputs of ``stage`` that differ from ``old``."""
        now = self.inputs(stage)
        # an option newer than the run directory, left at its default, is not a change: a new
        # option's default keeps the old behaviour
        defaults = stage_inputs(type(self.cfg)(), stage)
        missing = object()
        changed: dict[str, tuple[Any, Any]] = {}
        for k in sorted(set(old) | set(now)):
            if k not in old and k in now and now[k] == defaults.get(k, missing):
                continue
            if old.get(k, missing) != now.get(k, missing):
                changed[k] = (old.get(k, NOT_RECORDED), now.get(k, NOT_RECORDED))
        return changed

    def check_inputs(self, stage: str, redo: bool = False) -> bool:
        """Whether finished ``stage`` can be skipped: ``True`` when done with the same inputs,
        ``False`` when it must run (not done, or ``redo``). A finished stage whose inputs
        changed raises :class:`StageInputsChanged` unless ``redo``."""
        changed = self.changed_inputs(stage)
        from tagpr_trainers.recipe.checkpoints import is_done

        if not is_done(self.run_dir, stage):
            return False
        if redo:
            return False
        if changed:
            raise StageInputsChanged(
                f"{self.run_dir}: stage {stage} was built with another config ({_changes(changed)}). Its outputs no "
                f"longer match the config: rerun it with --force (e.g. `tagpr-train {stage if stage not in ('rl1', 'rl2') else 'rl'} "
                f"--force …`), restore the old values, or use another run.output_dir.")
        return True

    def start_stage(self, stage: str) -> None:
        """Before ``stage`` runs: on ``--force``, remove what it would resume from
        (:data:`RESUME_STATE`) and its marker; otherwise refuse to resume checkpoints that an
        interrupted run made with other inputs (:class:`StageInputsChanged`). Records the
        inputs it starts with in ``stages/<stage>.started.json``."""
        import shutil

        from tagpr_trainers.recipe.checkpoints import atomic_write_json, unmark

        if self.dry_run:
            return
        started = self.run_dir / "stages" / f"{stage}.started.json"
        state = [self.path(n) for n in RESUME_STATE.get(stage, ())]
        if self.force:
            for p in state:
                if p.exists():
                    logger.info("%s: --force: removing %s (an earlier run's checkpoints)", stage, p)
                    shutil.rmtree(p) if p.is_dir() else p.unlink()
            unmark(self.run_dir, stage)
        elif started.is_file() and any(p.exists() for p in state):
            import json

            changed = self._diff_inputs(stage, json.loads(started.read_text(encoding="utf-8")).get("inputs", {}))
            if changed:
                raise StageInputsChanged(
                    f"{self.run_dir}: an interrupted run of stage {stage} left checkpoints made with another config "
                    f"({_changes(changed)}); resuming them would mix the two. Rerun with --force to start the stage over, "
                    "restore the old values, or use another run.output_dir.")
        inputs = self.inputs(stage)
        atomic_write_json(started, {"stage": stage, "fingerprint": fingerprint(inputs), "inputs": inputs})

    def mark_done(self, stage: str, outputs: dict[str, Any] | None = None) -> dict[str, Any]:
        """Record ``stage`` as finished with the inputs it was built from."""
        from tagpr_trainers.recipe.checkpoints import mark_done

        inputs = self.inputs(stage)
        return mark_done(self.run_dir, stage, outputs, inputs=inputs, fingerprint=fingerprint(inputs))

    def base_model_path(self) -> str:
        """The base policy: the tiny model directory or ``model.base``."""
        if self.cfg.model.base == "tiny":
            return str(self.path("base_model"))
        return self.cfg.model.base

    def model_path(self, which: str) -> str:
        """``base``, ``direct``, ``sft``, ``rl1`` or ``rl2`` -> the model directory or hub id."""
        if which == "base":
            return self.base_model_path()
        return str(self.path(f"{which}_model"))
