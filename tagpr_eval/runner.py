"""Run an evaluation: data → retrieval → prompts → generation → answers → scores → files.

:func:`evaluate_run` is the library function behind ``tagpr-eval run`` (notebooks and the
trainers call the same function). It is resumable: every finished batch of generations is
appended to ``RUN_DIR/generations.jsonl`` (flushed and fsynced), keyed by a hash of the model,
its args, the generation settings, the task, the retrieval settings and the exact prompt. A run
killed at any point — even mid-line; a truncated last line is dropped — and started again with
the same arguments regenerates nothing that was done and ends with identical results.

Files written to the run directory:

* ``predictions_LaMP_k.json`` per task, official format ``{"task": "LaMP_k", "golds": [...]}``
  (submittable to the leaderboard; scorable with ``tagpr-eval score``);
* ``results.json`` (schema in :mod:`tagpr_eval.results`);
* ``samples.jsonl``: per sample the prompt, raw output, extracted answer and method, tag parse
  summary and reward components;
* ``results.md`` (the Markdown table) and PNG plots (``metrics.png``, ``tags.png``).

>>> import tempfile
>>> from tagpr_eval.config import EvalConfig
>>> cfg = EvalConfig(model="baseline", tasks=["LaMP-2"], limit=8, output=tempfile.mkdtemp(),
...                  plots=False, progress=False)
>>> res = evaluate_run(cfg)
>>> sorted(res["metrics"]["LaMP-2"])
['accuracy', 'f1']
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tagpr_eval.backends import Backend, Request, get_backend
from tagpr_eval.config import ConfigError, EvalConfig
from tagpr_eval.results import (
    GENERATIONS_FILE,
    RESULTS_FILE,
    SAMPLES_FILE,
    RunResults,
    SampleRecord,
    TagStats,
    TaskResults,
    atomic_write_text,
    new_results,
    utc_now,
    write_json,
)

logger = logging.getLogger("tagpr_eval")

__all__ = ["GenerationLog", "evaluate_run", "resolve_tasks", "run_dir_for", "predictions_file_name"]

#: model args that must not enter cache keys or saved configs
_SECRET_ARGS = ("api_key",)
#: config fields that do not change what a run computes (kept out of the run-directory hash)
_NON_RESULT_FIELDS = ("output", "run_name", "plots", "batch_size", "progress")


def _sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")).hexdigest()


def _public_args(args: dict[str, Any]) -> dict[str, Any]:
    return {k: ("***" if k in _SECRET_ARGS else v) for k, v in args.items()}


def _output_args(config: EvalConfig) -> dict[str, Any]:
    """The model args that can change what the model answers (the cache key's share)."""
    from tagpr_eval.backends import backend_class

    ignored = set(backend_class(config.model).NON_OUTPUT_ARGS) | set(_SECRET_ARGS)
    return {k: v for k, v in config.model_args.items() if k not in ignored}


def predictions_file_name(task_key: str) -> str:
    """``predictions_LaMP_2.json`` for ``LaMP_2``."""
    return f"predictions_{task_key}.json"


def resolve_tasks(names: Sequence[str], data: str = "synthetic", split: str = "dev") -> list[str]:
    """Canonical task names; ``all`` = every current LaMP task available in ``data``.

    For a data directory, ``all`` means the tasks whose ``{split}_questions.json`` is present;
    for synthetic data, every task the generator makes. The legacy news LaMP-2 is only
    evaluated when named.

    >>> resolve_tasks(["lamp2", "LaMP_4", "LaMP-2"])
    ['LaMP-2', 'LaMP-4']
    """
    from tagpr_rewards.metrics.lamp import get_task, list_tasks

    out: list[str] = []
    for n in names:
        if n.strip().lower() == "all":
            cands = [t for t in list_tasks() if t in {f"LaMP-{i}" for i in range(1, 8)}]
            if data != "synthetic":
                cands = [t for t in cands if (Path(data) / t / f"{split}_questions.json").exists()]
                if not cands:
                    raise ConfigError(f"--tasks all: no task found under {data} (expected "
                                      f"{data}/LaMP-k/{split}_questions.json); run `tagpr-eval download` first")
            out.extend(cands)
        else:
            try:
                out.append(get_task(n.strip()).name)
            except KeyError as e:
                raise ConfigError(e.args[0] if e.args else str(e)) from e
    seen: set[str] = set()
    return [t for t in out if not (t in seen or seen.add(t))]  # type: ignore[func-returns-value]


def generation_key(config: EvalConfig) -> dict[str, Any]:
    """What determines a generation besides the prompt: model, model args, generation settings."""
    return {"model": config.model, "model_args": _output_args(config), "gen": config.gen_kwargs.to_dict()}


def run_dir_for(config: EvalConfig) -> Path:
    """The run directory: ``OUTPUT/RUN_NAME``, by default ``OUTPUT/<model>-<name>-<hash>``, so that
    the same arguments always land in (and resume) the same directory. Task names enter the
    hash canonical and sorted (``--tasks lamp2,LaMP_4`` is the run of ``--tasks LaMP-4,LaMP-2``).

    >>> from tagpr_eval.config import EvalConfig
    >>> run_dir_for(EvalConfig(tasks=["LaMP2"])) == run_dir_for(EvalConfig(tasks=["lamp_2"]))
    True
    """
    if config.run_name:
        return Path(config.output) / config.run_name
    d = config.to_dict()
    for k in _NON_RESULT_FIELDS:
        d.pop(k, None)
    d["model_args"] = _output_args(config)
    # the tasks as a set of canonical names: LaMP2, lamp-2 and LaMP_2 are one run (and resume it)
    d["tasks"] = sorted(resolve_tasks(config.tasks, config.data, config.split))
    name = str(config.model_args.get("pretrained") or config.model_args.get("model")
               or config.model_args.get("mode") or "")
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in Path(name).name)[:40].strip("-")
    parts = [config.model] + ([slug] if slug else []) + [_sha(d)[:10]]
    return Path(config.output) / "-".join(parts)


class GenerationLog:
    """Append-only JSONL of finished generations, keyed by a hash (the resume cache).

    A truncated last line (a run killed mid-write) is cut off when the log is opened.

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "g.jsonl")
    >>> log = GenerationLog(p); log.append([{"key": "a", "output": "x"}])
    >>> _ = open(p, "a").write('{"key": "b", "outp')   # killed mid-line
    >>> GenerationLog(p).outputs
    {'a': 'x'}
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.outputs: dict[str, str] = {}
        self.dropped_partial = False
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # a killed writer left half a line: drop it, keep the rest
            self.dropped_partial = True
            logger.warning("%s: dropped a truncated last line (%d bytes) left by an interrupted run",
                           self.path, len(data) - end)
            with open(self.path, "r+b") as f:
                f.truncate(end)
                f.flush()
                os.fsync(f.fileno())
            data = data[:end]
        for lineno, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                self.outputs[str(rec["key"])] = str(rec["output"])
            except (json.JSONDecodeError, KeyError, TypeError):
                logger.warning("%s:%d: unreadable generation record ignored (it will be regenerated)",
                               self.path, lineno)

    def __contains__(self, key: str) -> bool:
        return key in self.outputs

    def append(self, records: Sequence[dict[str, Any]]) -> None:
        """Append records (each with ``key`` and ``output``), flushed and fsynced."""
        if not records:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        for r in records:
            self.outputs[str(r["key"])] = str(r["output"])


def _batches(seq: Sequence[Any], n: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def _load_task_data(config: EvalConfig, task: str) -> Any:
    import inspect

    from tagpr_eval.data import load_task

    kwargs: dict[str, Any] = {}
    if config.data == "synthetic" and "seed" in inspect.signature(load_task).parameters:
        kwargs["seed"] = config.seed
    return load_task(config.data, task, config.split, **kwargs)


def _retrieve(config: EvalConfig, retriever: Any, task: str, sample: Any) -> list[dict[str, Any]]:
    from tagpr_eval.retrieval import select_items

    profile = list(sample.profile or [])
    if retriever is None or config.k == 0 or not profile:
        return []
    return [dict(it) for it in select_items(task, sample.input, profile, retriever, config.k)]


def _build_requests(config: EvalConfig, task: str, samples: Sequence[Any], schema: str | None) -> list[Request]:
    from tagpr_eval.prompts import build_prompt

    retriever = None
    if config.retriever != "none" and config.k > 0:
        from tagpr_eval.retrieval import get_retriever

        kw: dict[str, Any] = {"seed": config.seed} if config.retriever == "random" else {}
        retriever = get_retriever(config.retriever, **kw)
    reqs = []
    for s in _progress(samples, config, desc=f"{task} prompts", unit="sample"):
        items = _retrieve(config, retriever, task, s)
        schema_obj = schema if config.prompt == "tagged" else None
        prompt = build_prompt(task, s, items, style=config.prompt, schema=schema_obj)
        reqs.append(Request(prompt=prompt, id=str(s.id), task=task, sample=s, items=items, schema=schema))
    return reqs


def _progress(it: Sequence[Any], config: EvalConfig, **kw: Any) -> Any:
    if not config.progress or len(it) < 2:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, leave=False, **kw)


def _sample_key(gen_key: str, config: EvalConfig, r: Request) -> str:
    return _sha({"gen": gen_key, "task": r.task, "id": r.id, "prompt": r.prompt,
                 "retrieval": [config.retriever, config.k, config.seed if config.retriever == "random" else None],
                 "style": config.prompt, "schema": r.schema})


def _postprocess(task: str, reqs: Sequence[Request], raws: Sequence[str], schema: str | None,
                 with_rewards: bool, reward_node: Mapping[str, Any] | None = None
                 ) -> tuple[list[SampleRecord], TagStats | None]:
    """Extract answers, parse tags, compute reward components."""
    recs: list[SampleRecord] = []
    parses: list[Any] = []
    schema_obj = None
    if schema:
        from tagpr_rewards.tags import extract_answer, load_schema, parse_tags

        schema_obj = load_schema(schema)
    for r, raw in zip(reqs, raws):
        rec = SampleRecord(task=task, id=r.id, user_id=getattr(r.sample, "user_id", None), prompt=r.prompt,
                           retrieved_ids=[str(it.get("id", "")) for it in r.items], raw_output=raw,
                           gold=getattr(r.sample, "output", None))
        if schema_obj is not None:
            ext = extract_answer(raw, schema_obj)
            parse = parse_tags(raw, schema_obj)
            parses.append(parse)
            rec["answer"], rec["method"] = ext.answer, ext.method
            rec["tag_parse"] = {"valid": bool(parse.valid), "tag_sequence": list(parse.tag_sequence),
                                "errors": sorted({str(getattr(e, "code", e)) for e in parse.errors})}
        else:
            rec["answer"], rec["method"] = raw.strip(), "raw"
        recs.append(rec)
    if schema_obj is None:
        return recs, None
    if with_rewards:
        comps = _reward_components(task, schema, reqs, raws, reward_node)
        for rec, c in zip(recs, comps):
            rec["rewards"] = c
    n = max(1, len(recs))
    dist: Counter[str] = Counter()
    errs: Counter[str] = Counter()
    # the reasoning tags: the answer tag and the wrapper are not reasoning steps
    not_steps = {getattr(schema_obj, "answer_tag", None), getattr(schema_obj, "wrapper", None)}
    steps = [[t for t in p.tag_sequence if t not in not_steps] for p in parses]
    for p, st in zip(parses, steps):
        dist.update(st)
        errs.update(str(getattr(e, "code", e)) for e in p.errors)
    stats = TagStats(schema=str(schema), format_valid_rate=sum(bool(p.valid) for p in parses) / n,
                     answer_tag_rate=sum(r.get("method") == "tag" for r in recs) / n,
                     tag_distribution=dict(sorted(dist.items(), key=lambda kv: (-kv[1], kv[0]))),
                     mean_tags_per_output=sum(len(st) for st in steps) / n,
                     error_counts=dict(sorted(errs.items())))
    means: dict[str, float] = {}
    keys = sorted({k for r in recs for k in (r.get("rewards") or {})})
    for k in keys:
        vals = [v for r in recs if isinstance(v := (r.get("rewards") or {}).get(k), (int, float))]
        if vals:
            means[k] = sum(vals) / len(vals)
    stats["mean_reward_components"] = means
    return recs, stats


def _reward_components(task: str, schema: str | None, reqs: Sequence[Request], raws: Sequence[str],
                       node: Mapping[str, Any] | None = None) -> list[dict[str, float | None]]:
    """Per-sample components of the reward node (default: our stage-2 reward without PRMU,
    α·R_base + β·R_tag); a preset node gets this task and schema. The prompts go in as well: a
    term that reads the prompt (the recall term: which profile items it shows) scores against
    what the model saw."""
    try:
        from tagpr_rewards.presets import build_from_config

        cfg = dict(node) if node is not None else {"preset": "stage2"}
        if "preset" in cfg:
            cfg.update(task=task, schema=schema or "personalization-9")
        reward = build_from_config(cfg, source="eval reward")
        out = reward(list(raws), prompts=[r.prompt for r in reqs],
                     references=[getattr(r.sample, "output", None) for r in reqs],
                     user_ids=[getattr(r.sample, "user_id", None) for r in reqs],
                     profile=[list(getattr(r.sample, "profile", None) or []) for r in reqs],
                     task=[task] * len(reqs), query=[getattr(r.sample, "input", "") for r in reqs],
                     id=[r.id for r in reqs])
    except Exception as e:  # a reward problem must not lose an evaluation; say so once
        logger.warning("reward components for %s not computed: %s: %s", task, type(e).__name__, e)
        return [{} for _ in reqs]
    res: list[dict[str, float | None]] = []
    for i in range(len(reqs)):
        d: dict[str, float | None] = {"total": out.scores[i]}
        for k, v in out.components.items():
            d[k] = v[i]
        res.append(d)
    return res


def evaluate_run(config: EvalConfig, backend: Backend | None = None) -> RunResults:
    """Run (or resume) the evaluation described by ``config``; returns the results dict.

    Args:
        config: the run's :class:`~tagpr_eval.config.EvalConfig`.
        backend: an already built backend (e.g. a model object a trainer holds); by default
            the backend named by ``config.model`` is built — only if something is left to
            generate.
    """
    from tagpr_rewards.metrics.lamp import get_task, score_task

    config.validate()
    tasks = resolve_tasks(config.tasks, config.data, config.split)
    schema = config.resolved_schema()
    if schema:
        from tagpr_rewards.tags import load_schema

        load_schema(schema)  # fail early on an unknown schema
    if backend is None:
        from tagpr_eval.backends import backend_class

        backend_class(config.model).check_args(config.model_args)  # refuse bad model args up front
    # Everything that can fail on the user's options or data (task names, data files, retrieval,
    # prompts) runs before the run directory exists: a refused run leaves nothing behind.
    prepared = []
    for task in tasks:
        data = _load_task_data(config, task)
        samples = list(data.samples)[: config.limit] if config.limit else list(data.samples)
        prepared.append((task, samples, _build_requests(config, task, samples, schema)))
    run_dir = run_dir_for(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    gen_key = _sha(generation_key(config))
    resolved = config.to_dict()
    resolved["model_args"] = _public_args(config.model_args)
    resolved["tasks"] = tasks
    results = new_results(resolved, _sha({"gen": gen_key, "config": resolved})[:16])
    t0 = time.time()
    log = GenerationLog(run_dir / GENERATIONS_FILE)
    all_records: list[SampleRecord] = []
    own_backend = backend is None
    try:
        for task, samples, reqs in prepared:
            spec = get_task(task)
            keys = [_sample_key(gen_key, config, r) for r in reqs]
            todo = [(k, r) for k, r in zip(keys, reqs) if k not in log]
            n_cached = len(reqs) - len(todo)
            if todo:
                if backend is None:
                    backend = get_backend(config.model, **config.model_args)
                bar = None
                if config.progress:
                    from tqdm.auto import tqdm

                    bar = tqdm(total=len(todo), desc=f"{task} generate", unit="sample", leave=False)
                for chunk in _batches(todo, config.batch_size):
                    outs = backend.generate([r for _, r in chunk], config.gen_kwargs)
                    if len(outs) != len(chunk):
                        raise RuntimeError(f"backend {config.model!r} returned {len(outs)} outputs for "
                                           f"{len(chunk)} requests")
                    log.append([{"key": k, "task": task, "id": r.id, "output": o} for (k, r), o in zip(chunk, outs)])
                    if bar is not None:
                        bar.update(len(chunk))
                if bar is not None:
                    bar.close()
            raws = [log.outputs[k] for k in keys]
            recs, tag_stats = _postprocess(task, reqs, raws, schema, config.rewards, config.reward)
            all_records.extend(recs)
            preds = [str(r.get("answer", "")) for r in recs]
            pred_file = predictions_file_name(spec.key)
            write_json(run_dir / pred_file, {"task": spec.key,
                                             "golds": [{"id": r.id, "output": p} for r, p in zip(reqs, preds)]})
            golds = [getattr(s, "output", None) for s in samples]
            tr = TaskResults(task=task, key=spec.key, n_samples=len(reqs), n_generated=len(todo), n_cached=n_cached,
                             scored=False, predictions_file=pred_file,
                             metric_directions=_directions(spec),
                             answer_methods=dict(sorted(Counter(str(r.get("method")) for r in recs).items())))
            if reqs and all(isinstance(g, str) for g in golds):
                results["metrics"][task] = dict(score_task(spec.name, preds, golds, bootstrap=config.bootstrap,
                                                           seed=config.seed))
                tr["scored"] = True
            if tag_stats is not None:
                tr["tag_stats"] = tag_stats
            results["tasks"][task] = tr
    finally:
        if own_backend and backend is not None:
            backend.close()
    atomic_write_text(run_dir / SAMPLES_FILE,
                      "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in all_records))
    results["finished_at"] = utc_now()
    results["duration_s"] = round(time.time() - t0, 3)
    results["files"] = {"run_dir": str(run_dir), "samples": SAMPLES_FILE, "generations": GENERATIONS_FILE,
                        "table": "results.md",
                        **{f"predictions/{t}": results["tasks"][t]["predictions_file"] for t in results["tasks"]}}
    from tagpr_eval.report import markdown_table, write_plots

    table = markdown_table(results)
    atomic_write_text(run_dir / "results.md", table + "\n")
    if config.plots:
        try:
            results["files"].update(write_plots(results, run_dir))
        except ImportError as e:
            logger.warning("plots skipped: %s", e)
    write_json(run_dir / RESULTS_FILE, results)
    return results


def _directions(spec: Any) -> dict[str, str]:
    return {m: spec.direction(m) for m in spec.metrics}
