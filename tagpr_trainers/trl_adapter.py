"""Plug tagpr rewards into TRL's ``GRPOTrainer``.

Two ways, both picklable callable classes with a stable ``__name__`` (TRL names its reward
logs after it, and async rollout workers pickle reward functions):

* :func:`as_reward_func` — **the default path**: one callable returning the composite's total
  (TRL's ``reward_weights`` stay ``[1.0]``, so there is no weight to forget or copy). It
  reports every component through TRL's ``log_metric`` (as ``rewards/<component>/mean``) and
  the per-sample reasons and error flags through ``log_extra``. The recipe uses this.
* :func:`as_reward_funcs` — one callable per component, for users who want TRL's own
  per-function logs and ``reward_weights``. For a :class:`WeightedSum` composite
  (``stage1``/``stage2``) that is one callable per child (``base``, ``tag``, ``prmu``) carrying
  the child's weight; pass ``GRPOConfig(reward_weights=reward_weights(funcs))`` and TRL's
  weighted sum equals the composite's total. Forgetting it would make TRL use ``[1, 1, …]``:
  on its first call each function finds the ``GRPOTrainer`` calling it and, when TRL's
  weights differ from the composite's, logs an ERROR and a ``RuntimeWarning`` naming both
  (OUR choice: warn loudly rather than stop a run whose weights may be deliberate).

TRL 1.16 calls ``reward_func(prompts=, completions=, completion_ids=, **columns,
trainer_state=, log_extra=, log_metric=)`` where ``columns`` are the dataset's columns other
than ``prompt`` (keep ``remove_unused_columns=False``). The adapter reads the reference, user
id, profile and task from those columns (names configurable with ``columns=``), accepts plain
and conversational completions (chat message lists) and returns ``None`` where a reward does
not apply (TRL treats it as NaN and leaves it out of the weighted sum).

Fails loud and safe:

* **Columns.** The first call checks that the dataset has every column the reward needs
  (``reference`` for the task reward, ``user_id``/``profile`` for PRMU) and raises
  :class:`RewardColumnsError` naming the columns it saw and the ``columns=`` mapping that
  would fix it (``check_dataset(funcs, dataset)`` runs the same check before training). A
  missing gold column would otherwise make the task reward ``None`` for every sample and TRL
  would silently train on the tag reward alone.
* **Task per row.** The ``lamp_task`` reward reads each row's ``task`` column, so a mixed-task
  batch scores each row with its own metric.
* **Errors inside a step** never raise: every sample gets ``fallback`` (``0.0`` by default),
  the ``tagpr/error`` column of TRL's completions table is 1 for it, and one ERROR log names
  the cause.
* **No signal.** When every completion of a step gets the same total (zero reward variance:
  GRPO's advantages are all zero and the policy does not move), one WARNING says so, with the
  most common reason (e.g. a policy that does not write the schema's tags yet; see the
  ``format_credit`` option of the presets).

Sharing: the per-component callables of one :func:`as_reward_funcs` call hold one shared
runner. TRL passes the same list objects to every reward function of a step, so the first
callable converts and scores the batch once and its siblings recognise the same call by
object identity (no rebuilding, no hashing); the output is dropped as soon as every sibling
has read it, and a new step (``global_step``) or new lists are always scored afresh.

Example (no trainer needed; TRL passes the same keyword arguments):

>>> from tagpr_rewards.base import Reward, RewardOutput
>>> from tagpr_rewards.combinators import WeightedSum
>>> class Has(Reward):
...     def __init__(self, word): self.word, self.name = word, word
...     def score(self, batch):
...         return RewardOutput([float(self.word in c) for c in batch.completions])
>>> total = WeightedSum({"a": (Has("a"), 1.0), "b": (Has("b"), 0.5)})
>>> one = as_reward_func(total)
>>> logged = {}
>>> one(prompts=["p"], completions=[[{"role": "assistant", "content": "ab"}]],
...     log_metric=lambda k, v: logged.setdefault(k, v))
[1.5]
>>> logged
{'rewards/a/mean': 1.0, 'rewards/b/mean': 1.0}
>>> funcs = as_reward_funcs(total)
>>> [f.__name__ for f in funcs], reward_weights(funcs)
(['a', 'b'], [1.0, 0.5])
>>> kw = dict(prompts=["p", "p"], completions=["ab", "b"])
>>> [f(**kw) for f in funcs]
[[1.0, 0.0], [1.0, 1.0]]
"""

from __future__ import annotations

import logging
import sys
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from tagpr_rewards.base import Batch, Reward, RewardOutput
from tagpr_rewards.base import finite_or_none as _finite
from tagpr_rewards.config_io import closest

__all__ = [
    "DEFAULT_COLUMNS",
    "CompositeRewardFunc",
    "ComponentRewardFunc",
    "RewardColumnsError",
    "as_reward_func",
    "as_reward_funcs",
    "check_dataset",
    "required_columns",
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

# What each of our columns holds (for error messages) and names datasets often use for it.
_COLUMN_MEANING = {
    "reference": "the gold answer",
    "user_id": "the user's id",
    "profile": "the user's history items",
    "query": "the question",
}
_SYNONYMS = {
    "reference": ("solution", "answer", "gold", "output", "label", "target", "ground_truth", "references"),
    "user_id": ("uid", "user", "users", "user_ids"),
    "profile": ("profiles", "history", "user_profile"),
    "query": ("question", "input"),
}


class RewardColumnsError(ValueError):
    """The dataset lacks a column a reward needs (the message names what was seen and the fix)."""


def _nanmean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in (_finite(x) for x in values) if v is not None]
    return sum(vals) / len(vals) if vals else None


def _walk(reward: Any, path: str) -> Iterable[tuple[str, Any]]:
    yield path, reward
    children = getattr(reward, "children", None)
    if isinstance(children, Mapping):
        for name, child in children.items():
            sub = child[0] if isinstance(child, tuple) else child
            yield from _walk(sub, f"{path}/{name}" if path else str(name))
    for attr in ("reward", "gate"):
        sub = getattr(reward, attr, None)
        if isinstance(sub, Reward):
            label = getattr(reward, f"{attr}_name", None) or attr
            yield from _walk(sub, f"{path}/{label}" if path else str(label))


def required_columns(reward: Reward) -> dict[str, list[str]]:
    """Our column names a reward reads per sample -> the components that need them.

    A reward declares them with a ``required_columns`` attribute (the LaMP task rewards need
    ``reference``; PRMU needs ``user_id`` and ``profile``).

    >>> from tagpr_rewards.presets import stage1
    >>> required_columns(stage1("LaMP-2", schema="think-answer"))
    {'reference': ['base/task']}
    """
    need: dict[str, list[str]] = {}
    for path, r in _walk(reward, ""):
        cols = getattr(r, "required_columns", None)
        if cols is None and type(r).__name__ == "PRMUReward":  # declared by name: no torch import here
            cols = ("user_id", "profile")
        for c in cols or ():
            need.setdefault(str(c), []).append(path or str(getattr(r, "name", "reward")))
    return need


def _missing_message(name: str, need: Mapping[str, list[str]], missing: list[str], mapping: Mapping[str, str],
                     seen: Sequence[str]) -> str:
    fix: dict[str, str] = {}
    lines = []
    for ours in missing:
        theirs = mapping[ours]
        guess = next((c for c in _SYNONYMS.get(ours, ()) if c in seen), None)
        if guess is None:
            guess = closest(ours, seen, cutoff=0.6)
        fix[ours] = guess or f"<your {ours} column>"
        lines.append(f"no column {theirs!r} ({_COLUMN_MEANING.get(ours, ours)}, needed by "
                     f"{', '.join(need[ours])})")
    cols = ", ".join(repr(c) for c in seen) or "none"
    msg = (f"tagpr reward {name!r}: the dataset has {'; '.join(lines)}. The reward function saw the columns "
           f"[{cols}]. Map yours with columns={fix!r} (as_reward_func(..., columns=...) or "
           f"as_reward_funcs(..., columns=...)), or rename the dataset column.")
    if not seen:
        msg += " No dataset column reached the reward at all: set GRPOConfig(remove_unused_columns=False)."
    return msg


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
        self.needs = required_columns(reward)
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._lock = threading.Lock()
        self._src: tuple[Any, ...] | None = None  # what the cached output was computed from
        self._out: RewardOutput | None = None
        self._reads: set[int] = set()
        self._columns_checked = False
        self._weights_checked = False
        self._warned_flat = False
        self._errors_logged: set[str] = set()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for k in ("_lock", "_src", "_out", "_reads", "_columns_checked", "_weights_checked", "_warned_flat",
                  "_errors_logged"):
            state.pop(k, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_runtime()

    @property
    def name(self) -> str:
        return str(getattr(self.reward, "name", "reward"))

    # -- checks ---------------------------------------------------------------------------
    def check_columns(self, seen: Iterable[str]) -> None:
        """Raise :class:`RewardColumnsError` when a column the reward needs is not in ``seen``."""
        seen_list = [c for c in seen if c not in _TRL_CONTROL and c != "prompt"]
        missing = [ours for ours in self.needs if self.columns[ours] not in seen_list]
        if missing:
            raise RewardColumnsError(_missing_message(self.name, self.needs, missing, self.columns, seen_list))

    def _first_call_checks(self, kwargs: Mapping[str, Any]) -> None:
        if self._columns_checked:
            return
        present = [k for k, v in kwargs.items() if v is not None]
        self.check_columns(present)
        self._columns_checked = True

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
    def _source(kwargs: Mapping[str, Any]) -> tuple[Any, ...]:
        """What identifies one TRL call: the step and the very objects passed (kept alive here,
        so an id can never be reused while cached), plus a shallow snapshot of the completions."""
        comps = kwargs.get("completions")
        state = kwargs.get("trainer_state")
        others = tuple(sorted((k, v) for k, v in kwargs.items() if k not in _TRL_CONTROL and v is not None))
        return (getattr(state, "global_step", None), comps, tuple(comps or ()), kwargs.get("prompts"), others)

    @staticmethod
    def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
        if a[0] != b[0] or a[1] is not b[1] or a[3] is not b[3] or len(a[2]) != len(b[2]):
            return False
        if any(x is not y for x, y in zip(a[2], b[2])):
            return False
        if len(a[4]) != len(b[4]):
            return False
        return all(ka == kb and va is vb for (ka, va), (kb, vb) in zip(a[4], b[4]))

    # -- scoring --------------------------------------------------------------------------
    def score(self, kwargs: Mapping[str, Any], reader: int | None = None) -> RewardOutput:
        """Score the composite for TRL's kwargs; ``reader`` is the sibling asking (shared cache)."""
        self._first_call_checks(kwargs)
        if reader is None or self.consumers <= 1:
            batch = self.batch(kwargs)
            return self._after(self._checked(self.reward.score(batch), len(batch)))
        with self._lock:
            src = self._source(kwargs)
            if self._src is None or self._out is None or reader in self._reads or not self._same(src, self._src):
                batch = self.batch(kwargs)
                self._src, self._reads = src, set()
                self._out = self._after(self._checked(self.reward.score(batch), len(batch)))
            out = self._out
            self._reads.add(reader)
            if len(self._reads) >= self.consumers:  # every sibling has read it: drop it
                self._src, self._out, self._reads = None, None, set()
            return out

    @staticmethod
    def _checked(out: RewardOutput, n: int) -> RewardOutput:
        if len(out.scores) != n:
            raise ValueError(f"reward returned {len(out.scores)} scores for {n} completions")
        return out

    def _after(self, out: RewardOutput) -> RewardOutput:
        """Warn once when a whole step carries no signal (every total equal: zero GRPO advantage)."""
        if self._warned_flat or len(out.scores) < 2:
            return out
        vals = [_finite(s) for s in out.scores]
        finite = [v for v in vals if v is not None]
        if len(finite) == len(vals) and max(finite) - min(finite) <= 1e-12:
            self._warned_flat = True
            why = Counter(r.split(";")[0] for r in out.reasons if r).most_common(1)
            logger.warning(
                "tagpr reward %r: all %d completions of this step got the same reward %.4g (zero reward "
                "variance: every GRPO advantage is 0 and the policy does not change). Most common reason: %s. "
                "A policy that does not write the schema's tags yet gets 0 from stage1/stage2 everywhere: SFT it on "
                "tagged chains first, or add partial format credit (preset option format_credit: 0.5, "
                "docs/trainers.md). Warned once.",
                self.name, len(vals), finite[0], repr(why[0][0]) if why else "none given",
            )
        return out

    def fail(self, name: str, kwargs: Mapping[str, Any], error: BaseException,
             flag: bool = True) -> list[float | None]:
        """Fallback scores for a batch whose scoring failed; ``flag``: log ``tagpr/error`` (one
        sibling per batch does, so TRL's completions table gets one value per completion)."""
        n = len(kwargs.get("completions") or ())
        cause = f"{type(error).__name__}: {error}"
        if cause not in self._errors_logged:  # one ERROR per distinct cause, not one per step
            self._errors_logged.add(cause)
            logger.error(
                "tagpr reward %r failed on a batch of %d (%s); every sample gets the fallback %r and "
                "tagpr/error=1 (logged once per cause)", name, n, cause, self.fallback, exc_info=True,
            )
        log_metric = kwargs.get("log_metric")
        log_extra = kwargs.get("log_extra")
        try:
            if callable(log_metric):
                log_metric(f"rewards/{name}/errors", 1.0)
            if callable(log_extra) and flag:
                log_extra("tagpr/error", [1.0] * n)
        except Exception:  # logging must not break the step either
            pass
        return [self.fallback] * n

    def check_weights(self, caller: Any) -> None:
        """On the first call: compare TRL's ``reward_weights`` with the composite's (see module doc)."""
        if self._weights_checked:
            return
        self._weights_checked = True
        trainer = _calling_trainer(caller)
        if trainer is None:
            return
        try:
            trl_weights = [float(w) for w in trainer.reward_weights]
        except Exception:
            return
        ours, theirs = [], []
        for i, f in enumerate(trainer.reward_funcs):
            if isinstance(f, ComponentRewardFunc) and f.runner is self and i < len(trl_weights):
                ours.append((f.__name__, f.weight))
                theirs.append(trl_weights[i])
        if any(abs(w - t) > 1e-6 for (_, w), t in zip(ours, theirs)):
            msg = (f"TRL optimises the reward functions of {self.name!r} with reward_weights {theirs}, but the "
                   f"composite's weights are {[w for _, w in ours]} ({', '.join(f'{n}={w:g}' for n, w in ours)}). "
                   "Pass GRPOConfig(reward_weights=reward_weights(funcs)), or use as_reward_func(reward) (one "
                   "function, no weights to copy).")
            logger.error(msg)
            warnings.warn(msg, RuntimeWarning, stacklevel=3)


def _calling_trainer(start: Any) -> Any:
    """The object whose method called a reward function, if it looks like TRL's GRPOTrainer."""
    frame = start
    for _ in range(8):
        if frame is None:
            return None
        obj = frame.f_locals.get("self")
        if obj is not None and hasattr(obj, "reward_weights") and isinstance(getattr(obj, "reward_funcs", None),
                                                                             list):
            return obj
        frame = frame.f_back
    return None


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
        if not self.runner._weights_checked:
            self.runner.check_weights(sys._getframe(1))
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
        except RewardColumnsError:  # a dataset that cannot give this reward its inputs: stop now
            raise
        except Exception as e:  # never kill an RL step
            return self.runner.fail(self.__name__, kw, e, flag=self.reader == 0)

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
        except RewardColumnsError:
            raise
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
            # per-sample failures inside the composite (tagpr_rewards.base.score_isolated)
            errs = getattr(out, "errors", None) or [""] * len(out.scores)
            log_extra("tagpr/error", [1.0 if e else 0.0 for e in errs])

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
    """One TRL reward function per component of ``reward`` (for TRL's own ``reward_weights``).

    For a :class:`~tagpr_rewards.combinators.WeightedSum` (the ``stage1``/``stage2`` presets)
    there is one function per child, named after the child, with the child's weight; pass
    :func:`reward_weights` of the result as ``GRPOConfig(reward_weights=...)`` and TRL's
    weighted sum equals the composite's total (a mismatch is logged as an ERROR on the first
    call). Any other reward gives one function (its total, weight 1). Prefer
    :func:`as_reward_func` unless you need TRL's per-function weights.

    Args:
        reward: a tagpr reward or composite.
        columns: our column name -> dataset column name, for the names in :data:`DEFAULT_COLUMNS`
            that your dataset spells differently (e.g. ``{"reference": "solution"}``).
        log_only: nested component keys (e.g. ``"base/task"``, ``"tag/tag_order"``) to add as
            extra functions with weight ``0``: TRL logs them but they do not move the policy.
        fallback: the score every sample gets when scoring fails (an ERROR is logged).

    Returns:
        The reward functions (picklable; each has ``__name__`` and ``weight``).

    >>> from tagpr_rewards.presets import build_from_config
    >>> r = build_from_config({"type": "weighted_sum", "children": {
    ...     "fmt": {"type": "tag_format", "schema": "think-answer", "weight": 2.0}}})
    >>> fs = as_reward_funcs(r)
    >>> fs[0].__name__, reward_weights(fs), fs[0](completions=["<think>a</think><answer>b</answer>"])
    ('fmt', [2.0], [1.0])
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
    """The whole composite as one TRL reward function that logs its components (the default path).

    Every call logs ``rewards/<component>/mean`` through TRL's ``log_metric`` (all components,
    nested ones as ``rewards/<child>/<term>/mean``, or only ``components``), and each sample's
    reason string as the ``<name>/reason`` column of TRL's completions table and its error
    flag as ``tagpr/error`` (``log_extra``). TRL's ``reward_weights`` stay ``[1.0]``: the
    weights live in the composite.

    Args:
        reward: a tagpr reward or composite.
        name: the log name (default: the reward's ``name``, e.g. ``stage2``).
        columns: see :func:`as_reward_funcs`.
        components: which component keys to log (default: all).
        log_reasons: log per-sample reasons through ``log_extra``.
        fallback: the score every sample gets when scoring fails (an ERROR is logged).

    >>> from tagpr_rewards.presets import build_from_config
    >>> f = as_reward_func(build_from_config({"type": "tag_format", "schema": "think-answer"}))
    >>> f.__name__, f(prompts=["q"], completions=["no tags"])
    ('tag_format', [0.0])
    """
    runner = _CompositeRunner(reward, columns, fallback)
    return CompositeRewardFunc(runner, str(name or getattr(reward, "name", "reward")), components, log_reasons)


def check_dataset(funcs: Any, dataset: Any) -> None:
    """Before training: raise :class:`RewardColumnsError` when ``dataset`` lacks a column a reward needs.

    ``funcs`` is one function or a list (from :func:`as_reward_func`/:func:`as_reward_funcs`);
    ``dataset`` is a ``datasets.Dataset`` (its ``column_names``) or a list of column names.

    >>> from tagpr_rewards.presets import stage1
    >>> check_dataset(as_reward_func(stage1("LaMP-2")), ["prompt", "solution", "user_id"])
    Traceback (most recent call last):
    ...
    tagpr_trainers.trl_adapter.RewardColumnsError: tagpr reward 'stage1': the dataset has no column 'reference' (the gold answer, needed by base/task). The reward function saw the columns ['solution', 'user_id']. Map yours with columns={'reference': 'solution'} (as_reward_func(..., columns=...) or as_reward_funcs(..., columns=...)), or rename the dataset column.
    """
    names = list(getattr(dataset, "column_names", dataset))
    for f in funcs if isinstance(funcs, (list, tuple)) else [funcs]:
        runner = getattr(f, "runner", None)
        if isinstance(runner, _CompositeRunner):
            runner.check_columns(names)


def reward_weights(funcs: Sequence[Any]) -> list[float]:
    """The ``GRPOConfig.reward_weights`` matching ``funcs`` (1.0 for functions without ``weight``).

    >>> reward_weights([])
    []
    """
    return [float(getattr(f, "weight", 1.0)) for f in funcs]
