"""Relative improvement of one run over another (the paper's headline metric).

Sign convention: a positive improvement is always better.

* higher-is-better metrics (accuracy, F1, ROUGE): ``(new − base) / base``;
* lower-is-better metrics (MAE, RMSE of LaMP-3): ``(base − new) / base``.

A task's improvement is that of its primary metric (accuracy for LaMP-1/2, MAE for LaMP-3,
ROUGE-1 for LaMP-4..7); the headline is the mean over the tasks both runs scored. Also
reported: the mean over every metric. A base value of 0 has no relative improvement (``None``).

>>> base = {"metrics": {"LaMP-2": {"accuracy": 0.4, "f1": 0.3}, "LaMP-3": {"MAE": 0.5, "RMSE": 0.8}}}
>>> new = {"metrics": {"LaMP-2": {"accuracy": 0.5, "f1": 0.3}, "LaMP-3": {"MAE": 0.4, "RMSE": 0.8}}}
>>> c = compare_results(base, new)
>>> round(c.per_task["LaMP-2"], 4), round(c.per_task["LaMP-3"], 4), round(c.average, 4)
(0.25, 0.2, 0.225)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tagpr_rewards.metrics.lamp import get_task, list_tasks

__all__ = ["Comparison", "PRIMARY_METRIC", "SIGN_CONVENTION", "compare_results", "compare_runs",
           "relative_improvement"]

#: Metrics where lower is better (from the tasks' :class:`~tagpr_rewards.metrics.lamp.TaskSpec`).
LOWER_IS_BETTER = frozenset(m for t in list_tasks() for m in get_task(t).lower_better)
#: The metric that stands for a task in the headline average (each task's primary metric).
PRIMARY_METRIC = tuple(dict.fromkeys(get_task(t).primary_metric for t in list_tasks()))


def _primary(task: str, metrics: Mapping[str, Any]) -> str | None:
    """The task's primary metric when scored; for a task we do not know, the first known one."""
    try:
        prim = get_task(task).primary_metric
        if prim in metrics:
            return prim
    except KeyError:
        pass
    return next((m for m in PRIMARY_METRIC if m in metrics), next(iter(metrics), None))
SIGN_CONVENTION = ("Relative improvement, positive = better: (new - base) / base for accuracy, F1 and "
                   "ROUGE; (base - new) / base for MAE and RMSE (lower is better).")


def relative_improvement(metric: str, base: float, new: float) -> float | None:
    """Relative improvement of ``new`` over ``base`` for ``metric`` (positive = better).

    >>> relative_improvement("MAE", 0.5, 0.25), relative_improvement("rouge-1", 0.5, 0.25)
    (0.5, -0.5)
    """
    if base == 0:
        return None
    if metric in LOWER_IS_BETTER:
        return (base - new) / abs(base)
    return (new - base) / abs(base)


@dataclass
class Comparison:
    """Per-metric and per-task relative improvements and their averages."""

    base: str
    new: str
    per_metric: dict[str, dict[str, dict[str, float | None]]] = field(default_factory=dict)
    per_task: dict[str, float | None] = field(default_factory=dict)
    primary: dict[str, str] = field(default_factory=dict)
    average: float | None = None
    average_all_metrics: float | None = None
    only_in_base: list[str] = field(default_factory=list)
    only_in_new: list[str] = field(default_factory=list)
    convention: str = SIGN_CONVENTION

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)

    def to_markdown(self) -> str:
        def pct(v: float | None) -> str:
            return "n/a" if v is None else f"{100 * v:+.2f}%"

        lines = [f"Base: {self.base}", f"New:  {self.new}", "",
                 "| Task | Metric | base | new | rel. improvement |", "|---|---|---|---|---|"]
        for task, ms in self.per_metric.items():
            for m, d in ms.items():
                star = " *" if self.primary.get(task) == m else ""
                arrow = " ↓" if m in LOWER_IS_BETTER else ""
                lines.append(f"| {task} | {m}{arrow}{star} | {d['base']:.4f} | {d['new']:.4f} | "
                             f"{pct(d['improvement'])} |")
        lines += ["", f"Average relative improvement over tasks (primary metric *): {pct(self.average)}",
                  f"Average over all metrics: {pct(self.average_all_metrics)}", "", self.convention]
        if self.only_in_base or self.only_in_new:
            lines.append(f"Not compared (scored in one run only): base {self.only_in_base}, new {self.only_in_new}")
        return "\n".join(lines)


def _mean(xs: list[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return sum(vals) / len(vals) if vals else None


def compare_results(base: Mapping[str, Any], new: Mapping[str, Any], base_name: str = "base",
                    new_name: str = "new") -> Comparison:
    """Compare two results dicts (see the module docstring for the convention)."""
    bm: Mapping[str, Mapping[str, float]] = base.get("metrics") or {}
    nm: Mapping[str, Mapping[str, float]] = new.get("metrics") or {}
    c = Comparison(base=base_name, new=new_name)
    c.only_in_base = sorted(set(bm) - set(nm))
    c.only_in_new = sorted(set(nm) - set(bm))
    all_imps: list[float | None] = []
    for task in sorted(set(bm) & set(nm)):
        ms: dict[str, dict[str, float | None]] = {}
        for m in bm[task]:
            if m in nm[task]:
                imp = relative_improvement(m, float(bm[task][m]), float(nm[task][m]))
                ms[m] = {"base": float(bm[task][m]), "new": float(nm[task][m]), "improvement": imp}
                all_imps.append(imp)
        c.per_metric[task] = ms
        prim = _primary(task, ms)
        if prim is not None:
            c.primary[task] = prim
            c.per_task[task] = ms[prim]["improvement"]
    c.average = _mean(list(c.per_task.values()))
    c.average_all_metrics = _mean(all_imps)
    return c


def compare_runs(base_run: str | Path, new_run: str | Path) -> Comparison:
    """Compare two saved run directories (or results.json files)."""
    from tagpr_eval.results import load_results

    return compare_results(load_results(base_run), load_results(new_run), str(base_run), str(new_run))
