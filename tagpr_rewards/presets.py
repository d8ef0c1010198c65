"""Stage presets and building composite rewards from config.

The two RL stages (the TagPR paper's multi-stage RL):

* ``stage1`` — exploratory stage, task reward alone: ``R_base`` = task reward gated on format
  validity ("task credit only when the format is valid").
* ``stage2`` — guided stage: ``R = α·R_base + β·R_tag + γ·R_PRMU``.

``R_tag`` is *our* choice (the paper's tag reward is not public):
``R_tag = ½·order + ½·coverage + spam + empty_steps + duplicate_steps + overlong``, where the four
anti-hacking terms are penalties in ``[-1, 0]``. The default weights ``α=1, β=0.5, γ=0.5`` are ours too.
Every weight is a parameter.

>>> r = stage1("LaMP-2", schema="think-answer")
>>> out = r(["<think>user tags space films sci-fi</think><answer>sci-fi</answer>", "sci-fi"],
...         references=["sci-fi", "sci-fi"])
>>> out.scores
[1.0, 0.0]
>>> out.reasons[1].startswith("base: gated")
True

Config form (YAML or dict), see :func:`build_from_config` (:func:`check_config` checks one
without loading any model)::

    preset: stage2
    task: LaMP-2
    schema: personalization-9
    alpha: 1.0
    beta: 0.5
    gamma: 0.5
    prmu: {checkpoint: runs/prmu/best}
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from tagpr_rewards.base import Reward
from tagpr_rewards.combinators import Clip, Gate, Scale, WeightedSum
from tagpr_rewards.registry import build_reward, get_reward_class, reward_names, unknown_name_error

#: Our default weights inside R_tag (not the paper's: it does not publish them).
DEFAULT_TAG_WEIGHTS: dict[str, float] = {
    "tag_order": 0.5,
    "tag_coverage": 0.5,
    "tag_spam": 1.0,
    "empty_steps": 1.0,
    "duplicate_steps": 1.0,
    "overlong": 1.0,
}

#: Our default stage-2 weights α, β, γ.
DEFAULT_STAGE2_WEIGHTS = {"alpha": 1.0, "beta": 0.5, "gamma": 0.5}


def base_reward(task: str, schema: str = "personalization-9", **task_kwargs: Any) -> Reward:
    """``R_base``: the LaMP task reward, credited only when the tag format is valid."""
    task_reward = build_reward("lamp_task", task=task, schema=schema, **task_kwargs)
    fmt = build_reward("tag_format", schema=schema)
    return Gate(task_reward, fmt, threshold=1.0, fail_score=0.0, name="base",
                reward_name="task", gate_name="format")


def tag_reward(
    schema: str = "personalization-9",
    weights: Mapping[str, float] | None = None,
    max_chars: int | None = None,
) -> Reward:
    """``R_tag``: weighted sum of tag-structure terms (our weights: :data:`DEFAULT_TAG_WEIGHTS`)."""
    w = dict(DEFAULT_TAG_WEIGHTS)
    if weights:
        for k in weights:
            if k not in w:
                raise unknown_name_error("tag reward term", k, w)
        w.update({k: float(v) for k, v in weights.items()})
    children: dict[str, tuple[Reward, float]] = {}
    for name, weight in w.items():
        # the terms that read tags take the schema; overlong reads only a length
        cls = get_reward_class(name)
        kw: dict[str, Any] = {"schema": schema} if "schema" in inspect.signature(cls).parameters else {}
        if name == "overlong" and max_chars is not None:
            kw["max_chars"] = max_chars
        children[name] = (build_reward(name, **kw), weight)
    return WeightedSum(children, name="tag")


def format_credit_reward(schema: str = "personalization-9") -> Reward:
    """Partial format credit (OUR shaping term, see :class:`~tagpr_rewards.task_rewards.FormatCreditReward`)."""
    return build_reward("format_credit", schema=schema)  # type: ignore[no-any-return]


def stage1(task: str, schema: str = "personalization-9", format_credit: float = 0.0, recall: float = 0.0,
           consistency: float = 0.0, **task_kwargs: Any) -> Reward:
    """Stage-1 preset: ``R = R_base`` (format-gated task reward).

    ``format_credit`` (OUR option, default 0 = the paper's form): adds ``format_credit ·
    R_format`` (child ``format_credit``), graded partial credit for the answer tag, tag order
    and reasoning tags, so that RL from a model that does not write tags yet has a signal.
    ``recall`` (OUR option, default 0): adds ``recall · R_recall`` (child ``recall``,
    :class:`~tagpr_rewards.recall.RecallGroundingReward`), how faithfully the recall step quotes
    the history items the prompt shows; it needs the ``profile`` column.
    ``consistency`` (OUR option, default 0): adds ``consistency · R_consistency`` (child
    ``consistency``, :class:`~tagpr_rewards.consistency.StepConsistencyReward`), whether the
    chain's later steps follow its own listing.

    >>> r = stage1("LaMP-2", schema="think-answer", format_credit=0.5)
    >>> [round(s, 3) for s in r(["no tags", "an answer"], references=["x", "x"]).scores]
    [0.0, 0.135]
    """
    children: dict[str, tuple[Reward, float]] = {"base": (base_reward(task, schema, **task_kwargs), 1.0)}
    _add_shaping(children, task, schema, format_credit, recall, consistency)
    return WeightedSum(children, name="stage1")


def _add_shaping(children: dict[str, tuple[Reward, float]], task: str, schema: str, format_credit: float,
                 recall: float, consistency: float = 0.0) -> None:
    for key, weight in (("format_credit", format_credit), ("recall", recall), ("consistency", consistency)):
        if weight < 0:
            raise ValueError(f"{key} must be >= 0, got {weight}")
    if format_credit:
        children["format_credit"] = (format_credit_reward(schema), float(format_credit))
    if recall:
        children["recall"] = (build_reward("recall_grounding", task=task, schema=schema), float(recall))
    if consistency:
        children["consistency"] = (build_reward("step_consistency", schema=schema), float(consistency))


def stage2(
    task: str,
    schema: str = "personalization-9",
    prmu: Reward | None = None,
    alpha: float = DEFAULT_STAGE2_WEIGHTS["alpha"],
    beta: float = DEFAULT_STAGE2_WEIGHTS["beta"],
    gamma: float = DEFAULT_STAGE2_WEIGHTS["gamma"],
    tag_weights: Mapping[str, float] | None = None,
    max_chars: int | None = None,
    format_credit: float = 0.0,
    recall: float = 0.0,
    consistency: float = 0.0,
    **task_kwargs: Any,
) -> Reward:
    """Stage-2 preset: ``R = α·R_base + β·R_tag + γ·R_PRMU``.

    ``prmu`` is any reward (normally :class:`tagpr_rewards.prmu.PRMUReward`); without one the
    PRMU term is left out and the composite is ``α·R_base + β·R_tag``. ``format_credit``,
    ``recall`` and ``consistency``: see :func:`stage1`.
    """
    children: dict[str, tuple[Reward, float]] = {
        "base": (base_reward(task, schema, **task_kwargs), alpha),
        "tag": (tag_reward(schema, tag_weights, max_chars), beta),
    }
    if prmu is not None:
        children["prmu"] = (prmu, gamma)
    _add_shaping(children, task, schema, format_credit, recall, consistency)
    return WeightedSum(children, name="stage2")


PRESETS: dict[str, Callable[..., Reward]] = {"stage1": stage1, "stage2": stage2}
_PRESET_KEYS = {
    "stage1": {"preset", "task", "schema", "lenient", "rouge", "format_credit", "recall", "consistency"},
    "stage2": {"preset", "task", "schema", "alpha", "beta", "gamma", "tag_weights", "max_chars",
               "prmu", "lenient", "rouge", "format_credit", "recall", "consistency"},
}


def build_from_config(config: Mapping[str, Any], source: str = "<config>") -> Reward:
    """Build a reward from a config mapping.

    Two forms:

    * a preset: ``{"preset": "stage2", "task": "LaMP-2", "schema": ..., "alpha": ..., "prmu": {...}}``
      where ``prmu`` is ``None``, a reward node, or kwargs for the ``prmu`` reward;
    * a reward node: ``{"type": <registry name>, <kwargs>}``; nested rewards go under
      ``reward``/``gate`` (for ``gate``, ``scale``, ``clip``) or ``children``
      (``{name: node}``, each node may carry ``weight``) for ``weighted_sum``.

    Unknown names and keys raise errors with a did-you-mean hint and ``source`` (the file).

    >>> r = build_from_config({"type": "weighted_sum", "children": {
    ...     "fmt": {"type": "tag_format", "schema": "think-answer", "weight": 2.0}}})
    >>> r(["<think>a</think><answer>b</answer>"]).scores
    [2.0]
    """
    if not isinstance(config, Mapping):
        raise TypeError(f"{source}: reward config must be a mapping, got {type(config).__name__}")
    try:
        if "preset" in config:
            return _build_preset(config)
        return _build_node(config)
    except (KeyError, TypeError, ValueError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        raise ValueError(f"{source}: {msg}") from e


def _build_preset(config: Mapping[str, Any]) -> Reward:
    name = config["preset"]
    if name not in PRESETS:
        raise unknown_name_error("preset", name, PRESETS)
    allowed = _PRESET_KEYS[name]
    for k in config:
        if k not in allowed:
            raise unknown_name_error(f"key for preset {name!r}", k, allowed)
    if "task" not in config:
        raise ValueError(f"preset {name!r} needs 'task' (e.g. task: LaMP-2)")
    kwargs = {k: v for k, v in config.items() if k not in ("preset", "prmu")}
    if name == "stage2":
        prmu_cfg = config.get("prmu")
        if prmu_cfg is not None:
            if isinstance(prmu_cfg, Reward):
                kwargs["prmu"] = prmu_cfg
            elif isinstance(prmu_cfg, Mapping) and "type" in prmu_cfg:
                kwargs["prmu"] = _build_node(prmu_cfg)
            elif isinstance(prmu_cfg, Mapping):
                # PRMU reads the answer with the preset's schema: the parse is shared, not redone
                extra = {"schema": config["schema"]} if "schema" in config and "schema" not in prmu_cfg else {}
                kwargs["prmu"] = build_reward("prmu", **extra, **prmu_cfg)
            else:
                raise TypeError("'prmu' must be a mapping of PRMUReward arguments or a reward node")
    return PRESETS[name](**kwargs)


def _build_node(node: Mapping[str, Any]) -> Reward:
    if "type" not in node:
        raise ValueError(f"reward node needs 'type' (one of: {', '.join(reward_names())}); got keys {sorted(node)}")
    kind = node["type"]
    kwargs = {k: v for k, v in node.items() if k not in ("type", "weight")}
    cls = get_reward_class(kind)
    if cls is WeightedSum:
        children = kwargs.pop("children", None)
        if not isinstance(children, Mapping) or not children:
            raise ValueError("weighted_sum needs 'children': {name: reward node}")
        built = {k: (_build_node(v), float(v.get("weight", 1.0))) for k, v in children.items()}
        return WeightedSum(built, **kwargs)
    if cls in (Gate, Scale, Clip):
        for key in ("reward", "gate"):
            if key in kwargs:
                kwargs[key] = _build_node(kwargs[key])
    return build_reward(kind, **kwargs)  # type: ignore[no-any-return]


def _check_kwargs(kind: str, cls: Any, kwargs: Mapping[str, Any]) -> None:
    import inspect

    params = inspect.signature(cls).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    names = [n for n in params if n != "self"]
    for k in kwargs:
        if k not in names:
            raise unknown_name_error(f"key for reward {kind!r}", k, names)


def _check_node(node: Mapping[str, Any]) -> None:
    if not isinstance(node, Mapping):
        raise TypeError(f"a reward node must be a mapping, got {type(node).__name__}")
    if "preset" in node:
        _check_preset(node)
        return
    if "type" not in node:
        raise ValueError(f"reward node needs 'type' (one of: {', '.join(reward_names())}); got keys {sorted(node)}")
    kind = node["type"]
    kwargs = {k: v for k, v in node.items() if k not in ("type", "weight")}
    cls = get_reward_class(kind)
    if kind == "prmu":  # checked without loading the checkpoint
        _check_kwargs(kind, cls, kwargs)
        return
    if cls is WeightedSum:
        children = kwargs.pop("children", None)
        if not isinstance(children, Mapping) or not children:
            raise ValueError("weighted_sum needs 'children': {name: reward node}")
        for child in children.values():
            _check_node(child)
            float(child.get("weight", 1.0))
        _check_kwargs(kind, cls, kwargs)
        return
    if cls in (Gate, Scale, Clip):
        for key in ("reward", "gate"):
            if key in kwargs:
                _check_node(kwargs.pop(key))
        _check_kwargs(kind, cls, kwargs)
        return
    build_reward(kind, **kwargs)


def _check_preset(config: Mapping[str, Any]) -> None:
    prmu = config.get("prmu")
    if config.get("preset") == "stage2" and prmu is not None:
        if isinstance(prmu, Mapping) and "type" in prmu:
            _check_node(prmu)
        elif isinstance(prmu, Mapping):
            _check_kwargs("prmu", get_reward_class("prmu"), prmu)
        elif not isinstance(prmu, Reward):
            raise TypeError("'prmu' must be a mapping of PRMUReward arguments or a reward node")
    _build_preset({k: v for k, v in config.items() if k != "prmu"})


def check_config(config: Mapping[str, Any], source: str = "<config>") -> None:
    """Check a reward config as :func:`build_from_config` would, without loading any model.

    Every key must be one the preset or reward takes (a PRMU term's keys are checked against
    ``PRMUReward``'s arguments; its checkpoint is not opened). Raises ``ValueError`` naming
    ``source``.

    >>> check_config({"preset": "stage1", "task": "LaMP-2", "gamma": 9}, source="rl.stage1.reward")
    Traceback (most recent call last):
    ...
    ValueError: rl.stage1.reward: unknown key for preset 'stage1' 'gamma' (known: consistency, format_credit, lenient, preset, recall, rouge, schema, task)
    >>> check_config({"preset": "stage2", "task": "LaMP-2", "prmu": {"checkpoint": "x", "normalise": "group"}})
    Traceback (most recent call last):
    ...
    ValueError: <config>: unknown key for reward 'prmu' 'normalise'; did you mean 'normalize'? (known: batch_size, cache_size, checkpoint, device, dtype, encoder_quantize, fallback, model, normalize, schema, use)
    """
    if not isinstance(config, Mapping):
        raise TypeError(f"{source}: reward config must be a mapping, got {type(config).__name__}")
    try:
        _check_node(config)
    except (KeyError, TypeError, ValueError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        raise ValueError(f"{source}: {msg}") from e
