"""Stage ``data``: synthetic or LaMP data -> teacher chains -> tags -> filtered SFT data + RL prompts."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from tagpr_trainers.recipe.context import RunContext

__all__ = ["make_tagger", "make_teachers", "run"]

logger = logging.getLogger("tagpr_trainers.recipe")


def _write_synthetic(ctx: RunContext, out: Path, n_train: int, n_eval: int, questions: int) -> None:
    from tagpr_eval.data.synthetic import write_synthetic

    d = ctx.cfg.data
    s = d.synthetic
    common: dict[str, Any] = dict(seed=ctx.cfg.run.seed, questions_per_user=questions, profile_size=s.profile_size,
                  label_noise=s.label_noise, gold_noise=s.gold_noise)
    write_synthetic(out, d.tasks, splits=[d.train_split], n_users=n_train, **common)
    write_synthetic(out, d.tasks, splits=[d.eval_split], n_users=n_eval, **common)


def _reachable_in_dry_run(ctx: RunContext, backend: str | None, model_args: dict[str, Any]) -> bool:
    """Whether a dry run may call this LLM backend here (dummy, or hf with a local model)."""
    from tagpr_trainers.recipe.stages.common import model_available

    if backend == "dummy":
        return True
    return backend == "hf" and model_available(str(model_args.get("pretrained", "")))


def make_teachers(ctx: RunContext, lamp_dir: Path) -> dict[str, Any]:
    """One teacher per task (the template teacher reads each task's synthetic users file).

    In a dry run, an LLM teacher that cannot run here (openai/vllm server, hub model not cached)
    is replaced by :class:`~tagpr_trainers.data_pipeline.teacher.DryRunTeacher` (prompts still built).
    """
    from tagpr_trainers.data_pipeline.teacher import (
        DryRunTeacher,
        LLMTeacher,
        TemplateTeacher,
        load_synthetic_users,
    )

    t = ctx.cfg.data.teacher
    teachers: dict[str, Any] = {}
    llm = None
    for task in ctx.cfg.data.tasks:
        if t.kind == "template":
            from tagpr_eval.data import canonical_task

            users_file = lamp_dir / canonical_task(task) / f"{ctx.cfg.data.train_split}_users.json"
            teachers[task] = TemplateTeacher(load_synthetic_users(users_file), chain=t.chain)
        elif ctx.dry_run and not _reachable_in_dry_run(ctx, t.backend, t.model_args):
            logger.warning("dry run: teacher backend %s not called here; prompts built, chains stubbed", t.backend)
            teachers[task] = DryRunTeacher(str(t.backend))
        else:
            if llm is None:
                llm = LLMTeacher(str(t.backend), t.model_args, max_new_tokens=t.max_new_tokens,
                                 temperature=t.temperature, batch_size=t.batch_size)
            teachers[task] = llm
    return teachers


def make_tagger(ctx: RunContext) -> Any:
    """The configured tagger."""
    from tagpr_trainers.data_pipeline.tagger import EmbeddingTagger, LLMTagger, TeacherTagger

    t = ctx.cfg.data.tagger
    if t.kind == "teacher" or (t.kind == "llm" and ctx.dry_run
                               and not _reachable_in_dry_run(ctx, t.backend, t.model_args)):
        return TeacherTagger()
    if t.kind == "llm":
        return LLMTagger(str(t.backend), t.model_args, batch_size=t.batch_size)
    return EmbeddingTagger(t.encoder, batch_size=t.batch_size, constrained=t.constrained,
                           device="cuda" if ctx.use_cuda else "cpu", pool=t.pool, lead_words=t.lead_words)


def _load_samples(ctx: RunContext, lamp_dir: Path, split: str) -> dict[str, list[Any]]:
    from tagpr_eval.data import load_task

    return {task: list(load_task(lamp_dir, task, split).samples) for task in ctx.cfg.data.tasks}


def run(ctx: RunContext) -> dict[str, Any]:
    """Write ``data/{sft,rl,chains}.jsonl`` and ``data/report.{json,md}``; return the report.

    In a dry run: two users, two questions each, in ``RUN_DIR/dry-run/``.
    """
    from tagpr_trainers.data_pipeline.build import build_tagged_data

    d = ctx.cfg.data
    out = ctx.path("data")
    if d.source == "synthetic":
        s = d.synthetic
        if ctx.dry_run:
            _write_synthetic(ctx, ctx.lamp_dir, 3, 2, 2)
        else:
            _write_synthetic(ctx, ctx.lamp_dir, s.train_users, s.eval_users, s.questions_per_user)
    elif not Path(d.source).is_dir():
        raise FileNotFoundError(f"data.source {d.source!r} is not a directory in the LaMP layout "
                                "(DIR/LaMP-k/{split}_questions.json); use tagpr-eval download or data.source=synthetic")
    samples = _load_samples(ctx, ctx.lamp_dir, d.train_split)
    if ctx.dry_run:
        samples = {t: v[:4] for t, v in samples.items()}
    teachers = make_teachers(ctx, ctx.lamp_dir)
    tagger = make_tagger(ctx)
    report: dict[str, Any] = {"tasks": {}}
    # one call per task, each with its own teacher, merged into one set of files
    with tempfile.TemporaryDirectory(dir=out.parent if out.parent.exists() else None) as tmp:
        per_task = {}
        for task, task_samples in samples.items():
            per_task[task] = build_tagged_data(
                {task: task_samples}, teachers[task], tagger, Path(tmp) / task, schema=d.schema,
                threshold=d.threshold, rl_fraction=d.rl_fraction, retriever=d.retriever, k=d.k,
                seed=ctx.cfg.run.seed, max_samples=d.max_samples, progress=ctx.progress,
                prompt_style=d.prompt_style)
        report = _merge(per_task, Path(tmp), out, ctx.cfg.run.seed)
    t = report
    logger.info("data: kept %d chains, dropped %d, %d RL prompts; tags %s", t["kept"], t["dropped"],
                t["rl_prompts"], t["tag_distribution"])
    return report


def _merge(per_task: dict[str, dict[str, Any]], tmp: Path, out: Path, seed: int) -> dict[str, Any]:
    import random
    from collections import Counter

    from tagpr_trainers.data_pipeline.build import report_markdown, write_jsonl
    from tagpr_trainers.recipe.checkpoints import atomic_write_json, atomic_write_text
    from tagpr_trainers.recipe.stages.common import read_jsonl

    first = next(iter(per_task.values()))
    report: dict[str, Any] = {k: first[k] for k in ("schema", "threshold", "teacher", "tagger")}
    report["tasks"] = {t: r["tasks"][t] for t, r in per_task.items()}
    tags: Counter[str] = Counter()
    for r in per_task.values():
        tags.update(r["tag_distribution"])
    report["tag_distribution"] = dict(tags.most_common())
    for key in ("kept", "dropped", "rl_prompts", "direct"):
        report[key] = sum(int(r[key]) for r in per_task.values())
    for name in ("chains", "rl", "sft", "direct"):
        rows = [row for t in per_task for row in read_jsonl(tmp / t / f"{name}.jsonl")]
        if name in ("sft", "direct"):
            random.Random(f"tagpr-sft-order:{seed}").shuffle(rows)
        write_jsonl(out / f"{name}.jsonl", rows)
    atomic_write_json(out / "report.json", report)
    atomic_write_text(out / "report.md", report_markdown(report))
    return report
