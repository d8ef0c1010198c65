"""``tagpr-prmu``: train and evaluate a PRMU from the command line.

    tagpr-prmu train --data records.json --output runs/prmu [--tasks LaMP-2] [--epochs 5] [--resume]
    tagpr-prmu train --synthetic LaMP-2 --users 80 --output runs/prmu --set model.hidden=64
    tagpr-prmu eval  --synthetic LaMP-2 --users 80 --output runs/prmu/eval.json [--markdown eval.md]

``--data`` is a JSON list (or JSONL) of LaMP records with golds: ``id``, ``input``, ``profile``,
``user_id``, ``output``. ``--synthetic`` generates them with ``tagpr_eval.data.synthetic`` (and
removes user swaps that are ambiguous because the other user's true answer is the same), through
``tagpr_eval.prmu_synthetic`` (the ``tagpr-prmu`` entry point; the rewards layer imports nothing
from ``tagpr_eval``).
``--set model.KEY=VALUE`` / ``--set train.KEY=VALUE`` override a :class:`PRMUConfig` /
:class:`TrainConfig` field (the same keys as the ``--config`` file).

>>> build_parser().parse_args(["train", "--synthetic", "LaMP-2", "--output", "x"]).users
80
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tagpr_rewards.cli_options import resolve_device, setup_logging, single_task
from tagpr_rewards.files import atomic_write_text
from tagpr_rewards.prmu.config import PRMUConfig, TrainConfig

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``tagpr-prmu`` parser (the shared grammar of :mod:`tagpr_rewards.cli_options`)."""
    from tagpr_rewards import cli_options as co

    p = co.make_parser("tagpr-prmu", "Train and evaluate a PRMU (our architecture).")
    sub = co.add_subcommands(p, dest="cmd")
    for name, help_ in (("train", "train a PRMU, writing an atomic checkpoint every epoch"),
                        ("eval", "train PRMU and controls, evaluate on held-out users")):
        s = co.subcommand(sub, name, help_)
        src = s.add_mutually_exclusive_group(required=True)
        src.add_argument("--data", help="JSON/JSONL file of LaMP records with golds")
        src.add_argument("--synthetic", metavar="TASK", help="generate synthetic LaMP data for TASK (e.g. LaMP-2)")
        s.add_argument("--users", type=int, default=80, help="synthetic: number of users")
        s.add_argument("--questions", type=int, default=8, help="synthetic: questions per user")
        s.add_argument("--profile-size", type=int, default=16, help="synthetic: profile items per user")
        co.add_tasks(s, "the LaMP task (one; picks the metric; default: the --synthetic task)")
        co.deprecated(s, "--task", new="--tasks", dest="tasks")
        s.add_argument("--epochs", type=int, default=None, help="same as --set train.epochs=N")
        s.add_argument("--seed", type=int, default=None, help="same as --set train.seed=N (default: 0)")
        s.add_argument("--config", help="JSON/YAML file with {'model': {...}, 'train': {...}}")
        co.add_set(s, "the PRMU config (model.hidden=64, train.epochs=5, ...)")
        co.add_device(s)
        if name == "train":
            co.add_output(s, "DIR", "the checkpoint directory", required=False)
            co.deprecated(s, "--out", new="--output", dest="output")
            s.add_argument("--resume", action="store_true", help="continue from the checkpoint in --output")
        else:
            co.add_output(s, "FILE", "the JSON report (the Markdown tables always go to stdout)")
            co.deprecated(s, "--report", new="--output", dest="output")
            s.add_argument("--markdown", metavar="FILE", help="also write the Markdown tables here")
            s.add_argument("--no-controls", action="store_true", help="skip the control models")
    return p


@dataclass
class _Settings:
    """What ``--config`` and ``--set`` address: ``model.*`` (PRMUConfig), ``train.*`` (TrainConfig)."""

    model: PRMUConfig = field(default_factory=PRMUConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def _configs(args: argparse.Namespace) -> tuple[PRMUConfig, TrainConfig]:
    from tagpr_rewards.cli_options import warn_deprecated
    from tagpr_rewards.config_io import ConfigError, apply_overrides, from_dict, load_mapping

    try:
        data = load_mapping(args.config, "PRMU config") if args.config else {}
        source = args.config or "defaults"
        from_dict(_Settings, data, source)  # a typo in the file is reported against the file
        overrides = []
        for kv in args.set:  # undotted KEY=VALUE (the old spelling): the section it belongs to
            key = kv.partition("=")[0].strip()
            if "=" in kv and "." not in key:
                section = ("model" if key in PRMUConfig.__dataclass_fields__
                           else "train" if key in TrainConfig.__dataclass_fields__ else None)
                if section:
                    warn_deprecated(f"--set {key}=...", f"--set {section}.{key}=...")
                    kv = f"{section}.{kv}"
            overrides.append(kv)
        if args.epochs is not None:
            overrides.append(f"train.epochs={args.epochs}")
        if args.seed is not None:
            overrides.append(f"train.seed={args.seed}")
        data = apply_overrides(data, overrides, _Settings, what="--set")
        settings = from_dict(_Settings, data, f"{source} + --set" if overrides else source)
    except ConfigError as e:
        raise SystemExit(f"tagpr-prmu: error: {e}") from e
    return settings.model, settings.train


def load_data(args: argparse.Namespace, synthetic: SyntheticSource | None = None
              ) -> tuple[list[dict[str, Any]], str | None, Callable[[str, dict[str, Any]], bool] | None]:
    """Records, task name and (synthetic only) the ambiguity predicate for user swaps."""
    from tagpr_rewards.prmu.pairs import as_record

    if args.data:
        from tagpr_rewards.prmu.train import load_records

        recs = load_records(args.data)
        out = []
        for i, r in enumerate(recs):
            try:
                out.append(as_record(r))
            except ValueError as e:
                raise SystemExit(f"{args.data}: record #{i}: {e}") from e
        return out, single_task(args.tasks, "tagpr-prmu"), None
    if synthetic is None:
        synthetic = _synthetic_plugin()
    return synthetic(args)


#: A higher layer's synthetic-data source: ``args -> (records, task, same_answer)`` (the rewards
#: layer does not import tagpr_eval; ``tagpr_eval.prmu_synthetic`` provides one).
SyntheticSource = Callable[[argparse.Namespace], tuple[list[dict[str, Any]], str | None,
                                                       Callable[[str, dict[str, Any]], bool] | None]]


def _synthetic_plugin() -> SyntheticSource:
    """The synthetic-data source of the layer above, looked up at run time by name (the rewards
    layer has no import of tagpr_eval; without it installed, ``--synthetic`` is a clear error)."""
    import importlib

    try:
        mod = importlib.import_module("tagpr_eval.prmu_synthetic")
    except ImportError as e:
        raise SystemExit("--synthetic needs tagpr_eval's generator (pip install 'tagpr[eval]'); "
                         "or pass --data FILE with your own records") from e
    return mod.synthetic_records  # type: ignore[no-any-return]


def main(argv: Sequence[str] | None = None, synthetic: SyntheticSource | None = None) -> int:
    """Entry point (exit 141, quietly, when its output pipe is closed); ``synthetic`` serves
    ``--synthetic`` (given by ``tagpr_eval.prmu_synthetic``; looked up at run time otherwise)."""
    from tagpr_rewards.files import quiet_broken_pipe

    return quiet_broken_pipe(lambda: _main(argv, synthetic))


def _main(argv: Sequence[str] | None = None, synthetic: SyntheticSource | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.cmd == "train" and not args.output:
        build_parser().error("train needs --output DIR (the checkpoint directory)")
    setup_logging(args)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cfg, tcfg = _configs(args)
    recs, task, same = load_data(args, synthetic)
    from tagpr_rewards.prmu.checkpoint import CheckpointError
    from tagpr_rewards.prmu.encoder import TextEncoder

    enc = TextEncoder(cfg.encoder, resolve_device(args.device), cfg.max_chars)
    if args.cmd == "train":
        from tagpr_rewards.prmu.train import train_prmu

        try:
            res = train_prmu(recs, cfg, tcfg, out_dir=args.output, resume=args.resume, encoder=enc, task=task,
                             same_answer=same, progress=not args.quiet)
        except CheckpointError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        last = res.history[-1] if res.history else {}
        print(json.dumps({"checkpoint": str(args.output), "train_pairs": res.train_pairs.counts(),
                          "train_users": len(res.train_users), "heldout_users": len(res.heldout_users),
                          **{k: round(v, 4) for k, v in last.items()}}))
        return 0
    from tagpr_rewards.prmu.evaluate import evaluate_prmu, render_markdown

    report = evaluate_prmu(recs, cfg, tcfg, controls=not args.no_controls, task=task, same_answer=same,
                           encoder=enc, progress=not args.quiet)
    md = render_markdown(report)
    print(md)
    for path, text in ((args.output, json.dumps(report, indent=2) + "\n"), (args.markdown, md + "\n")):
        if path:
            atomic_write_text(path, text)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
