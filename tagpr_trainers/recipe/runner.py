"""Run ``tagpr-train`` stages: load config, set up, run each stage (skipping finished ones), report.

This is the recipe's main: :func:`run_recipe` is what the CLI calls, and what a notebook calls.

>>> STAGES
('data', 'sft', 'prmu', 'rl', 'eval')
"""

from __future__ import annotations

import logging
import shutil
import time
from typing import Any

from tagpr_trainers.recipe.checkpoints import (
    atomic_write_json,
    atomic_write_text,
    read_marker,
)
from tagpr_trainers.recipe.config import RecipeConfig, config_to_dict
from tagpr_trainers.recipe.context import RunContext, cpu_cores

__all__ = ["STAGES", "run_recipe", "stages_for"]

logger = logging.getLogger("tagpr_trainers.recipe")

#: Pipeline order. ``rl`` runs stage 1 then stage 2 (markers ``rl1``, ``rl2``).
STAGES = ("data", "sft", "prmu", "rl", "eval")


def stages_for(name: str) -> list[str]:
    """``all`` -> every stage; a stage name -> itself.

    >>> stages_for("all")[-1], stages_for("sft")
    ('eval', ['sft'])
    """
    if name == "all":
        return list(STAGES)
    if name not in STAGES:
        from tagpr_rewards.registry import unknown_name_error

        raise unknown_name_error("stage", name, [*STAGES, "all"])
    return [name]


def _check_inputs(ctx: RunContext, names: list[str], force: bool) -> None:
    """Refuse finished stages whose inputs changed: the requested ones (unless ``force``) and
    the finished ones they read (always: ``force`` redoes only what was asked for)."""
    from tagpr_trainers.recipe.context import UPSTREAM

    asked = {n for name in names for n in ((name, "rl1", "rl2") if name == "rl" else (name,))}
    seen: list[str] = []
    for name in names:
        for st in (*UPSTREAM[name], *(("rl1", "rl2") if name == "rl" else ()), name):
            if st not in seen:
                seen.append(st)
    for st in seen:
        ctx.check_inputs(st, redo=force and st in asked)


def _stage_fn(name: str) -> Any:
    import importlib

    return importlib.import_module(f"tagpr_trainers.recipe.stages.{name}").run


def _stale(ctx: RunContext, name: str, outputs: dict[str, Any]) -> str | None:
    """A finished stage's own reason to run again (its module's ``stale(ctx, outputs)``), or ``None``."""
    import importlib

    fn = getattr(importlib.import_module(f"tagpr_trainers.recipe.stages.{name}"), "stale", None)
    return fn(ctx, outputs) if fn is not None else None


def _setup(cfg: RecipeConfig) -> None:
    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    from transformers import set_seed

    if cfg.run.threads:
        # never more threads than the cores this process may use (threads on a shared core thrash)
        torch.set_num_threads(max(1, min(cfg.run.threads, len(cpu_cores()))))
    set_seed(cfg.run.seed)


def run_recipe(cfg: RecipeConfig, stage: str = "all", dry_run: bool = False, force: bool = False,
               progress: bool = True) -> dict[str, Any]:
    """Run ``stage`` (or ``all``) of the recipe described by ``cfg``.

    A finished stage (marker ``RUN_DIR/stages/<stage>.json``) is skipped unless ``force``. A
    finished stage whose config inputs changed since it was built (the marker records them) is
    refused before anything runs (:class:`~tagpr_trainers.recipe.context.StageInputsChanged`),
    for the requested stages and for the finished stages they read; ``force`` redoes the
    requested ones. An interrupted one resumes (TRL checkpoints, PRMU epoch checkpoints, the eval generation log).
    ``dry_run`` builds every component of the requested stages (and the stages before them) on a
    few samples in ``RUN_DIR/dry-run/`` and runs one batch through each, without training.

    Returns ``{stage: outputs}``; ``outputs["eval"]["table"]`` is the comparison table.
    """
    import yaml

    names = stages_for(stage)
    ctx = RunContext(cfg, dry_run=dry_run, force=force, progress=progress)
    _setup(cfg)
    if dry_run:
        # the stages before the requested one, so it has inputs; each on a few samples
        names = list(STAGES[: STAGES.index(names[-1]) + 1])
        shutil.rmtree(ctx.run_dir / "dry-run", ignore_errors=True)
    if not dry_run:  # before anything is written: a changed config must not overwrite config.yaml
        _check_inputs(ctx, names, force)
    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text((ctx.run_dir / "dry-run" if dry_run else ctx.run_dir) / "config.yaml",
                      yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    logger.info("tagpr-train %s%s: run dir %s, device %s, dtype %s", stage, " (dry run)" if dry_run else "",
                ctx.run_dir, ctx.device, ctx.dtype_name)
    outputs: dict[str, Any] = {}
    timings: dict[str, float] = {}
    for name in names:
        if not dry_run and ctx.check_inputs(name, redo=force):
            done = read_marker(ctx.run_dir, name).get("outputs", {})
            why = _stale(ctx, name, done)
            if why is None:
                logger.info("%s: done already (stages/%s.json); skipping (--force reruns it)", name, name)
                outputs[name] = done
                continue
            logger.info("%s: done already, but %s; running it again", name, why)
        logger.info("== stage %s ==", name)
        ctx.start_stage(name)  # rl has no state of its own: rl1 and rl2 start themselves
        t0 = time.time()
        outputs[name] = _stage_fn(name)(ctx)
        timings[name] = round(time.time() - t0, 1)
        logger.info("stage %s finished in %.1f s", name, timings[name])
        if not dry_run:
            marker = dict(outputs[name])
            marker.pop("table", None)
            marker["seconds"] = timings[name]
            ctx.mark_done(name, marker)
    if timings and not dry_run:
        old = {}
        tpath = ctx.run_dir / "timings.json"
        if tpath.is_file():
            import json

            old = json.loads(tpath.read_text())
        atomic_write_json(tpath, {**old, **timings})
    outputs["_timings"] = timings
    return outputs
