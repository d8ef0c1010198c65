"""Tables and plots from run results (``tagpr-eval report`` and the end of ``tagpr-eval run``).

* :func:`markdown_table` — metrics per task (one column per run) and tag statistics;
* :func:`write_plots` — ``metrics.png`` (per task metrics beside the published LaMP anchors of
  :data:`LAMP_ANCHORS`) and ``tags.png`` (distribution of reasoning tags, as in the paper's
  figure; tagged prompts only);
* :func:`report_runs` — both, for saved run directories.

The anchors are the LaMP leaderboard's *test-set* numbers (user split, from the LaMP paper); a run on
dev data or on synthetic data is not comparable to them one to one — the plot says so.

>>> r = {"metrics": {"LaMP-3": {"MAE": 0.3, "RMSE": 0.6}}, "tasks": {}, "config": {"model": "x"}}
>>> print(markdown_table(r))
| Task | Metric | x |
|---|---|---|
| LaMP-3 | MAE ↓ | 0.3000 |
| LaMP-3 | RMSE ↓ | 0.6000 |
"""

from __future__ import annotations

import json
import re
import textwrap
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tagpr_rewards.metrics.lamp import get_task, list_tasks

__all__ = ["LAMP_ANCHORS", "LOWER_IS_BETTER", "default_plots_dir", "markdown_table", "report_runs", "run_label",
           "write_plots"]

#: Metrics where lower is better (LaMP-3; from the tasks' TaskSpec); every other is higher-is-better.
LOWER_IS_BETTER = frozenset(m for t in list_tasks() for m in get_task(t).lower_better)

#: Published LaMP test-set numbers (leaderboard, user split), from the LaMP paper.
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


_HASHED_DIR = re.compile(r"-[0-9a-f]{10}$")  # runner.run_dir_for's default: <model>[-<name>]-<hash>
#: settings that tell two runs apart in a legend, in the order they are shown
_DISTINGUISHING = ("prompt", "retriever", "k", "schema", "data", "split", "limit", "seed", "bootstrap")


def _model_name(results: Mapping[str, Any]) -> str:
    cfg = results.get("config") or {}
    args = cfg.get("model_args") or {}
    name = args.get("pretrained") or args.get("model") or args.get("mode")
    return f"{cfg.get('model', 'run')}" + (f" ({Path(str(name)).name})" if name else "")


def run_label(results: Mapping[str, Any]) -> str:
    """A readable name for a run: its directory name when someone chose it, else the model (and
    its pretrained/model arg) — never the config hash of a default run directory.

    >>> run_label({"files": {"run_dir": "runs/baseline-bda89919b5"}, "config": {"model": "baseline"}})
    'baseline'
    >>> run_label({"files": {"run_dir": "runs/qwen-sft"}, "config": {"model": "hf"}})
    'qwen-sft'
    """
    files = results.get("files") or {}
    if files.get("run_dir"):
        name = Path(str(files["run_dir"])).name
        if not _HASHED_DIR.search(name):
            return name
    return _model_name(results)


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, (int, float)) else "–"


def _flat_settings(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The settings worth naming in a legend: model args first (``retriever=none``), then the
    run's own (``prompt=tagged``, ``k=8``, the data directory's name)."""
    out: dict[str, Any] = {}
    for k, v in sorted((cfg.get("model_args") or {}).items()):
        if k not in ("pretrained", "model", "mode", "api_key"):
            out[k] = "none" if v is None else v  # `retriever=none` is typed None by the k=v parser
    for k in _DISTINGUISHING:
        v = cfg.get(k)
        # the prompt's retrieval settings, named apart from a backend's own `retriever` arg
        out[f"prompt {k}" if k in ("retriever", "k") else k] = Path(str(v)).name if k == "data" and v else v
    return out


def _unique_labels(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """One readable label per run: :func:`run_label`, plus the settings that differ between runs
    whose labels collide (``baseline · retriever=bm25`` vs ``baseline · retriever=none``), and a
    ``#n`` only when nothing tells them apart."""
    labels = [run_label(r) for r in runs]
    counts = Counter(labels)
    out = list(labels)
    for lab in [x for x in counts if counts[x] > 1]:
        idx = [i for i, x in enumerate(labels) if x == lab]
        cfgs = [_flat_settings(runs[i].get("config") or {}) for i in idx]
        names = list(dict.fromkeys(k for c in cfgs for k in c))
        keys = [k for k in names if len({json.dumps(c.get(k), sort_keys=True, default=str) for c in cfgs}) > 1]
        for i, c in zip(idx, cfgs):
            if keys:
                out[i] = f"{lab} · " + ", ".join(f"{k}={c.get(k, 'default')}" for k in keys)
    counts = Counter(out)
    seen: Counter[str] = Counter()
    for i, lab in enumerate(out):
        if counts[lab] > 1:
            seen[lab] += 1
            out[i] = f"{lab} #{seen[lab]}"
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
        # wide enough for the legend and the note even with one task; bbox_inches="tight" keeps
        # every title, label and legend entry inside the PNG
        fig, axes = plt.subplots(1, len(tasks), figsize=(max(6.4, 3.2 * len(tasks) + 1.5), 3.8), squeeze=False)
        markers = ["o", "s", "^", "D", "v", "P"]
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for ax, task in zip(axes[0], tasks):
            metrics = sorted({m for r in runs for m in (r.get("metrics") or {}).get(task, {})},
                             key=lambda m: m not in ("accuracy", "MAE", "rouge-1"))
            width = 0.8 / max(1, len(runs))
            top = 0.0
            for j, (lab, r) in enumerate(zip(labels, runs)):
                vals = [(r.get("metrics") or {}).get(task, {}).get(m, float("nan")) for m in metrics]
                xs = [i - 0.4 + width * (j + 0.5) for i in range(len(metrics))]
                color = colors[j % len(colors)]
                # an edge draws a 0 as a visible line on the axis (a missing value stays empty)
                bars = ax.bar(xs, vals, width=width, color=color, edgecolor=color, linewidth=1.2,
                              label=lab if ax is axes[0][0] else None)
                ax.bar_label(bars, labels=["" if v != v else f"{v:.2f}" for v in vals], fontsize=6, padding=1)
                top = max([top, *(v for v in vals if v == v)])
            for k, (aname, avals) in enumerate(anchors.items()):
                found = [(i, avals.get(task, {}).get(m)) for i, m in enumerate(metrics)]
                pts = [(i, float(v)) for i, v in found if v is not None]
                if pts:
                    ax.scatter([p[0] for p in pts], [p[1] for p in pts], marker=markers[k % len(markers)],
                               color="black", s=22, zorder=3, label=aname)
                    top = max([top, *(p[1] for p in pts)])
            ymax = max(top, 0.05) * 1.18  # room for the value labels
            ax.set_ylim(-0.02 * ymax, ymax)  # a little below 0, so a 0 bar's edge shows above the axis
            ax.axhline(0, color="0.6", linewidth=0.6, zorder=0)
            ax.set_xticks(range(len(metrics)))
            ax.set_xticklabels([m + (" ↓" if m in LOWER_IS_BETTER else "") for m in metrics])
            ax.set_title(task)
        handles, names = [], []
        for ax in axes[0]:
            for h, n in zip(*ax.get_legend_handles_labels()):
                if n not in names:
                    handles.append(h)
                    names.append(n)
        ncol = max(1, min(len(names), len(tasks) + 1, 3))
        fig.legend(handles, names, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=ncol, fontsize=7,
                   frameon=False)
        note = ("LaMP metrics. Bars: the runs (value on top; 0 is drawn as a line). Markers: published "
                "test-set anchors (user split), not comparable to dev or synthetic data.")
        fig.suptitle("\n".join(textwrap.wrap(note, width=max(60, int(fig.get_figwidth() * 14)))), fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "metrics.png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        written["plot/metrics"] = "metrics.png"
    dists: list[Counter[str]] = []
    for r in runs:
        c: Counter[str] = Counter()
        for tr in (r.get("tasks") or {}).values():
            c.update((tr.get("tag_stats") or {}).get("tag_distribution") or {})
        dists.append(c)
    tagged = [(lab, c) for lab, c in zip(labels, dists) if c]  # runs without tagged prompts have no tags
    if tagged:
        tags = sorted({t for _, c in tagged for t in c}, key=lambda t: -sum(c[t] for _, c in tagged))
        fig, ax = plt.subplots(figsize=(7, 0.4 * len(tags) * max(1, len(tagged)) + 1.8))
        height = 0.8 / len(tagged)
        for j, (lab, c) in enumerate(tagged):
            total = sum(c.values()) or 1
            ys = [i - 0.4 + height * (j + 0.5) for i in range(len(tags))]
            vals = [100.0 * c[t] / total for t in tags]
            bars = ax.barh(ys, vals, height=height, label=lab)
            ax.bar_label(bars, labels=[f"{v:.1f}%" for v in vals], fontsize=6, padding=2)  # 0% shows as "0.0%"
        ax.set_yticks(range(len(tags)))
        ax.set_yticklabels(tags)
        ax.invert_yaxis()
        ax.set_xlim(0, max(100.0 * max(c[t] for t in tags) / (sum(c.values()) or 1) for _, c in tagged) * 1.15)
        ax.set_xlabel("share of reasoning tags (%)")
        ax.set_title("Distribution of reasoning tags")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=min(3, len(tagged)),
                  frameon=False)
        fig.tight_layout()
        fig.savefig(out / "tags.png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        written["plot/tags"] = "tags.png"
    return written


def default_plots_dir(run_dirs: Sequence[str | Path]) -> Path:
    """Where ``tagpr-eval report`` writes plots without ``--output``: the run directory for one
    run; for several, ``report/`` in the directory that holds them (their common parent).

    >>> default_plots_dir(["runs/a"]).as_posix(), default_plots_dir(["runs/a", "runs/b"]).as_posix()
    ('runs/a', 'runs/report')
    """
    dirs = [Path(d) if Path(d).suffix != ".json" else Path(d).parent for d in run_dirs]
    if len(dirs) == 1:
        return dirs[0]
    import os

    try:
        parent = Path(os.path.commonpath([str(d.resolve()) if d.is_absolute() else str(d) for d in dirs]))
    except ValueError:  # relative and absolute paths mixed
        parent = Path(".")
    return parent / "report"


def report_runs(run_dirs: Sequence[str | Path], out_dir: str | Path | None = None,
                plots: bool = True, notes: list[str] | None = None) -> str:
    """Markdown table for saved runs; plots into ``out_dir`` (default :func:`default_plots_dir`).
    Where the plots went is appended to ``notes`` (when given) so the CLI can say so."""
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
        target = Path(out_dir) if out_dir is not None else default_plots_dir(run_dirs)
        written = write_plots(runs, target)
        if notes is not None:
            notes.append("plots: " + (", ".join(str(target / f) for f in written.values()) if written
                                      else f"none (no metrics or tag statistics in {', '.join(map(str, run_dirs))})"))
    return table
