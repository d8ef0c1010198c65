"""``tagpr-prmu``: train and evaluate a PRMU from the command line.

    tagpr-prmu train --data records.json --out runs/prmu [--task LaMP-2] [--epochs 5] [--resume]
    tagpr-prmu train --synthetic LaMP-2 --users 80 --out runs/prmu
    tagpr-prmu eval  --synthetic LaMP-2 --users 80 --report runs/prmu/eval.json [--markdown eval.md]

``--data`` is a JSON list (or JSONL) of LaMP records with golds: ``id``, ``input``, ``profile``,
``user_id``, ``output``. ``--synthetic`` generates them with ``tagpr_eval.data.synthetic`` (and
removes user swaps that are ambiguous because the other user's true answer is the same).
``--set key=value`` overrides any :class:`PRMUConfig` or :class:`TrainConfig` field.

>>> build_parser().parse_args(["train", "--synthetic", "LaMP-2", "--out", "x"]).users
80
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tagpr_rewards.prmu.config import PRMUConfig, TrainConfig

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tagpr-prmu", description="Train and evaluate a PRMU (our architecture).")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name, help_ in (("train", "train a PRMU, writing an atomic checkpoint every epoch"),
                        ("eval", "train PRMU and controls, evaluate on held-out users")):
        s = sub.add_parser(name, help=help_)
        src = s.add_mutually_exclusive_group(required=True)
        src.add_argument("--data", help="JSON/JSONL file of LaMP records with golds")
        src.add_argument("--synthetic", metavar="TASK", help="generate synthetic LaMP data for TASK (e.g. LaMP-2)")
        s.add_argument("--users", type=int, default=80, help="synthetic: number of users")
        s.add_argument("--questions", type=int, default=8, help="synthetic: questions per user")
        s.add_argument("--profile-size", type=int, default=16, help="synthetic: profile items per user")
        s.add_argument("--task", default=None, help="LaMP task name (picks the metric; default: from --synthetic)")
        s.add_argument("--epochs", type=int, default=None)
        s.add_argument("--seed", type=int, default=None)
        s.add_argument("--config", help="JSON/YAML file with {'model': {...}, 'train': {...}}")
        s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a PRMUConfig/TrainConfig field (repeatable)")
        s.add_argument("--device", default="cpu")
        s.add_argument("--quiet", action="store_true", help="no progress bars")
        if name == "train":
            s.add_argument("--out", required=True, help="checkpoint directory")
            s.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
        else:
            s.add_argument("--report", help="write the JSON report here")
            s.add_argument("--markdown", help="write Markdown tables here")
            s.add_argument("--no-controls", action="store_true", help="skip the control models")
    return p


def _parse_value(v: str) -> Any:
    try:
        return json.loads(v)
    except json.JSONDecodeError:
        return v


def _configs(args: argparse.Namespace) -> tuple[PRMUConfig, TrainConfig]:
    model: dict[str, Any] = {}
    train: dict[str, Any] = {}
    if args.config:
        text = Path(args.config).read_text(encoding="utf-8")
        if args.config.endswith((".yaml", ".yml")):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
        bad = set(data) - {"model", "train"}
        if bad:
            raise SystemExit(f"{args.config}: unknown top-level keys {sorted(bad)}; use 'model' and 'train'")
        model.update(data.get("model") or {})
        train.update(data.get("train") or {})
    mkeys = set(PRMUConfig.__dataclass_fields__)
    tkeys = set(TrainConfig.__dataclass_fields__)
    for kv in args.set:
        if "=" not in kv:
            raise SystemExit(f"--set {kv!r}: expected KEY=VALUE")
        k, v = kv.split("=", 1)
        if k in mkeys:
            model[k] = _parse_value(v)
        elif k in tkeys:
            train[k] = _parse_value(v)
        else:
            import difflib

            close = difflib.get_close_matches(k, sorted(mkeys | tkeys), n=1)
            raise SystemExit(f"--set {k}: unknown key" + (f"; did you mean {close[0]!r}?" if close else ""))
    if args.epochs is not None:
        train["epochs"] = args.epochs
    if args.seed is not None:
        train["seed"] = args.seed
    try:
        return PRMUConfig.from_dict(model), TrainConfig.from_dict(train)
    except (ValueError, TypeError) as e:
        raise SystemExit(f"config error: {e}") from e


def load_data(args: argparse.Namespace) -> tuple[list[dict[str, Any]], str | None,
                                                  Callable[[str, dict[str, Any]], bool] | None]:
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
        return out, args.task, None
    try:
        from tagpr_eval.data.synthetic import generate_task
    except ImportError as e:
        raise SystemExit("--synthetic needs tagpr_eval (pip install 'tagpr[eval]')") from e
    st = generate_task(args.synthetic, n_users=args.users, questions_per_user=args.questions,
                       profile_size=args.profile_size, seed=args.seed or 0, split="train")
    return [as_record(s) for s in st.data.samples], args.task or args.synthetic, synthetic_same_answer(st)


def synthetic_same_answer(st: Any) -> Callable[[str, dict[str, Any]], bool]:
    """For synthetic data: would user ``other`` answer record ``r`` with the same gold?"""
    from tagpr_eval.data.lamp_files import LampSample
    from tagpr_eval.data.synthetic import oracle_answer

    def same(other: str, r: dict[str, Any]) -> bool:
        s = LampSample(id=r["id"], input=r["input"], profile=r["profile"], user_id=other)
        return bool(oracle_answer(st.users[other], s) == r["output"])

    return same


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cfg, tcfg = _configs(args)
    recs, task, same = load_data(args)
    from tagpr_rewards.prmu.model import CheckpointError, TextEncoder

    enc = TextEncoder(cfg.encoder, args.device, cfg.max_chars)
    if args.cmd == "train":
        from tagpr_rewards.prmu.train import train_prmu

        try:
            res = train_prmu(recs, cfg, tcfg, out_dir=args.out, resume=args.resume, encoder=enc, task=task,
                             same_answer=same, progress=not args.quiet)
        except CheckpointError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        last = res.history[-1] if res.history else {}
        print(json.dumps({"checkpoint": str(args.out), "train_pairs": res.train_pairs.counts(),
                          "train_users": len(res.train_users), "heldout_users": len(res.heldout_users),
                          **{k: round(v, 4) for k, v in last.items()}}))
        return 0
    from tagpr_rewards.prmu.evaluate import evaluate_prmu, render_markdown

    report = evaluate_prmu(recs, cfg, tcfg, controls=not args.no_controls, task=task, same_answer=same,
                           encoder=enc, progress=not args.quiet)
    md = render_markdown(report)
    print(md)
    for path, text in ((args.report, json.dumps(report, indent=2)), (args.markdown, md)):
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(str(path) + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
