"""``tagpr-rewards``: list tag schemas and score completions from a JSONL file.

Examples::

    tagpr-rewards schemas
    tagpr-rewards score --schema think-answer --task LaMP-2 samples.jsonl --output scored.jsonl
    tagpr-rewards score --schema personalization-9 --task LaMP-2 --preset stage2 samples.jsonl

Input lines are JSON objects with ``completion`` and optional ``reference``, ``user_id``,
``prompt`` (any other key becomes a column, e.g. ``profile`` or ``task``). A bad line is
reported on stderr with its line number and scored as an invalid completion; the run goes on.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections import Counter
from collections.abc import Iterator
from typing import IO, Any, TextIO

from tagpr_rewards.base import Batch, Reward
from tagpr_rewards.combinators import WeightedSum

CHUNK = 512


def build_scoring_reward(
    schema: str,
    task: str | None,
    preset: str | None,
    prmu_checkpoint: str | None = None,
    config: str | None = None,
) -> Reward:
    """The reward ``tagpr-rewards score`` runs for these options.

    * ``--config FILE``: any reward config (see :func:`tagpr_rewards.presets.build_from_config`);
    * ``--task`` with ``--preset stage1`` (default when a task is given) or ``stage2``;
    * neither: the tag rewards alone (format + ``R_tag``).
    """
    from tagpr_rewards import presets
    from tagpr_rewards.registry import build_reward

    if config:
        from tagpr_rewards.config_io import load_mapping

        return presets.build_from_config(load_mapping(config, "reward config"), source=config)
    if task is None:
        if preset is not None:
            raise ValueError(f"--preset {preset} needs --task (e.g. --task LaMP-2)")
        return WeightedSum(
            {"format": (build_reward("tag_format", schema=schema), 1.0),
             "tag": (presets.tag_reward(schema), 1.0)},
            name="tags",
        )
    preset = preset or "stage1"
    if preset == "stage1":
        return presets.stage1(task, schema)
    prmu = build_reward("prmu", checkpoint=prmu_checkpoint) if prmu_checkpoint else None
    return presets.stage2(task, schema, prmu=prmu)


def _read_lines(path: str, err: TextIO) -> Iterator[tuple[int, dict[str, Any], str | None]]:
    """Yield ``(line_number, record, problem)``; a bad line gives a record with no completion."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            problem = None
            try:
                rec = json.loads(line)
                if not isinstance(rec, dict):
                    problem = f"expected a JSON object, got {type(rec).__name__}"
                    rec = {}
                elif "completion" not in rec:
                    problem = "missing key 'completion'"
            except json.JSONDecodeError as e:
                problem = f"invalid JSON ({e.msg} at column {e.colno})"
                rec = {}
            if problem:
                print(f"{path}:{lineno}: {problem}; scored as invalid", file=err)
                rec = {k: v for k, v in rec.items() if k != "completion"}
                rec["completion"] = None
            yield lineno, rec, problem


def _batch_from_records(recs: list[dict[str, Any]]) -> Batch:
    keys: set[str] = set()
    for r in recs:
        keys.update(r)
    def col(k: str) -> list[Any]:
        return [r.get(k) for r in recs]
    columns = {k: col(k) for k in keys - {"completion", "reference", "user_id", "prompt"}}
    return Batch.from_inputs(
        col("completion"),
        prompts=col("prompt") if "prompt" in keys else None,
        references=col("reference") if "reference" in keys else None,
        user_ids=col("user_id") if "user_id" in keys else None,
        **columns,
    )


def score_file(
    path: str,
    reward: Reward,
    schema: str,
    out: IO[str],
    err: TextIO | None = None,
) -> dict[str, Any]:
    """Score every line of ``path`` with ``reward``, write per-sample JSONL to ``out``.

    Returns the summary: count, bad lines, mean per component, format-validity rate and the
    distribution of tags used.
    """
    from tagpr_rewards.tags import batch_parses, load_schema

    sch = load_schema(schema)
    err = err if err is not None else sys.stderr
    sums: dict[str, float] = {}
    counts: Counter[str] = Counter()
    tags: Counter[str] = Counter()
    n = bad = valid = 0
    chunk: list[tuple[int, dict[str, Any], str | None]] = []

    def flush() -> None:
        nonlocal n, bad, valid
        batch = _batch_from_records([r for _, r, _ in chunk])
        result = reward.score(batch)
        parses = batch_parses(batch, sch)
        for i, (lineno, _rec, problem) in enumerate(chunk):
            row: dict[str, Any] = {"line": lineno, "total": result.scores[i]}
            for k, v in result.components.items():
                row[k] = v[i]
            row["format_valid"] = parses[i].valid
            row["tags"] = parses[i].tag_sequence
            row["reason"] = result.reasons[i]
            if problem:
                row["error"] = problem
                bad += 1
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
            valid += parses[i].valid
            tags.update(parses[i].tag_sequence)
            for k in ("total", *result.components):
                v = row[k]
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                    sums[k] = sums.get(k, 0.0) + v
                    counts[k] += 1
        chunk.clear()

    for item in _read_lines(path, err):
        chunk.append(item)
        if len(chunk) >= CHUNK:
            flush()
    if chunk:
        flush()
    total_tags = sum(tags.values())
    return {
        "count": n,
        "bad_lines": bad,
        "format_validity": valid / n if n else 0.0,
        "means": {k: sums[k] / counts[k] for k in sums},
        "tag_distribution": {t: c / total_tags for t, c in tags.most_common()} if total_tags else {},
    }


def format_summary(summary: dict[str, Any]) -> str:
    from tagpr_rewards.registry import reward_names

    names = set(reward_names()) | {"total", "base", "tag", "prmu", "task", "format"}
    lines = [f"scored {summary['count']} completions ({summary['bad_lines']} bad lines)",
             f"format validity: {summary['format_validity']:.3f}", "", "| component | mean |", "|---|---|"]
    for k, v in summary["means"].items():
        if k.rsplit("/", 1)[-1] not in names:
            continue  # counters such as tag_order/lcs stay in the per-sample JSONL
        lines.append(f"| {k} | {v:.4f} |")
    if summary["tag_distribution"]:
        lines += ["", "| tag | share |", "|---|---|"]
        lines += [f"| {t} | {s:.3f} |" for t, s in summary["tag_distribution"].items()]
    return "\n".join(lines)


def _cmd_schemas(args: argparse.Namespace) -> int:
    from tagpr_rewards.tags import list_schemas, load_schema

    for name in list_schemas():
        s = load_schema(name)
        print(f"{name}  (answer tag: {s.answer_tag}{', wrapper: ' + s.wrapper if s.wrapper else ''})")
        if s.provenance:
            print(f"  {' '.join(s.provenance.split())}")
        for tag, meaning in s.tags:
            req = "*" if tag in s.required else " "
            print(f"  {req} {tag:<20} {meaning}")
        if s.order:
            print(f"    order: {' '.join(s.order.split())}")
        print()
    print("* = required")
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from tagpr_rewards.tags import load_schema

    try:
        load_schema(args.schema)
        if args.task:
            from tagpr_rewards.metrics.lamp import get_task

            get_task(args.task)
        reward = build_scoring_reward(args.schema, args.task, args.preset, args.prmu_checkpoint, args.config)
    except (KeyError, ValueError) as e:
        print(f"error: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        return 2
    if not os.path.exists(args.file):
        print(f"error: no such file: {args.file}", file=sys.stderr)
        return 2
    if args.output:
        from tagpr_rewards.files import atomic_write

        result: dict[str, Any] = {}
        atomic_write(args.output, lambda out: result.update(score_file(args.file, reward, args.schema, out)))
        summary = result
        print(format_summary(summary))
    else:
        summary = score_file(args.file, reward, args.schema, sys.stdout)
        print(format_summary(summary), file=sys.stderr)
    if args.summary_json:
        with open(args.summary_json, "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=2)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tagpr-rewards", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("schemas", help="list the shipped tag schemas and their tags")
    s.set_defaults(func=_cmd_schemas)
    s = sub.add_parser("score", help="score completions from a JSONL file")
    s.add_argument("file", help="JSONL with 'completion' (+ optional reference, user_id, prompt, ...)")
    s.add_argument("--schema", default="personalization-9", help="shipped schema name or YAML path")
    s.add_argument("--task", help="LaMP task for the task reward, e.g. LaMP-2")
    s.add_argument("--preset", choices=["stage1", "stage2"], help="reward preset (default with --task: stage1)")
    s.add_argument("--prmu-checkpoint", help="PRMU checkpoint filling the PRMU slot of stage2")
    s.add_argument("--config", help="reward config YAML (overrides --task/--preset)")
    s.add_argument("--output", "-o", help="write per-sample JSONL here (default: stdout)")
    s.add_argument("--summary-json", help="also write the summary as JSON")
    s.set_defaults(func=_cmd_score)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
