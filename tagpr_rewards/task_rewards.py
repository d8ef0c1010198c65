"""LaMP task rewards: the task metric of the answer extracted from a tagged completion.

The answer is extracted with :func:`tagpr_rewards.tags.extract_answer` (the content of the
schema's answer tag, else the documented last-line fallback) and scored against the sample's
reference (``references=`` or the dataset column ``reference``) with the LaMP metric kernels
of :mod:`tagpr_rewards.metrics`:

* :class:`LabelMatchReward` (LaMP-1, LaMP-2): 1 when the answer equals the reference, else 0.
  Strict by default, exactly like the official scorer (both sides stripped, case-sensitive);
  ``lenient=True`` compares case-, space- and punctuation-insensitively (quotes and brackets
  dropped, so ``"1"`` matches ``"[1]"``).
* :class:`RatingReward` (LaMP-3): ``1 - |pred - gold| / 4`` clipped to [0, 1]; an unparseable
  (or nan/inf) answer scores 0.
* :class:`RougeReward` (LaMP-4..7): ROUGE-1 F, ROUGE-L F or a weighted mix (ours: the equal
  mix by default), identical to ``rouge_score``.
* :func:`lamp_task_reward` picks the right one for a task; registered as ``lamp_task``.

A missing reference gives the score ``None`` ("not applicable") with a reason; a bad,
empty or non-text completion gets a defined score, never an exception. Components:
``answer_from_tag`` (1.0 when the answer came from the answer tag, else 0.0) and the metric.

>>> r = lamp_task_reward("LaMP-2", schema="think-answer")
>>> out = r(["<think>likes space</think><answer>sci-fi</answer>", "comedy"],
...         references=["sci-fi", "sci-fi"])
>>> out.scores, out.components["answer_from_tag"]
([1.0, 0.0], [1.0, 0.0])
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from tagpr_rewards.base import Batch, Reward, RewardOutput
from tagpr_rewards.metrics.lamp import get_task
from tagpr_rewards.metrics.rating import parse_rating
from tagpr_rewards.metrics.rouge import rouge_per_sample
from tagpr_rewards.registry import register_reward, unknown_name_error
from tagpr_rewards.tags import AnswerExtraction, TagSchema, batch_parses, extract_answer, load_schema

__all__ = [
    "FormatCreditReward",
    "LabelMatchReward",
    "LampTaskReward",
    "RatingReward",
    "RougeReward",
    "TaskReward",
    "batch_answers",
    "lamp_task_reward",
    "normalize_label",
]

logger = logging.getLogger("tagpr_rewards")

DEFAULT_SCHEMA = "personalization-9"


def batch_answers(batch: Batch, schema: TagSchema | str) -> list[AnswerExtraction]:
    """The extracted answer of every completion of ``batch`` (memoised per batch and schema).

    >>> b = Batch.from_inputs(["<think>x</think><answer> comedy </answer>", None])
    >>> [a.method for a in batch_answers(b, "think-answer")]
    ['tag', 'empty']
    """
    sch = load_schema(schema)
    parses = batch_parses(batch, sch)

    def compute() -> list[AnswerExtraction]:
        return [extract_answer(t, sch, parse=p) for t, p in zip(batch.completions, parses)]

    return batch.memo(("answer", sch.name_key), compute)  # type: ignore[no-any-return]


def normalize_label(text: str) -> str:
    """Lenient form of a label: casefolded, only letters and digits kept.

    Spaces, punctuation, quotes and brackets vanish, so ``"[1]"`` ~ ``"1"`` and
    ``"Sci-Fi."`` ~ ``"sci-fi"``.

    >>> normalize_label(" [1] "), normalize_label('"Sci-Fi."'), normalize_label("Science & Technology")
    ('1', 'scifi', 'sciencetechnology')
    """
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def _reference_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


class TaskReward(Reward):
    """Base of the LaMP task rewards: answer extraction, references, bookkeeping.

    Subclasses implement :meth:`score_answers` on the extracted answers and references.
    """

    name = "task"
    #: the dataset columns this reward reads per sample (checked by the trainer adapters)
    required_columns: tuple[str, ...] = ("reference",)

    def __init__(self, schema: TagSchema | str = DEFAULT_SCHEMA) -> None:
        load_schema(schema)  # fail early on an unknown schema name
        self.schema = schema

    def references(self, batch: Batch) -> Sequence[Any] | None:
        """``references=`` if given, else the dataset column ``reference``."""
        if batch.references is not None:
            return batch.references
        return batch.columns.get("reference")

    def score_answers(self, answers: list[str], refs: list[str]) -> tuple[list[float], dict[str, list[float | None]],
                                                                           list[str]]:
        """Scores, components and reasons for aligned answers and reference texts."""
        raise NotImplementedError

    def score(self, batch: Batch) -> RewardOutput:
        return _score_rows(batch, self.schema, self.references(batch), [self] * len(batch), self.name)


def _score_rows(batch: Batch, schema: TagSchema | str, refs: Sequence[Any] | None,
                scorers: Sequence[TaskReward | str], name: str) -> RewardOutput:
    """Score each row with its own scorer (a :class:`TaskReward`; a string = why it has none)."""
    n = len(batch)
    scores: list[float | None] = [None] * n
    reasons = [""] * n
    from_tag: list[float | None] = [None] * n
    components: dict[str, list[float | None]] = {"answer_from_tag": from_tag}
    try:
        answers = batch_answers(batch, schema)
    except Exception as e:  # noqa: BLE001 - a reward never raises on completions
        logger.warning("%s: answer extraction failed (%s); scoring the raw completions", name, e)
        answers = [AnswerExtraction(c.strip(), "fallback-last-line") for c in batch.completions]
    groups: dict[int, tuple[TaskReward, list[int], list[str]]] = {}
    for i in range(n):
        from_tag[i] = 1.0 if answers[i].method == "tag" else 0.0
        scorer = scorers[i]
        if isinstance(scorer, str):
            reasons[i] = scorer
            continue
        ref = None if refs is None else _reference_text(refs[i])
        if ref is None:
            reasons[i] = ("no reference for this sample" if refs is None or refs[i] is None
                          else f"reference is not text ({type(refs[i]).__name__})")
            continue
        _, todo, ref_texts = groups.setdefault(id(scorer), (scorer, [], []))
        todo.append(i)
        ref_texts.append(ref)
    for scorer, todo, ref_texts in groups.values():
        sub_scores, sub_components, sub_reasons = scorer.score_answers([answers[i].answer for i in todo], ref_texts)
        for key, vals in sub_components.items():
            col = components.setdefault(key, [None] * n)
            for j, i in enumerate(todo):
                col[i] = vals[j]
        for j, i in enumerate(todo):
            scores[i] = sub_scores[j]
            problem = batch.problems[i]
            why = sub_reasons[j]
            if answers[i].method == "empty":
                why = "no answer found" + (f" ({problem})" if problem else "")
            elif answers[i].method != "tag":
                why = f"answer from {answers[i].method}" + (f"; {why}" if why else "")
            reasons[i] = why
    return RewardOutput(scores, components, reasons)


@register_reward("label_match")
class LabelMatchReward(TaskReward):
    """1.0 when the extracted answer is the reference label, else 0.0 (LaMP-1, LaMP-2).

    Args:
        labels: the task's label list (optional); adds the component ``valid_label`` (1.0 when
            the answer is one of the labels, compared the same strict/lenient way).
        lenient: compare with :func:`normalize_label` (case, spaces, punctuation, quotes and
            brackets ignored) instead of the official exact, case-sensitive match.
        schema: tag schema used to extract the answer.

    Formula: ``r = 1[strip(answer) == strip(reference)]`` (official LaMP accuracy per sample).

    >>> r = LabelMatchReward(labels=["[1]", "[2]"], lenient=True, schema="think-answer")
    >>> r(["<answer>1</answer>", "<answer>[2]</answer>"], references=["[1]", "[1]"]).scores
    [1.0, 0.0]
    >>> LabelMatchReward(schema="think-answer")(["<answer>1</answer>"], references=["[1]"]).scores
    [0.0]
    """

    name = "label_match"

    def __init__(
        self,
        labels: Sequence[str] | None = None,
        lenient: bool = False,
        schema: TagSchema | str = DEFAULT_SCHEMA,
    ) -> None:
        super().__init__(schema)
        self.labels = None if labels is None else tuple(labels)
        self.lenient = bool(lenient)

    def _key(self, text: str) -> str:
        return normalize_label(text) if self.lenient else text.strip()

    def score_answers(self, answers: list[str], refs: list[str]) -> tuple[list[float], dict[str, list[float | None]],
                                                                           list[str]]:
        label_keys = None if self.labels is None else {self._key(lab) for lab in self.labels}
        scores: list[float] = []
        valid: list[float | None] = []
        reasons: list[str] = []
        for a, ref in zip(answers, refs):
            ka = self._key(a)
            ok = ka == self._key(ref)
            scores.append(1.0 if ok else 0.0)
            is_label = None if label_keys is None else ka in label_keys
            valid.append(None if is_label is None else float(is_label))
            if ok:
                reasons.append("")
            elif is_label is False:
                reasons.append(f"answer {a[:40]!r} is not a label")
            else:
                reasons.append(f"answer {a[:40]!r} != reference {ref.strip()[:40]!r}")
        comps: dict[str, list[float | None]] = {}
        if self.labels is not None:
            comps["valid_label"] = valid
        return scores, comps, reasons


_NUMBER_RE = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


@register_reward("rating")
class RatingReward(TaskReward):
    """``1 - |pred - gold| / 4``, clipped to [0, 1]; unparseable answer -> 0 (LaMP-3).

    Args:
        lenient: when the answer is not a number as a whole, use the first number in it
            (``"4 stars"`` -> 4). Default strict: the official scorer's ``float(answer)``.
        scale: the rating range ``gold_max - gold_min`` (4 for LaMP-3's 1..5).
        schema: tag schema used to extract the answer.

    Components: ``parsed`` (1.0/0.0) and ``abs_error`` as the official scorer counts it
    (an unparseable answer counts as the farther of 1 and 5).

    >>> r = RatingReward(schema="think-answer")
    >>> r(["<answer>4</answer>", "<answer>four</answer>", "<answer>nan</answer>"],
    ...   references=["5", "3", "3"]).scores
    [0.75, 0.0, 0.0]
    """

    name = "rating"

    def __init__(self, lenient: bool = False, scale: float = 4.0, schema: TagSchema | str = DEFAULT_SCHEMA) -> None:
        super().__init__(schema)
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.lenient = bool(lenient)
        self.scale = float(scale)

    def _parse(self, text: str) -> float | None:
        v = parse_rating(text)
        if v is None and self.lenient:
            m = _NUMBER_RE.search(text)
            v = parse_rating(m.group(0)) if m else None
        return v

    def score_answers(self, answers: list[str], refs: list[str]) -> tuple[list[float], dict[str, list[float | None]],
                                                                           list[str]]:
        from tagpr_rewards.metrics.rating import rating_fallback

        scores: list[float] = []
        parsed: list[float | None] = []
        errors: list[float | None] = []
        reasons: list[str] = []
        for a, ref in zip(answers, refs):
            gold = parse_rating(ref)
            pred = self._parse(a)
            parsed.append(0.0 if pred is None else 1.0)
            if gold is None:
                scores.append(0.0)
                errors.append(None)
                reasons.append(f"reference {ref[:20]!r} is not a number")
                continue
            if pred is None:
                scores.append(0.0)
                errors.append(abs(rating_fallback(gold) - gold))
                reasons.append(f"answer {a[:40]!r} is not a number")
                continue
            err = abs(pred - gold)
            errors.append(err)
            scores.append(min(1.0, max(0.0, 1.0 - err / self.scale)))
            reasons.append("")
        return scores, {"parsed": parsed, "abs_error": errors}, reasons


_ROUGE_KEYS = ("rouge-1", "rouge-L")


def _rouge_weights(rouge: str | Mapping[str, float]) -> dict[str, float]:
    if isinstance(rouge, str):
        key = rouge.strip()
        aliases = {"rouge1": "rouge-1", "rouge-1": "rouge-1", "rougel": "rouge-L", "rouge-l": "rouge-L"}
        if key.lower() == "mix":
            return {"rouge-1": 0.5, "rouge-L": 0.5}
        if key.lower() not in aliases:
            raise unknown_name_error("ROUGE variant", key, [*_ROUGE_KEYS, "mix"])
        return {aliases[key.lower()]: 1.0}
    weights = {}
    for k, w in rouge.items():
        if k not in _ROUGE_KEYS:
            raise unknown_name_error("ROUGE variant", str(k), _ROUGE_KEYS)
        weights[k] = float(w)
        if not math.isfinite(weights[k]) or weights[k] < 0:
            raise ValueError(f"ROUGE weight for {k!r} must be a non-negative number, got {w!r}")
    total = sum(weights.values())
    if total <= 0:
        raise ValueError(f"ROUGE weights must not all be zero: {dict(rouge)}")
    return {k: w / total for k, w in weights.items()}


@register_reward("rouge")
class RougeReward(TaskReward):
    """ROUGE F-measure of the extracted answer against the reference (LaMP-4..7).

    Args:
        rouge: ``"rouge-1"``, ``"rouge-L"``, ``"mix"`` (ours, default: the equal mix of the
            two official metrics) or weights ``{"rouge-1": w1, "rouge-L": w2}`` (normalised to
            sum 1).
        schema: tag schema used to extract the answer.

    Formula: ``r = Σ_k w_k · ROUGE-k F(answer, reference)`` with ``rouge_score``'s
    tokenisation and no stemming (Lin, 2004).

    >>> r = RougeReward(rouge="rouge-1", schema="think-answer")
    >>> r(["<answer>police arrest man</answer>"], references=["Man arrested by police"]).scores
    [0.5714285714285715]
    """

    name = "rouge"

    def __init__(self, rouge: str | Mapping[str, float] = "mix", schema: TagSchema | str = DEFAULT_SCHEMA) -> None:
        super().__init__(schema)
        self.weights = _rouge_weights(rouge)

    def score_answers(self, answers: list[str], refs: list[str]) -> tuple[list[float], dict[str, list[float | None]],
                                                                           list[str]]:
        r1, rl = rouge_per_sample(answers, refs)
        w1 = self.weights.get("rouge-1", 0.0)
        wl = self.weights.get("rouge-L", 0.0)
        scores = [w1 * a + wl * b for a, b in zip(r1, rl)] if w1 and wl else (r1 if w1 else rl)
        reasons = ["" if s > 0 else "no word in common with the reference" for s in scores]
        comps: dict[str, list[float | None]] = {"rouge-1": list(r1), "rouge-L": list(rl)}
        return list(scores), comps, reasons


def lamp_task_reward(
    task: str,
    schema: TagSchema | str = DEFAULT_SCHEMA,
    lenient: bool = False,
    rouge: str | Mapping[str, float] | None = None,
) -> TaskReward:
    """The task reward for one LaMP task (the registry's ``lamp_task`` is :class:`LampTaskReward`,
    which also reads each row's ``task``).

    LaMP-1/LaMP-2 -> :class:`LabelMatchReward` with the task's labels; LaMP-3 ->
    :class:`RatingReward`; LaMP-4..7 -> :class:`RougeReward` (``rouge`` picks the variant;
    ``lenient`` does not apply: ROUGE already ignores case and punctuation).

    >>> lamp_task_reward("LaMP_3", schema="think-answer").name
    'rating'
    >>> lamp_task_reward("LaMP-7", schema="think-answer", rouge="rouge-L").weights
    {'rouge-L': 1.0}
    """
    spec = get_task(task)
    if spec.kind == "classification":
        if rouge is not None:
            raise ValueError(f"rouge= applies to generation tasks, not {spec.name}")
        return LabelMatchReward(labels=spec.labels, lenient=lenient, schema=schema)
    if spec.kind == "rating":
        if rouge is not None:
            raise ValueError(f"rouge= applies to generation tasks, not {spec.name}")
        return RatingReward(lenient=lenient, schema=schema)
    return RougeReward(rouge="mix" if rouge is None else rouge, schema=schema)


@register_reward("lamp_task")
class LampTaskReward(TaskReward):
    """The LaMP task reward of each row's own task (registry name ``lamp_task``).

    A batch's ``task`` column (``LaMP-2``, ``LaMP_3``…, canonicalised) picks the metric per
    row, so a mixed-task batch scores each row with its task's metric
    (:func:`lamp_task_reward`); ``task`` is the default for rows without one (``None``: such a
    row is not applicable, with a reason). A row naming an unknown task gets ``None`` and the
    reason (logged once per name). Components: the union of the per-task components
    (``None`` where a row's metric has no such component).

    Args:
        task: default task (also fixes the metric when the batch has no ``task`` column).
        schema, lenient, rouge: as :func:`lamp_task_reward` (``rouge`` applies to the
            generation tasks only; ``lenient`` to the classification and rating tasks).

    >>> r = LampTaskReward("LaMP-2", schema="think-answer")
    >>> out = r(["<answer>sci-fi</answer>", "<answer>4</answer>"], references=["sci-fi", "5"],
    ...         task=["LaMP-2", "LaMP_3"])
    >>> out.scores, out.components["abs_error"]
    ([1.0, 0.75], [None, 1.0])
    """

    name = "lamp_task"

    def __init__(
        self,
        task: str | None = None,
        schema: TagSchema | str = DEFAULT_SCHEMA,
        lenient: bool = False,
        rouge: str | Mapping[str, float] | None = None,
    ) -> None:
        super().__init__(schema)
        self.lenient = bool(lenient)
        self.rouge = rouge
        if rouge is not None:
            _rouge_weights(rouge)  # fail early on a bad variant
        self.task = None if task is None else get_task(task).name
        self._scorers: dict[str, TaskReward] = {}
        self._warned: set[str] = set()
        if self.task is not None:
            if rouge is not None and get_task(self.task).kind != "generation":
                raise ValueError(f"rouge= applies to generation tasks, not {self.task}")
            self.scorer(self.task)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_scorers": {}, "_warned": set()}

    def scorer(self, task: str) -> TaskReward:
        """The single-task reward for ``task`` (built once)."""
        name = get_task(task).name
        if name not in self._scorers:
            kind = get_task(name).kind
            self._scorers[name] = lamp_task_reward(
                name, schema=self.schema, lenient=self.lenient if kind != "generation" else False,
                rouge=self.rouge if kind == "generation" else None)
        return self._scorers[name]

    def score(self, batch: Batch) -> RewardOutput:
        n = len(batch)
        col = batch.columns.get("task")
        scorers: list[TaskReward | str] = []
        by_value: dict[Any, TaskReward | str] = {}
        for i in range(n):
            value = col[i] if col is not None else None
            if value is None or value == "":
                value = self.task
            if value is None:
                scorers.append("no task for this sample (set the task column or task=)")
                continue
            if value not in by_value:
                try:
                    by_value[value] = self.scorer(str(value))
                except (KeyError, ValueError) as e:
                    msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
                    by_value[value] = f"unknown task {value!r}: {msg}"
                    if str(value) not in self._warned:
                        self._warned.add(str(value))
                        logger.warning("%s: %s; such rows get no task reward", self.name, msg)
            scorers.append(by_value[value])
        return _score_rows(batch, self.schema, self.references(batch), scorers, self.name)


def _longest_piece(text: str, pattern: str) -> int:
    """Length of the longest piece of ``pattern`` (a contiguous substring of at least two
    characters: single letters are everywhere) that occurs in ``text``; 0 when none does.

    >>> _longest_piece("an answ", "<answer>"), _longest_piece("x <answer>", "<answer>"), _longest_piece("a", "<a>")
    (4, 8, 0)
    """
    for size in range(len(pattern), 1, -1):
        if any(pattern[i:i + size] in text for i in range(len(pattern) - size + 1)):
            return size
    return 0


@register_reward("format_credit")
class FormatCreditReward(Reward):
    """Partial credit for writing the tag format, for RL from a model that does not write tags yet.

    OUR shaping term, in the spirit of open-r1's separate format reward but graded, so that a
    policy that writes no tag at all still sees differences between its completions (the
    ``stage1``/``stage2`` presets give such a policy 0 everywhere: zero GRPO advantage). Use it
    through the presets' ``format_credit`` weight (``{preset: stage1, format_credit: 0.5}``) and
    drop it (``format_credit: 0``) once the policy writes well-formed chains.

    ``score = ½·answer + ¼·order + ¼·steps`` in [0, 1], where

    * ``answer`` is 1 when the answer came from the schema's answer tag, else partial credit
      for the pieces of the tags written: ``½·|longest piece of "<answer>"| / 8 +
      ¼·|longest piece of "</answer>"| / 9`` (at most ¾; pieces of two characters or more);
    * ``order`` is :class:`~tagpr_rewards.tags.rewards.TagOrderReward` (LCS with the nearest
      accepted tag sequence; 0 without closed tags);
    * ``steps`` is the fraction of the schema's reasoning tags whose opening tag occurs.

    Components: ``answer``, ``order``, ``steps``.

    >>> r = FormatCreditReward("think-answer")
    >>> out = r(["<think>a</think><answer>b</answer>", "an answer", "zzz"])
    >>> [round(s, 3) for s in out.scores], out.components["answer"][1]
    ([1.0, 0.271, 0.0], 0.5416666666666666)
    """

    name = "format_credit"
    low, high = 0.0, 1.0

    def __init__(self, schema: TagSchema | str = DEFAULT_SCHEMA) -> None:
        sch = load_schema(schema)
        self.schema = schema
        self._open = f"<{sch.answer_tag}>"
        self._close = f"</{sch.answer_tag}>"
        self._steps = tuple(f"<{t}>" for t, _ in sch.tags if t != sch.answer_tag)

    def score(self, batch: Batch) -> RewardOutput:
        from tagpr_rewards.tags.rewards import TagOrderReward

        answers = batch_answers(batch, self.schema)
        order = TagOrderReward(self.schema).score(batch).scores
        scores: list[float | None] = []
        comp_a: list[float | None] = []
        comp_o: list[float | None] = []
        comp_s: list[float | None] = []
        reasons: list[str] = []
        for i, text in enumerate(batch.completions):
            if answers[i].method == "tag":
                a = 1.0
            else:
                a = (0.5 * _longest_piece(text, self._open) / len(self._open)
                     + 0.25 * _longest_piece(text, self._close) / len(self._close))
            o = float(order[i] or 0.0)
            st = (sum(t in text for t in self._steps) / len(self._steps)) if self._steps else 1.0
            scores.append(0.5 * a + 0.25 * o + 0.25 * st)
            comp_a.append(a)
            comp_o.append(o)
            comp_s.append(st)
            reasons.append("" if a == 1.0 and o == 1.0 and st == 1.0 else
                           ("no answer tag; " if a < 1.0 else "") + f"order {o:.2f}, steps {st:.2f}")
        return RewardOutput(scores, {"answer": comp_a, "order": comp_o, "steps": comp_s}, reasons)
