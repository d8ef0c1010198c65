"""Tag rewards: predicates over the one memoised parse of each completion.

Sign convention (all tag rewards): *positive* rewards score in ``[0, 1]`` (``tag_format``,
``tag_order``, ``tag_coverage``); *anti-hacking* terms are penalties in ``[-1, 0]`` where ``0``
means clean (``tag_spam``, ``empty_steps``, ``duplicate_steps``, ``overlong``). A non-text
completion (``None``, a number, ...) gets the reward's minimum (``low``) with the problem as
reason. Every reward reads :func:`~tagpr_rewards.tags.parser.batch_parses`, so however many tag
rewards score one :class:`~tagpr_rewards.base.Batch`, each completion is parsed once per schema.

The tag names, limits and default parameters are ours (the TagPR paper's are not public).

>>> from tagpr_rewards.tags import TagFormatReward, TagOrderReward
>>> good = "<think>The user likes space.</think><answer>sci-fi</answer>"
>>> bad = "<answer>sci-fi</answer><think>late</think>"
>>> TagFormatReward("think-answer")([good, bad]).scores
[1.0, 0.0]
>>> TagOrderReward("think-answer")([good, bad]).scores
[1.0, 0.5]
"""

from __future__ import annotations

import functools
import re

from tagpr_rewards.base import Batch, Reward, RewardOutput, logger
from tagpr_rewards.registry import register_reward
from tagpr_rewards.tags.parser import TagParse, batch_parses
from tagpr_rewards.tags.schema import TagSchema, load_schema

DEFAULT_SCHEMA = "personalization-9"


# --------------------------------------------------------------------------------------------
# order partial credit (exact)
# --------------------------------------------------------------------------------------------


def order_credit(schema: TagSchema, seq: tuple[str, ...], max_tags: int = 64) -> tuple[float, int, int]:
    """Order conformance of the tag sequence ``seq``: ``(score, lcs, nearest_len)``.

    ``score = max over accepted sequences t of LCS(seq, t) / max(len(seq), len(t))`` -- 1 exactly
    when ``seq`` is accepted, 0 for an empty sequence. Computed exactly by dynamic programming
    over the schema's Glushkov automaton: ``best[k][q]`` is the fewest tags an accepted-prefix
    path can emit to reach state ``q`` while matching ``k`` tags of ``seq`` in order; each tag of
    ``seq`` is either skipped or matched by walking the shortest path to a state that emits it;
    at the end the path is completed to an accepting state by the shortest route. Sequences
    longer than ``max_tags`` that are not accepted score 0 (the DP is quadratic in length).

    >>> s = load_schema("r2p-3")
    >>> order_credit(s, ("analyze-request", "build-profile", "answer"))
    (1.0, 3, 3)
    >>> order_credit(s, ("build-profile", "analyze-request", "answer"))  # nearest: a b answer
    (0.6666666666666666, 2, 3)
    >>> order_credit(s, ("answer",))  # LCS 1 with the 3-tag chain
    (0.3333333333333333, 1, 3)
    """
    n = len(seq)
    if n > max_tags:  # not cached: huge adversarial sequences must not pile up in the cache
        return (1.0, n, n) if schema.accepts(seq) else (0.0, 0, -1)
    return _order_credit(schema, seq)


@functools.lru_cache(maxsize=16384)
def _order_credit(schema: TagSchema, seq: tuple[str, ...]) -> tuple[float, int, int]:
    n = len(seq)
    if n == 0:
        return 0.0, 0, 0
    aut = schema.automaton
    if aut is None or aut.accepts(seq):
        return 1.0, n, n
    states_of = dict(aut.states_of)
    step_dist = aut.step_dist
    n_states = aut.n_states
    inf = 1 << 30
    # best[k][q]: fewest emitted tags ending in state q with k matched tags of seq
    best = [[inf] * n_states for _ in range(n + 1)]
    best[0][0] = 0
    top = 0  # highest k reached so far
    for tag in seq:
        targets = states_of.get(tag, ())
        if not targets:
            continue
        for k in range(top, -1, -1):  # descending: each tag of seq is matched at most once
            row, nxt = best[k], best[k + 1]
            for q in range(n_states):
                base = row[q]
                if base >= inf:
                    continue
                dq = step_dist[q]
                for r in targets:
                    d = dq[r]
                    if d >= 0 and base + d < nxt[r]:
                        nxt[r] = base + d
                        if k + 1 > top:
                            top = k + 1
    to_final = aut.to_final
    score, lcs, length = 0.0, 0, -1
    for k in range(1, top + 1):
        row = best[k]
        m = min((row[q] + to_final[q] for q in range(n_states) if row[q] < inf and to_final[q] >= 0),
                default=inf)
        if m >= inf:
            continue
        s = k / max(n, m)
        if s > score or (s == score and m < length):
            score, lcs, length = s, k, m
    return score, lcs, length


# --------------------------------------------------------------------------------------------
# shared machinery
# --------------------------------------------------------------------------------------------


class _TagReward(Reward):
    """Base of the tag rewards: holds the schema, loops over the memoised parses, gives
    non-text completions ``low`` and turns an unexpected per-sample failure into ``low`` with
    a logged warning (never an exception)."""

    #: names of the per-sample components :meth:`_one` returns (in order)
    component_names: tuple[str, ...] = ()

    def __init__(self, schema: str | TagSchema = DEFAULT_SCHEMA) -> None:
        self.schema = load_schema(schema)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items()
                           if not k.startswith("_") and k != "schema")
        return f"{type(self).__name__}(schema={self.schema.name!r}{', ' if params else ''}{params})"

    def _one(self, parse: TagParse, batch: Batch, i: int) -> tuple[float, str, tuple[float, ...]]:
        raise NotImplementedError

    def score(self, batch: Batch) -> RewardOutput:
        parses = batch_parses(batch, self.schema)
        low = float(self.low if self.low is not None else 0.0)
        zero = tuple(0.0 for _ in self.component_names)
        one = self._one
        try:
            out = [one(p, batch, i) for i, p in enumerate(parses)]
        except Exception:  # noqa: BLE001 - find the failing samples one by one
            out = [self._isolated(p, batch, i, low, zero) for i, p in enumerate(parses)]
        scores: list[float | None] = [o[0] for o in out]
        reasons = [o[1] for o in out]
        comps = [o[2] for o in out]
        problems = batch.problems
        if any(p is not None for p in problems):
            bad = 0
            for i, problem in enumerate(problems):
                if problem is not None:
                    scores[i], reasons[i], comps[i] = low, problem, zero
                    bad += 1
            logger.warning("%s: %d of %d completions are not text; scored %s", self.name, bad, len(parses), low)
        completions = batch.completions
        if sum(batch.lengths) != sum(map(len, completions)):  # some were cut by the length cap
            for i, length in enumerate(batch.lengths):
                if length > len(completions[i]) and problems[i] is None:
                    reasons[i] = capped_reason(length, len(completions[i])) + (f"; {reasons[i]}" if reasons[i] else "")
        columns = list(zip(*comps)) if comps else [() for _ in self.component_names]
        components: dict[str, list[float | None]] = {
            name: list(col) for name, col in zip(self.component_names, columns)
        }
        return RewardOutput(scores, components, reasons)

    def _isolated(self, parse: TagParse, batch: Batch, i: int, low: float,
                  zero: tuple[float, ...]) -> tuple[float, str, tuple[float, ...]]:
        try:
            return self._one(parse, batch, i)
        except Exception as e:  # noqa: BLE001 - a reward must never kill an RL step
            logger.warning("%s: sample %d scored %s after an internal error: %r", self.name, i, low, e)
            return low, f"internal error: {e!r}", zero


def capped_reason(length: int, cap: int) -> str:
    """The reason prefix of a completion cut by :data:`tagpr_rewards.base.MAX_COMPLETION_CHARS`.

    >>> capped_reason(1_000_000, 200_000)
    'capped: 1000000 chars, only the first 200000 were checked (TAGPR_MAX_COMPLETION_CHARS)'
    """
    return f"capped: {length} chars, only the first {cap} were checked (TAGPR_MAX_COMPLETION_CHARS)"


def _check_range(name: str, value: float, lo: float, hi: float | None = None) -> None:
    if not isinstance(value, (int, float)) or value < lo or (hi is not None and value > hi):
        bound = f"in [{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must be a number {bound}, got {value!r}")


# --------------------------------------------------------------------------------------------
# positive rewards in [0, 1]
# --------------------------------------------------------------------------------------------


@register_reward("tag_format")
class TagFormatReward(_TagReward):
    """1 when the completion parses without a structural error, else 0.

    Reason: the first error (``code: message``). Components: ``n_errors``.

    >>> TagFormatReward("think-answer")(["<think>a</think><answer>b</answer>", "<answer>b"]).reasons
    ['', 'unclosed: <answer> is never closed']
    """

    name = "tag_format"
    low, high = 0.0, 1.0
    component_names = ("n_errors",)

    def _one(self, parse: TagParse, batch: Batch, i: int) -> tuple[float, str, tuple[float, ...]]:
        errors = parse.errors
        if not errors:
            return 1.0, "", (0.0,)
        return 0.0, f"{errors[0].code}: {errors[0].message}", (float(len(errors)),)



@register_reward("tag_order")
class TagOrderReward(_TagReward):
    """Order conformance of the tag sequence (wrapper excluded, answer included).

    ``score = max_t LCS(seq, t) / max(len(seq), len(t))`` over the sequences ``t`` the schema's
    order accepts (see :func:`order_credit`): 1 when the sequence is accepted, partial credit
    by longest common subsequence with the nearest accepted sequence otherwise, 0 without tags
    (and for unaccepted sequences longer than ``max_tags``). A schema without an order accepts
    any non-empty sequence. Components: ``lcs``, ``nearest_len``, ``n_tags``.

    >>> r = TagOrderReward("r2p-3")
    >>> r(["<build-profile>p</build-profile><analyze-request>q</analyze-request><answer>a</answer>"]).scores
    [0.6666666666666666]
    """

    name = "tag_order"
    low, high = 0.0, 1.0
    component_names = ("lcs", "nearest_len", "n_tags")

    def __init__(self, schema: str | TagSchema = DEFAULT_SCHEMA, max_tags: int = 64) -> None:
        super().__init__(schema)
        _check_range("max_tags", max_tags, 1)
        self.max_tags = int(max_tags)

    def _one(self, parse: TagParse, batch: Batch, i: int) -> tuple[float, str, tuple[float, ...]]:
        if parse.order_accepted:  # decided by the parser's fast path
            n = float(len(parse.tag_sequence))
            return 1.0, "", (n, n, n)
        seq = tuple(parse.tag_sequence)
        return self._finish(len(seq), order_credit(self.schema, seq, self.max_tags))

    def _finish(self, n: int, credit: tuple[float, int, int]) -> tuple[float, str, tuple[float, ...]]:
        score, lcs, length = credit
        if score == 1.0:
            return 1.0, "", (float(n), float(n), float(n))
        if n == 0:
            reason = "no tags"
        elif length < 0:
            reason = f"{n} tags (> max_tags={self.max_tags}) not in the allowed order"
        else:
            reason = f"order: {lcs} of {n} tags in order (nearest accepted chain has {length})"
        return score, reason, (float(lcs), float(length), float(n))



@register_reward("tag_coverage")
class TagCoverageReward(_TagReward):
    """Fraction of the schema's required tags that occur (as closed tags) in the completion.

    ``score = |required ∩ present| / |required|`` (1 when the schema requires nothing).
    Reason: the missing tags. Components: ``n_present``, ``n_required``.

    >>> TagCoverageReward("think-answer")(["<answer>x</answer>"]).scores
    [0.5]
    """

    name = "tag_coverage"
    low, high = 0.0, 1.0
    component_names = ("n_present", "n_required")

    def __init__(self, schema: str | TagSchema = DEFAULT_SCHEMA) -> None:
        super().__init__(schema)
        self._required = frozenset(self.schema.required)
        self._full = (float(len(self._required)), float(len(self._required)))

    def _one(self, parse: TagParse, batch: Batch, i: int) -> tuple[float, str, tuple[float, ...]]:
        req = self._required
        total = len(req)
        if not total:
            return 1.0, "", (0.0, 0.0)
        present = req.intersection(parse.tag_sequence)
        k = len(present)
        if k == total:
            return 1.0, "", self._full
        missing = [t for t in self.schema.required if t not in present]
        return k / total, "missing: " + ", ".join(missing), (float(k), float(total))



# --------------------------------------------------------------------------------------------
# anti-hacking penalties in [-1, 0]
# --------------------------------------------------------------------------------------------


@register_reward("tag_spam")
class TagSpamReward(_TagReward):
    """Penalty for tags beyond the schema's repeat limits or its total tag limit.

    ``excess = sum_tag max(0, count(tag) - limit(tag)) + max(0, n_tags - max_tags)``;
    ``score = -min(1, per_excess * excess)`` (default ``per_excess = 0.25``: four extra tags
    reach -1). Components: ``excess``, ``n_tags``.

    >>> TagSpamReward("think-answer")(["<think>a</think><think>b</think><answer>c</answer>"]).scores
    [-0.25]
    """

    name = "tag_spam"
    low, high = -1.0, 0.0
    component_names = ("excess", "n_tags")

    def __init__(self, schema: str | TagSchema = DEFAULT_SCHEMA, per_excess: float = 0.25) -> None:
        super().__init__(schema)
        _check_range("per_excess", per_excess, 0.0, 1.0)
        self.per_excess = float(per_excess)

    def _one(self, parse: TagParse, batch: Batch, i: int) -> tuple[float, str, tuple[float, ...]]:
        seq = parse.tag_sequence
        n = len(seq)
        schema = self.schema
        excess = 0
        over = []
        for tag, count in parse.counts().items():
            lim = schema.limit(tag)
            if lim is not None and count > lim:
                excess += count - lim
                over.append(f"{tag} x{count} (limit {lim})")
        if schema.max_tags is not None and n > schema.max_tags:
            excess += n - schema.max_tags
            over.append(f"{n} tags (limit {schema.max_tags})")
        if not excess:
            return 0.0, "", (0.0, float(n))
        return -min(1.0, self.per_excess * excess), "; ".join(over), (float(excess), float(n))


def _collapse(text: str) -> str:
    return " ".join(text.split())


@register_reward("empty_steps")
class EmptyStepsReward(_TagReward):
    """Penalty for empty or near-empty steps (the answer tag is not a step).

    A step is near-empty when its whitespace-collapsed content has fewer than ``min_chars``
    characters (default 10). ``score = -(near-empty steps / steps)``; 0 without steps.
    Components: ``n_empty``, ``n_steps``.

    >>> EmptyStepsReward("think-answer")(["<think>ok</think><answer>4</answer>"]).scores
    [-1.0]
    """

    name = "empty_steps"
    low, high = -1.0, 0.0
    component_names = ("n_empty", "n_steps")

    def __init__(self, schema: str | TagSchema = DEFAULT_SCHEMA, min_chars: int = 10) -> None:
        super().__init__(schema)
        _check_range("min_chars", min_chars, 1)
        self.min_chars = int(min_chars)

    def _one(self, parse: TagParse, batch: Batch, i: int) -> tuple[float, str, tuple[float, ...]]:
        steps = parse.steps(self.schema)
        if not steps:
            return 0.0, "", (0.0, 0.0)
        m = self.min_chars
        empty = [s.tag for s in steps if len(s.content) < m * 4 and len(_collapse(s.content)) < m]
        if not empty:
            return 0.0, "", (0.0, float(len(steps)))
        return (-len(empty) / len(steps), "near-empty: " + ", ".join(empty),
                (float(len(empty)), float(len(steps))))


_WORD_RE = re.compile(r"\w+")


def _shingles(text: str) -> frozenset[str]:
    words = _WORD_RE.findall(text.lower())
    if len(words) < 2:
        return frozenset(words)
    return frozenset(a + " " + b for a, b in zip(words, words[1:]))


@register_reward("duplicate_steps")
class DuplicateStepsReward(_TagReward):
    """Penalty for copy-pasted steps: identical or near-identical normalised content.

    Content is lower-cased and reduced to its words; two steps are near-identical when the
    Jaccard similarity of their word-bigram sets is at least ``threshold`` (default 0.8).
    A step counts as a duplicate when it is near-identical to an earlier step (steps with no
    words are left to ``empty_steps``; only the first ``max_compare`` steps are compared
    pairwise, later ones by exact match). ``score = -(duplicates / steps)``. Cost is linear:
    nested steps (a format error) overlap, so at most ``4 * len(completion) + 10000`` characters
    of step content are read; steps past that budget are not compared (the reason says so).
    Components: ``n_duplicates``, ``n_steps``.

    >>> r = DuplicateStepsReward("personalization-9")
    >>> r(["<recall-history>Likes sci-fi.</recall-history><compare-items>likes SCI-FI</compare-items>"
    ...    "<answer>sci-fi</answer>"]).scores
    [-0.5]
    """

    name = "duplicate_steps"
    low, high = -1.0, 0.0
    component_names = ("n_duplicates", "n_steps")

    def __init__(self, schema: str | TagSchema = DEFAULT_SCHEMA, threshold: float = 0.8,
                 max_compare: int = 64) -> None:
        super().__init__(schema)
        _check_range("threshold", threshold, 0.0, 1.0)
        _check_range("max_compare", max_compare, 1)
        self.threshold = float(threshold)
        self.max_compare = int(max_compare)

    def _one(self, parse: TagParse, batch: Batch, i: int) -> tuple[float, str, tuple[float, ...]]:
        steps = parse.steps(self.schema)
        n = len(steps)
        if n < 2:
            return 0.0, "", (0.0, float(n))
        seen_exact: set[frozenset[str]] = set()
        kept: list[frozenset[str]] = []
        dups: list[str] = []
        th = self.threshold
        # nested (overlapping) steps can hold up to MAX_DEPTH copies of the text: read at most
        # this many characters of step content (never reached without nesting)
        budget = 4 * len(batch.completions[i]) + 10_000
        skipped = 0
        for j, s in enumerate(steps):
            budget -= len(s.content)
            if budget < 0:
                skipped = n - j
                break
            sh = _shingles(s.content)
            if not sh:
                continue
            dup = sh in seen_exact
            if not dup and j < self.max_compare:
                for other in kept:
                    inter = len(sh & other)
                    if inter and inter / (len(sh) + len(other) - inter) >= th:
                        dup = True
                        break
            if dup:
                dups.append(s.tag)
            else:
                seen_exact.add(sh)
                if j < self.max_compare:
                    kept.append(sh)
        note = f"{skipped} nested steps not compared (content budget)" if skipped else ""
        if not dups:
            return 0.0, note, (0.0, float(n))
        reason = "duplicate: " + ", ".join(dups) + (f"; {note}" if note else "")
        return -len(dups) / n, reason, (float(len(dups)), float(n))


@register_reward("overlong")
class OverlongReward(Reward):
    """Soft overlong penalty on the completion's length in characters (after DAPO's soft
    overlong punishment, which works on tokens; we count characters, tokenizer-free).

    With ``L`` the original length (``Batch.lengths``, so a truncated huge input still counts):
    ``0`` for ``L <= max_chars - buffer``, linear down to ``-1`` at ``max_chars``, ``-1`` beyond.
    It reads no tags, so it takes no ``schema``.
    Components: ``length``.

    >>> OverlongReward(max_chars=100, buffer=50)(["x" * 40, "x" * 75, "x" * 500]).scores
    [0.0, -0.5, -1.0]
    """

    name = "overlong"
    low, high = -1.0, 0.0
    component_names = ("length",)

    def __init__(self, max_chars: int = 4096, buffer: int = 1024) -> None:
        _check_range("max_chars", max_chars, 1)
        _check_range("buffer", buffer, 1, max_chars)
        self.max_chars = int(max_chars)
        self.buffer = int(buffer)

    def score(self, batch: Batch) -> RewardOutput:  # no parse needed
        start = self.max_chars - self.buffer
        scores: list[float | None] = []
        reasons: list[str] = []
        for length, problem in zip(batch.lengths, batch.problems):
            if problem is not None:
                scores.append(-1.0)
                reasons.append(problem)
            elif length <= start:
                scores.append(0.0)
                reasons.append("")
            else:
                scores.append(-min(1.0, (length - start) / self.buffer))
                reasons.append(f"{length} chars (soft limit {start}, hard {self.max_chars})")
        return RewardOutput(scores, {"length": [float(x) for x in batch.lengths]}, reasons)


#: every tag reward class by registry name
TAG_REWARDS: dict[str, type[Reward]] = {
    "tag_format": TagFormatReward,
    "tag_order": TagOrderReward,
    "tag_coverage": TagCoverageReward,
    "tag_spam": TagSpamReward,
    "empty_steps": EmptyStepsReward,
    "duplicate_steps": DuplicateStepsReward,
    "overlong": OverlongReward,
}
