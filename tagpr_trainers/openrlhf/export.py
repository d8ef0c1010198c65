"""Write our SFT and RL datasets as JSONL in the layout OpenRLHF 0.11 reads.

``openrlhf.cli.train_sft`` with ``--data.apply_chat_template --data.input_key input
--data.output_key output`` reads one JSON object per line::

    {"input": [{"role": "user", "content": "..."}], "output": [{"role": "assistant", "content": "<think>...</think><answer>...</answer>"}]}

``openrlhf.cli.train_ppo_ray`` with ``--data.apply_chat_template --data.input_key input
--data.label_key label`` reads::

    {"input": [{"role": "user", "content": "..."}], "label": "{\\"task\\": \\"LaMP-2\\", \\"reference\\": \\"sci-fi\\", \\"user_id\\": \\"u1\\", ...}"}

The label is a JSON *string* (not a nested object): OpenRLHF hands ``data[label_key]`` to the
reward function unchanged, and a string keeps Arrow from inferring one struct type for profiles
whose items differ between tasks. Its keys (see :data:`LABEL_KEYS`) are the columns our
rewards read; :func:`parse_label` reads it back (``tagpr_trainers/openrlhf/reward_func.py`` uses it).

>>> label = make_label({"task": "LaMP-2", "reference": "sci-fi", "user_id": "u1",
...                     "profile": '[{"id": "1", "tag": "sci-fi", "description": "space"}]'})
>>> parse_label(label)["profile"][0]["tag"]
'sci-fi'
>>> parse_label("plain gold answer")
{'reference': 'plain gold answer'}
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tagpr_rewards.files import atomic_write_jsonl, read_jsonl

__all__ = [
    "LABEL_KEYS",
    "ExportInfo",
    "export_rl",
    "export_sft",
    "make_label",
    "parse_label",
]

#: Keys of the label JSON (our column names, as ``tagpr_eval.to_dataset`` writes them).
LABEL_KEYS = ("task", "reference", "user_id", "profile", "query", "id")


@dataclass
class ExportInfo:
    """What an export wrote (returned by :func:`export_sft` and :func:`export_rl`)."""

    path: Path
    rows: int
    input_key: str
    output_key: str | None = None
    label_key: str | None = None

    def flags(self) -> list[str]:
        """The OpenRLHF ``--data.*`` flags that read this file (``train_ppo_ray`` for RL, else ``train_sft``).

        >>> ExportInfo(Path("rl.jsonl"), 3, "input", label_key="label").flags()
        ['--data.prompt_dataset', 'rl.jsonl', '--data.input_key', 'input', '--data.label_key', 'label', '--data.apply_chat_template']
        """
        data_flag = "--data.prompt_dataset" if self.label_key else "--data.dataset"
        out = [data_flag, str(self.path), "--data.input_key", self.input_key]
        if self.output_key:
            out += ["--data.output_key", self.output_key]
        if self.label_key:
            out += ["--data.label_key", self.label_key]
        return out + ["--data.apply_chat_template"]


def _profile_value(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def make_label(row: Mapping[str, Any], columns: Mapping[str, str] | None = None,
               max_profile_items: int | None = None) -> str:
    """The label JSON string for one RL row.

    Args:
        row: a dataset row with our columns (``task``, ``reference``, ``user_id``, ``profile``
            as a list or a JSON string of it, ``query``, ``id``); missing ones are left out.
        columns: our name -> the row's column name, where the row spells one differently.
        max_profile_items: keep only the first N profile items (labels travel with every
            sample through OpenRLHF; long LaMP profiles make them large).
    """
    cols = {k: (columns or {}).get(k, k) for k in LABEL_KEYS}
    out: dict[str, Any] = {}
    for ours, theirs in cols.items():
        if theirs in row and row[theirs] is not None:
            value = row[theirs]
            if ours == "profile":
                value = _profile_value(value)
                if max_profile_items is not None and isinstance(value, list):
                    value = value[:max_profile_items]
            out[ours] = value
    return json.dumps(out, ensure_ascii=False, default=str)


def parse_label(label: Any) -> dict[str, Any]:
    """Read a label back: a JSON object string, a mapping, or a plain string (= the reference).

    ``None`` and ``""`` give ``{}``; a ``profile`` given as a JSON string is decoded. A label that
    looks like JSON but is not a JSON object (``{not json``, ``null``, ``[...]``) is a ``ValueError``
    (:func:`tagpr_rewards.remote_protocol.read_label`, which the reward entry file uses to flag it).

    >>> parse_label('{"user_id": "u7", "profile": "[]"}')
    {'user_id': 'u7', 'profile': []}
    >>> parse_label(None)
    {}
    """
    from tagpr_rewards.remote_protocol import read_label

    out, problem = read_label(label)
    if problem is not None:
        raise ValueError(f"{problem}: {label!r:.80}")
    if "profile" in out:
        out["profile"] = _profile_value(out["profile"])
    return out


def _as_messages(value: Any, role: str) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    if isinstance(value, list) and all(isinstance(m, Mapping) and "role" in m for m in value):
        return [dict(m) for m in value]
    raise ValueError(f"expected a string or a list of chat messages, got {type(value).__name__}")


def _rows(data: Any) -> Iterable[Mapping[str, Any]]:
    if isinstance(data, (str, Path)):
        return _read_jsonl(Path(data))
    return data  # a datasets.Dataset or any iterable of dict rows


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return read_jsonl(path)


def _write_jsonl_atomic(path: Path, records: Iterable[Mapping[str, Any]]) -> int:
    return atomic_write_jsonl(path, records, default=str)


def _row_id(row: Mapping[str, Any], i: int) -> str:
    return f"row {i}" + (f" (id {row['id']!r})" if "id" in row else "")


def export_sft(
    data: Any,
    path: str | Path,
    *,
    input_key: str = "input",
    output_key: str = "output",
) -> ExportInfo:
    """Write SFT chat data for ``openrlhf.cli.train_sft``.

    Accepts TRL's SFT layouts per row: ``{"messages": [...]}`` (the last message is the
    assistant's target), ``{"prompt": ..., "completion": ...}`` (strings or message lists).

    Args:
        data: a ``datasets.Dataset``, an iterable of row dicts, or a JSONL path.
        path: the JSONL file to write (atomically).
        input_key, output_key: the keys to write (pass the same to ``--data.input_key`` /
            ``--data.output_key``).

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "sft.jsonl")
    >>> info = export_sft([{"prompt": "Which tag?", "completion": "<answer>sci-fi</answer>"}], p)
    >>> open(p).read().strip()
    '{"input": [{"role": "user", "content": "Which tag?"}], "output": [{"role": "assistant", "content": "<answer>sci-fi</answer>"}]}'
    """

    def records() -> Iterable[dict[str, Any]]:
        for i, row in enumerate(_rows(data)):
            try:
                if "messages" in row and row["messages"] is not None:
                    msgs = _as_messages(row["messages"], "user")
                    if len(msgs) < 2 or msgs[-1].get("role") != "assistant":
                        raise ValueError("'messages' must end with an assistant message after at least one other")
                    prompt, completion = msgs[:-1], msgs[-1:]
                elif "prompt" in row and "completion" in row:
                    prompt = _as_messages(row["prompt"], "user")
                    completion = _as_messages(row["completion"], "assistant")
                else:
                    raise ValueError(f"needs 'messages' or 'prompt'+'completion' columns, has {sorted(row)}")
            except ValueError as e:
                raise ValueError(f"SFT export, {_row_id(row, i)}: {e}") from e
            yield {input_key: prompt, output_key: completion}

    out = Path(path)
    n = _write_jsonl_atomic(out, records())
    return ExportInfo(out, n, input_key, output_key=output_key)


def export_rl(
    data: Any,
    path: str | Path,
    *,
    input_key: str = "input",
    label_key: str = "label",
    prompt_column: str = "prompt",
    columns: Mapping[str, str] | None = None,
    max_profile_items: int | None = None,
) -> ExportInfo:
    """Write RL prompts with JSON labels for ``openrlhf.cli.train_ppo_ray``.

    Each row of ``data`` (``tagpr_eval.to_dataset`` columns: ``prompt``, ``reference``,
    ``user_id``, ``profile``, ``task``, ``id``, ``query``) becomes ``{input_key: prompt,
    label_key: make_label(row)}``. Prompts that are strings stay strings (OpenRLHF wraps them
    as one user message under ``--data.apply_chat_template``); message lists are kept.

    Args:
        data: a ``datasets.Dataset``, an iterable of row dicts, or a JSONL path.
        path: the JSONL file to write (atomically).
        input_key, label_key: keys to write (pass the same to ``--data.input_key`` /
            ``--data.label_key``).
        prompt_column: the rows' prompt column.
        columns: see :func:`make_label`.
        max_profile_items: see :func:`make_label`.

    >>> import tempfile, os, json
    >>> p = os.path.join(tempfile.mkdtemp(), "rl.jsonl")
    >>> info = export_rl([{"prompt": "Which tag?", "reference": "sci-fi", "user_id": "u1", "task": "LaMP-2"}], p)
    >>> row = json.loads(open(p).read())
    >>> row["input"], parse_label(row["label"])["user_id"], info.rows
    ('Which tag?', 'u1', 1)
    """

    def records() -> Iterable[dict[str, Any]]:
        for i, row in enumerate(_rows(data)):
            if prompt_column not in row or row[prompt_column] is None:
                raise ValueError(f"RL export, {_row_id(row, i)}: no {prompt_column!r} column (has {sorted(row)})")
            prompt = row[prompt_column]
            if not isinstance(prompt, str):
                try:
                    prompt = _as_messages(prompt, "user")
                except ValueError as e:
                    raise ValueError(f"RL export, {_row_id(row, i)}: {e}") from e
            yield {input_key: prompt, label_key: make_label(row, columns, max_profile_items)}

    out = Path(path)
    n = _write_jsonl_atomic(out, records())
    return ExportInfo(out, n, input_key, label_key=label_key)
