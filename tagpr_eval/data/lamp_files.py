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
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tagpr_rewards.files import atomic_write_json
from tagpr_rewards.metrics.lamp import IdMismatchError, get_task, list_tasks, pair_by_id

__all__ = [
    "PROFILE_FIELDS",
    "LampDataError",
    "LampOutputs",
    "LampSample",
    "LampTaskData",
    "canonical_task",
    "load_outputs",
    "load_questions",
    "load_task_files",
    "read_outputs",
    "task_key",
    "write_json_atomic",
    "write_outputs",
    "write_questions",
    "write_task",
]

#: Required profile-item fields per task (besides ``id`` and the optional ``date``), from each
#: task's :class:`~tagpr_rewards.metrics.lamp.TaskSpec` (``profile_fields``).
PROFILE_FIELDS: dict[str, tuple[str, ...]] = {t: get_task(t).profile_fields for t in list_tasks()}

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
    return str(get_task(task).name)


def task_key(task: str) -> str:
    """The task name as written in outputs files (``"LaMP_2"``).

    >>> task_key("LaMP-2")
    'LaMP_2'
    """
    return str(get_task(task).key)


def _fields(task: str) -> tuple[str, ...]:
    return tuple(get_task(task).profile_fields)


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
    """An outputs (gold or prediction) file: canonical task name, ``{id: output}`` in file order,
    the task as the file writes it (``"LaMP_2"``) and notes (non-fatal findings, e.g. outputs
    that were numbers)."""

    task: str
    outputs: dict[str, str]
    path: Path | None = None
    raw_task: str = ""
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.outputs)


# ---------------------------------------------------------------------------------------------
# reading


def _read_json(path: Path, what: str) -> Any:
    """The JSON in ``path``: UTF-8 with or without a byte-order mark; every failure is a
    :class:`LampDataError` naming the file (and line:column for malformed JSON)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise LampDataError(f"{path}: {what} file not found") from None
    except OSError as e:  # a directory, no permission, ...
        raise LampDataError(f"{path}: cannot read the {what} file: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8-sig")  # a BOM (Windows editors write one) is not part of the JSON
    except UnicodeDecodeError as e:
        raise LampDataError(f"{path}: the {what} file is not UTF-8 (byte {e.start}); LaMP files are UTF-8 JSON") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise LampDataError(
            f"{path}:{e.lineno}:{e.colno}: malformed JSON in the {what} file ({e.msg}); "
            "the file is probably truncated or edited by hand: re-download or regenerate it"
        ) from None
    except RecursionError:
        raise LampDataError(f"{path}: the {what} file nests too deeply to be a LaMP file") from None
    except ValueError as e:  # e.g. an integer of more than 4,300 digits (Python's limit)
        raise LampDataError(f"{path}: the {what} file holds a value JSON cannot read here: {e}; "
                            "LaMP outputs are strings: quote the value") from None


def _check_id(value: Any, path: Path | str, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise LampDataError(
            f"{path}: {where}: id must be a string; {value!r} is a number. LaMP ids are strings (some with "
            f'leading zeros, like "0177") and must stay strings: quote it, "{value}" (if it had leading zeros '
            "they are already lost: regenerate the file from the original)"
        )
    raise LampDataError(f"{path}: {where}: id must be a string, got {type(value).__name__} {_short(value)}")


def _short(v: Any, n: int = 60) -> str:
    r = repr(v)
    return r if len(r) <= n else r[: n - 3] + "..."


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
    tagpr_eval.data.lamp_files.LampDataError: ...question '07', profile item 0: id must be a string; 1 is a number...
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


def read_outputs(path: str | os.PathLike[str], task: str | None = None, role: str = "outputs") -> LampOutputs:
    """Read and validate an outputs file (golds or predictions: same layout): the one reader of
    this layout, used by :func:`load_task` and by ``tagpr-eval score`` alike.

    ``{"task": "LaMP_2", "golds": [{"id": "...", "output": "..."}]}``, UTF-8 with or without a
    byte-order mark. ``role`` names the file in messages (``"golds"``, ``"predictions"``). The
    file's task is checked against ``task`` when given (the legacy news LaMP-2, ``"LaMP-2N"``,
    shares the file key ``LaMP_2``). Strict: ids must be strings and appear once (the official
    scorer silently keeps the last), every entry needs ``id`` and ``output``. An output that is
    a number (a LaMP-3 rating written as ``4``) is taken as its text, and a note says which ids.

    >>> import json, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "dev_outputs.json")
    >>> _ = open(p, "w").write(json.dumps({"task": "LaMP_3", "golds": [{"id": "1", "output": 4}]}))
    >>> o = read_outputs(p, "LaMP-3")
    >>> o.task, o.outputs, o.notes[0].endswith("1 output was a number, taken as its text (ids '1')")
    ('LaMP-3', {'1': '4'}, True)
    """
    path = Path(path)
    p = str(path)
    data = _read_json(path, role)
    expect = 'expected {"task": "LaMP_k", "golds": [{"id": "...", "output": "..."}, ...]}'
    if not isinstance(data, dict) or "golds" not in data:
        hint = " (this looks like a questions file)" if isinstance(data, list) else ""
        what = f"a JSON {type(data).__name__}" if not isinstance(data, dict) else "an object with no 'golds' key"
        raise LampDataError(f"{p}: the {role} file holds {what}{hint}; {expect} (predictions use the same "
                            "layout, with the outputs under 'golds')")
    raw_task = data.get("task")
    if not isinstance(raw_task, str):
        raise LampDataError(f"{p}: 'task' must be a string like \"LaMP_2\", got {_short(raw_task)}; {expect}")
    try:
        file_task = canonical_task(raw_task)
    except KeyError as e:
        raise LampDataError(f"{p}: unknown task {raw_task!r} in 'task': {e.args[0] if e.args else e}") from None
    if task is not None:
        # compare file keys: the legacy news LaMP-2 ("LaMP-2N") also writes "LaMP_2"
        if task_key(task) != task_key(file_task):
            raise LampDataError(f"{p}: file is for task {raw_task!r} but {task_key(task)!r} was expected; wrong file?")
        file_task = canonical_task(task)
    items = data["golds"]
    if not isinstance(items, list):
        raise LampDataError(f"{p}: 'golds' must be a list of {{\"id\", \"output\"}} objects, got "
                            f"{type(items).__name__} (predictions also sit under the key 'golds')")
    out: dict[str, str] = {}
    first: dict[str, int] = {}
    numeric: list[str] = []
    for i, it in enumerate(items):
        # fast path: a well-formed entry (messages are only built for bad ones)
        if type(it) is dict:
            sid = it.get("id")
            val = it.get("output")
            if type(sid) is str and type(val) is str and sid not in out:
                out[sid] = val
                continue
        sid, val, was_number = _check_entry(p, i, it, out, first, items)
        if was_number:
            numeric.append(sid)
        out[sid] = val
    notes = []
    if numeric:
        n = len(numeric)
        what = "output was a number, taken as its text" if n == 1 else "outputs were numbers, taken as their text"
        notes.append(f"{p}: {n} {what} "
                     f"(ids {', '.join(repr(i) for i in numeric[:5])}{f' and {n - 5} more' if n > 5 else ''})")
    return LampOutputs(task=file_task, outputs=out, path=path, raw_task=raw_task, notes=notes)


def _check_entry(p: str, i: int, it: Any, out: dict[str, str], first: dict[str, int],
                 items: list[Any]) -> tuple[str, str, bool]:
    """Validate one entry the fast path refused: ``(id, output text, was a number)``, or a
    :class:`LampDataError` naming the file, the entry and the id."""
    where = f"golds[{i}]"
    if not isinstance(it, dict):
        raise LampDataError(f"{p}: {where} must be an object with 'id' and 'output', got {_short(it)}")
    if "id" not in it:
        raise LampDataError(f"{p}: {where} has no 'id' key (each entry needs id and output)")
    sid = _check_id(it["id"], p, where)
    if "output" not in it:
        raise LampDataError(f"{p}: id {sid!r} ({where}) has no 'output' key (each entry needs id and output)")
    if sid in out:
        j = first.get(sid)
        if j is None:  # the fast path does not record positions: find the first one
            j = next(k for k, x in enumerate(items) if isinstance(x, dict) and x.get("id") == sid)
        raise LampDataError(f"{p}: duplicate id {sid!r} (golds[{j}] and golds[{i}]); each id must appear once "
                            "(the official scorer silently keeps the last)")
    val = it["output"]
    if isinstance(val, str):
        return sid, val, False
    if isinstance(val, (int, float)) and not isinstance(val, bool):
        return sid, (repr(val) if isinstance(val, float) and not math.isfinite(val) else str(val)), True
    raise LampDataError(f"{p}: id {sid!r} ({where}): output must be a string, got {type(val).__name__} {_short(val)}")


def load_outputs(path: str | os.PathLike[str], task: str | None = None) -> LampOutputs:
    """Read and validate an outputs file: :func:`read_outputs` (the one reader of the layout).

    >>> import json, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "dev_outputs.json")
    >>> _ = open(p, "w").write(json.dumps({"task": "LaMP_3", "golds": [{"id": "1", "output": 4}]}))
    >>> o = load_outputs(p, "LaMP-3")
    >>> o.task, o.outputs
    ('LaMP-3', {'1': '4'})
    """
    return read_outputs(path, task)


def _attach_outputs(samples: list[LampSample], outs: LampOutputs, qpath: Path) -> None:
    try:
        _, values, _ = pair_by_id({s.id: s for s in samples}, outs.outputs, "question", "output")
    except IdMismatchError as e:
        raise LampDataError(f"{outs.path} does not match {qpath}: {e}; "
                            "questions and outputs must come from the same task and split") from None
    for s, v in zip(samples, values):
        s.output = v


def load_task_files(data_dir: str | os.PathLike[str], task: str, split: str = "dev") -> LampTaskData:
    """Load one task and split from ``DIR/LaMP-k/{split}_questions.json`` (+ ``_outputs.json``).

    The outputs file is optional (the test split has no golds): then every ``sample.output``
    is ``None``. (:func:`tagpr_eval.data.load_task` also takes ``"synthetic"``.)
    """
    name = canonical_task(task)
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
