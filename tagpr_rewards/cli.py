"""``tagpr-rewards``: list tag schemas and score completions from a JSONL file.

Examples::

    tagpr-rewards schemas
    tagpr-rewards score --sample --tasks LaMP-2 --preset stage2     # the shipped sample completions
    tagpr-rewards score --schema think-answer --tasks LaMP-2 samples.jsonl --output scored.jsonl
    tagpr-rewards score --tasks LaMP-2 --preset stage2 --set beta=1.0 samples.jsonl

Input lines are JSON objects with ``completion`` and optional ``reference``, ``user_id``,
``prompt`` (any other key becomes a column, e.g. ``profile`` or ``task``). A key that no reward
reads is warned about once, with a did-you-mean (``refernce`` -> ``reference``). A bad line
(not JSON, not an object, no ``completion``) is reported on stderr with its line number and
written out scored as an invalid completion with its ``error``; it is left out of the summary
means and counted as a bad line. The run goes on.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import IO, Any, TextIO

from tagpr_rewards.base import Batch, Reward
from tagpr_rewards.combinators import WeightedSum

CHUNK = 512

#: the reward contract's keys, and the metadata columns shipped rewards read (PRMU: id, query,
#: profile; the task reward: task)
CONTRACT_KEYS = ("completion", "reference", "user_id", "prompt")
KNOWN_COLUMNS = ("task", "profile", "query", "id")


def _unknown_key_warning(key: str) -> str:
    from tagpr_rewards.config_io import closest

    close = closest(key, [*CONTRACT_KEYS, *KNOWN_COLUMNS], cutoff=0.6)
    hint = f"; did you mean {close!r}?" if close else " (kept as a column for custom rewards)"
    return f"key {key!r} is not read by any shipped reward{hint}"


def build_scoring_reward(
    schema: str,
    task: str | None,
    preset: str | None,
    prmu_checkpoint: str | None = None,
    config: str | None = None,
    overrides: Sequence[str] = (),
    device: str = "cpu",
) -> Reward:
    """The reward ``tagpr-rewards score`` runs for these options.

    * ``--config FILE``: any reward config (see :func:`tagpr_rewards.presets.build_from_config`);
    * ``--tasks`` with ``--preset stage1`` (default when a task is given) or ``stage2``: that
      preset's config node ``{preset, task, schema[, prmu]}``;
    * neither: the tag rewards alone (format + ``R_tag``).

    ``overrides`` (``--set KEY=VALUE``) edit the config node before it is built.
    """
    from tagpr_rewards import presets
    from tagpr_rewards.config_io import apply_overrides, load_mapping
    from tagpr_rewards.registry import build_reward

    if config:
        cfg, source = load_mapping(config, "reward config"), config
    elif task is None:
        if preset is not None:
            raise ValueError(f"--preset {preset} needs --tasks (e.g. --tasks LaMP-2)")
        if overrides:
            raise ValueError("--set edits a reward config: give --config FILE or --tasks (a preset's config)")
        return WeightedSum(
            {"format": (build_reward("tag_format", schema=schema), 1.0),
             "tag": (presets.tag_reward(schema), 1.0)},
            name="tags",
        )
    else:
        cfg = {"preset": preset or "stage1", "task": task, "schema": schema}
        if prmu_checkpoint and cfg["preset"] == "stage2":
            cfg["prmu"] = {"checkpoint": prmu_checkpoint, "device": device}
        source = f"--preset {cfg['preset']}"
    if overrides:
        cfg = apply_overrides(cfg, overrides, what="--set")
        source += " + --set"
    return presets.build_from_config(cfg, source=source)


def _read_lines(path: str, err: TextIO) -> Iterator[tuple[int, dict[str, Any], str | None]]:
    """Yield ``(line_number, record, problem)``; a bad line gives a record with no completion.
    Each key no reward reads is warned about once (first line it appears on)."""
    warned: set[str] = set()
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
            for k in rec:
                if k not in warned and k not in CONTRACT_KEYS and k not in KNOWN_COLUMNS:
                    warned.add(k)
                    print(f"{path}:{lineno}: warning: {_unknown_key_warning(k)}", file=err)
            if problem:
                print(f"{path}:{lineno}: {problem}; scored as invalid and left out of the means", file=err)
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

    Returns the summary: ``count`` (lines), ``bad_lines``, ``scored`` (good lines), and over
    the good lines only: mean per component, format-validity rate and the distribution of tags
    used. A bad line is still written (scored as invalid, with its ``error``) but its defined
    fallback score says nothing about the completions, so it stays out of the means.
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
            out.write(json.dumps(row | ({"error": problem} if problem else {}), ensure_ascii=False) + "\n")
            n += 1
            if problem:
                bad += 1
                continue
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
    good = n - bad
    return {
        "count": n,
        "bad_lines": bad,
        "scored": good,
        "format_validity": valid / good if good else 0.0,
        "means": {k: sums[k] / counts[k] for k in sums},
        "tag_distribution": {t: c / total_tags for t, c in tags.most_common()} if total_tags else {},
    }


def format_summary(summary: dict[str, Any]) -> str:
    from tagpr_rewards.registry import reward_names

    names = set(reward_names()) | {"total", "base", "tag", "prmu", "task", "format"}
    bad = summary["bad_lines"]
    lines = [f"scored {summary['count'] - bad} completions"
             + (f" ({bad} bad lines, left out of the means)" if bad else ""),
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
    from tagpr_rewards.cli_options import resolve_device, single_task
    from tagpr_rewards.tags import load_schema

    task = single_task(args.tasks, "tagpr-rewards score")
    if args.sample == bool(args.file):
        print("error: give the JSONL file to score, or --sample (not both)", file=sys.stderr)
        return 2
    path = sample_path() if args.sample else args.file
    try:
        load_schema(args.schema)
        if task:
            from tagpr_rewards.metrics.lamp import get_task

            get_task(task)
        device = resolve_device(args.device) if args.prmu_checkpoint else "cpu"
        reward = build_scoring_reward(args.schema, task, args.preset, args.prmu_checkpoint, args.config,
                                      args.set, device)
    except (KeyError, ValueError) as e:
        print(f"error: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        return 2
    if not os.path.exists(path):
        print(f"error: no such file: {path}", file=sys.stderr)
        return 2
    if args.output:
        from tagpr_rewards.files import atomic_write

        result: dict[str, Any] = {}
        atomic_write(args.output, lambda out: result.update(score_file(path, reward, args.schema, out)))
        summary = result
        if not args.quiet:
            print(format_summary(summary))
    else:
        summary = score_file(path, reward, args.schema, sys.stdout)
        if not args.quiet:
            print(format_summary(summary), file=sys.stderr)
    if args.summary_json:
        from tagpr_rewards.files import atomic_write_json

        atomic_write_json(args.summary_json, summary)
    return 0


def sample_path() -> str:
    """The sample completions shipped with the package (``tagpr-rewards score --sample``)."""
    from importlib import resources

    return str(resources.files("tagpr_rewards").joinpath("data", "sample_completions.jsonl"))


def build_parser() -> argparse.ArgumentParser:
    """The ``tagpr-rewards`` parser (the shared grammar of :mod:`tagpr_rewards.cli_options`)."""
    from tagpr_rewards import cli_options as co

    p = co.make_parser("tagpr-rewards", __doc__.split("\n")[0], epilog=__doc__.split("\n", 1)[1])
    sub = co.add_subcommands(p)
    s = co.subcommand(sub, "schemas", "list the shipped tag schemas and their tags")
    s.set_defaults(func=_cmd_schemas)
    s = co.subcommand(sub, "score", "score completions from a JSONL file")
    s.add_argument("file", nargs="?",
                   help="JSONL with 'completion' (+ optional reference, user_id, prompt, ...); or --sample")
    s.add_argument("--sample", action="store_true",
                   help="score the sample completions shipped with tagpr (works from any directory)")
    s.add_argument("--schema", default="personalization-9", help="shipped schema name or YAML path")
    co.add_tasks(s, "the LaMP task of the task reward (one), e.g. LaMP-2")
    co.deprecated(s, "--task", new="--tasks", dest="tasks")
    s.add_argument("--preset", choices=["stage1", "stage2"], help="reward preset (with --tasks: stage1)")
    s.add_argument("--prmu-checkpoint", help="PRMU checkpoint filling the PRMU slot of stage2")
    s.add_argument("--config", help="reward config YAML/JSON (instead of --tasks/--preset)")
    co.add_set(s, "the reward config (--config, or the preset's: alpha=1, prmu.normalize=none, ...)")
    co.add_device(s, help="device of the PRMU (auto: CUDA when available, else CPU)")
    co.add_output(s, "FILE", "the per-sample scores (JSONL; default: stdout)")
    s.add_argument("--summary-json", metavar="FILE", help="also write the summary as JSON")
    s.set_defaults(func=_cmd_score)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``tagpr-rewards`` (exit 141, quietly, when its output pipe is closed)."""
    from tagpr_rewards.files import quiet_broken_pipe

    def run() -> int:
        args = build_parser().parse_args(argv)
        return int(args.func(args))

    return quiet_broken_pipe(run)


if __name__ == "__main__":
    raise SystemExit(main())
