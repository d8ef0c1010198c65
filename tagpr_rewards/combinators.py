"""Combinators: build composite rewards out of rewards.

Every composite keeps its children's per-sample scores as components (``child_name``) and
their own components (``child_name/component``), and joins the children's reasons, so logs
show why each sample scored what it did. All composites score the same :class:`Batch`, so a
completion is parsed once per schema however many tag rewards run.

>>> from tagpr_rewards.base import Reward, RewardOutput
>>> class Length(Reward):
...     name = "length"
...     def score(self, batch):
...         return RewardOutput([min(len(c) / 10, 1.0) for c in batch.completions])
>>> total = WeightedSum({"length": (Length(), 2.0)})
>>> out = total(["12345", "x" * 50])
>>> out.scores
[1.0, 2.0]
>>> out.components["length"]
[0.5, 1.0]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tagpr_rewards.base import Batch, Reward, RewardOutput, score_isolated
from tagpr_rewards.base import finite_or_none as _finite
from tagpr_rewards.registry import register_reward


def _merge_child(
    name: str, out: RewardOutput, components: dict[str, list[float | None]], n: int
) -> None:
    components[name] = [_finite(s) for s in out.scores]
    for k, v in out.components.items():
        components[f"{name}/{k}"] = list(v)


class WeightedSum(Reward):
    """``Σ w_i · r_i`` over named children.

    Args:
        children: ``{name: (reward, weight)}`` or ``{name: reward}`` (weight 1).
        none_as: how a child's ``None`` ("not applicable") counts: ``"skip"`` leaves it out
            of the sum (the total is ``None`` only when every child is ``None``), or a number
            that replaces it.
        name: the composite's own name (for logs).

    Formula: ``R = Σ_i w_i · r_i`` over applicable children.
    """

    low = None
    high = None

    def __init__(
        self,
        children: Mapping[str, Any],
        none_as: str | float = "skip",
        name: str = "weighted_sum",
    ) -> None:
        self.children: dict[str, tuple[Reward, float]] = {}
        for key, val in children.items():
            if isinstance(val, tuple):
                reward, weight = val
            else:
                reward, weight = val, 1.0
            if not isinstance(reward, Reward) and not callable(reward):
                raise TypeError(f"child {key!r} is not a reward: {reward!r}")
            self.children[key] = (reward, float(weight))
        if not self.children:
            raise ValueError("WeightedSum needs at least one child reward")
        self.none_as = none_as
        self.name = name

    def score(self, batch: Batch) -> RewardOutput:
        n = len(batch)
        totals: list[float | None] = [None] * n
        components: dict[str, list[float | None]] = {}
        reasons: list[list[str]] = [[] for _ in range(n)]
        errors: list[list[str]] = [[] for _ in range(n)]
        for key, (reward, weight) in self.children.items():
            out = _score_child(reward, batch)
            _merge_child(key, out, components, n)
            _collect_errors(key, out, errors)
            for i in range(n):
                s = _finite(out.scores[i])
                if s is None and self.none_as != "skip":
                    s = float(self.none_as)
                if s is not None and weight != 0.0:
                    totals[i] = (totals[i] or 0.0) + weight * s
                elif s is not None and totals[i] is None:
                    totals[i] = 0.0
                if out.reasons and out.reasons[i]:
                    reasons[i].append(f"{key}: {out.reasons[i]}")
        return RewardOutput(totals, components, ["; ".join(r) for r in reasons], ["; ".join(e) for e in errors])


class Gate(Reward):
    """Credit for ``reward`` only where ``gate`` passes: ``R = r if g ≥ threshold else fail_score``.

    The classic use is "task credit only when the format is valid" (``stage1``).

    Args:
        reward: the reward to gate.
        gate: the reward that must pass.
        threshold: the gate passes where its score is ``>= threshold``.
        fail_score: the score where the gate fails (``None`` = not applicable).
        name: log name.
    """

    low = None
    high = None

    def __init__(
        self,
        reward: Reward,
        gate: Reward,
        threshold: float = 1.0,
        fail_score: float | None = 0.0,
        name: str = "gate",
        reward_name: str | None = None,
        gate_name: str | None = None,
    ) -> None:
        self.reward = reward
        self.gate = gate
        self.threshold = float(threshold)
        self.fail_score = fail_score
        self.name = name
        self.reward_name: str = reward_name or str(getattr(reward, "name", "reward"))
        self.gate_name: str = gate_name or str(getattr(gate, "name", "gate"))

    def score(self, batch: Batch) -> RewardOutput:
        n = len(batch)
        g = _score_child(self.gate, batch)
        r = _score_child(self.reward, batch)
        components: dict[str, list[float | None]] = {}
        _merge_child(self.gate_name, g, components, n)
        _merge_child(self.reward_name, r, components, n)
        scores: list[float | None] = []
        reasons: list[str] = []
        errors: list[list[str]] = [[] for _ in range(n)]
        _collect_errors(self.gate_name, g, errors)
        _collect_errors(self.reward_name, r, errors)
        for i in range(n):
            gs = _finite(g.scores[i])
            passed = gs is not None and gs >= self.threshold
            if passed:
                scores.append(_finite(r.scores[i]))
                reasons.append(r.reasons[i] if r.reasons else "")
            else:
                scores.append(self.fail_score)
                why = g.reasons[i] if g.reasons and g.reasons[i] else f"{self.gate_name} below {self.threshold}"
                reasons.append(f"gated: {why}")
        return RewardOutput(scores, components, reasons, ["; ".join(e) for e in errors])


class Scale(Reward):
    """``R = scale · r + shift`` (``None`` stays ``None``)."""

    low = None
    high = None

    def __init__(self, reward: Reward, scale: float = 1.0, shift: float = 0.0, name: str | None = None) -> None:
        self.reward = reward
        self.scale = float(scale)
        self.shift = float(shift)
        self.name = name or str(getattr(reward, "name", "scaled"))

    def score(self, batch: Batch) -> RewardOutput:
        out = _score_child(self.reward, batch)
        scores = [None if (s := _finite(x)) is None else self.scale * s + self.shift for x in out.scores]
        return RewardOutput(scores, dict(out.components), list(out.reasons), list(out.errors))


class Clip(Reward):
    """``R = min(max(r, low), high)`` (``None`` stays ``None``)."""

    def __init__(self, reward: Reward, low: float = -1.0, high: float = 1.0, name: str | None = None) -> None:
        if low > high:
            raise ValueError(f"Clip: low ({low}) > high ({high})")
        self.reward = reward
        self.low = float(low)
        self.high = float(high)
        self.name = name or str(getattr(reward, "name", "clipped"))

    def score(self, batch: Batch) -> RewardOutput:
        out = _score_child(self.reward, batch)
        lo, hi = self.low, self.high
        assert lo is not None and hi is not None
        scores = [None if (s := _finite(x)) is None else min(max(s, lo), hi) for x in out.scores]
        return RewardOutput(scores, dict(out.components), list(out.reasons), list(out.errors))


class RewardFunction(Reward):
    """Wrap a plain function ``f(completions, **kw) -> list[float | None]`` as a Reward.

    The function must be a module-level function (so the wrapper pickles).

    >>> def shortness(completions, **kw):
    ...     return [1.0 / (1 + len(c)) for c in completions]
    >>> RewardFunction(shortness)(["", "abc"]).scores
    [1.0, 0.25]
    """

    low = None
    high = None

    def __init__(self, func: Any, name: str | None = None) -> None:
        self.func = func
        self.name = name or str(getattr(func, "__name__", "function"))

    def score(self, batch: Batch) -> RewardOutput:
        # a user function must not kill an RL step: a failing sample costs that sample alone
        return score_isolated(self._score_all, batch, self.name)

    def _score_all(self, batch: Batch) -> RewardOutput:
        # extra columns never shadow the contract's own arguments (a metadata key "completions"
        # or "prompts" would otherwise be a TypeError or replace the real prompts)
        kwargs: dict[str, Any] = {k: v for k, v in batch.columns.items() if k not in _RESERVED}
        if batch.prompts is not None:
            kwargs["prompts"] = batch.prompts
        if batch.references is not None:
            kwargs["references"] = batch.references
        if batch.user_ids is not None:
            kwargs["user_ids"] = batch.user_ids
        vals = list(self.func(batch.completions, **kwargs))
        return RewardOutput([_finite(v) for v in vals])  # a miscount is caught by score_isolated


_RESERVED = frozenset({"completions", "prompts", "references", "user_ids"})


def _collect_errors(name: str, out: RewardOutput, errors: list[list[str]]) -> None:
    for i, e in enumerate(out.errors or ()):
        if e:
            errors[i].append(e if e.startswith(f"{name}") else f"{name}: {e}")


def _score_child(reward: Any, batch: Batch) -> RewardOutput:
    """Score a child; a sample the child fails on gets ``None``, its error flagged and logged
    once (see :func:`~tagpr_rewards.base.score_isolated`); the other samples keep their scores."""
    if isinstance(reward, Reward):
        name = str(getattr(reward, "name", type(reward).__name__))
        return score_isolated(reward.score, batch, name)
    return RewardFunction(reward).score(batch)


register_reward("weighted_sum")(WeightedSum)
register_reward("gate")(Gate)
register_reward("scale")(Scale)
register_reward("clip")(Clip)
