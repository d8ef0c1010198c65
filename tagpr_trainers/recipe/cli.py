"""``tagpr-train``: run the TagPR recipe (data -> SFT -> PRMU -> RL stage 1 -> RL stage 2 -> eval).

Usage::

    tagpr-train all --config tiny-cpu                      # the whole pipeline, offline, on CPU
    tagpr-train sft --config tiny-cpu sft.epochs=1         # one stage, dotted key=value overrides
    tagpr-train all --config qwen2.5-7b-gpu --dry-run      # build everything, one batch, no training
    tagpr-train configs                                    # list the shipped configs
    tagpr-train show --config tiny-cpu rl.stage2.reward.gamma=1   # print the resolved config

>>> main(["configs"])  # doctest: +ELLIPSIS
cuda-smoke...
0
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["build_parser", "main"]

COMMANDS = ("data", "sft", "prmu", "rl", "eval", "all")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tagpr-train",
        description="Run the TagPR training recipe: data, sft, prmu, rl (stage 1 then 2), eval, or all.",
        epilog="Overrides are dotted key=value pairs after the options, e.g. sft.epochs=1 run.output_dir=runs/x. "
               "See docs/recipe.md.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        sp = sub.add_parser(name, help="the whole pipeline" if name == "all" else f"the {name} stage")
        sp.add_argument("--config", "-c", required=True, help="shipped config name (tiny-cpu, …) or a YAML path")
        sp.add_argument("--dry-run", action="store_true",
                        help="build every component and run one batch through it, without training")
        sp.add_argument("--force", action="store_true", help="rerun stages that are already done")
        sp.add_argument("--quiet", "-q", action="store_true", help="no progress bars, warnings only")
        sp.add_argument("--output", "-o", metavar="DIR",
                        help="run directory (same as the override run.output_dir=DIR)")
        sp.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides")
    sub.add_parser("configs", help="list the shipped configs")
    sp = sub.add_parser("show", help="print the resolved config")
    sp.add_argument("--config", "-c", required=True)
    sp.add_argument("overrides", nargs="*", metavar="key=value")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``tagpr-train``; returns the exit status."""
    from tagpr_trainers.recipe.config import (
        RecipeConfigError,
        config_to_dict,
        list_configs,
        load_recipe_config,
    )

    args = build_parser().parse_args(argv)
    if args.command == "configs":
        for name in list_configs():
            print(name)
        return 0
    overrides = list(args.overrides)
    if getattr(args, "output", None):
        overrides.append(f"run.output_dir={args.output}")
    try:
        cfg = load_recipe_config(args.config, overrides)
    except RecipeConfigError as e:
        print(f"tagpr-train: error: {e}", file=sys.stderr)
        return 2
    if args.command == "show":
        import yaml

        print(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), end="")
        return 0
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from tagpr_trainers.recipe.runner import run_recipe

    out = run_recipe(cfg, args.command, dry_run=args.dry_run, force=args.force, progress=not args.quiet)
    if args.dry_run:
        for stage, res in out.items():
            if not stage.startswith("_"):
                print(f"dry run {stage}: ok {_brief(res)}")
        return 0
    if args.command in ("all", "eval"):
        table = Path(cfg.run.output_dir) / "eval" / "comparison.md"
        if table.is_file():
            print(table.read_text(encoding="utf-8"))
        plots = sorted((Path(cfg.run.output_dir) / "plots").glob("*.png"))
        if plots:
            print("plots: " + ", ".join(str(p) for p in plots))
    if out.get("_timings"):
        print("stage seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in out["_timings"].items()))
    return 0


def _brief(res: object) -> str:
    if not isinstance(res, dict):
        return ""
    keep = {k: v for k, v in res.items() if k not in ("table", "rows") and not isinstance(v, (list, dict))}
    return str(keep)[:300]
