"""Plug tagpr rewards into TRL's ``GRPOTrainer``.

Two ways, both picklable callable classes with a stable ``__name__`` (TRL names its reward
logs after it, and async rollout workers pickle reward functions):

* :func:`as_reward_funcs` — one callable per component. For a :class:`WeightedSum` composite
  (``stage1``/``stage2``) that is one callable per child (``base``, ``tag``, ``prmu``) carrying
  the child's weight, so TRL logs ``rewards/<child>/mean`` and ``reward_weights`` (see
  :func:`reward_weights`) rebuild the composite's total exactly. The callables share one
  evaluation of the composite per batch (see "Sharing" below).
* :func:`as_reward_func` — one callable returning the composite's total; it reports every
  component through TRL's ``log_metric`` (as ``rewards/<component>/mean``, the same names the
  per-component form gives) and the per-sample reasons through ``log_extra``.

TRL 1.16 calls ``reward_func(prompts=, completions=, completion_ids=, **columns,
trainer_state=, log_extra=, log_metric=)`` where ``columns`` are the dataset's columns other
than ``prompt`` (keep ``remove_unused_columns=False``). The adapter reads the reference, user
id, profile and task from those columns (names configurable with ``columns=``), accepts plain
and conversational completions (chat message lists), returns ``None`` where a reward does not
apply (TRL treats it as NaN and leaves it out of the weighted sum), and never raises: on an
error it logs a warning and returns ``fallback`` for every sample (``0.0`` by default).

Sharing: the per-component callables of one :func:`as_reward_funcs` call hold one shared
runner. The first callable of a step scores the whole composite (the completions are parsed
once) and keeps that one output; each sibling reads its component from it, and the output is
dropped as soon as every sibling has read it. The cache holds at most one batch and its key
is the batch's content and the trainer's ``global_step``, so a stale output can never be
served: nothing is carried from one step to the next.

Example (no trainer needed; TRL passes the same keyword arguments):

>>> from tagpr_rewards.base import Reward, RewardOutput
>>> from tagpr_rewards.combinators import WeightedSum
>>> class Has(Reward):
...     def __init__(self, word): self.word, self.name = word, word
...     def score(self, batch):
...         return RewardOutput([float(self.word in c) for c in batch.completions])
>>> total = WeightedSum({"a": (Has("a"), 1.0), "b": (Has("b"), 0.5)})
>>> funcs = as_reward_funcs(total)
>>> [f.__name__ for f in funcs], reward_weights(funcs)
(['a', 'b'], [1.0, 0.5])
>>> [f(prompts=["p", "p"], completions=["ab", "b"]) for f in funcs]
[[1.0, 0.0], [1.0, 1.0]]
>>> one = as_reward_func(total)
>>> logged = {}
>>> one(prompts=["p"], completions=[[{"role": "assistant", "content": "ab"}]],
...     log_metric=lambda k, v: logged.setdefault(k, v))
[1.5]
>>> logged
{'rewards/a/mean': 1.0, 'rewards/b/mean': 1.0}
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tagpr_rewards.base import Batch, Reward, RewardOutput
from tagpr_rewards.base import finite_or_none as _finite

__all__ = [
    "DEFAULT_COLUMNS",
    "CompositeRewardFunc",
    "ComponentRewardFunc",
    "as_reward_func",
    "as_reward_funcs",
    "reward_weights",
]

logger = logging.getLogger("tagpr_trainers.trl_adapter")

#: Our column names (``tagpr_eval.to_dataset`` writes these) -> the dataset column to read.
#: ``reference`` and ``user_id`` become the batch's references and user ids; the others are
#: passed to rewards as extra columns under our name.
DEFAULT_COLUMNS: dict[str, str] = {
    "reference": "reference",
    "user_id": "user_id",
    "profile": "profile",
    "task": "task",
    "query": "query",
    "id": "id",
}

# Keyword arguments TRL adds that are not per-sample dataset columns.
_TRL_CONTROL = frozenset(
    {"prompts", "completions", "completion_ids", "trainer_state", "log_extra", "log_metric", "environments"}
)


def _nanmean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in (_finite(x) for x in values) if v is not None]
    return sum(vals) / len(vals) if vals else None


class _CompositeRunner:
    """Scores a reward on TRL's keyword arguments; shares one output among sibling callables.

    Picklable: the lock and the cache are rebuilt empty after unpickling.
    """

    def __init__(
        self,
        reward: Reward,
        columns: Mapping[str, str] | None = None,
        fallback: float | None = 0.0,
    ) -> None:
        if not isinstance(reward, Reward):
            raise TypeError(
                f"expected a tagpr_rewards Reward (e.g. tagpr_rewards.presets.stage2(...)), got {type(reward).__name__}"
            )
        self.reward = reward
        # names outside DEFAULT_COLUMNS are fine: they are passed to rewards under our name
        self.columns = {**DEFAULT_COLUMNS, **(columns or {})}
        self.fallback = fallback
        self.consumers = 0
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[Any, ...] | None = None
        self._out: RewardOutput | None = None
        self._reads: set[int] = set()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for k in ("_lock", "_key", "_out", "_reads"):
            state.pop(k, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_runtime()

    # -- batch building -------------------------------------------------------------------
    def batch(self, kwargs: Mapping[str, Any]) -> Batch:
        completions = kwargs.get("completions")
        if completions is None:
            raise ValueError("reward function called without 'completions'")
        n = len(completions)
        cols: dict[str, Any] = {}
        for k, v in kwargs.items():
            if k in _TRL_CONTROL or v is None or isinstance(v, (str, bytes, Mapping)):
                continue
            if hasattr(v, "__len__") and len(v) == n:
                cols[k] = list(v)
        # our names <- dataset column names (mapped values win over same-named raw columns)
        for ours, theirs in self.columns.items():
            if theirs in cols and ours != theirs:
                cols[ours] = cols[theirs]
        references = cols.pop("reference", None)
        user_ids = cols.pop("user_id", None)
        cols.pop("references", None)
        cols.pop("user_ids", None)
        return Batch.from_inputs(completions, kwargs.get("prompts"), references, user_ids, **cols)

    @staticmethod
    def _key_of(batch: Batch, kwargs: Mapping[str, Any]) -> tuple[Any, ...]:
        h = hashlib.blake2b(digest_size=16)
        for c in batch.completions:
            h.update(c.encode("utf-8", "surrogatepass"))
            h.update(b"\x00")
        for p in batch.prompts or ():
            h.update(p.encode("utf-8", "surrogatepass"))
            h.update(b"\x00")
        for col in (batch.problems, batch.references, batch.user_ids, *batch.columns.values()):
            h.update(repr(col).encode("utf-8", "surrogatepass"))
            h.update(b"\x01")
        state = kwargs.get("trainer_state")
        return (getattr(state, "global_step", None), len(batch), h.hexdigest())

    # -- scoring --------------------------------------------------------------------------
    def score(self, kwargs: Mapping[str, Any], reader: int | None = None) -> RewardOutput:
        """Score the composite for TRL's kwargs; ``reader`` is the sibling asking (shared cache)."""
        batch = self.batch(kwargs)
        if reader is None or self.consumers <= 1:
            return self._checked(self.reward.score(batch), len(batch))
        key = self._key_of(batch, kwargs)
        with self._lock:
            if key != self._key or reader in self._reads or self._out is None:
                self._key, self._reads = key, set()
                self._out = self._checked(self.reward.score(batch), len(batch))
            out = self._out
            self._reads.add(reader)
            if len(self._reads) >= self.consumers:  # every sibling has read it: drop it
                self._key, self._out, self._reads = None, None, set()
            return out

    @staticmethod
    def _checked(out: RewardOutput, n: int) -> RewardOutput:
        if len(out.scores) != n:
            raise ValueError(f"reward returned {len(out.scores)} scores for {n} completions")
        return out

    def fail(self, name: str, kwargs: Mapping[str, Any], error: BaseException) -> list[float | None]:
        n = len(kwargs.get("completions") or ())
        logger.warning(
            "tagpr reward %r failed on a batch of %d (%s: %s); returning fallback %r for every sample",
            name, n, type(error).__name__, error, self.fallback, exc_info=True,
        )
        log_metric = kwargs.get("log_metric")
        if callable(log_metric):
            try:
                log_metric(f"rewards/{name}/errors", 1.0)
            except Exception:  # logging must not break the step either
                pass
        return [self.fallback] * n


class ComponentRewardFunc:
    """One component of a composite as a TRL reward function (see :func:`as_reward_funcs`).

    Attributes:
        __name__: the log name (TRL logs ``rewards/<__name__>/mean``).
        component: key in the composite's ``RewardOutput.components`` (``None`` = the total).
        weight: the weight this function carries in TRL's ``reward_weights``.
        none_as: value that replaces a ``None`` component (``None`` keeps it "not applicable").
    """

    def __init__(
        self,
        runner: _CompositeRunner,
        name: str,
        component: str | None,
        weight: float,
        none_as: float | None = None,
    ) -> None:
        self.runner = runner
        self.__name__ = name
        self.component = component
        self.weight = float(weight)
        self.none_as = none_as
        self.reader = runner.consumers
        runner.consumers += 1

    def __call__(self, prompts: Any = None, completions: Any = None, **kwargs: Any) -> list[float | None]:
        kw = dict(kwargs, prompts=prompts, completions=completions)
        try:
            out = self.runner.score(kw, reader=self.reader)
            if self.component is None:
                vals = list(out.scores)
            elif self.component in out.components:
                vals = list(out.components[self.component])
            else:  # a child that failed as a whole reports no components: not applicable
                vals = [None] * len(out.scores)
            res = [_finite(v) for v in vals]
            if self.none_as is not None:
                res = [self.none_as if v is None else v for v in res]
            return res
        except Exception as e:  # never kill an RL step
            return self.runner.fail(self.__name__, kw, e)

    def __repr__(self) -> str:
        return f"ComponentRewardFunc(name={self.__name__!r}, component={self.component!r}, weight={self.weight})"


class CompositeRewardFunc:
    """A composite as one TRL reward function that logs its components (see :func:`as_reward_func`)."""

    def __init__(
        self,
        runner: _CompositeRunner,
        name: str,
        components: Sequence[str] | None = None,
        log_reasons: bool = True,
    ) -> None:
        self.runner = runner
        self.__name__ = name
        self.components = None if components is None else list(components)
        self.log_reasons = log_reasons
        self.weight = 1.0

    def __call__(self, prompts: Any = None, completions: Any = None, **kwargs: Any) -> list[float | None]:
        kw = dict(kwargs, prompts=prompts, completions=completions)
        try:
            out = self.runner.score(kw)
            scores = [_finite(s) for s in out.scores]
        except Exception as e:
            return self.runner.fail(self.__name__, kw, e)
        try:
            self._log(out, kwargs.get("log_metric"), kwargs.get("log_extra"))
        except Exception as e:  # logging problems never change the rewards
            logger.warning("could not log components of %r: %s", self.__name__, e)
        return scores

    def _log(self, out: RewardOutput, log_metric: Callable[..., Any] | None, log_extra: Callable[..., Any] | None) -> None:
        names = self.components if self.components is not None else list(out.components)
        if callable(log_metric):
            for comp in names:
                mean = _nanmean(out.components.get(comp, []))
                if mean is None:
                    continue
                key = f"rewards/{comp}/mean"
                if comp == self.__name__:  # TRL logs rewards/<name>/mean for our total itself
                    key = f"rewards/{self.__name__}/{comp}/mean"
                log_metric(key, mean)
        if callable(log_extra) and self.log_reasons:
            log_extra(f"{self.__name__}/reason", list(out.reasons))

    def __repr__(self) -> str:
        return f"CompositeRewardFunc(name={self.__name__!r}, reward={self.runner.reward!r})"


def _children(reward: Reward) -> dict[str, tuple[Reward, float]] | None:
    children = getattr(reward, "children", None)
    from tagpr_rewards.combinators import WeightedSum

    if isinstance(reward, WeightedSum) and isinstance(children, Mapping):
        return dict(children)
    return None


def as_reward_funcs(
    reward: Reward,
    *,
    columns: Mapping[str, str] | None = None,
    log_only: Sequence[str] = (),
    fallback: float | None = 0.0,
) -> list[ComponentRewardFunc]:
    """One TRL reward function per component of ``reward``.

    For a :class:`~tagpr_rewards.combinators.WeightedSum` (the ``stage1``/``stage2`` presets)
    there is one function per child, named after the child, with the child's weight; pass
    :func:`reward_weights` of the result as ``GRPOConfig(reward_weights=...)`` and TRL's
    weighted sum equals the composite's total. Any other reward gives one function (its
    total, weight 1).

    Args:
        reward: a tagpr reward or composite.
        columns: our column name -> dataset column name, for the names in :data:`DEFAULT_COLUMNS`
            that your dataset spells differently (e.g. ``{"reference": "gold"}``).
        log_only: nested component keys (e.g. ``"base/task"``, ``"tag/tag_order"``) to add as
            extra functions with weight ``0``: TRL logs them but they do not move the policy.
        fallback: the score every sample gets when scoring fails (a warning is logged).

    Returns:
        The reward functions (picklable; each has ``__name__`` and ``weight``).

    >>> from tagpr_rewards.presets import build_from_config
    >>> r = build_from_config({"type": "weighted_sum", "children": {
    ...     "fmt": {"type": "tag_format", "schema": "think-answer", "weight": 2.0}}})
    >>> fs = as_reward_funcs(r)
    >>> fs[0].__name__, fs[0](completions=["<think>a</think><answer>b</answer>"])
    ('fmt', [1.0])
    """
    runner = _CompositeRunner(reward, columns, fallback)
    funcs: list[ComponentRewardFunc] = []
    children = _children(reward)
    if children is not None:
        none_as = getattr(reward, "none_as", "skip")
        sub = None if none_as == "skip" else float(none_as)
        for name, (_child, weight) in children.items():
            funcs.append(ComponentRewardFunc(runner, name, name, weight, none_as=sub))
    else:
        funcs.append(ComponentRewardFunc(runner, str(getattr(reward, "name", "reward")), None, 1.0))
    taken = {f.__name__ for f in funcs}
    for comp in log_only:
        if comp in taken:
            raise ValueError(f"log_only component {comp!r} is already a reward function")
        funcs.append(ComponentRewardFunc(runner, comp, comp, 0.0))
        taken.add(comp)
    return funcs


def as_reward_func(
    reward: Reward,
    *,
    name: str | None = None,
    columns: Mapping[str, str] | None = None,
    components: Sequence[str] | None = None,
    log_reasons: bool = True,
    fallback: float | None = 0.0,
) -> CompositeRewardFunc:
    """The whole composite as one TRL reward function that logs its components.

    Every call logs ``rewards/<component>/mean`` through TRL's ``log_metric`` (all components,
    nested ones as ``rewards/<child>/<term>/mean``, or only ``components``), and each sample's
    reason string as the ``<name>/reason`` column of TRL's completions table (``log_extra``).

    Args:
        reward: a tagpr reward or composite.
        name: the log name (default: the reward's ``name``, e.g. ``stage2``).
        columns: see :func:`as_reward_funcs`.
        components: which component keys to log (default: all).
        log_reasons: log per-sample reasons through ``log_extra``.
        fallback: the score every sample gets when scoring fails (a warning is logged).

    >>> from tagpr_rewards.presets import build_from_config
    >>> f = as_reward_func(build_from_config({"type": "tag_format", "schema": "think-answer"}))
    >>> f.__name__, f(prompts=["q"], completions=["no tags"])
    ('tag_format', [0.0])
    """
    runner = _CompositeRunner(reward, columns, fallback)
    return CompositeRewardFunc(runner, str(name or getattr(reward, "name", "reward")), components, log_reasons)


def reward_weights(funcs: Sequence[Any]) -> list[float]:
    """The ``GRPOConfig.reward_weights`` matching ``funcs`` (1.0 for functions without ``weight``).

    >>> reward_weights([])
    []
    """
    return [float(getattr(f, "weight", 1.0)) for f in funcs]
