"""Turn LaMP task data into prompt rows for training and evaluation (a ``datasets.Dataset``).

Columns (the names every part of tagpr reads, see docs/dev/contracts.md):

* ``prompt``: chat messages (``prompt_style="tagged"``) or the official LaMP string (``"lamp"``);
* ``reference``: the gold output (``None`` without golds, e.g. the test split);
* ``user_id``: the question's ``user_id``; in the user split (no ``user_id`` in the files)
  every question has its own profile, so the question id stands for its user;
* ``profile``: the user's **full** profile (not only the k retrieved items) as a JSON string,
  so that rewards such as PRMU can read all of it and Arrow keeps one simple string type
  whatever the task's item fields are; ``json.loads`` gives the LaMP item list back;
* ``task`` (``"LaMP-2"``), ``id`` (question id, a string), ``query`` (the LaMP ``input``).

>>> from tagpr_eval.data import load_task
>>> rows = to_records(load_task("synthetic", "LaMP-2").select(2), k=1)
>>> sorted(rows[0]), rows[0]["prompt"][0]["role"]
(['id', 'profile', 'prompt', 'query', 'reference', 'task', 'user_id'], 'system')
"""

from __future__ import annotations

import json
from typing import Any

from tagpr_eval.data.lamp_files import LampTaskData
from tagpr_eval.prompts import build_prompt
from tagpr_eval.retrieval import Retriever, get_retriever, select_items

__all__ = ["COLUMNS", "to_dataset", "to_records"]

COLUMNS = ("prompt", "reference", "user_id", "profile", "task", "id", "query")


def to_records(
    task_data: LampTaskData,
    retriever: str | Retriever = "bm25",
    k: int = 4,
    prompt_style: str = "tagged",
    schema: Any = "personalization-9",
    max_length: int = 512,
    tokenizer: Any = None,
    retriever_kwargs: dict[str, Any] | None = None,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """The rows of :func:`to_dataset` as plain dicts (no ``datasets`` needed)."""
    r = get_retriever(retriever, **(retriever_kwargs or {})) if isinstance(retriever, str) else retriever
    task = task_data.task
    samples = task_data.samples
    if progress:
        from tqdm.auto import tqdm

        samples = tqdm(samples, desc=f"prompts {task}", unit="q")  # type: ignore[assignment]
    rows = []
    for s in samples:
        items = select_items(task, s.input, s.profile, r, k)
        prompt = build_prompt(task, s, items, style=prompt_style, schema=schema, max_length=max_length,
                              tokenizer=tokenizer)
        rows.append({
            "prompt": prompt,
            "reference": s.output,
            "user_id": s.user_id if s.user_id is not None else s.id,
            "profile": json.dumps(s.profile, ensure_ascii=False),
            "task": task,
            "id": s.id,
            "query": s.input,
        })
    return rows


def to_dataset(
    task_data: LampTaskData,
    retriever: str | Retriever = "bm25",
    k: int = 4,
    prompt_style: str = "tagged",
    schema: Any = "personalization-9",
    max_length: int = 512,
    tokenizer: Any = None,
    retriever_kwargs: dict[str, Any] | None = None,
    progress: bool = False,
) -> Any:
    """A ``datasets.Dataset`` of prompts for ``task_data`` (columns: see the module docstring).

    Args:
        task_data: from :func:`tagpr_eval.data.load_task` (or the synthetic generator).
        retriever: retriever name or instance (``bm25``, ``dense``, ``recency``, ``random``, ``none``).
        k: profile items per prompt.
        prompt_style: ``"tagged"`` (chat messages, ours) or ``"lamp"`` (official string).
        schema: tag schema name or path (tagged style).
        max_length, tokenizer: the prompt's token budget (see :mod:`tagpr_eval.prompts`).
        retriever_kwargs: passed to :func:`~tagpr_eval.retrieval.get_retriever`.

    >>> from tagpr_eval.data import load_task
    >>> ds = to_dataset(load_task("synthetic", "LaMP-3").select(3), k=2, prompt_style="lamp")
    >>> ds.column_names, ds[0]["task"]
    (['prompt', 'reference', 'user_id', 'profile', 'task', 'id', 'query'], 'LaMP-3')
    """
    try:
        import datasets
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("to_dataset needs the datasets package: pip install 'tagpr[eval]'") from e
    rows = to_records(task_data, retriever=retriever, k=k, prompt_style=prompt_style, schema=schema,
                      max_length=max_length, tokenizer=tokenizer, retriever_kwargs=retriever_kwargs,
                      progress=progress)
    return datasets.Dataset.from_list(rows) if rows else datasets.Dataset.from_dict({c: [] for c in COLUMNS})
