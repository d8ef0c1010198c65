"""``tagpr-train ablate``: the learning claim with error bars — every stage and ablation arm over
several seeds, on users the training never saw.

Per seed ``s`` the main run lives in ``OUT/seed{s}/`` (``tagpr-train all`` with ``run.seed=s``:
data → direct-answer base + tagged SFT → PRMU → RL stage 1 → RL stage 2 → eval). Each ablation
arm is a run directory ``OUT/seed{s}/arm-<name>/`` that shares the main run's finished stages
(data, base, SFT, PRMU, RL stage 1) by symbolic links and retrains only RL stage 2 with its
overrides (:data:`ARMS`, ours):

* ``no-prmu`` — stage 2 without the PRMU term (γ = 0: the term is left out);
* ``no-tag`` — stage 2 without the tag reward (β = 0);
* ``no-recall`` — stage 2 without the recall-grounding term (``recall: 0``; stage 1 keeps it);
* ``no-tags`` — no tags at all: the direct-answer base model, then both RL stages with the task
  reward alone (``lamp_task`` on the answer tag; no format gate, no tag or PRMU term).

With ``rl_seeds`` (``--rl-seeds``) each seed also gets other RL runs from the same SFT model
and PRMU, ``OUT/seed{s}/rl-seed<r>/`` (``rl.seed=r``; data, base, SFT and PRMU linked): one RL
run's luck (GRPO's prompt order and samples) moves a seed's accuracy about as much as a stage
adds on the miniature, so the summary also gives the claims with each question's RL scores
averaged over the runs.

The summary (:func:`summarise`, ``OUT/ablation.{md,json}``) gives, per model, accuracy as
mean ± 95% CI across seeds and, within each seed, paired-bootstrap CIs over questions for the
claims: RL stage 2 − SFT, each stage − the one before, final vs the direct-answer base
(relative, the paper's headline form), and each arm − the full stage 2; then the step audit of
the listing chains (where they are listing chains) and how far each RL stage moved its policy
(:mod:`tagpr_trainers.recipe.rl_dynamics`, from TRL's GRPO logs).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["ARMS", "question_scores", "run_ablation", "summarise"]

logger = logging.getLogger("tagpr_trainers.recipe")

#: ablation arm -> overrides of RL stage 2 (our arms; the paper's ablations are not public)
ARMS: dict[str, list[str]] = {
    "no-prmu": ["rl.stage2.reward.prmu=null"],
    "no-tag": ["rl.stage2.reward.beta=0"],
    "no-recall": ["rl.stage2.reward.recall=0"],
    "no-tags": ["prmu.enabled=false",
                "rl.stage1.reward={type: lamp_task, task: {task}, schema: {schema}}",
                "rl.stage2.reward={type: lamp_task, task: {task}, schema: {schema}}",
                # its stage-1 reward is the task verdict itself (used when rl.prompt_filter is on)
                "rl.prompt_filter.component=score"],
}
#: arms that start RL from the direct-answer model instead of the tagged SFT model
_FROM_DIRECT = {"no-tags"}
#: shared by the arms (linked from the main run); RL stage 2 and eval are the arm's own
_SHARED_DIRS = ("data", "base", "direct", "sft", "prmu", "rl1")
_SHARED_MARKERS = ("data", "sft", "prmu", "rl1")
MODELS = ("baseline", "direct", "sft", "rl1", "rl2")
#: the claims about the RL stages: (label, model a, model b), the claim being b − a
RL_CLAIMS = (("rl1 − sft", "sft", "rl1"), ("rl2 − rl1", "rl1", "rl2"), ("rl2 − sft", "sft", "rl2"))


def _link_arm(main: Path, arm: Path, from_direct: bool = False, stage2_only: bool = False,
              rl_rerun: bool = False) -> None:
    """Link the main run's finished stages into ``arm`` (``from_direct``: its ``sft`` is the
    direct-answer model and RL stage 1 is the arm's own; ``rl_rerun``: another RL run, both RL
    stages the arm's own). ``stage2_only`` (the arm changes
    nothing but ``rl.stage2.*``): stage 2's refiltered prompts (``rl.prompt_filter.refilter``)
    are the main run's too, sampled by the same stage-1 model under the same stage-1 reward,
    so they are copied instead of sampled again."""
    (arm / "stages").mkdir(parents=True, exist_ok=True)
    dirs = {d: d for d in _SHARED_DIRS}
    markers = list(_SHARED_MARKERS)
    if from_direct:
        dirs = {"data": "data", "base": "base", "direct": "direct", "sft": "direct"}
        markers = ["data", "sft"]
    elif rl_rerun:
        dirs.pop("rl1")
        markers.remove("rl1")
    for dst_name, src_name in dirs.items():
        src, dst = main / src_name, arm / dst_name
        if src.exists() and not dst.exists():
            os.symlink(src.resolve(), dst, target_is_directory=True)
    for m in markers:
        src, dst = main / "stages" / f"{m}.json", arm / "stages" / f"{m}.json"
        if src.is_file() and not dst.exists():
            dst.write_bytes(src.read_bytes())
    if stage2_only and not from_direct:
        for name in ("prompts.jsonl", "prompt_filter.json"):
            src, dst = main / "rl2" / name, arm / "rl2" / name
            if src.is_file() and not dst.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.write_bytes(src.read_bytes())


def run_ablation(config: str, overrides: Sequence[str], seeds: Sequence[int], output: str | Path,
                 arms: Sequence[str] | None = None, progress: bool = True,
                 rl_seeds: Sequence[int] = ()) -> dict[str, Any]:
    """Run the main pipeline and every arm for each seed (finished stages are reused), then
    ``rl_seeds``' other RL runs from each seed's SFT model (``rl.seed``), then write and return
    the summary."""
    from tagpr_trainers.recipe.config import RecipeConfigError, load_recipe_config
    from tagpr_trainers.recipe.runner import run_recipe

    out = Path(output)
    if len(set(rl_seeds)) != len(rl_seeds):
        raise RecipeConfigError(f"--rl-seeds {' '.join(map(str, rl_seeds))}: a seed given twice is the same RL run")
    for seed in seeds:  # before any training: a seed's own RL seed would redo its main run's RL
        own = load_recipe_config(config, [*overrides, f"run.seed={seed}"]).rl.sampling_seed(seed)
        if own in rl_seeds:
            raise RecipeConfigError(f"--rl-seeds: {own} is seed {seed}'s own RL seed (its main run's RL); "
                                    "give seeds other than the main runs' (run.seed, or rl.seed when set)")
    chosen = list(ARMS) if arms is None else list(arms)
    for name in chosen:
        if name not in ARMS:
            from tagpr_rewards.registry import unknown_name_error

            raise unknown_name_error("ablation arm", name, list(ARMS))
    for seed in seeds:
        main = out / f"seed{seed}"
        cfg = load_recipe_config(config, [*overrides, f"run.seed={seed}", f"run.output_dir={main}"])
        logger.info("ablate: seed %d, main run in %s", seed, main)
        run_recipe(cfg, "all", progress=progress)
        for name in chosen:
            arm = main / f"arm-{name}"
            _link_arm(main, arm, from_direct=name in _FROM_DIRECT,
                      stage2_only=all(o.startswith("rl.stage2.") for o in ARMS[name]))
            arm_overrides = [o.replace("{task}", cfg.data.tasks[0]).replace("{schema}", cfg.data.schema)
                             for o in ARMS[name]]
            acfg = load_recipe_config(config, [*overrides, *arm_overrides, f"run.seed={seed}",
                                               f"run.output_dir={arm}", "eval.models=[rl2]", "eval.baseline=false"])
            logger.info("ablate: seed %d, arm %s in %s", seed, name, arm)
            run_recipe(acfg, "rl", progress=progress)
            run_recipe(acfg, "eval", progress=progress)
        for r in rl_seeds:
            rerun = main / f"rl-seed{r}"
            _link_arm(main, rerun, rl_rerun=True)
            rcfg = load_recipe_config(config, [*overrides, f"run.seed={seed}", f"rl.seed={r}",
                                               f"run.output_dir={rerun}", "eval.models=[rl1, rl2]",
                                               "eval.baseline=false"])
            logger.info("ablate: seed %d, RL run with rl.seed=%d in %s", seed, r, rerun)
            run_recipe(rcfg, "rl", progress=progress)
            run_recipe(rcfg, "eval", progress=progress)
    return summarise(out)


def _rl_runs(sd: Path, main: dict[str, dict[str, float]],
             draw: str | None = None) -> dict[str, dict[str, dict[str, float]]]:
    """``{run: {"rl1"|"rl2": question scores}}`` of a seed's RL runs on the dev users (or on
    ``draw``): ``main`` (the seed's own RL) and each ``rl-seed*/`` run; empty when the seed has no
    other RL run."""
    runs: dict[str, dict[str, dict[str, float]]] = {"main": {m: main[m] for m in ("rl1", "rl2") if m in main}}
    for rr in sorted(sd.glob("rl-seed*")):
        got = {m: question_scores(p) for m, p in _runs(rr, draw).items()
               if m in ("rl1", "rl2") and (p / "samples.jsonl").is_file()}
        if got:
            runs[rr.name] = got
    return runs if len(runs) > 1 else {}


def _averaged_claims(per_seed: dict[str, dict[str, dict[str, float]]],
                     rl_runs: dict[str, dict[str, dict[str, dict[str, float]]]]) -> dict[str, Any]:
    """The RL claims with each question's RL score the mean over the seed's RL runs (a run that
    lacks a model does not count for it), pooled over the seeds, resampled within each seed."""
    from tagpr_eval.stats import stratified_bootstrap

    def averaged(seed: str, model: str) -> dict[str, float]:
        if model == "sft":
            return per_seed[seed].get("sft", {})
        runs = [r[model] for r in rl_runs[seed].values() if model in r]
        ids = set.intersection(*(set(r) for r in runs)) if runs else set()
        return {i: sum(r[i] for r in runs) / len(runs) for i in ids}

    claims: dict[str, Any] = {}
    for label, a, b in RL_CLAIMS:
        groups = []
        for seed in rl_runs:
            xa, xb = averaged(seed, a), averaged(seed, b)
            ids = sorted(set(xa) & set(xb))
            if ids:
                groups.append(([xa[i] for i in ids], [xb[i] for i in ids]))
        if groups:
            d = stratified_bootstrap(groups)
            claims[label] = {"delta": d.delta, "low": d.low, "high": d.high, "n": d.n}
    return claims


def question_scores(run_dir: str | Path) -> dict[str, float]:
    """``{question id: 1.0 if the answer equals the gold else 0.0}`` from a tagpr_eval run
    directory's ``samples.jsonl`` (strict match of the stripped strings, as the official scorer)."""
    p = Path(run_dir) / "samples.jsonl"
    out: dict[str, float] = {}
    with p.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                gold = r.get("gold")
                out[str(r["id"])] = float(gold is not None and str(r.get("answer", "")).strip() == str(gold).strip())
    return out


def _runs(run_dir: Path, draw: str | None = None) -> dict[str, Path]:
    """``{model: eval run directory}`` of a run directory's eval stage: on the dev users, or on
    ``draw`` (``synthetic-seed7``: the eval stage's ``comparison-synthetic-seed7.json``)."""
    p = run_dir / "eval" / ("comparison.json" if draw is None else f"comparison-{draw}.json")
    if not p.is_file():
        return {}
    runs = json.loads(p.read_text(encoding="utf-8")).get("runs") or {}
    return {k: Path(v) for k, v in runs.items() if v}


def _listing_run(run_dir: Path) -> bool:
    """The run's ``config.yaml`` says its chains are the ones the audit reads
    (:func:`~tagpr_trainers.data_pipeline.listing_audit.audits_run`)."""
    from tagpr_trainers.data_pipeline.listing_audit import audits_run
    from tagpr_trainers.recipe.config import RecipeConfigError, load_recipe_config

    try:
        return audits_run(load_recipe_config(run_dir / "config.yaml").data)
    except (OSError, RecipeConfigError):
        return False


def _audits(out: Path, seeds: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``{model: {seed: audit_listing(...)}}`` of SFT and RL stage 2 on each listing-chain seed."""
    from tagpr_trainers.data_pipeline.listing_audit import audit_listing
    from tagpr_trainers.recipe.stages.common import read_jsonl

    audits: dict[str, dict[str, Any]] = {}
    for seed in seeds:
        sd = out / seed
        if not _listing_run(sd):
            continue
        for m, r in _runs(sd).items():
            if m in ("sft", "rl1", "rl2") and (r / "samples.jsonl").is_file():
                a = audit_listing(read_jsonl(r / "samples.jsonl"))
                if a["n"]:  # a prompt style that shows no LaMP-2 item has nothing to audit
                    audits.setdefault(m, {})[seed] = a
    return audits


def _dynamics(out: Path, seeds: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``{stage: {seed: rl_dynamics(...)}}`` of each seed's RL stages 1 and 2, from TRL's logs."""
    from tagpr_trainers.recipe.rl_dynamics import rl_dynamics
    from tagpr_trainers.recipe.stages.common import read_log_history

    dyn: dict[str, dict[str, Any]] = {}
    for seed in seeds:
        for which in ("rl1", "rl2"):
            hist = read_log_history(out / seed, which)
            if hist and (d := rl_dynamics(hist)):
                dyn.setdefault(which, {})[seed] = d
    return dyn


def _draws(out: Path) -> list[str]:
    """The other synthetic draws the seeds were evaluated on (``eval.synthetic_seeds``):
    ``["synthetic-seed7", ...]`` from ``OUT/seed*/eval/comparison-<draw>.json``."""
    from tagpr_trainers.recipe.stages.eval import draw_name, draw_seed

    names = {p.stem.removeprefix("comparison-") for p in out.glob("seed*/eval/comparison-*.json")}
    seeds = []
    for name in names:
        try:
            seeds.append(draw_seed(name))
        except ValueError:  # another comparison file a user put there: not a draw
            continue
    return [draw_name(s) for s in sorted(seeds)]


def _seed_scores(out: Path, draw: str | None = None) -> dict[str, dict[str, dict[str, float]]]:
    """``{seed: {model: question scores}}`` on the dev users (or on ``draw``), each arm's RL
    stage 2 as ``rl2 <arm>``."""
    per_seed: dict[str, dict[str, dict[str, float]]] = {}
    for sd in sorted(out.glob("seed*")):
        models = {k: question_scores(v) for k, v in _runs(sd, draw).items() if (v / "samples.jsonl").is_file()}
        for arm in sorted(sd.glob("arm-*")):
            r = _runs(arm, draw).get("rl2")
            if r is not None and (r / "samples.jsonl").is_file():
                models[f"rl2 {arm.name[4:]}"] = question_scores(r)
        if models:
            per_seed[sd.name] = models
    return per_seed


def _accuracy(scores: dict[str, float]) -> float:
    return sum(scores.values()) / len(scores) if scores else float("nan")


def _accuracy_and_claims(per_seed: dict[str, dict[str, dict[str, float]]],
                         order: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each model's accuracy (per seed, mean ± 95% CI across seeds, pooled) and each claim (per
    seed with its paired bootstrap CI, across seeds, pooled) over ``per_seed``."""
    from tagpr_eval.stats import paired_bootstrap, relative_bootstrap, seed_ci, stratified_bootstrap

    accuracy: dict[str, Any] = {}
    for m in order:
        vals = [_accuracy(ms[m]) for ms in per_seed.values() if m in ms]
        if not vals:
            continue
        pooled = stratified_bootstrap([([0.0] * len(ms[m]), list(ms[m].values())) for ms in per_seed.values()
                                       if m in ms and ms[m]])
        ci = seed_ci(vals)
        accuracy[m] = {"per_seed": vals, "mean": ci.mean, "ci95": ci.half_width,
                       "pooled": {"mean": pooled.delta, "low": pooled.low, "high": pooled.high, "n": pooled.n}}
    claims_wanted = [*((label, a, b, False) for label, a, b in RL_CLAIMS), ("sft − direct", "direct", "sft", False),
                     ("rl2 vs direct (relative)", "direct", "rl2", True)]
    claims_wanted += [(f"{m} − rl2", "rl2", m, False) for m in order if m.startswith("rl2 ")]
    claims: dict[str, Any] = {}
    for label, a, b, rel in claims_wanted:
        rows: list[dict[str, Any]] = []
        groups: list[tuple[list[float], list[float]]] = []
        for seed, ms in per_seed.items():
            if a in ms and b in ms:
                ids = sorted(set(ms[a]) & set(ms[b]))
                xa, xb = [ms[a][i] for i in ids], [ms[b][i] for i in ids]
                groups.append((xa, xb))
                d = (relative_bootstrap if rel else paired_bootstrap)(xa, xb, seed=0)
                rows.append({"seed": seed, "delta": d.delta, "low": d.low, "high": d.high, "n": d.n})
        if rows:
            ci = seed_ci([row["delta"] for row in rows])
            claims[label] = {"per_seed": rows, "mean": ci.mean, "ci95_across_seeds": ci.half_width}
            if not rel:  # the seeds' questions pooled, resampled within each seed
                p = stratified_bootstrap(groups)
                claims[label]["pooled"] = {"delta": p.delta, "low": p.low, "high": p.high, "n": p.n}
    return accuracy, claims


def summarise(output: str | Path) -> dict[str, Any]:
    """Aggregate ``OUT/seed*/`` into ``OUT/ablation.md`` and ``OUT/ablation.json``: on the dev
    users, and the same accuracies and claims on each other synthetic draw the eval stage ran
    (``eval.synthetic_seeds``; ``table["draws"]``)."""
    from tagpr_rewards.files import atomic_write_json, atomic_write_text

    out = Path(output)
    per_seed = _seed_scores(out)
    if not per_seed:
        raise FileNotFoundError(f"{out}: no seed*/eval/comparison.json; run `tagpr-train ablate` first")

    names: list[str] = []
    for models in per_seed.values():
        names += [m for m in models if m not in names]
    order = [m for m in MODELS if m in names] + [m for m in names if m not in MODELS]

    table: dict[str, Any] = {"seeds": list(per_seed)}
    table["accuracy"], table["claims"] = _accuracy_and_claims(per_seed, order)
    from tagpr_trainers.recipe.checkpoints import read_marker

    machines = {seed: read_marker(out / seed, "sft").get("machine") for seed in per_seed}
    table["machines"] = {seed: m for seed, m in machines.items() if m}
    audits = _audits(out, list(per_seed))
    if audits:
        table["chain_audit"] = audits
    dynamics = _dynamics(out, list(per_seed))
    if dynamics:
        table["rl_dynamics"] = dynamics
    rl_runs = {seed: found for seed in per_seed if (found := _rl_runs(out / seed, per_seed[seed]))}
    if rl_runs:
        table["rl_runs"] = {
            "per_seed": {seed: {run: {m: _accuracy(sc) for m, sc in ms.items()} for run, ms in runs.items()}
                         for seed, runs in rl_runs.items()},
            "averaged_claims": _averaged_claims(per_seed, rl_runs)}
    draws: dict[str, Any] = {}
    for draw in _draws(out):
        on_draw = _seed_scores(out, draw)
        accuracy, claims = _accuracy_and_claims(on_draw, order)
        draws[draw] = {"seeds": list(on_draw), "accuracy": accuracy, "claims": claims}
        draw_runs = {seed: found for seed in on_draw if (found := _rl_runs(out / seed, on_draw[seed], draw))}
        if draw_runs:
            draws[draw]["rl_runs_averaged_claims"] = _averaged_claims(on_draw, draw_runs)
    if draws:
        table["draws"] = draws
    atomic_write_json(out / "ablation.json", table)
    md = _markdown(table, order)
    atomic_write_text(out / "ablation.md", md)
    table["markdown"] = md
    plot = _plot(table, order, out / "accuracy_per_stage.png")
    if plot is not None:
        table["plot"] = str(plot)
    return table


def _plot(table: dict[str, Any], order: list[str], path: Path) -> Path | None:
    """Accuracy per stage and arm: each seed's accuracy (dots) and the pooled accuracy with its
    95% CI (questions resampled within each seed; bars). ``None`` without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - optional dependency
        logger.warning("matplotlib missing: no accuracy plot (pip install 'tagpr[eval]')")
        return None
    from tagpr_rewards.files import atomic_path

    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(order)), 4.2))
    for x, m in enumerate(order):
        a = table["accuracy"][m]
        p = a["pooled"]
        ax.bar(x, p["mean"], color="#9ecae1" if m.startswith("rl2 ") or m == "baseline" else "#3182bd",
               yerr=[[p["mean"] - p["low"]], [p["high"] - p["mean"]]], capsize=4)
        ax.scatter([x + (i - (len(a["per_seed"]) - 1) / 2) * 0.12 for i in range(len(a["per_seed"]))],
                   a["per_seed"], color="black", s=12, zorder=3)
    import textwrap

    ax.set_xticks(range(len(order)), [textwrap.fill(_LABELS.get(m, m), 14) for m in order], fontsize=7)
    ax.set_ylabel("accuracy (unseen users)")
    ax.set_title(f"Accuracy per stage, {len(table['seeds'])} seed(s): pooled with 95% CI; dots = seeds")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


_LABELS = {"baseline": "profile-majority baseline", "direct": "base (direct answer)", "sft": "tagged SFT",
           "rl1": "RL stage 1", "rl2": "RL stage 2 (full)", "rl2 no-prmu": "RL stage 2, no PRMU (γ=0)",
           "rl2 no-tag": "RL stage 2, no tag reward (β=0)",
           "rl2 no-recall": "RL stage 2, no recall term (recall=0)",
           "rl2 no-tags": "no tags: direct answer + RL (task reward)"}


def _machine_lines(machines: dict[str, dict[str, Any]]) -> list[str]:
    """Which machine each seed's SFT ran on (the stage marker's record): a tiny model's training
    lands elsewhere on a CPU with other vector kernels, so a table says what it was computed on.

    >>> _machine_lines({"seed0": {"cpu": "AMD EPYC", "isa": ["avx2", "fma"], "logical_cpus": 2}})
    ['', 'Computed on: AMD EPYC (avx2, fma; 2 logical CPUs) for seed0.']
    >>> _machine_lines({})
    []
    """
    if not machines:
        return []
    by: dict[str, list[str]] = {}
    for seed, m in machines.items():
        desc = f"{m.get('cpu', '?')} ({', '.join(m.get('isa') or []) or 'no vector extensions read'}; "
        desc += f"{m.get('logical_cpus', '?')} logical CPUs)"
        by.setdefault(desc, []).append(seed)
    return ["", "Computed on: " + "; ".join(f"{d} for {', '.join(s)}" for d, s in by.items()) + "."]


def _pm(mean: float, hw: float, pct: bool = False, signed: bool = False) -> str:
    """``mean ± half-width`` (the mean alone where there is no interval: one seed).

    >>> _pm(0.6, 0.05), _pm(0.25, float("nan"), pct=True)
    ('0.600 ± 0.050', '+25.0%')
    """
    import math

    f = (lambda v: f"{100 * v:+.1f}%") if pct else (lambda v: f"{v:+.3f}" if signed else f"{v:.3f}")
    return f(mean) if math.isnan(hw) else f"{f(mean)} ± {f(hw).lstrip('+')}"


def _accuracy_lines(accuracy: dict[str, Any], order: Sequence[str], seeds: Sequence[str]) -> list[str]:
    lines = ["| model | accuracy | " + " | ".join(seeds) + " |", "|---|---|" + "---|" * len(seeds)]
    for m in order:
        if m in accuracy:
            a = accuracy[m]
            lines.append(f"| {_LABELS.get(m, m)} | {_pm(a['mean'], a['ci95'])} | "
                         + " | ".join(f"{v:.3f}" for v in a["per_seed"]) + " |")
    return lines


def _claims_lines(claims: dict[str, Any]) -> list[str]:
    lines = ["| claim | mean across seeds | pooled [95% CI] | per seed [95% CI] |", "|---|---|---|---|"]
    for label, c in claims.items():
        pct = "relative" in label
        f = (lambda v: f"{100 * v:+.1f}%") if pct else (lambda v: f"{v:+.3f}")
        per = "; ".join(f"{f(r['delta'])} [{f(r['low'])}, {f(r['high'])}]" for r in c["per_seed"])
        p = c.get("pooled")
        pooled = f"{f(p['delta'])} [{f(p['low'])}, {f(p['high'])}]" if p else "–"
        lines.append(f"| {label} | {_pm(c['mean'], c['ci95_across_seeds'], pct, signed=True)} | {pooled} | {per} |")
    return lines


def _draw_lines(draws: dict[str, Any], order: Sequence[str]) -> list[str]:
    """The same accuracies and claims on each other synthetic draw (``eval.synthetic_seeds``)."""
    from tagpr_trainers.recipe.stages.eval import draw_seed

    lines: list[str] = []
    for draw, d in draws.items():
        lines += ["", f"The same models on another draw, `{draw}` (tagpr-eval's synthetic LaMP-2 dev set drawn with "
                  f"that seed: other unseen users; `tagpr-eval run --data synthetic --seed "
                  f"{draw_seed(draw)}`), {len(d['seeds'])} seed(s):", ""]
        lines += _accuracy_lines(d["accuracy"], order, d["seeds"]) + [""] + _claims_lines(d["claims"])
    return lines


def _markdown(table: dict[str, Any], order: list[str]) -> str:
    seeds = table["seeds"]
    lines = [f"Accuracy on unseen users (LaMP-2 synthetic dev), {len(seeds)} seed(s): mean ± 95% CI across seeds "
             "(Student t; none with one seed).", ""]
    lines += _accuracy_lines(table["accuracy"], order, seeds)
    lines += ["", "Claims: the difference per seed with its paired bootstrap 95% CI over questions; the mean ± "
              "95% CI across seeds (Student t); and pooled, every seed's questions with the CI of a bootstrap "
              "that resamples them within each seed.", ""]
    lines += _claims_lines(table["claims"])
    lines += _machine_lines(table.get("machines") or {})
    lines += _draw_lines(table.get("draws") or {}, order)
    audits = table.get("chain_audit") or {}
    if audits:
        from tagpr_trainers.data_pipeline.listing_audit import AUDIT_FIELDS

        models = [m for m in ("sft", "rl1", "rl2") if m in audits]
        lines += ["", "Where the listing chain goes wrong (tagpr_trainers.data_pipeline.listing_audit; docs/recipe.md, "
                  "\"Where the headroom is\"): each step's rate, mean across seeds (per seed).", "",
                  "| step | " + " | ".join(_LABELS.get(m, m) for m in models) + " |", "|---|" + "---|" * len(models)]
        for key, label in AUDIT_FIELDS.items():
            cells = []
            for m in models:
                vals = [a[key] for a in audits[m].values() if a.get(key) is not None]
                cells.append(f"{sum(vals) / len(vals):.3f} ({' / '.join(f'{v:.3f}' for v in vals)})" if vals else "–")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += _dynamics_lines(table.get("rl_dynamics") or {})
    lines += _rl_runs_lines(table.get("rl_runs") or {}, table.get("draws") or {})
    return "\n".join(lines) + "\n"


def _rl_runs_lines(rl_runs: dict[str, Any], draws: dict[str, Any] | None = None) -> list[str]:
    """The ``--rl-seeds`` section of ``ablation.md``: each RL run's accuracies, then the claims
    with the RL scores averaged over the runs (on the dev users, and a column per other draw)."""
    if not rl_runs:
        return []
    per_seed = rl_runs["per_seed"]
    names: list[str] = []
    for runs in per_seed.values():
        names += [r for r in runs if r not in names]
    lines = ["", "RL runs from the same SFT models (`--rl-seeds`; `main` is the seed's own RL run, each "
             "`rl-seedN` another with `rl.seed=N`): RL stage 1 / RL stage 2.", "",
             "| seed | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for seed, runs in per_seed.items():
        cells = [" / ".join(f"{runs[n][m]:.3f}" if m in runs.get(n, {}) else "–" for m in ("rl1", "rl2"))
                 if n in runs else "–" for n in names]
        lines.append(f"| {seed} | " + " | ".join(cells) + " |")
    other = {d: v["rl_runs_averaged_claims"] for d, v in (draws or {}).items() if v.get("rl_runs_averaged_claims")}
    lines += ["", "The claims with each question's RL score averaged over its seed's RL runs (pooled over the "
              "seeds, resampled within each seed):", "",
              "| claim | averaged over the RL runs [95% CI] |" + "".join(f" on `{d}` |" for d in other),
              "|---|---|" + "---|" * len(other)]

    def cell(c: dict[str, Any] | None) -> str:
        return f"{c['delta']:+.3f} [{c['low']:+.3f}, {c['high']:+.3f}]" if c else "–"

    for label, c in rl_runs["averaged_claims"].items():
        lines.append(f"| {label} | {cell(c)} |" + "".join(f" {cell(o.get(label))} |" for o in other.values()))
    return lines


def _dynamics_lines(dynamics: dict[str, dict[str, Any]]) -> list[str]:
    """The table of how far each RL stage moved its policy (mean across seeds, per seed in brackets).

    >>> d = {"rl1": {"seed0": {"kl": {"first": 0.001, "last": 0.003, "steps": 20}},
    ...              "seed1": {"kl": {"first": 0.002, "last": 0.002, "steps": 20}}}}
    >>> _dynamics_lines(d)[-1]
    '| KL to the reference model | 0.0015 → 0.0025 (0.0010 → 0.0030 / 0.0020 → 0.0020) |'
    """
    from tagpr_trainers.recipe.rl_dynamics import DYNAMICS_FIELDS

    stages = [m for m in ("rl1", "rl2") if m in dynamics]
    if not stages:
        return []
    lines = ["", "How far RL moved the policy (TRL's log of the training rollouts, `rl{1,2}/log_history.json`; "
             "tagpr_trainers.recipe.rl_dynamics): first quarter of the steps → last quarter, mean across seeds "
             "(per seed).", "",
             "| on the training rollouts | " + " | ".join(_LABELS.get(m, m) for m in stages) + " |",
             "|---|" + "---|" * len(stages)]
    for key, label in DYNAMICS_FIELDS.items():
        cells = []
        for m in stages:
            vals = [d[key] for d in dynamics[m].values() if key in d]
            if not vals:
                cells.append("–")
                continue
            mean = {e: sum(v[e] for v in vals) / len(vals) for e in ("first", "last")}
            cells.append(f"{mean['first']:.4f} → {mean['last']:.4f} ("
                         + " / ".join(f"{v['first']:.4f} → {v['last']:.4f}" for v in vals) + ")")
        if any(c != "–" for c in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines
