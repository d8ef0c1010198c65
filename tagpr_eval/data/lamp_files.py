"""Read, validate and write LaMP files in the official layouts.

Layouts (see docs/data.md):

* questions file: a JSON list of ``{"id": str, "input": str, "profile": [item, ...]}``, time
  split (and our synthetic data) also ``"user_id"``;
* outputs file (golds, and predictions too): ``{"task": "LaMP_2", "golds": [{"id", "output"}]}``;
* a data directory holds ``DIR/LaMP-k/{split}_questions.json`` and, except for test,
  ``DIR/LaMP-k/{split}_outputs.json``. The download cache uses the same layout.

Every error names the file, the question id (or JSON line/column) and what to do.

>>> import tempfile
>>> from tagpr_eval.data import load_task, write_task
>>> data = load_task("synthetic", "LaMP-2")
>>> data.task, data.split, isinstance(data.samples[0].id, str)
('LaMP-2', 'dev', True)
>>> out = tempfile.mkdtemp()
>>> paths = write_task(data, out)
>>> again = load_task(out, "lamp2")
>>> [s.output for s in again.samples[:3]] == [s.output for s in data.samples[:3]]
True
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tagpr_rewards.files import atomic_write_json

__all__ = [
    "PROFILE_FIELDS",
    "LampDataError",
    "LampOutputs",
    "LampSample",
    "LampTaskData",
    "canonical_task",
    "load_outputs",
    "load_questions",
    "load_task",
    "task_key",
    "write_json_atomic",
    "write_outputs",
    "write_questions",
    "write_task",
]

#: Required profile-item fields per task (besides ``id`` and the optional ``date``).
PROFILE_FIELDS: dict[str, tuple[str, ...]] = {
    "LaMP-1": ("title", "abstract"),
    "LaMP-2": ("description", "tag"),
    "LaMP-2N": ("text", "category", "title"),  # legacy news categorisation (pre March 2024)
    "LaMP-3": ("text", "score"),
    "LaMP-4": ("title", "text"),
    "LaMP-5": ("title", "abstract"),
    "LaMP-6": ("title", "text"),
    "LaMP-7": ("text",),
}

# Fields a profile item must hold as strings; other required fields may be numbers too
# (LaMP-3 scores are strings in the files, but numbers are harmless and common in forks).
_NUMERIC_OK = {"score"}

_SPLITS_WITH_GOLDS = ("train", "dev")


class LampDataError(ValueError):
    """A LaMP file is missing, malformed or inconsistent; the message says where and what to do."""


def canonical_task(task: str) -> str:
    """The canonical task name (``"LaMP-2"``) for any accepted spelling.

    >>> canonical_task("lamp_2"), canonical_task("LaMP-7")
    ('LaMP-2', 'LaMP-7')
    """
    from tagpr_rewards.metrics.lamp import get_task

    return str(get_task(task).name)


def task_key(task: str) -> str:
    """The task name as written in outputs files (``"LaMP_2"``).

    >>> task_key("LaMP-2")
    'LaMP_2'
    """
    from tagpr_rewards.metrics.lamp import get_task

    return str(get_task(task).key)


def _fields(task: str) -> tuple[str, ...]:
    name = canonical_task(task)
    if name not in PROFILE_FIELDS:
        raise LampDataError(f"no profile field table for task {name!r} (known: {sorted(PROFILE_FIELDS)})")
    return PROFILE_FIELDS[name]


@dataclass
class LampSample:
    """One LaMP question: its id (a string, leading zeros kept), the ``input`` (instruction and
    query), the user's ``profile`` items, the ``user_id`` (``None`` in the user split) and the
    gold ``output`` (``None`` when no outputs file was read, e.g. the test split).

    >>> s = LampSample(id="0177", input="Generate a title for: x", profile=[], user_id="u1")
    >>> s.id, s.output
    ('0177', None)
    """

    id: str
    input: str
    profile: list[dict[str, Any]]
    user_id: str | None = None
    output: str | None = None

    def to_question(self) -> dict[str, Any]:
        """The question-file record (``user_id`` only when set)."""
        rec: dict[str, Any] = {"id": self.id, "input": self.input}
        if self.user_id is not None:
            rec["user_id"] = self.user_id
        rec["profile"] = self.profile
        return rec


@dataclass
class LampTaskData:
    """All samples of one task and split, with the files they came from (``None`` if generated).

    >>> d = LampTaskData("LaMP-2", "dev", [LampSample("1", "x", [], output="comedy")])
    >>> len(d), d.golds()
    (1, {'1': 'comedy'})
    """

    task: str
    split: str
    samples: list[LampSample]
    questions_path: Path | None = None
    outputs_path: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[LampSample]:
        return iter(self.samples)

    @property
    def has_golds(self) -> bool:
        """True when every sample has a gold output."""
        return bool(self.samples) and all(s.output is not None for s in self.samples)

    def golds(self) -> dict[str, str]:
        """``{id: gold output}`` for the samples that have one, in file order."""
        return {s.id: s.output for s in self.samples if s.output is not None}

    def select(self, n: int | None) -> LampTaskData:
        """The first ``n`` samples (all when ``n`` is None), as a new LampTaskData."""
        if n is None:
            return self
        return LampTaskData(self.task, self.split, self.samples[:n], self.questions_path, self.outputs_path,
                            dict(self.meta))


@dataclass
class LampOutputs:
    """An outputs (gold or prediction) file: canonical task name, ``{id: output}`` in file order."""

    task: str
    outputs: dict[str, str]
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.outputs)


# ---------------------------------------------------------------------------------------------
# reading


def _read_json(path: Path, what: str) -> Any:
    if not path.exists():
        raise LampDataError(f"{what} file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise LampDataError(
            f"{path}: line {e.lineno}, column {e.colno}: malformed JSON ({e.msg}); "
            "the file is probably truncated or edited by hand: re-download or regenerate it"
        ) from None
    except UnicodeDecodeError as e:
        raise LampDataError(f"{path}: not UTF-8 text ({e}); LaMP files are UTF-8 JSON") from None


def _check_id(value: Any, path: Path, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        raise LampDataError(f"{path}: {where}: id is {value!r}, expected a string id")
    if isinstance(value, (int, float)):
        raise LampDataError(
            f"{path}: {where}: id {value!r} is a number; LaMP ids are strings (some with leading "
            f'zeros like "0177") and must stay strings: write it as "{value}" (if it had leading '
            "zeros they are already lost: regenerate the file from the original)"
        )
    raise LampDataError(f"{path}: {where}: id is a {type(value).__name__}, expected a string")


def load_questions(path: str | os.PathLike[str], task: str) -> list[LampSample]:
    """Read and validate a questions file for ``task``.

    Checks: a JSON list of objects; ``id`` a string (numbers are rejected: leading zeros
    matter); ``input`` a string; ``profile`` a list of objects each with a string ``id`` and the
    task's fields (:data:`PROFILE_FIELDS`), ``date`` optional (string or int); ``user_id``
    optional (string; an int is accepted and turned into its string); no duplicate question ids.

    >>> import json, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "dev_questions.json")
    >>> _ = open(p, "w").write(json.dumps([{"id": "07", "input": "x", "profile": [{"id": 1, "text": "t"}]}]))
    >>> load_questions(p, "LaMP-7")
    Traceback (most recent call last):
    ...
    tagpr_eval.data.lamp_files.LampDataError: ...question '07', profile item 0: id 1 is a number; ...
    """
    path = Path(path)
    fields = _fields(task)
    data = _read_json(path, "questions")
    if not isinstance(data, list):
        raise LampDataError(
            f"{path}: expected a JSON list of questions, found a {type(data).__name__}"
            + (" (this looks like an outputs file: pass it as outputs)" if isinstance(data, dict) and "golds" in data else "")
        )
    samples: list[LampSample] = []
    seen: dict[str, int] = {}
    for i, q in enumerate(data):
        if not isinstance(q, dict):
            raise LampDataError(f"{path}: question #{i}: expected an object, found {type(q).__name__}")
        if "id" not in q:
            raise LampDataError(f"{path}: question #{i}: missing field 'id' (every question needs a string id)")
        qid = _check_id(q["id"], path, f"question #{i}")
        where = f"question {qid!r}"
        if qid in seen:
            raise LampDataError(f"{path}: {where}: duplicate id (also question #{seen[qid]}); ids must be unique")
        seen[qid] = i
        for key in ("input", "profile"):
            if key not in q:
                raise LampDataError(f"{path}: {where}: missing field {key!r} (expected id, input, profile)")
        inp = q["input"]
        if not isinstance(inp, str):
            raise LampDataError(f"{path}: {where}: 'input' must be a string, found {type(inp).__name__}")
        profile = q["profile"]
        if not isinstance(profile, list):
            raise LampDataError(f"{path}: {where}: 'profile' must be a list, found {type(profile).__name__}")
        for j, item in enumerate(profile):
            _check_item(item, fields, path, f"{where}, profile item {j}")
        uid = q.get("user_id")
        if uid is not None:
            if isinstance(uid, int) and not isinstance(uid, bool):
                uid = str(uid)
            elif not isinstance(uid, str):
                raise LampDataError(f"{path}: {where}: 'user_id' must be a string, found {type(uid).__name__}")
        samples.append(LampSample(id=qid, input=inp, profile=profile, user_id=uid))
    return samples


def _check_item(item: Any, fields: Sequence[str], path: Path, where: str) -> None:
    if not isinstance(item, dict):
        raise LampDataError(f"{path}: {where}: expected an object, found {type(item).__name__}")
    if "id" in item:
        _check_id(item["id"], path, where)
    for f in fields:
        v = item.get(f)
        if v is None:
            raise LampDataError(
                f"{path}: {where}: missing field {f!r} (this task's profile items need {', '.join(fields)}); "
                "is this file for another task?"
            )
        if not isinstance(v, str) and not (f in _NUMERIC_OK and isinstance(v, (int, float)) and not isinstance(v, bool)):
            raise LampDataError(f"{path}: {where}: field {f!r} must be a string, found {type(v).__name__}")
    d = item.get("date")
    if d is not None and (isinstance(d, bool) or not isinstance(d, (str, int))):
        raise LampDataError(f"{path}: {where}: 'date' must be YYYY, YYYY-MM-DD or an int, found {d!r}")


def load_outputs(path: str | os.PathLike[str], task: str | None = None) -> LampOutputs:
    """Read and validate an outputs file (golds or predictions: same layout).

    ``{"task": "LaMP_2", "golds": [{"id": "...", "output": "..."}]}``. The task name is checked
    against ``task`` when given. Repeated ids are an error (the official scorer silently keeps
    the last one). Numeric outputs (e.g. a LaMP-3 rating written as ``4``) are turned into text.

    >>> import json, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "dev_outputs.json")
    >>> _ = open(p, "w").write(json.dumps({"task": "LaMP_3", "golds": [{"id": "1", "output": 4}]}))
    >>> o = load_outputs(p, "LaMP-3")
    >>> o.task, o.outputs
    ('LaMP-3', {'1': '4'})
    """
    path = Path(path)
    data = _read_json(path, "outputs")
    if not isinstance(data, dict) or "golds" not in data:
        hint = " (this looks like a questions file)" if isinstance(data, list) else ""
        raise LampDataError(
            f'{path}: expected an object {{"task": "LaMP_k", "golds": [...]}}{hint}; '
            "predictions use the same layout, with the outputs under 'golds'"
        )
    raw_task = data.get("task")
    if not isinstance(raw_task, str):
        raise LampDataError(f"{path}: missing or non-string 'task' (expected e.g. \"LaMP_2\")")
    try:
        file_task = canonical_task(raw_task)
    except KeyError as e:
        raise LampDataError(f"{path}: unknown task {raw_task!r} in 'task': {e}") from None
    if task is not None:
        # compare file keys: the legacy news LaMP-2 ("LaMP-2N") also writes "LaMP_2"
        if task_key(task) != task_key(file_task):
            raise LampDataError(
                f"{path}: file is for task {raw_task!r} but {task_key(task)!r} was expected; wrong file?"
            )
        file_task = canonical_task(task)
    golds = data["golds"]
    if not isinstance(golds, list):
        raise LampDataError(f"{path}: 'golds' must be a list, found {type(golds).__name__}")
    out: dict[str, str] = {}
    for i, g in enumerate(golds):
        if not isinstance(g, dict):
            raise LampDataError(f"{path}: golds #{i}: expected an object, found {type(g).__name__}")
        if "id" not in g or "output" not in g:
            missing = [k for k in ("id", "output") if k not in g]
            raise LampDataError(f"{path}: golds #{i}: missing field(s) {missing} (each entry needs id and output)")
        gid = _check_id(g["id"], path, f"golds #{i}")
        if gid in out:
            raise LampDataError(
                f"{path}: id {gid!r}: repeated (the official scorer would silently keep the last one); "
                "keep one output per id"
            )
        val = g["output"]
        if isinstance(val, (int, float)) and not isinstance(val, bool):
            val = str(val)
        if not isinstance(val, str):
            raise LampDataError(f"{path}: id {gid!r}: 'output' must be a string, found {type(val).__name__}")
        out[gid] = val
    return LampOutputs(task=file_task, outputs=out, path=path)


def _attach_outputs(samples: list[LampSample], outs: LampOutputs, qpath: Path) -> None:
    qids = {s.id for s in samples}
    missing = [s.id for s in samples if s.id not in outs.outputs]
    extra = [i for i in outs.outputs if i not in qids]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} question id(s) have no output (first: {missing[:5]})")
        if extra:
            parts.append(f"{len(extra)} output id(s) match no question (first: {extra[:5]})")
        raise LampDataError(
            f"{outs.path} does not match {qpath}: {'; '.join(parts)}; "
            "questions and outputs must come from the same task and split"
        )
    for s in samples:
        s.output = outs.outputs[s.id]


def load_task(data_dir: str | os.PathLike[str], task: str, split: str = "dev", seed: int = 0) -> LampTaskData:
    """Load one task and split from ``DIR/LaMP-k/{split}_questions.json`` (+ ``_outputs.json``).

    ``data_dir="synthetic"`` generates our synthetic LaMP-format data on the fly (default
    settings of :func:`tagpr_eval.data.synthetic.generate_task`, with ``seed``; ``seed`` is not
    used for files). The outputs file is optional (the test split has no golds): then every
    ``sample.output`` is ``None``.

    >>> d = load_task("synthetic", "LaMP-3", split="train")
    >>> d.task, d.split, d.samples[0].user_id is not None
    ('LaMP-3', 'train', True)
    """
    name = canonical_task(task)
    if str(data_dir) == "synthetic":
        from tagpr_eval.data.synthetic import generate_task

        return generate_task(name, split=split, seed=seed).data
    root = Path(data_dir)
    if not root.is_dir():
        raise LampDataError(
            f"data directory not found: {root}; pass a directory laid out as DIR/{name}/{split}_questions.json "
            "(`tagpr-eval download` creates one) or 'synthetic'"
        )
    tdir = root / name
    qpath = tdir / f"{split}_questions.json"
    if not qpath.exists():
        found = sorted(p.name for p in tdir.glob("*_questions.json")) if tdir.is_dir() else []
        others = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise LampDataError(
            f"{qpath} not found; expected layout DIR/{name}/{{split}}_questions.json"
            + (f"; {tdir} has {found}" if tdir.is_dir() else f"; {root} has folders {others[:10]}")
            + f"; run `tagpr-eval download --tasks {name} --split {split}` or check --data"
        )
    samples = load_questions(qpath, name)
    if not samples:
        raise LampDataError(f"{qpath}: contains no questions")
    opath: Path | None = tdir / f"{split}_outputs.json"
    assert opath is not None
    if opath.exists():
        _attach_outputs(samples, load_outputs(opath, name), qpath)
    else:
        opath = None
    return LampTaskData(task=name, split=split, samples=samples, questions_path=qpath, outputs_path=opath)


# ---------------------------------------------------------------------------------------------
# writing


def write_json_atomic(path: str | os.PathLike[str], obj: Any, indent: int | None = None) -> Path:
    """Write ``obj`` as UTF-8 JSON to ``path`` atomically (temp file + ``os.replace``)."""
    return atomic_write_json(path, obj, indent=indent)


def write_questions(path: str | os.PathLike[str], samples: Sequence[LampSample]) -> Path:
    """Write a questions file in the official layout (atomic)."""
    return write_json_atomic(path, [s.to_question() for s in samples])


def write_outputs(path: str | os.PathLike[str], task: str, outputs: Mapping[str, str]) -> Path:
    """Write an outputs (gold or prediction) file: ``{"task": "LaMP_k", "golds": [...]}`` (atomic).

    >>> import tempfile, os
    >>> p = write_outputs(os.path.join(tempfile.mkdtemp(), "preds.json"), "LaMP-2", {"01": "comedy"})
    >>> open(p).read()
    '{"task": "LaMP_2", "golds": [{"id": "01", "output": "comedy"}]}\\n'
    """
    return write_json_atomic(path, {"task": task_key(task), "golds": [{"id": k, "output": v} for k, v in outputs.items()]})


def write_task(task_data: LampTaskData, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``task_data`` as ``out_dir/LaMP-k/{split}_questions.json`` and, when every sample has
    a gold, ``{split}_outputs.json``. Returns the written paths by kind."""
    name = canonical_task(task_data.task)
    tdir = Path(out_dir) / name
    paths = {"questions": write_questions(tdir / f"{task_data.split}_questions.json", task_data.samples)}
    if task_data.has_golds:
        paths["outputs"] = write_outputs(tdir / f"{task_data.split}_outputs.json", name, task_data.golds())
    return paths
