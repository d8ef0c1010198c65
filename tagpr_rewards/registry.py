"""Registry of rewards by name, with did-you-mean errors for unknown names.

>>> from tagpr_rewards.registry import suggest
>>> suggest("tag_ordr", ["tag_order", "tag_format"])
"did you mean 'tag_order'?"
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from tagpr_rewards.config_io import did_you_mean

T = TypeVar("T")

_REWARDS: dict[str, Callable[..., Any]] = {}
# name -> "module:attr" for rewards whose module is heavy (imported only when built)
_LAZY: dict[str, str] = {}


def suggest(name: str, choices: Iterable[str]) -> str:
    """A did-you-mean hint for an unknown ``name`` ("" when nothing is close): the toolkit's
    :func:`tagpr_rewards.config_io.did_you_mean`."""
    return did_you_mean(name, choices)


def unknown_name_error(kind: str, name: str, choices: Iterable[str]) -> KeyError:
    choices = sorted(choices)
    hint = suggest(name, choices)
    msg = f"unknown {kind} {name!r}"
    if hint:
        msg += f"; {hint}"
    msg += f" (known: {', '.join(choices)})"
    return KeyError(msg)


def register_reward(name: str) -> Callable[[T], T]:
    """Class decorator: make a reward buildable by name from config."""

    def deco(cls: T) -> T:
        _REWARDS[name] = cls  # type: ignore[assignment]
        return cls

    return deco


def register_lazy(name: str, target: str) -> None:
    """Register ``name`` as ``"module:attr"``, imported only when the reward is built."""
    _LAZY[name] = target


def reward_names() -> list[str]:
    _ensure_builtin()
    return sorted(set(_REWARDS) | set(_LAZY))


def get_reward_class(name: str) -> Callable[..., Any]:
    _ensure_builtin()
    if name in _REWARDS:
        return _REWARDS[name]
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name].split(":")
        return getattr(importlib.import_module(mod), attr)  # type: ignore[no-any-return]
    raise unknown_name_error("reward", name, reward_names())


def build_reward(name: str, **kwargs: Any) -> Any:
    """Build a registered reward: ``build_reward("tag_order", schema="think-answer")``."""
    cls = get_reward_class(name)
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise TypeError(f"cannot build reward {name!r} with {sorted(kwargs)}: {e}") from e


_BUILTIN_MODULES = ("tagpr_rewards.combinators", "tagpr_rewards.tags", "tagpr_rewards.task_rewards",
                    "tagpr_rewards.recall", "tagpr_rewards.consistency")
_LAZY.setdefault("prmu", "tagpr_rewards.prmu.reward:PRMUReward")


def _ensure_builtin() -> None:
    # Importing the built-in reward modules registers them (all cheap: no torch).
    import importlib

    for mod in _BUILTIN_MODULES:
        importlib.import_module(mod)
