"""Build the SFT and RL datasets: prompts -> teacher chains -> tags -> task-metric filter -> files.

Prompts are built exactly as ``tagpr_eval`` builds them for evaluation
(``tagpr_eval.retrieval.select_items`` + ``tagpr_eval.prompts.build_prompt``, style ``tagged`` or
``lamp``),
so SFT, RL and evaluation see the same prompt for the same sample.

Files written to the output directory (each atomically):

* ``sft.jsonl`` — kept chains as TRL conversational prompt-completion rows:
  ``{"prompt": [messages], "completion": [{"role": "assistant", "content": tagged}], "id", "user_id",
  "task", "reference"}``;
* ``direct.jsonl`` — the direct-answer base arm: the SFT users' samples, same prompts, gold
  answer only (``<answer>…</answer>``, no reasoning);
* ``rl.jsonl`` — RL prompts with the columns rewards read (``prompt``, ``reference``, ``user_id``,
  ``profile`` (JSON string), ``task``, ``id``, ``query``);
* ``chains.jsonl`` — every chain, kept or not, with its tags, score and drop reason;
* ``report.json`` / ``report.md`` — kept/dropped counts, tag distribution, teacher accuracy and
  tagger/teacher agreement.

>>> import tempfile
>>> from tagpr_eval.data.synthetic import generate_task
>>> from tagpr_trainers.data_pipeline import TemplateTeacher, TeacherTagger
>>> st = generate_task("LaMP-2", n_users=4, questions_per_user=3, profile_size=12, seed=0, split="train")
>>> rep = build_tagged_data({"LaMP-2": st.data.samples}, TemplateTeacher(st.users), TeacherTagger(),
...                         tempfile.mkdtemp(), schema="personalization-9", rl_fraction=0.25, k=4)
>>> rep["tasks"]["LaMP-2"]["total"], rep["tasks"]["LaMP-2"]["kept"] + sum(rep["tasks"]["LaMP-2"]["dropped"].values())
(9, 9)
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tagpr_trainers.data_pipeline.tagger import render_chain
from tagpr_trainers.data_pipeline.teacher import Chain, TeacherJob

__all__ = [
    "PreparedSample",
    "build_tagged_data",
    "prepare_samples",
    "rl_row",
    "split_users",
    "write_jsonl",
]

logger = logging.getLogger("tagpr_trainers.data_pipeline")


@dataclass
class PreparedSample:
    """A LaMP sample with its retrieved items and its (tagged-style) chat prompt."""

    task: str
    sample: Any
    items: list[dict[str, Any]]
    prompt: list[dict[str, str]] = field(default_factory=list)


def _as_messages(prompt: Any) -> list[dict[str, str]]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [{"role": str(m["role"]), "content": str(m["content"])} for m in prompt]


def prepare_samples(task: str, samples: Iterable[Any], schema: str, retriever: str = "bm25", k: int = 4,
                    seed: int = 0, prompt_style: str = "tagged") -> list[PreparedSample]:
    """Retrieve ``k`` profile items and build the prompt, as ``tagpr_eval`` does.

    ``prompt_style``: ``tagged`` (system message describing the schema's tags + user message) or
    ``lamp`` (the official LaMP prompt as one user message: 3x shorter, for tiny models that learn
    the tag format from SFT alone).
    """
    from tagpr_eval.prompts import build_prompt
    from tagpr_eval.retrieval import get_retriever, select_items

    ret = None
    if retriever != "none" and k > 0:
        ret = get_retriever(retriever, **({"seed": seed} if retriever == "random" else {}))
    out = []
    for s in samples:
        profile = list(s.profile or [])
        items = [dict(it) for it in select_items(task, s.input, profile, ret, k)] if ret and profile else []
        prompt = build_prompt(task, s, items, style=prompt_style, schema=schema if prompt_style == "tagged" else None)
        out.append(PreparedSample(task, s, items, _as_messages(prompt)))
    return out


def split_users(user_ids: Iterable[str], fraction: float, seed: int = 0) -> set[str]:
    """The users (a ``fraction`` of them, at least one when fraction > 0) reserved for RL.

    >>> sorted(split_users(["a", "b", "c", "d"], 0.5, seed=0)) == sorted(split_users(["d", "c", "b", "a"], 0.5))
    True
    """
    users = sorted(set(user_ids))
    if fraction <= 0 or not users:
        return set()
    random.Random(f"tagpr-rl-split:{seed}").shuffle(users)
    n = max(1, round(fraction * len(users)))
    return set(users[:n])


def rl_row(p: PreparedSample) -> dict[str, Any]:
    """One RL dataset row (the columns ``tagpr_eval.to_dataset`` writes; profile as JSON)."""
    s = p.sample
    return {"prompt": p.prompt, "reference": None if s.output is None else str(s.output),
            "user_id": str(s.user_id), "profile": json.dumps(list(s.profile or [])), "task": p.task,
            "id": str(s.id), "query": str(s.input)}


def write_jsonl(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write rows as JSON lines atomically."""
    from tagpr_rewards.files import atomic_write_text

    return atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def _score_answers(task: str, completions: Sequence[str], references: Sequence[str], schema: str) -> list[float]:
    """Per-sample task metric of the answer in each tagged completion (tagpr_rewards task reward)."""
    from tagpr_rewards.task_rewards import lamp_task_reward

    reward = lamp_task_reward(task, schema=schema)
    scores = reward(list(completions), references=list(references)).scores
    return [0.0 if s is None else float(s) for s in scores]


def build_tagged_data(
    samples_by_task: Mapping[str, Sequence[Any]],
    teacher: Any,
    tagger: Any,
    out_dir: str | Path,
    schema: str = "personalization-9",
    threshold: float = 1.0,
    rl_fraction: float = 0.3,
    retriever: str = "bm25",
    k: int = 4,
    seed: int = 0,
    max_samples: int | None = None,
    progress: bool = False,
    prompt_style: str = "tagged",
) -> dict[str, Any]:
    """Run teacher + tagger on the SFT share of the samples, filter, and write the datasets.

    Args:
        samples_by_task: ``{task: [LampSample, ...]}`` (training split, with golds).
        teacher: a teacher (``.write(jobs) -> chains``).
        tagger: a tagger (``.tag(chains, schema) -> chains``).
        out_dir: where the files go (see module docstring).
        schema: tag schema name.
        threshold: minimum task metric of a chain's answer to keep it.
        rl_fraction: share of users whose samples become RL prompts instead of SFT chains.
        retriever, k, seed: retrieval for the prompts.
        max_samples: cap per task (first samples after a seeded shuffle).
        progress: log progress per task.
        prompt_style: ``tagged`` or ``lamp`` (see :func:`prepare_samples`).

    Returns:
        The report (also written to ``report.json``).
    """
    from tagpr_rewards.tags import load_schema, parse_tags

    schema_obj = load_schema(schema)
    out = Path(out_dir)
    sft_rows: list[dict[str, Any]] = []
    direct_rows: list[dict[str, Any]] = []
    rl_rows: list[dict[str, Any]] = []
    chain_rows: list[dict[str, Any]] = []
    report: dict[str, Any] = {"schema": schema, "threshold": threshold, "teacher": getattr(teacher, "name", "?"),
                              "tagger": getattr(tagger, "name", "?"), "tasks": {}}
    all_tags: Counter[str] = Counter()
    for task, samples in samples_by_task.items():
        samples = list(samples)
        if max_samples is not None and len(samples) > max_samples:
            rng = random.Random(f"tagpr-cap:{seed}:{task}")
            samples = sorted(rng.sample(samples, max_samples), key=lambda s: str(s.id))
        rl_users = split_users((str(s.user_id) for s in samples), rl_fraction, seed)
        prepared = prepare_samples(task, samples, schema, retriever, k, seed, prompt_style)
        sft_part = [p for p in prepared if str(p.sample.user_id) not in rl_users]
        rl_rows.extend(rl_row(p) for p in prepared if str(p.sample.user_id) in rl_users)
        if progress:
            logger.info("%s: %d samples (%d for SFT chains, %d RL prompts)", task, len(prepared), len(sft_part),
                        len(prepared) - len(sft_part))
        # the direct-answer base arm: the same prompts and users as SFT, every sample with its gold
        # answer and no reasoning (only the answer tag, so extraction is the same as for chains)
        atag = schema_obj.answer_tag
        direct_rows.extend({"prompt": p.prompt, "completion": [{"role": "assistant",
                                                                "content": f"<{atag}>{p.sample.output}</{atag}>"}],
                            "id": str(p.sample.id), "user_id": str(p.sample.user_id), "task": task,
                            "reference": str(p.sample.output)} for p in sft_part if p.sample.output is not None)
        chains: list[Chain] = teacher.write([TeacherJob(task, p.sample, p.items) for p in sft_part])
        chains = tagger.tag(chains, schema_obj)
        texts = [render_chain(c, schema_obj) for c in chains]
        refs = ["" if p.sample.output is None else str(p.sample.output) for p in sft_part]
        scores = _score_answers(task, texts, refs, schema)
        dropped: Counter[str] = Counter()
        tags: Counter[str] = Counter()
        agree = [0, 0]
        kept = 0
        for p, c, text, score in zip(sft_part, chains, texts, scores):
            parse = parse_tags(text, schema_obj)
            reason = None
            if not c.steps:
                reason = "no_steps"
            elif not c.answer.strip():
                reason = "no_answer"
            elif not parse.valid:
                reason = "invalid_tags"
            elif score < threshold:
                reason = "below_threshold"
            for st in c.steps:
                if st.hint is not None:
                    agree[0] += st.hint == st.tag
                    agree[1] += 1
            chain_rows.append({"id": c.sample_id, "task": task, "user_id": str(p.sample.user_id),
                               "teacher": c.teacher, "steps": [[st.tag, st.text] for st in c.steps],
                               "hints": [st.hint for st in c.steps], "answer": c.answer, "reference": str(p.sample.output),
                               "score": score, "kept": reason is None, "drop_reason": reason,
                               "errors": [e.code for e in parse.errors][:5]})
            if reason is not None:
                dropped[reason] += 1
                continue
            kept += 1
            tags.update(st.tag for st in c.steps if st.tag)
            sft_rows.append({"prompt": p.prompt, "completion": [{"role": "assistant", "content": text}],
                             "id": str(p.sample.id), "user_id": str(p.sample.user_id), "task": task,
                             "reference": str(p.sample.output)})
        all_tags.update(tags)
        n = len(sft_part)
        report["tasks"][task] = {
            "total": n,
            "kept": kept,
            "dropped": {r: dropped.get(r, 0) for r in ("below_threshold", "invalid_tags", "no_answer", "no_steps")},
            "teacher_metric_mean": round(sum(scores) / n, 4) if n else None,
            "tag_distribution": dict(tags.most_common()),
            "tagger_teacher_agreement": round(agree[0] / agree[1], 4) if agree[1] else None,
            "rl_prompts": len(prepared) - n,
        }
    report["tag_distribution"] = dict(all_tags.most_common())
    report["kept"] = len(sft_rows)
    report["dropped"] = sum(sum(t["dropped"].values()) for t in report["tasks"].values())
    report["rl_prompts"] = len(rl_rows)
    random.Random(f"tagpr-sft-order:{seed}").shuffle(sft_rows)
    random.Random(f"tagpr-sft-order:{seed}").shuffle(direct_rows)
    report["direct"] = len(direct_rows)
    write_jsonl(out / "direct.jsonl", direct_rows)
    write_jsonl(out / "chains.jsonl", chain_rows)
    write_jsonl(out / "rl.jsonl", rl_rows)
    write_jsonl(out / "sft.jsonl", sft_rows)
    from tagpr_rewards.files import atomic_write_json, atomic_write_text

    atomic_write_json(out / "report.json", report)
    atomic_write_text(out / "report.md", report_markdown(report))
    return report


def report_markdown(report: Mapping[str, Any]) -> str:
    """The data report as Markdown (counts per task, then the tag distribution)."""
    lines = [f"# Tagged-chain data (teacher: {report['teacher']}, tagger: {report['tagger']}, "
             f"schema: {report['schema']}, threshold: {report['threshold']})", "",
             "| task | chains | kept | below threshold | invalid tags | no answer | teacher metric | "
             "tagger/teacher agreement | RL prompts |",
             "|---|---|---|---|---|---|---|---|---|"]
    for task, t in report["tasks"].items():
        d = t["dropped"]
        lines.append(f"| {task} | {t['total']} | {t['kept']} | {d['below_threshold']} | {d['invalid_tags']} | "
                     f"{d['no_answer'] + d['no_steps']} | {t['teacher_metric_mean']} | "
                     f"{t['tagger_teacher_agreement']} | {t['rl_prompts']} |")
    total = sum(report["tag_distribution"].values()) or 1
    lines += ["", "| tag | steps | share |", "|---|---|---|"]
    lines += [f"| {tag} | {n} | {n / total:.3f} |" for tag, n in report["tag_distribution"].items()]
    return "\n".join(lines) + "\n"
