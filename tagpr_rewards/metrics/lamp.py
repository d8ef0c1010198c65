"""LaMP task registry and the official scorer, offline.

Each LaMP task has a :class:`TaskSpec`, the one home of what tagpr knows about a task: kind,
labels, metrics and their direction, the file key, the profile fields, the query rule, the
item texts retrieval, prompts and PRMU read. Everything else asks :func:`get_task`. :func:`score_task` computes the exact result dict of the official LaMP scorer
(``{"accuracy", "f1"}``, ``{"MAE", "RMSE"}`` or ``{"rouge-1", "rouge-L"}``) with the metric
kernels of this package; :class:`LampAccumulator` does the same batch by batch.

ROUGE is reported as the exact mean by default. The official scorer instead reports a
bootstrap median (1000 unseeded resamples), which differs from the mean by about 1e-4..1e-3;
``bootstrap=1000, seed=...`` reproduces that aggregation, seeded (see
:mod:`tagpr_rewards.metrics.bootstrap`). Classification and rating metrics are never
bootstrapped by the official scorer, so ``bootstrap`` does not change them.

>>> get_task("lamp2").labels[:2]
('sci-fi', 'based on a book')
>>> score_task("LaMP-1", {"a": "[1]", "b": "[1]"}, {"a": "[1]", "b": "[2]"})
{'accuracy': 0.5, 'f1': 0.3333333333333333}
>>> score_task("LaMP-5", ["deep nets"], ["Deep nets for text"])
{'rouge-1': 0.6666666666666666, 'rouge-L': 0.6666666666666666}
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tagpr_rewards.metrics.bootstrap import DEFAULT_RESAMPLES, check_resamples, rouge_bootstrap
from tagpr_rewards.metrics.classification import ClassificationAccumulator
from tagpr_rewards.metrics.labels import LAMP1_LABELS, LAMP2_MOVIE_TAGS, LAMP2_NEWS_CATEGORIES
from tagpr_rewards.metrics.rating import RatingAccumulator
from tagpr_rewards.metrics.rouge import RougeAccumulator, rouge_per_sample
from tagpr_rewards.registry import unknown_name_error

__all__ = ["IdMismatchError", "LampAccumulator", "TaskSpec", "align_predictions", "detect_task", "get_task",
           "item_texts", "list_tasks", "pair_by_id", "query_text", "quoted_strings", "score_task"]

TaskKind = Literal["classification", "rating", "generation"]


@dataclass(frozen=True)
class TaskSpec:
    """Everything tagpr knows about one LaMP task: the one place to add or change a task.

    Attributes:
        name: canonical name, e.g. ``"LaMP-2"`` (legacy news LaMP-2: ``"LaMP-2N"``).
        key: the name in LaMP files (``{"task": "LaMP_2", ...}``).
        kind: ``"classification"``, ``"rating"`` or ``"generation"``.
        description: one line.
        labels: the label list in official order (classification), else ``None``.
        metrics: the official result keys, in order (the first is the primary metric).
        lower_better: the metrics where lower is better (``MAE``, ``RMSE``).
        legacy: True for the pre-2024 news LaMP-2.
        profile_fields: the fields every profile item must carry (besides ``id``, ``date``).
        instruction: how the official question ``input`` starts (detects the task of a bare input).
        query_marker: the question's content follows the first occurrence of this marker (the
            LaMP code's retrieval query); ``None`` for LaMP-1, whose query is the two quoted
            candidate titles.
        document_fields: the profile-item fields retrieval scores, joined by a space.
        long_field: the item field that prompts truncate to fit the token budget.
        display_fields: the item fields our tagged prompt shows, in order.
        item_key, item_value: what an item is about and what the user did with it (PRMU's
            key/value texts); ``item_value`` ``None`` when the item is only text (LaMP-7).
        output_name: what a generation task's answer is (``"headline"``), else ``""``.

    >>> t = get_task("LaMP-3")
    >>> t.metrics, t.lower_is_better, t.primary_metric
    (('MAE', 'RMSE'), {'MAE': True, 'RMSE': True}, 'MAE')
    >>> t.query("What is the score of the following review ...? review: Works well.")
    'Works well.'
    >>> t.document({"text": "Works well.", "score": "4"}), t.item_texts({"text": "Works well.", "score": 4})
    ('Works well.', ('Works well.', '4'))
    """

    name: str
    key: str
    kind: TaskKind
    description: str
    labels: tuple[str, ...] | None
    metrics: tuple[str, ...]
    lower_better: tuple[str, ...] = ()
    legacy: bool = False
    profile_fields: tuple[str, ...] = ()
    instruction: str = ""
    query_marker: str | None = ":"
    document_fields: tuple[str, ...] = ("text",)
    long_field: str = "text"
    display_fields: tuple[str, ...] = ("text",)
    item_key: str = "text"
    item_value: str | None = None
    output_name: str = ""

    @property
    def lower_is_better(self) -> dict[str, bool]:
        """Per metric: True when a lower value is better."""
        return {m: m in self.lower_better for m in self.metrics}

    @property
    def primary_metric(self) -> str:
        """The metric leaderboards sort by (the first official key)."""
        return self.metrics[0]

    def direction(self, metric: str) -> str:
        """``"lower"`` or ``"higher"`` (is better) for ``metric``.

        >>> get_task("LaMP-3").direction("RMSE"), get_task("LaMP-4").direction("rouge-1")
        ('lower', 'higher')
        """
        return "lower" if metric in self.lower_better else "higher"

    def better(self, metric: str, a: float, b: float) -> bool:
        """Whether value ``a`` of ``metric`` is strictly better than ``b``.

        >>> get_task("LaMP-3").better("MAE", 0.2, 0.3)
        True
        """
        return a < b if metric in self.lower_better else a > b

    def query(self, input: str) -> str:
        """The question's content: the text after the first :attr:`query_marker` (the LaMP code's
        retrieval query). LaMP-1: the 2nd and 3rd double-quoted strings (the candidate titles)
        joined by a space. Where the marker (or the quotes) is missing, where the LaMP code
        would crash, the whole input (LaMP-1: the quoted strings found).

        >>> get_task("LaMP-1").query('the title "P", which? [1]: "A b" [2]: "C d"')
        'A b C d'
        >>> get_task("LaMP-5").query("Generate a title for: We study x.")
        'We study x.'
        """
        if self.query_marker is None:
            q = quoted_strings(input)
            if len(q) >= 3:
                return f"{q[1]} {q[2]}"
            return " ".join(q[1:] or q) or input.strip()
        i = input.find(self.query_marker)
        return input.strip() if i < 0 else input[i + len(self.query_marker):].strip()

    def document(self, item: Mapping[str, Any]) -> str:
        """The text of a profile item that retrieval scores (the LaMP code's fields).

        >>> get_task("LaMP-1").document({"title": "T", "abstract": "A"})
        'T A'
        """
        if len(self.document_fields) == 1:
            return str(item[self.document_fields[0]])
        return " ".join(f"{item[f]}" for f in self.document_fields)

    def item_texts(self, item: Mapping[str, Any]) -> tuple[str, str]:
        """``(key, value)`` texts of a profile item: what it is about, what the user did with it.

        >>> get_task("LaMP-2").item_texts({"description": "A heist.", "tag": "comedy"})
        ('A heist.', 'comedy')
        """
        key = str(item.get(self.item_key, ""))
        return key, (key if self.item_value is None else str(item.get(self.item_value, "")))


def quoted_strings(text: str) -> list[str]:
    """The double-quoted strings of ``text``: a ``"`` opens a string and the next one closes it;
    an unclosed tail is dropped.

    >>> quoted_strings('a "b c" d "e" "f')
    ['b c', 'e']
    """
    out: list[str] = []
    inside = False
    cur: list[str] = []
    for ch in text:
        if ch == '"':
            if inside:
                out.append("".join(cur))
                cur = []
            inside = not inside
        elif inside:
            cur.append(ch)
    return out


_CLS = ("accuracy", "f1")
_RATING = ("MAE", "RMSE")
_GEN = ("rouge-1", "rouge-L")

_TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in (
        TaskSpec("LaMP-1", "LaMP_1", "classification", "personalised citation identification", LAMP1_LABELS, _CLS,
                 profile_fields=("title", "abstract"), instruction="For an author who has written the paper",
                 query_marker=None, document_fields=("title", "abstract"), long_field="abstract",
                 display_fields=("title", "abstract"), item_key="abstract", item_value="title"),
        TaskSpec("LaMP-2", "LaMP_2", "classification", "personalised movie tagging", LAMP2_MOVIE_TAGS, _CLS,
                 profile_fields=("description", "tag"), instruction="Which tag does this movie relate to",
                 query_marker="description:", document_fields=("description",), long_field="description",
                 display_fields=("description", "tag"), item_key="description", item_value="tag"),
        TaskSpec("LaMP-2N", "LaMP_2", "classification", "personalised news categorisation (legacy LaMP-2)",
                 LAMP2_NEWS_CATEGORIES, _CLS, legacy=True, profile_fields=("text", "category", "title"),
                 instruction="Which category does this article relate to", query_marker="article:",
                 document_fields=("title", "text"), display_fields=("title", "text", "category"),
                 item_value="category"),
        TaskSpec("LaMP-3", "LaMP_3", "rating", "personalised product rating", None, _RATING, _RATING,
                 profile_fields=("text", "score"), instruction="What is the score of the following review",
                 query_marker="review:", display_fields=("text", "score"), item_value="score"),
        TaskSpec("LaMP-4", "LaMP_4", "generation", "personalised news headline generation", None, _GEN,
                 profile_fields=("title", "text"), instruction="Generate a headline for the following article",
                 query_marker="article:", document_fields=("title", "text"), display_fields=("text", "title"),
                 item_value="title", output_name="headline"),
        TaskSpec("LaMP-5", "LaMP_5", "generation", "personalised scholarly title generation", None, _GEN,
                 profile_fields=("title", "abstract"), instruction="Generate a title for the following abstract",
                 document_fields=("title", "abstract"), long_field="abstract", display_fields=("abstract", "title"),
                 item_key="abstract", item_value="title", output_name="title"),
        TaskSpec("LaMP-6", "LaMP_6", "generation", "personalised email subject generation", None, _GEN,
                 profile_fields=("title", "text"), instruction="Generate a subject for the following email",
                 display_fields=("text", "title"), item_value="title", output_name="email subject"),
        TaskSpec("LaMP-7", "LaMP_7", "generation", "personalised tweet paraphrasing", None, _GEN,
                 profile_fields=("text",), instruction="Paraphrase the following tweet",
                 output_name="paraphrased tweet"),
    )
}

# normalised spelling ("lamp2", "lamp2news", ...) -> canonical name
_ALIASES: dict[str, str] = {re.sub(r"[^a-z0-9]", "", n.lower()): n for n in _TASKS}
_ALIASES.update({"lamp2news": "LaMP-2N", "lamp2legacy": "LaMP-2N", "lamp2movies": "LaMP-2",
                 "lamp2movie": "LaMP-2"})


def detect_task(input: str) -> TaskSpec | None:
    """The task whose official instruction ``input`` starts with (case and spacing ignored), else None.

    >>> detect_task("Generate a headline for the following article: Rain.").name
    'LaMP-4'
    >>> detect_task("plain text") is None
    True
    """
    head = " ".join(input.split()[:12]).lower()
    for spec in _TASKS.values():
        if spec.instruction and head.startswith(spec.instruction.lower()):
            return spec
    return None


def query_text(input: str, task: str | TaskSpec | None = None) -> str:
    """The content of a LaMP question ``input`` (what follows its instruction): the query rule of
    ``task`` (:meth:`TaskSpec.query`), or, without a task, of the task whose instruction the input
    starts with; an input no task's instruction starts with is cut after the first marker of a
    task that has a specific one (``description:``, ``article:``, ``review:``), else kept whole.

    >>> query_text("Which tag does this movie relate to among the following tags? ... description: A heist.")
    'A heist.'
    >>> query_text("Instruction ... review: Fine."), query_text("plain query")
    ('Fine.', 'plain query')
    """
    spec = get_task(task) if task is not None else detect_task(input)
    if spec is not None:
        return spec.query(input)
    hits = [(i, m) for m in _SPECIFIC_MARKERS if (i := input.find(m)) >= 0]
    if not hits:
        return input.strip()
    i, m = min(hits)
    return input[i + len(m):].strip()


_SPECIFIC_MARKERS = tuple(dict.fromkeys(t.query_marker for t in _TASKS.values()
                                        if t.query_marker is not None and t.query_marker != ":"))


def item_texts(item: Any, task: str | TaskSpec | None = None) -> tuple[str, str]:
    """``(key, value)`` texts of a profile item: :meth:`TaskSpec.item_texts` of ``task``, or,
    without a task, of the first task whose key and value fields the item carries; other
    layouts degrade to the item's first one or two fields (a string: itself twice).

    >>> item_texts({"id": "7", "text": "Great blender", "score": 5})
    ('Great blender', '5')
    >>> item_texts("just a string")
    ('just a string', 'just a string')
    """
    if not isinstance(item, Mapping):
        s = "" if item is None else str(item)
        return s, s
    if task is not None:
        return get_task(task).item_texts(item)
    for spec in _TASKS.values():
        if spec.item_value is not None and spec.item_key in item and spec.item_value in item:
            return spec.item_texts(item)
    fields = [str(val) for key, val in item.items() if key not in ("id", "date") and val is not None]
    if not fields:
        return "", ""
    if len(fields) == 1:
        return fields[0], fields[0]
    return fields[0], fields[1]


def list_tasks() -> list[str]:
    """Canonical task names.

    >>> list_tasks()
    ['LaMP-1', 'LaMP-2', 'LaMP-2N', 'LaMP-3', 'LaMP-4', 'LaMP-5', 'LaMP-6', 'LaMP-7']
    """
    return list(_TASKS)


def get_task(name: str | TaskSpec) -> TaskSpec:
    """The :class:`TaskSpec` for a task name in any usual spelling.

    Accepts ``"LaMP-2"``, ``"LaMP_2"`` (file key), ``"lamp2"``, ``"LaMP 2"``; the legacy news
    LaMP-2 is ``"LaMP-2N"`` or ``"LaMP-2-news"``. Unknown names raise ``KeyError`` with a
    did-you-mean hint.

    >>> get_task("LaMP_4").name, get_task("lamp-2-news").name
    ('LaMP-4', 'LaMP-2N')
    """
    if isinstance(name, TaskSpec):
        return name
    key = re.sub(r"[^a-z0-9]", "", str(name).lower())
    if key in _ALIASES:
        return _TASKS[_ALIASES[key]]
    raise unknown_name_error("LaMP task", str(name), list_tasks())


class IdMismatchError(ValueError):
    """Two id sets that must be equal are not; ``missing`` and ``extra`` list the ids (in order)."""

    def __init__(self, message: str, missing: list[str], extra: list[str]) -> None:
        super().__init__(message)
        self.missing = missing
        self.extra = extra


def _listed(ids: Sequence[Any], n: int = 5) -> str:
    shown = ", ".join(repr(i) for i in list(ids)[:n])
    return shown + (f" and {len(ids) - n} more" if len(ids) > n else "")


def _count(n: int, noun: str, verb: tuple[str, str] = ("has", "have")) -> str:
    return f"{n} {noun} id {verb[0]}" if n == 1 else f"{n} {noun} ids {verb[1]}"


def pair_by_id(
    golds: Mapping[Any, Any],
    preds: Mapping[Any, Any],
    gold_name: str = "gold",
    pred_name: str = "prediction",
) -> tuple[list[Any], list[Any], list[Any]]:
    """Pair two ``id -> value`` mappings: ``(ids, pred values, gold values)`` in gold order.

    The one id-pairing rule of tagpr (scoring files, loading questions with their outputs,
    :func:`score_task` on dicts): the id sets must be equal, as the official scorer requires.
    Otherwise an :class:`IdMismatchError` counts and lists (first five) the gold ids with no
    prediction and the prediction ids not in the golds, in the given nouns.

    >>> pair_by_id({"1": "A", "2": "B"}, {"2": "b", "1": "a"})
    (['1', '2'], ['a', 'b'], ['A', 'B'])
    >>> pair_by_id({"1": "A", "2": "B"}, {"1": "a", "3": "c"}, "question", "output")
    Traceback (most recent call last):
    ...
    tagpr_rewards.metrics.lamp.IdMismatchError: 1 question id has no output (first: '2'); 1 output id is not in the questions (first: '3')
    """
    ids = list(golds)
    try:  # fast path: every gold id has a prediction (a KeyError only when one is missing)
        values = [preds[k] for k in ids]
    except KeyError:
        values = None
    if values is not None and len(preds) == len(ids):
        return ids, values, list(golds.values())
    missing = [k for k in ids if k not in preds]
    extra = [k for k in preds if k not in golds]
    parts = []
    if missing:
        parts.append(f"{_count(len(missing), gold_name)} no {pred_name} (first: {_listed(missing)})")
    if extra:
        parts.append(f"{_count(len(extra), pred_name, ('is', 'are'))} not in the {gold_name}s "
                     f"(first: {_listed(extra)})")
    raise IdMismatchError("; ".join(parts), missing, extra)


def align_predictions(
    preds: Mapping[str, Any] | Sequence[Any],
    golds: Mapping[str, Any] | Sequence[Any],
) -> tuple[list[Any], list[Any], list[str] | None]:
    """Pair predictions with golds: ``(preds, golds, ids)`` in gold order.

    Dicts (id -> text) must have exactly the same id set, as the official scorer requires
    (:func:`pair_by_id`); aligned lists must have the same length (``ids`` is then ``None``).

    >>> align_predictions({"2": "b", "1": "a"}, {"1": "A", "2": "B"})
    (['a', 'b'], ['A', 'B'], ['1', '2'])
    """
    if isinstance(preds, Mapping) and isinstance(golds, Mapping):
        try:
            ids, p, g = pair_by_id(golds, preds)
        except IdMismatchError as e:
            raise IdMismatchError(f"{e}. The official scorer requires exactly the gold ids; predict every gold id "
                                  "once and drop the others", e.missing, e.extra) from None
        return p, g, [str(k) for k in ids]
    if isinstance(preds, Mapping) or isinstance(golds, Mapping):
        raise TypeError("pass predictions and golds both as dicts (id -> text) or both as aligned lists")
    if isinstance(preds, (str, bytes)) or isinstance(golds, (str, bytes)):
        raise TypeError("predictions and golds must be lists of strings or dicts, not a single string")
    preds = list(preds)
    golds = list(golds)
    if len(preds) != len(golds):
        raise ValueError(f"got {len(preds)} predictions for {len(golds)} golds; they must be aligned")
    return preds, golds, None


def _texts(values: list[Any], what: str, ids: list[str] | None) -> list[str]:
    out = []
    for i, v in enumerate(values):
        if isinstance(v, str):
            out.append(v)
        elif v is None and what == "prediction":
            out.append("")  # a missing prediction text scores as an empty answer
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append(str(v))
        else:
            where = f"id {ids[i]!r}" if ids is not None else f"position {i}"
            raise TypeError(f"{what} at {where} is {type(v).__name__}, expected a string")
    return out


class LampAccumulator:
    """Accumulate predictions batch by batch and compute the official result dict.

    States are the metric's sums/counts (a confusion count for classification), never lists.
    ROUGE is the exact mean (bootstrap needs every per-sample score; use :func:`score_task`).

    >>> acc = LampAccumulator("LaMP-3")
    >>> acc.update(["4"], ["5"]); acc.update({"x": "oops"}, {"x": "3"})
    >>> acc.compute()
    {'MAE': 1.5, 'RMSE': 1.5811388300841898}
    >>> acc.stats()["unparseable"]
    1
    """

    def __init__(self, task: str | TaskSpec) -> None:
        self.task = get_task(task)
        self._acc: ClassificationAccumulator | RatingAccumulator | RougeAccumulator
        if self.task.kind == "classification":
            assert self.task.labels is not None
            self._acc = ClassificationAccumulator(self.task.labels)
        elif self.task.kind == "rating":
            self._acc = RatingAccumulator()
        else:
            self._acc = RougeAccumulator()

    def reset(self) -> None:
        """Forget everything seen so far."""
        self._acc.reset()

    @property
    def count(self) -> int:
        """Number of samples added."""
        return self._acc.count

    def update(self, preds: Mapping[str, Any] | Sequence[Any], golds: Mapping[str, Any] | Sequence[Any]) -> None:
        """Add predictions and golds (dicts id -> text, or aligned lists)."""
        p, g, ids = align_predictions(preds, golds)
        self._update_aligned(p, g, ids)

    def _update_aligned(self, p: list[Any], g: list[Any], ids: list[str] | None) -> list[list[float]] | None:
        p = _texts(p, "prediction", ids)
        g = _texts(g, "gold", ids)
        acc = self._acc
        if isinstance(acc, RougeAccumulator):
            # the official scorer strips both sides (stripping never changes ROUGE tokens)
            r1, rl = rouge_per_sample(p, g)
            acc.add_scores(r1, rl)
            return [r1, rl]
        acc.update(p, g, ids)
        return None

    def compute(self) -> dict[str, float]:
        """The official result dict for everything added so far."""
        return self._acc.compute()

    def stats(self) -> dict[str, int]:
        """Counts worth reporting next to the metrics (``count``, ``invalid``/``unparseable``)."""
        acc = self._acc
        out = {"count": acc.count}
        if isinstance(acc, ClassificationAccumulator):
            out["invalid"] = acc.n_invalid
        elif isinstance(acc, RatingAccumulator):
            out["unparseable"] = acc.n_unparseable
            out["nonfinite"] = acc.n_nonfinite
        return out

    def __repr__(self) -> str:
        return f"LampAccumulator({self.task.name!r}, count={self.count})"


def score_task(
    task: str | TaskSpec,
    preds: Mapping[str, Any] | Sequence[Any],
    golds: Mapping[str, Any] | Sequence[Any],
    bootstrap: int | bool | None = None,
    seed: int | None = None,
) -> dict[str, float]:
    """Score predictions exactly as the official LaMP scorer; returns its result dict.

    Args:
        task: task name in any spelling accepted by :func:`get_task`, or a TaskSpec.
        preds, golds: dicts ``id -> text`` with exactly the same ids, or aligned lists.
        bootstrap: for generation tasks, ``None``/``0`` (default) reports the exact mean;
            ``True`` or a number of resamples reports the official bootstrap median
            (1000 resamples officially). Ignored for classification and rating tasks, which
            the official scorer does not bootstrap.
        seed: seed of the bootstrap (``None``: fresh randomness, like the official scorer).

    Returns:
        ``{"accuracy", "f1"}`` (LaMP-1, LaMP-2), ``{"MAE", "RMSE"}`` (LaMP-3) or
        ``{"rouge-1", "rouge-L"}`` (LaMP-4..7), values as Python floats.

    >>> score_task("LaMP-3", ["4", "nope"], ["4", "3"])
    {'MAE': 1.0, 'RMSE': 1.4142135623730951}
    >>> r = score_task("LaMP-4", ["a b", "c"], ["a b", "c d"], bootstrap=True, seed=0)
    >>> sorted(r)
    ['rouge-1', 'rouge-L']
    """
    spec = get_task(task)
    p, g, ids = align_predictions(preds, golds)
    if not g:
        raise ValueError(f"{spec.name}: nothing to score (no golds)")
    acc = LampAccumulator(spec)
    per_sample = acc._update_aligned(p, g, ids)
    n_boot = DEFAULT_RESAMPLES if bootstrap is True else (bootstrap or 0)
    if n_boot:
        check_resamples(n_boot)
    if spec.kind == "generation" and n_boot:
        assert per_sample is not None
        return rouge_bootstrap(per_sample[0], per_sample[1], n_samples=n_boot, seed=seed)
    return acc.compute()
