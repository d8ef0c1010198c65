"""Tables and plots from run results (``tagpr-eval report`` and the end of ``tagpr-eval run``).

* :func:`markdown_table` — metrics per task (one column per run) and tag statistics;
* :func:`write_plots` — ``metrics.png`` (per task metrics beside the published LaMP anchors of
  :data:`LAMP_ANCHORS`) and ``tags.png`` (distribution of reasoning tags, as in the paper's
  figure; tagged prompts only);
* :func:`report_runs` — both, for saved run directories.

The anchors are the LaMP leaderboard's *test-set* numbers (user split, see LAMP.md); a run on
dev data or on synthetic data is not comparable to them one to one — the plot says so.

>>> r = {"metrics": {"LaMP-3": {"MAE": 0.3, "RMSE": 0.6}}, "tasks": {}, "config": {"model": "x"}}
>>> print(markdown_table(r))
| Task | Metric | x |
|---|---|---|
| LaMP-3 | MAE ↓ | 0.3000 |
| LaMP-3 | RMSE ↓ | 0.6000 |
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tagpr_rewards.metrics.lamp import get_task, list_tasks

__all__ = ["LAMP_ANCHORS", "LOWER_IS_BETTER", "markdown_table", "report_runs", "run_label", "write_plots"]

#: Metrics where lower is better (LaMP-3; from the tasks' TaskSpec); every other is higher-is-better.
LOWER_IS_BETTER = frozenset(m for t in list_tasks() for m in get_task(t).lower_better)

#: Published LaMP test-set numbers (leaderboard, user split), from LAMP.md.
LAMP_ANCHORS: dict[str, dict[str, dict[str, float]]] = {
    "FlanT5-XXL, no profile": {
        "LaMP-1": {"accuracy": 0.520}, "LaMP-2": {"accuracy": 0.365, "f1": 0.308},
        "LaMP-3": {"MAE": 0.344, "RMSE": 0.650}, "LaMP-4": {"rouge-1": 0.163, "rouge-L": 0.147},
        "LaMP-5": {"rouge-1": 0.442, "rouge-L": 0.400}, "LaMP-7": {"rouge-1": 0.453, "rouge-L": 0.395},
    },
    "FlanT5-XXL + retrieval": {
        "LaMP-1": {"accuracy": 0.699}, "LaMP-2": {"accuracy": 0.414, "f1": 0.364},
        "LaMP-3": {"MAE": 0.267, "RMSE": 0.552}, "LaMP-4": {"rouge-1": 0.182, "rouge-L": 0.167},
        "LaMP-5": {"rouge-1": 0.450, "rouge-L": 0.411}, "LaMP-7": {"rouge-1": 0.448, "rouge-L": 0.394},
    },
    "FlanT5-base fine-tuned + retrieval": {
        "LaMP-1": {"accuracy": 0.734}, "LaMP-2": {"accuracy": 0.556, "f1": 0.519},
        "LaMP-3": {"MAE": 0.245, "RMSE": 0.560}, "LaMP-4": {"rouge-1": 0.186, "rouge-L": 0.171},
        "LaMP-5": {"rouge-1": 0.450, "rouge-L": 0.409}, "LaMP-7": {"rouge-1": 0.528, "rouge-L": 0.475},
    },
    "best public entry (Learning to Prompt)": {
        "LaMP-1": {"accuracy": 0.782}, "LaMP-3": {"MAE": 0.193, "RMSE": 0.466},
        "LaMP-4": {"rouge-1": 0.221, "rouge-L": 0.202}, "LaMP-5": {"rouge-1": 0.472, "rouge-L": 0.432},
    },
}


def run_label(results: Mapping[str, Any]) -> str:
    """A short name for a run: its directory name, else the model (and pretrained/model arg)."""
    files = results.get("files") or {}
    if files.get("run_dir"):
        return Path(str(files["run_dir"])).name
    cfg = results.get("config") or {}
    args = cfg.get("model_args") or {}
    name = args.get("pretrained") or args.get("model")
    return f"{cfg.get('model', 'run')}" + (f" ({Path(str(name)).name})" if name else "")


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, (int, float)) else "–"


def _unique_labels(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    labels = [run_label(r) for r in runs]
    counts = Counter(labels)
    seen: Counter[str] = Counter()
    out = []
    for lab in labels:
        if counts[lab] > 1:
            seen[lab] += 1
            lab = f"{lab} #{seen[lab]}"
        out.append(lab)
    return out


def markdown_table(results: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> str:
    """Markdown table of metrics (↓ marks lower-is-better), one value column per run,
    followed by a tag-statistics table when any run used tagged prompts."""
    runs = [results] if isinstance(results, Mapping) else list(results)
    labels = _unique_labels(runs)
    rows: list[tuple[str, str]] = []
    for r in runs:
        for task, ms in (r.get("metrics") or {}).items():
            for m in ms:
                if (task, m) not in rows:
                    rows.append((task, m))
    rows.sort(key=lambda tm: (tm[0], tm[1] not in ("accuracy", "MAE", "rouge-1")))
    lines = ["| Task | Metric | " + " | ".join(labels) + " |", "|---|---|" + "---|" * len(runs)]
    for task, m in rows:
        arrow = " ↓" if m in LOWER_IS_BETTER else ""
        vals = [_fmt((r.get("metrics") or {}).get(task, {}).get(m)) for r in runs]
        lines.append(f"| {task} | {m}{arrow} | " + " | ".join(vals) + " |")
    tag_rows = []
    for lab, r in zip(labels, runs):
        for task, tr in (r.get("tasks") or {}).items():
            ts = tr.get("tag_stats")
            if ts:
                total = (ts.get("mean_reward_components") or {}).get("total")
                tag_rows.append(f"| {lab} | {task} | {_fmt(ts.get('format_valid_rate'))} | "
                                f"{_fmt(ts.get('answer_tag_rate'))} | {ts.get('mean_tags_per_output', 0):.2f} | "
                                f"{_fmt(total)} |")
    if tag_rows:
        lines += ["", "| Run | Task | format valid | answer from tag | tags/output | mean reward (ours) |",
                  "|---|---|---|---|---|---|", *tag_rows]
    return "\n".join(lines)


def write_plots(results: Mapping[str, Any] | Sequence[Mapping[str, Any]], out_dir: str | Path,
                anchors: Mapping[str, Mapping[str, Mapping[str, float]]] = LAMP_ANCHORS) -> dict[str, str]:
    """Write ``metrics.png`` (and ``tags.png`` when tag statistics exist) into ``out_dir``.

    Returns ``{"plot/metrics": "metrics.png", ...}`` (file names relative to ``out_dir``).
    """
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("plots need matplotlib: pip install 'tagpr[eval]'") from e
    runs = [results] if isinstance(results, Mapping) else list(results)
    labels = _unique_labels(runs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    tasks = sorted({t for r in runs for t in (r.get("metrics") or {})})
    if tasks:
        fig, axes = plt.subplots(1, len(tasks), figsize=(3.2 * len(tasks) + 1.5, 3.6), squeeze=False)
        markers = ["o", "s", "^", "D", "v", "P"]
        for ax, task in zip(axes[0], tasks):
            metrics = sorted({m for r in runs for m in (r.get("metrics") or {}).get(task, {})},
                             key=lambda m: m not in ("accuracy", "MAE", "rouge-1"))
            width = 0.8 / max(1, len(runs))
            for j, (lab, r) in enumerate(zip(labels, runs)):
                vals = [(r.get("metrics") or {}).get(task, {}).get(m, float("nan")) for m in metrics]
                xs = [i - 0.4 + width * (j + 0.5) for i in range(len(metrics))]
                ax.bar(xs, vals, width=width, label=lab if ax is axes[0][0] else None)
            for k, (aname, avals) in enumerate(anchors.items()):
                pts = [(i, avals.get(task, {}).get(m)) for i, m in enumerate(metrics)]
                pts = [(i, v) for i, v in pts if v is not None]
                if pts:
                    ax.scatter([p[0] for p in pts], [p[1] for p in pts], marker=markers[k % len(markers)],
                               color="black", s=22, zorder=3, label=aname)
            ax.set_xticks(range(len(metrics)))
            ax.set_xticklabels([m + (" ↓" if m in LOWER_IS_BETTER else "") for m in metrics])
            ax.set_title(task)
        handles, names = [], []
        for ax in axes[0]:
            for h, n in zip(*ax.get_legend_handles_labels()):
                if n not in names:
                    handles.append(h)
                    names.append(n)
        fig.legend(handles, names, loc="lower center", ncol=min(3, len(names)), fontsize=7, frameon=False)
        fig.suptitle("LaMP metrics (markers: published test-set anchors, user split; "
                     "not comparable to dev or synthetic data)", fontsize=8)
        fig.tight_layout(rect=(0, 0.18, 1, 0.95))
        fig.savefig(out / "metrics.png", dpi=110)
        plt.close(fig)
        written["plot/metrics"] = "metrics.png"
    dists: list[Counter[str]] = []
    for r in runs:
        c: Counter[str] = Counter()
        for tr in (r.get("tasks") or {}).values():
            c.update((tr.get("tag_stats") or {}).get("tag_distribution") or {})
        dists.append(c)
    if any(dists):
        tags = sorted({t for c in dists for t in c}, key=lambda t: -sum(c[t] for c in dists))
        fig, ax = plt.subplots(figsize=(7, 0.35 * len(tags) + 1.6))
        height = 0.8 / len(runs)
        for j, (lab, c) in enumerate(zip(labels, dists)):
            total = sum(c.values()) or 1
            ys = [i - 0.4 + height * (j + 0.5) for i in range(len(tags))]
            ax.barh(ys, [100.0 * c[t] / total for t in tags], height=height, label=lab)
        ax.set_yticks(range(len(tags)))
        ax.set_yticklabels(tags)
        ax.invert_yaxis()
        ax.set_xlabel("share of reasoning tags (%)")
        ax.set_title("Distribution of reasoning tags")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "tags.png", dpi=110)
        plt.close(fig)
        written["plot/tags"] = "tags.png"
    return written


def report_runs(run_dirs: Sequence[str | Path], out_dir: str | Path | None = None,
                plots: bool = True) -> str:
    """Markdown table for saved runs; plots into ``out_dir`` (default: the single run's dir)."""
    from tagpr_eval.results import load_results

    runs = []
    for d in run_dirs:
        r: dict[str, Any] = dict(load_results(d))
        files: dict[str, str] = dict(r.get("files") or {})
        files["run_dir"] = str(Path(d) if Path(d).is_dir() else Path(d).parent)
        r["files"] = files
        runs.append(r)
    table = markdown_table(runs)
    if plots:
        target = out_dir if out_dir is not None else (run_dirs[0] if len(run_dirs) == 1 else None)
        if target is not None:
            write_plots(runs, target)
    return table
