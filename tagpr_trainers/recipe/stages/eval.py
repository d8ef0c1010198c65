"""Stage ``eval``: ``tagpr_eval.evaluate_run`` (hf backend) on base, SFT, RL stage 1 and RL stage 2,
then the comparison table (relative improvement with ``tagpr_eval.compare``) and reward-curve plots.

Outputs: ``eval/<model>-<fingerprint>/`` (tagpr_eval run directories; the fingerprint changes
when a stage is retrained, so cached generations of an older model are never reused),
``eval/comparison.md`` and ``eval/comparison.json``, ``plots/reward_curves.png`` and
``plots/sft_loss.png``; on synthetic LaMP-2 with the template teacher's listing chain also
``eval/chain_audit.md`` / ``.json``: which step of the chain each model gets wrong
(:mod:`tagpr_trainers.data_pipeline.listing_audit`).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from tagpr_trainers.recipe.checkpoints import atomic_write_json, atomic_write_text
from tagpr_trainers.recipe.context import RunContext
from tagpr_trainers.recipe.stages.common import model_available, read_log_history

__all__ = ["chain_audit", "comparison_table", "draw_name", "draw_seed", "eval_config", "plot_curves", "run"]

logger = logging.getLogger("tagpr_trainers.recipe")

LABELS = {"baseline": "baseline (profile majority)", "base": "untrained (random init)",
          "direct": "base (direct answer)", "sft": "SFT", "rl1": "RL stage 1", "rl2": "RL stage 2"}
#: table order; "vs base" is measured against the direct-answer model when it was evaluated
ORDER = ["base", "direct", "sft", "rl1", "rl2"]

_DRAW_PREFIX = "synthetic-seed"


def draw_name(data_seed: int) -> str:
    """The name of another synthetic draw (``eval.synthetic_seeds``): its run-name suffix, its
    directory under ``eval/`` and its ``comparison-<draw>`` files; :func:`draw_seed` reads it back.

    >>> draw_name(7), draw_seed(draw_name(7))
    ('synthetic-seed7', 7)
    """
    return f"{_DRAW_PREFIX}{data_seed}"


def draw_seed(draw: str) -> int:
    """The seed of a draw named by :func:`draw_name` (``synthetic-seed7`` -> 7; any int seed).

    >>> draw_seed(draw_name(-3))
    -3
    """
    try:
        seed = int(draw.removeprefix(_DRAW_PREFIX))
    except ValueError:
        seed = None
    if seed is None or draw_name(seed) != draw:  # one rule: exactly what draw_name writes
        raise ValueError(f"{draw!r} is not a synthetic draw's name (expected {_DRAW_PREFIX}N, as eval writes it)")
    return seed


def _fingerprint(path: str) -> str:
    p = Path(path)
    parts = []
    for f in sorted(p.glob("*.safetensors")) if p.is_dir() else []:
        st = f.stat()
        parts.append(f"{f.name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("|".join(parts or [path]).encode()).hexdigest()[:8]


def eval_config(ctx: RunContext, which: str, data_seed: int | None = None) -> Any:
    """The ``tagpr_eval`` config for one model (``baseline`` = the non-LLM profile baseline).

    ``data_seed``: instead of the run's dev split, ``tagpr_eval``'s own synthetic dev set drawn
    with this seed (``tagpr-eval run --data synthetic --seed N``: other users, other profiles,
    the generator's default sizes), same prompt style, retriever and k."""
    from tagpr_eval.config import EvalConfig
    from tagpr_trainers.recipe.stages.rl import eval_reward_node

    d, e = ctx.cfg.data, ctx.cfg.eval
    data, seed, out, suffix = str(ctx.lamp_dir), ctx.cfg.run.seed, ctx.path("eval"), ""
    if data_seed is not None:
        data, seed, out, suffix = "synthetic", data_seed, ctx.path("eval") / draw_name(data_seed), \
            f"-{draw_name(data_seed)}"
    common: dict[str, Any] = dict(
        tasks=list(d.tasks), data=data, split=d.eval_split, retriever=d.retriever, k=d.k,
        prompt=d.prompt_style, schema=d.schema, output=str(out), limit=2 if ctx.dry_run else e.limit,
        batch_size=e.batch_size, gen_kwargs={"max_new_tokens": 8 if ctx.dry_run else e.max_new_tokens},
        seed=seed, plots=True, rewards=True, progress=ctx.progress,
        reward=eval_reward_node(ctx))  # the run's stage-2 node: the weights RL optimised
    if which == "baseline":
        return EvalConfig(model="baseline", run_name="baseline" + suffix, **common)
    path = ctx.model_path(which)
    return EvalConfig(model="hf", run_name=f"{which}-{_fingerprint(path)}{suffix}",
                      model_args={"pretrained": path, "dtype": ctx.dtype_name, "device": ctx.device,
                                  "chat_template": True}, **common)


def _row(name: str, res: dict[str, Any], task: str) -> dict[str, Any]:
    tr = (res.get("tasks") or {}).get(task, {})
    ts = tr.get("tag_stats") or {}
    comps = ts.get("mean_reward_components") or {}
    row = {"model": name, "task": task, **{k: v for k, v in (res.get("metrics") or {}).get(task, {}).items()},
           "format_valid": ts.get("format_valid_rate"), "answer_tag": ts.get("answer_tag_rate")}
    for k in ("total", "base", "tag"):
        if k in comps:
            row[f"reward_{k}"] = comps[k]
    return row


def comparison_table(results: dict[str, dict[str, Any]], tasks: list[str]) -> tuple[str, list[dict[str, Any]]]:
    """Markdown table base -> SFT -> RL1 -> RL2 (+ baseline) and its rows.

    Columns: task metrics, tag-format validity, answer-tag rate, mean reward (our stage-2 reward
    without PRMU: ``total``, and its ``base``/``tag`` parts), relative improvement of the primary
    metric over the base model and over SFT (``tagpr_eval.compare`` sign convention).
    """
    from tagpr_eval.compare import compare_results

    rows: list[dict[str, Any]] = []
    lines: list[str] = []
    for task in tasks:
        metric_names: list[str] = []
        for res in results.values():
            for m in (res.get("metrics") or {}).get(task, {}):
                if m not in metric_names:
                    metric_names.append(m)
        head = (["model"] + metric_names + ["format valid", "answer tag", "reward", "R_base", "R_tag",
                                            "vs base", "vs SFT"])
        lines += [f"### {task}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        base_ref = "direct" if "direct" in results else "base"
        for name, res in results.items():
            row = _row(name, res, task)
            for key, ref in (("base", base_ref), ("sft", "sft")):
                imp = None
                if ref in results and name in ORDER and ORDER.index(name) > ORDER.index(ref):
                    imp = compare_results(results[ref], res).per_task.get(task)
                row[f"vs_{key}"] = imp
            rows.append(row)

            def f(v: Any) -> str:
                return "–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

            def pct(v: Any) -> str:
                return "–" if v is None else f"{100 * v:+.1f}%"

            cells = ([LABELS.get(name, name)] + [f(row.get(m)) for m in metric_names]
                     + [f(row.get("format_valid")), f(row.get("answer_tag")), f(row.get("reward_total")),
                        f(row.get("reward_base")), f(row.get("reward_tag")), pct(row["vs_base"]), pct(row["vs_sft"])])
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines.append("reward = our stage-2 reward without PRMU (α·R_base + β·R_tag, + the recall term where stage 2 "
                 "sets it) on the eval generations; "
                 "vs base / vs SFT = relative improvement of the primary metric (positive = better); "
                 "base = the direct-answer model when it was trained (sft.direct), else the untrained model.")
    return "\n".join(lines) + "\n", rows


def plot_curves(run_dir: Path, out_dir: Path) -> dict[str, str]:
    """PNG plots of the RL reward curves (total and per component) and the SFT loss curve."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - optional dependency
        logger.warning("matplotlib missing: no plots (pip install 'tagpr[eval]')")
        return {}
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    hists = {which: h for which in ("rl1", "rl2") if (h := read_log_history(run_dir, which)) is not None}
    if hists:
        # one row per stage: the total and the top-level components (same 0..1 scale), and for a
        # stage with PRMU its raw parts beside the group-normalised term that enters the reward
        # (normalised, its mean is ~0 by construction; the raw parts show what the PRMU scored)
        fig, axes = plt.subplots(len(hists), 2, figsize=(12, 3.6 * len(hists)), squeeze=False,
                                 gridspec_kw={"width_ratios": [3, 2]})
        for row, (which, hist) in zip(axes, hists.items()):
            ax, pax = row
            comps = sorted({k.split("/")[1] for h in hist for k in h
                            if k.startswith("rewards/") and k.endswith("/mean") and k.count("/") == 2})
            comps = [c for c in comps if not c.startswith("stage")]  # the composite itself is "reward"
            series = [("reward", "total reward", 2.4)] + [(f"rewards/{c}/mean", c, 1.2) for c in comps]
            for key, label, lw in series:
                pts = [(h["step"], h[key]) for h in hist if h.get(key) is not None]
                if pts:
                    ax.plot(*zip(*pts), label=label, lw=lw)
            ax.set_title(f"{LABELS[which]}: mean reward per step")
            ax.set_xlabel("step")
            ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
            prmu = [(k, k.split("/", 1)[1].removesuffix("/mean")) for k in
                    ("rewards/prmu/mean", "rewards/prmu/generic/mean", "rewards/prmu/interaction/mean")
                    if any(k in h for h in hist)]
            if not prmu:
                pax.axis("off")
                continue
            for key, label in prmu:
                pts = [(h["step"], h[key]) for h in hist if h.get(key) is not None]
                if pts:
                    pax.plot(*zip(*pts), label=label + (" (normalised, in R)" if label == "prmu" else " (raw)"))
            pax.set_title(f"{LABELS[which]}: PRMU per step")
            pax.set_xlabel("step")
            pax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / "reward_curves.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        files["reward_curves"] = str(path)
    sft_hist = read_log_history(run_dir, "sft")
    if sft_hist is not None:
        pts = [(h["step"], h["loss"]) for h in sft_hist if "loss" in h]
        if pts:
            fig, ax = plt.subplots(figsize=(5, 3.5))
            ax.plot(*zip(*pts))
            ax.set_title("SFT loss")
            ax.set_xlabel("step")
            fig.tight_layout()
            path = out_dir / "sft_loss.png"
            fig.savefig(path, dpi=100)
            plt.close(fig)
            files["sft_loss"] = str(path)
    return files


def chain_audit(ctx: RunContext, results: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """Audit the listing chains of the evaluated models (every one but the baseline and the
    direct-answer model) and write ``eval/chain_audit.{md,json}``; ``None`` when the run's chains
    are not the template teacher's listing chain on synthetic LaMP-2."""
    from tagpr_trainers.data_pipeline.listing_audit import audit_listing, audit_table, audits_run
    from tagpr_trainers.recipe.stages.common import read_jsonl

    if not audits_run(ctx.cfg.data):
        return None
    audits: dict[str, Any] = {}
    for which in ORDER:
        run_dir = results.get(which, {}).get("files", {}).get("run_dir")
        if which == "direct" or not run_dir or not (Path(run_dir) / "samples.jsonl").is_file():
            continue
        audits[LABELS[which]] = audit_listing(read_jsonl(Path(run_dir) / "samples.jsonl"))
    if not any(a["n"] for a in audits.values()):  # e.g. prompt_style tagged: no LaMP-2 item to read
        return None
    out = ctx.path("eval")
    table = ("Where the listing chain goes wrong (LaMP-2 dev, greedy; "
             "tagpr_trainers.data_pipeline.listing_audit):\n\n" + audit_table(audits) + "\n")
    atomic_write_text(out / "chain_audit.md", table)
    atomic_write_json(out / "chain_audit.json", audits)
    return {"table": table, "audits": audits, "file": str(out / "chain_audit.md")}


def run(ctx: RunContext) -> dict[str, Any]:
    """Evaluate every configured model that exists; write and print the comparison table."""
    from tagpr_eval.runner import evaluate_run

    e = ctx.cfg.eval
    names = (["baseline"] if e.baseline else []) + list(e.models)
    present, skipped = [], []
    for which in names:
        if which != "baseline" and not model_available(ctx.model_path(which)):
            if not ctx.dry_run:
                logger.warning("eval: %s model %s not found; skipped (run its stage first)", which,
                               ctx.model_path(which))
            skipped.append(which)
            continue
        present.append(which)
    out = ctx.path("eval")
    result: dict[str, Any] = {}
    for data_seed in [None, *([] if ctx.dry_run else e.synthetic_seeds)]:
        results: dict[str, dict[str, Any]] = {which: dict(evaluate_run(eval_config(ctx, which, data_seed)))
                                              for which in present}
        table, rows = comparison_table(results, list(ctx.cfg.data.tasks))
        stem = "comparison" if data_seed is None else f"comparison-{draw_name(data_seed)}"
        if data_seed is not None:
            table = (f"Held-out check: tagpr_eval's synthetic dev set drawn with seed {data_seed} "
                     "(`tagpr-eval run --data synthetic --seed N`).\n\n" + table)
        atomic_write_text(out / f"{stem}.md", table)
        atomic_write_json(out / f"{stem}.json", {"rows": rows, "runs": {k: v.get("files", {}).get("run_dir")
                                                                         for k, v in results.items()}})
        if data_seed is None:
            result = {"table": table, "rows": rows, "comparison": str(out / "comparison.md")}
            audit = None if ctx.dry_run else chain_audit(ctx, results)
            if audit is not None:
                result["chain_audit"] = audit["file"]
        else:
            result.setdefault("synthetic_seeds", {})[str(data_seed)] = {"rows": rows, "comparison": str(out / f"{stem}.md")}
            result["table"] += "\n" + table
    result["plots"] = plot_curves(ctx.run_dir if not ctx.dry_run else ctx.path("eval").parent, ctx.path("plots"))
    result["skipped"] = skipped
    return result


def stale(ctx: RunContext, outputs: dict[str, Any]) -> str | None:
    """Why a finished eval must run again, or ``None``: a model it skipped (not trained yet when
    it ran) exists now. Without this, ``tagpr-train eval`` run before SFT had finished would be
    "done" with an empty table, and every later ``eval`` would skip it."""
    late = [m for m in outputs.get("skipped") or [] if m in ctx.cfg.eval.models and model_available(ctx.model_path(m))]
    return f"model(s) {', '.join(late)} exist now and were not evaluated" if late else None
