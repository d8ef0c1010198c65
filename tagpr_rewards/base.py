"""The reward contract shared by every reward in tagpr.

A reward takes a *batch* (completions plus optional prompts, references, user ids and any
extra per-sample columns) and returns a :class:`RewardOutput`: one score per completion
(``None`` = not applicable), named per-sample components, and a short reason per sample.

Rules every reward follows (see docs/rewards.md):

* rewards are callable classes, picklable, with no hidden state between calls;
* a malformed, empty, huge or non-text completion gets a defined score, never an exception;
* heavy dependencies are imported only inside the rewards that need them.

Example:
    >>> from tagpr_rewards.base import Batch
    >>> b = Batch.from_inputs(["<answer>x</answer>"], references=["x"])
    >>> len(b), b.completions[0]
    (1, '<answer>x</answer>')
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("tagpr_rewards")


def _cap_from_env(default: int = 200_000) -> int:
    raw = os.environ.get("TAGPR_MAX_COMPLETION_CHARS", "").strip()
    if not raw:
        return default
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"TAGPR_MAX_COMPLETION_CHARS must be a positive integer, got {raw!r}")
    return value


#: Completions longer than this many characters are cut to it by :meth:`Batch.from_inputs`
#: (bounding every reward's cost); the tag rewards say so in their reason (``capped: ...``)
#: and the overlong penalty still sees the original length (``Batch.lengths``). Default
#: 200,000; set the environment variable ``TAGPR_MAX_COMPLETION_CHARS`` (read at import, so it
#: reaches trainer and server processes) or assign this attribute. See docs/tags.md.
MAX_COMPLETION_CHARS = _cap_from_env()


def to_text(value: Any) -> tuple[str, str | None]:
    """Turn any completion value into text.

    Returns ``(text, problem)`` where ``problem`` is ``None`` for ordinary strings and a
    short description otherwise. Chat message lists (TRL conversational format) are joined
    by their ``content`` fields; ``None`` and other non-text values become ``""``.

    >>> to_text("hi")
    ('hi', None)
    >>> to_text([{"role": "assistant", "content": "hi"}])
    ('hi', None)
    >>> to_text(None)
    ('', 'completion is None')
    """
    if type(value) is str:  # fast path: the common case in RL steps
        return value, None
    if isinstance(value, str):
        return str(value), None
    if value is None:
        return "", "completion is None"
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace"), None
    if type(value) is list and value and type(value[0]) is dict:  # TRL conversational completions
        if len(value) == 1:
            c = value[0].get("content")
            if type(c) is str:
                return c, None
        elif all(type(m) is dict and type(m.get("content")) is str for m in value):
            return "".join(m["content"] for m in value), None
    if isinstance(value, Mapping) and "content" in value:
        return to_text(value["content"])
    if isinstance(value, Sequence) and all(isinstance(m, Mapping) for m in value):
        parts = []
        for m in value:
            c = m.get("content", "")
            if isinstance(c, str):
                parts.append(c)
            elif isinstance(c, Sequence):  # multimodal content blocks
                parts.extend(str(x.get("text", "")) for x in c if isinstance(x, Mapping))
        return "".join(parts), None
    return "", f"completion is not text ({type(value).__name__})"


_UNENCODABLE_RE = re.compile("[\x00\ud800-\udfff]")


def sanitize_text(text: str) -> str:
    """``text`` with what no tokenizer accepts replaced: lone surrogates become U+FFFD and NUL
    characters are dropped (linear; the common clean string is returned unchanged).

    >>> sanitize_text("ok"), sanitize_text("a\\ud800b\\x00c") == "a\\ufffdbc"
    ('ok', True)
    """
    if "\x00" not in text:
        try:
            text.encode("utf-8")
            return text
        except UnicodeEncodeError:
            pass
    return _UNENCODABLE_RE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", text)


def finite_or_none(x: Any) -> float | None:
    """``float(x)`` when that is a finite number, else ``None`` (not applicable).

    >>> finite_or_none("0.5"), finite_or_none(float("nan")), finite_or_none(None), finite_or_none("x")
    (0.5, None, None, None)
    """
    if x is None:
        return None
    try:
        xf = float(x)
    except (TypeError, ValueError):
        return None
    return xf if math.isfinite(xf) else None


@dataclass
class RewardOutput:
    """What a reward returns for a batch.

    Attributes:
        scores: one score per completion; ``None`` means "not applicable to this sample".
        components: named per-sample values (for composites, every child's score and the
            child's own components as ``child/comp``).
        reasons: one short string per sample explaining the score ("" when nothing to say).
        errors: one string per sample, ``""`` when the sample was scored and otherwise why it
            could not be (its score is then the reward's defined fallback). Adapters report it
            as ``tagpr/error`` (OpenRLHF) or ``reward_error`` (``tagpr-rm``).
    """

    scores: list[float | None]
    components: dict[str, list[float | None]] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.reasons:
            self.reasons = [""] * len(self.scores)
        if not self.errors:
            self.errors = [""] * len(self.scores)

    @classmethod
    def failed(cls, n: int, error: str, score: float | None = None) -> RewardOutput:
        """``n`` samples that could not be scored: ``score`` each, ``error`` as reason and error.

        >>> RewardOutput.failed(2, "boom").errors
        ['boom', 'boom']
        """
        return cls([score] * n, {}, [error] * n, [error] * n)

    def __len__(self) -> int:
        return len(self.scores)

    def to_records(self, name: str = "total") -> list[dict[str, Any]]:
        """One dict per sample: ``{name: score, <component>: value, "reason": str}``."""
        out = []
        for i, s in enumerate(self.scores):
            rec: dict[str, Any] = {name: s}
            for k, v in self.components.items():
                rec[k] = v[i]
            rec["reason"] = self.reasons[i]
            out.append(rec)
        return out


class Batch:
    """A batch of samples to score, with per-batch memoised parses.

    Composites pass the same ``Batch`` to every child, so a completion is parsed once per
    schema however many tag rewards read the parse.
    """

    def __init__(
        self,
        completions: list[str],
        prompts: list[str] | None = None,
        references: list[Any] | None = None,
        user_ids: list[Any] | None = None,
        columns: dict[str, list[Any]] | None = None,
        problems: list[str | None] | None = None,
        lengths: list[int] | None = None,
    ) -> None:
        n = len(completions)
        self.completions = completions
        self.prompts = prompts
        self.references = references
        self.user_ids = user_ids
        self.columns = columns or {}
        self.problems = problems or [None] * n
        self.lengths = lengths or [len(c) for c in completions]
        self._memo: dict[Any, Any] = {}
        for key, col in (("prompts", prompts), ("references", references), ("user_ids", user_ids),
                         *self.columns.items()):
            if col is not None and len(col) != n:
                raise ValueError(f"column {key!r} has {len(col)} values for {n} completions")

    @classmethod
    def from_columns(
        cls,
        completions: Sequence[Any],
        prompts: Sequence[Any] | None = None,
        references: Sequence[Any] | None = None,
        user_ids: Sequence[Any] | None = None,
        columns: Mapping[str, Sequence[Any]] | None = None,
    ) -> Batch:
        """Like :meth:`from_inputs` with the extra columns as one mapping, so that a metadata
        key (from a label or a dataset) can never collide with the contract's own arguments: a
        column named ``prompts`` or ``completions`` stays an inert extra column.

        >>> b = Batch.from_columns(["x"], ["p"], columns={"prompts": ["meta"], "completions": [1]})
        >>> b.prompts, b.columns["prompts"], b.columns["completions"]
        (['p'], ['meta'], [1])
        """
        b = cls.from_inputs(completions, prompts, references, user_ids)
        cols = {str(k): list(v) for k, v in (columns or {}).items() if v is not None and _is_column(v)}
        for key, col in cols.items():
            if len(col) != len(b):
                raise ValueError(f"column {key!r} has {len(col)} values for {len(b)} completions")
        b.columns = cols
        return b

    def select(self, indices: Sequence[int]) -> Batch:
        """The sub-batch of the samples at ``indices`` (fresh memo), e.g. to rescore one sample alone.

        >>> Batch.from_inputs(["a", "b", "c"], references=[1, 2, 3]).select([2]).references
        [3]
        """
        def pick(col: list[Any] | None) -> list[Any] | None:
            return None if col is None else [col[i] for i in indices]

        out = Batch(
            [self.completions[i] for i in indices], pick(self.prompts), pick(self.references),
            pick(self.user_ids), {k: [v[i] for i in indices] for k, v in self.columns.items()},
            [self.problems[i] for i in indices], [self.lengths[i] for i in indices],
        )
        return out

    @classmethod
    def from_inputs(
        cls,
        completions: Sequence[Any],
        prompts: Sequence[Any] | None = None,
        references: Sequence[Any] | None = None,
        user_ids: Sequence[Any] | None = None,
        **columns: Any,
    ) -> Batch:
        """Build a batch from raw trainer inputs (strings, chat message lists, None, ...)."""
        if isinstance(completions, (str, bytes)):
            completions = [completions]
        converted = [to_text(c) for c in completions]
        texts = [t for t, _ in converted]
        problems: list[str | None] = [p for _, p in converted]
        lengths = [len(t) for t in texts]
        if max(lengths, default=0) > MAX_COMPLETION_CHARS:
            texts = [t[:MAX_COMPLETION_CHARS] for t in texts]
        ptexts = None if prompts is None else [to_text(p)[0] for p in prompts]
        cols = {k: list(v) for k, v in columns.items() if v is not None and _is_column(v)}
        return cls(
            texts,
            ptexts,
            None if references is None else list(references),
            None if user_ids is None else list(user_ids),
            cols,
            problems,
            lengths,
        )

    def __len__(self) -> int:
        return len(self.completions)

    def column(self, name: str) -> list[Any] | None:
        """A per-sample column by name (``references``, ``user_ids``, ``prompts`` or extra)."""
        if name in ("references", "reference"):
            return self.references
        if name in ("user_ids", "user_id"):
            return self.user_ids
        if name in ("prompts", "prompt"):
            return self.prompts
        return self.columns.get(name)

    def memo(self, key: Any, compute: Any) -> Any:
        """Compute ``compute()`` once per batch for ``key`` (used for parses and embeddings)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]


def _sample_ids(batch: Batch, idx: Sequence[int]) -> str:
    ids = batch.column("id")
    shown = [str(ids[i]) if ids is not None else f"#{i}" for i in idx[:5]]
    return ", ".join(shown) + (f" and {len(idx) - 5} more" if len(idx) > 5 else "")


def score_isolated(score: Any, batch: Batch, name: str, fallback: float | None = None) -> RewardOutput:
    """``score(batch)``, where a failure costs only the samples that cause it.

    When ``score`` raises (or returns the wrong number of scores) the batch is split in halves
    and each half rescored, down to single samples: the samples that fail alone get ``fallback``,
    their error in ``errors`` and ``reasons``, and one ERROR log names them and the cause; every
    other sample keeps the score it gets on its own sub-batch. A reward that fails for every
    sample costs ``2n - 1`` calls.

    >>> class OddFails(Reward):
    ...     def score(self, batch):
    ...         if any(c == "bad" for c in batch.completions):
    ...             raise ValueError("bad input")
    ...         return RewardOutput([1.0] * len(batch))
    >>> out = score_isolated(OddFails().score, Batch.from_inputs(["ok", "bad", "ok"]), "odd")
    >>> out.scores, out.errors
    ([1.0, None, 1.0], ['', 'odd: ValueError: bad input', ''])
    """
    n = len(batch)
    out = None
    try:
        out = score(batch)
    except Exception as e:
        first: Exception = e
    if out is not None:
        if len(out.scores) == n:
            return out  # type: ignore[no-any-return]
        # a reward that miscounts is broken as a whole, not on one sample: no bisection
        why = f"{name}: returned {len(out.scores)} scores for {n} samples"
        logger.error("reward %s: %s; all %d samples get %s and an error flag", name, why, n, fallback)
        return RewardOutput.failed(n, why, fallback)
    if n <= 1:
        why = f"{name}: {type(first).__name__}: {first}"
        logger.error("reward %s failed on sample %s: %s; it gets %s and an error flag", name,
                     _sample_ids(batch, list(range(n))), why, fallback)
        return RewardOutput.failed(n, why, fallback)

    def attempt(b: Batch) -> RewardOutput:
        res = score(b)
        if len(res.scores) != len(b):
            raise ValueError(f"returned {len(res.scores)} scores for {len(b)} samples")
        return res  # type: ignore[no-any-return]

    parts: list[tuple[list[int], RewardOutput]] = []
    failed: dict[int, str] = {}

    def rec(idx: list[int], known: Exception | None) -> None:
        if known is None:
            try:
                parts.append((idx, attempt(batch.select(idx))))
                return
            except Exception as e:
                known = e
        if len(idx) == 1:
            failed[idx[0]] = f"{name}: {type(known).__name__}: {known}"
            return
        mid = len(idx) // 2
        rec(idx[:mid], None)
        rec(idx[mid:], None)

    rec(list(range(n)), first)
    scores: list[float | None] = [fallback] * n
    reasons = [""] * n
    errors = [""] * n
    keys: list[str] = []
    for _, out in parts:
        keys += [k for k in out.components if k not in keys]
    components: dict[str, list[float | None]] = {k: [None] * n for k in keys}
    for idx, out in parts:
        for j, i in enumerate(idx):
            scores[i] = out.scores[j]
            reasons[i] = out.reasons[j] if out.reasons else ""
            errors[i] = out.errors[j] if out.errors else ""
            for k, v in out.components.items():
                components[k][i] = v[j]
    bad = sorted(failed)
    for i in bad:
        reasons[i] = errors[i] = failed[i]
    causes = sorted(set(failed.values()))
    if not causes:  # failed on the batch, fine on every part: say so once
        logger.warning("reward %s raised on a batch of %d (%s: %s) but scored every part of it alone",
                       name, n, type(first).__name__, first)
        return RewardOutput(scores, components, reasons, errors)
    logger.error("reward %s failed on %d of %d samples (ids %s): %s%s; they get %s and an error flag, "
                 "the other samples keep their scores", name, len(bad), n, _sample_ids(batch, bad),
                 causes[0], f" (and {len(causes) - 1} other causes)" if len(causes) > 1 else "", fallback)
    return RewardOutput(scores, components, reasons, errors)


def _is_column(v: Any) -> bool:
    return isinstance(v, (list, tuple)) or (hasattr(v, "__len__") and hasattr(v, "__getitem__")
                                            and not isinstance(v, (str, bytes, Mapping)))


class Reward:
    """Base class for rewards: subclasses implement :meth:`score`.

    Call a reward with raw inputs (``reward(completions, references=..., user_ids=...,
    **columns)``) or with a prepared :class:`Batch` (``reward.score(batch)``).

    Subclasses set ``name`` (the registry and log name) and keep all configuration in plain
    attributes so instances pickle.
    """

    name: str = "reward"
    #: documented range of scores (``None`` when unbounded)
    low: float | None = 0.0
    high: float | None = 1.0

    @property
    def __name__(self) -> str:  # TRL uses reward_func.__name__ for logging
        return self.name

    def score(self, batch: Batch) -> RewardOutput:
        raise NotImplementedError

    def __call__(
        self,
        completions: Sequence[Any] | Batch,
        prompts: Sequence[Any] | None = None,
        references: Sequence[Any] | None = None,
        user_ids: Sequence[Any] | None = None,
        **columns: Any,
    ) -> RewardOutput:
        if isinstance(completions, Batch):
            return self.score(completions)
        batch = Batch.from_inputs(completions, prompts, references, user_ids, **columns)
        return self.score(batch)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"
