"""``tagpr-train``: run the TagPR recipe (data -> SFT -> PRMU -> RL stage 1 -> RL stage 2 -> eval).

Usage::

    tagpr-train all --config tiny-cpu                      # the whole pipeline, offline, on CPU
    tagpr-train sft --config tiny-cpu --set sft.epochs=1   # one stage, dotted key=value overrides
    tagpr-train all --config qwen2.5-7b-gpu --dry-run      # build everything, one batch, no training
    tagpr-train configs                                    # list the shipped configs
    tagpr-train show --config tiny-cpu --set rl.stage2.reward.gamma=1   # print the resolved config
    tagpr-train ablate --config tiny-learn --seeds 0 1 2 --output runs/ablate   # the claim with CIs

>>> main(["configs"])  # doctest: +ELLIPSIS
cuda-smoke...
0
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["build_parser", "main"]

COMMANDS = ("data", "sft", "prmu", "rl", "eval", "all")


def build_parser() -> argparse.ArgumentParser:
    """The ``tagpr-train`` parser (the shared grammar of :mod:`tagpr_rewards.cli_options`)."""
    from tagpr_rewards import cli_options as co

    p = co.make_parser(
        "tagpr-train",
        "Run the TagPR training recipe: data, sft, prmu, rl (stage 1 then 2), eval, or all.",
        epilog="Overrides: --set KEY=VALUE with dotted config keys, e.g. --set sft.epochs=1. See docs/recipe.md.")
    sub = co.add_subcommands(p)

    def config_options(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--config", "-c", required=True, help="shipped config name (tiny-cpu, …) or a YAML path")
        co.add_set(sp, "the recipe config (sft.epochs=1, rl.stage2.max_steps=20, ...)")
        co.add_tasks(sp, "LaMP tasks to train on (same as --set data.tasks=[...]; default: the config's)")
        co.add_device(sp, default=None, help="auto (CUDA when available, else CPU), cpu or cuda; same as "
                                             "--set run.device=... (default: the config's, normally auto)")
        co.add_output(sp, "DIR", "the run directory; rerunning resumes it (same as --set run.output_dir=DIR; "
                                 "default: the config's)")
        sp.add_argument("overrides", nargs="*", metavar="key=value", help=argparse.SUPPRESS)  # deprecated

    for name in COMMANDS:
        sp = co.subcommand(sub, name, "the whole pipeline" if name == "all" else f"the {name} stage")
        config_options(sp)
        sp.add_argument("--dry-run", action="store_true",
                        help="build every component and run one batch through it, without training")
        sp.add_argument("--force", action="store_true", help="rerun stages that are already done")
    sp = co.subcommand(sub, "ablate", "every stage and ablation arm over several seeds, with confidence intervals "
                                      "(writes OUTPUT/ablation.md)")
    config_options(sp)
    for a in sp._actions:
        if "--output" in a.option_strings:
            a.help = ("write the result here: the ablation directory (one run directory per seed, "
                      "OUTPUT/seedN/, and OUTPUT/ablation.{md,json}; default: runs/ablate-CONFIG)")
    sp.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds, one main run each")
    sp.add_argument("--arms", nargs="*", default=None,
                    help="ablation arms (default: every arm of tagpr_trainers.recipe.ablate.ARMS)")
    sp.add_argument("--rl-seeds", type=int, nargs="+", default=[], metavar="N",
                    help="also rerun RL from each seed's SFT model with rl.seed=N (OUTPUT/seedS/rl-seedN/); the "
                         "summary adds the claims averaged over the RL runs")
    sp.add_argument("--summarise-only", action="store_true", help="only rebuild ablation.md from finished runs")
    co.subcommand(sub, "configs", "list the shipped configs")
    sp = co.subcommand(sub, "show", "print the resolved config")
    config_options(sp)
    return p


def _overrides(args: argparse.Namespace) -> list[str]:
    """``--set`` plus the shortcut flags, as dotted overrides (positional ones are deprecated)."""
    from tagpr_rewards.cli_options import split_tasks, warn_deprecated

    out = []
    if args.overrides:
        warn_deprecated("positional key=value overrides", "--set key=value", "tagpr-train")
        out += list(args.overrides)
    if args.tasks:
        out.append(f"data.tasks=[{', '.join(split_tasks(args.tasks))}]")
    if args.device:
        out.append(f"run.device={args.device}")
    if args.output:
        out.append(f"run.output_dir={args.output}")
    return out + list(args.set)


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
    if args.command == "ablate":
        return _ablate(args)
    try:
        cfg = load_recipe_config(args.config, _overrides(args))
    except RecipeConfigError as e:
        print(f"tagpr-train: error: {e}", file=sys.stderr)
        return 2
    if args.command == "show":
        import yaml

        print(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), end="")
        return 0
    from tagpr_rewards.cli_options import setup_logging

    setup_logging(args, fmt="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from tagpr_trainers.recipe.context import StageInputsChanged
    from tagpr_trainers.recipe.runner import run_recipe

    try:
        out = run_recipe(cfg, args.command, dry_run=args.dry_run, force=args.force, progress=not args.quiet)
    except StageInputsChanged as e:  # a user decision, not a crash: say what changed and how to redo it
        print(f"tagpr-train: error: {e}", file=sys.stderr)
        return 2
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


def _ablate(args: argparse.Namespace) -> int:
    from tagpr_rewards.cli_options import setup_logging
    from tagpr_trainers.recipe.ablate import run_ablation, summarise
    from tagpr_trainers.recipe.config import RecipeConfigError, load_recipe_config

    output = args.output or f"runs/ablate-{Path(args.config).stem}"
    args.output = None  # the ablation directory, not a run directory: each seed's run lives under it
    overrides = _overrides(args)
    try:
        load_recipe_config(args.config, overrides)  # a bad key fails before any training
    except RecipeConfigError as e:
        print(f"tagpr-train: error: {e}", file=sys.stderr)
        return 2
    setup_logging(args, fmt="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.summarise_only:
        table = summarise(output)
    else:
        try:
            table = run_ablation(args.config, overrides, args.seeds, output, arms=args.arms, progress=not args.quiet,
                                 rl_seeds=args.rl_seeds)
        except RecipeConfigError as e:
            print(f"tagpr-train: error: {e}", file=sys.stderr)
            return 2
    print(table["markdown"], end="")
    return 0


def _brief(res: object) -> str:
    if not isinstance(res, dict):
        return ""
    keep = {k: v for k, v in res.items() if k not in ("table", "rows") and not isinstance(v, (list, dict))}
    return str(keep)[:300]
