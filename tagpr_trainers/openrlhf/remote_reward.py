"""Score OpenRLHF rollouts with a tagpr composite reward.

OpenRLHF 0.11's ``SingleTurnAgentExecutor`` calls ``reward_func(queries, prompts, labels)`` once
per sample (``--reward.remote_url path/to/reward_func.py``; the same payload goes over HTTP to a
remote reward server), where

* ``queries[i]`` is ``tokenizer.decode(prompt_ids + response_ids, skip_special_tokens=False)``:
  the chat-templated prompt, the response and its special tokens;
* ``prompts[i]`` is the chat-templated prompt text;
* ``labels[i]`` is the dataset's ``--data.label_key`` value unchanged: here the JSON label that
  :func:`tagpr_trainers.openrlhf.export.export_rl` writes (``task``, ``reference``, ``user_id``,
  ``profile``, ``query``, ``id``).

It expects ``{"rewards": ..., "scores": ..., "extra_logs": {name: value}}`` back, and it catches
(and logs only at INFO) any exception, after which the sample silently has no reward and the run
fails later with an unrelated message. Hence two rules:

* **at construction** (the entry file builds its adapter when OpenRLHF imports it): a config
  typo, an unknown preset or a missing ``$TAGPR_REWARD_CONFIG`` file raises, naming the file,
  so OpenRLHF's ``SingleTurnAgentExecutor`` fails before training starts;
* **inside a step** :class:`OpenRLHFRewardAdapter` never raises: a sample whose label is not a
  JSON object (``{not json``, ``null``, ``[...]``; see
  :func:`tagpr_rewards.remote_protocol.read_label`), or that the reward fails on, gets ``fallback``
  and ``tagpr/error`` 1, with one ERROR log per batch naming the cause; the other samples keep
  their rewards.

``extra_logs`` must carry the same keys for every sample (OpenRLHF concatenates them per key), so
the adapter fixes its key set once, from a dry run of the composite, and fills keys a sample
lacks with ``none_as``; ``tagpr/error`` is 1 where the fallback was used.

>>> adapter = OpenRLHFRewardAdapter({"type": "weighted_sum", "children": {
...     "fmt": {"type": "tag_format", "schema": "think-answer"}}})
>>> prompt = "<|user|>Which tag?<|end|><|assistant|>"
>>> out = adapter([prompt + "<think>x</think><answer>sci-fi</answer><|end|>"], [prompt], ['{"task": "LaMP-2"}'])
>>> out["rewards"], out["extra_logs"]["tagpr/fmt"], out["extra_logs"]["tagpr/error"]
([1.0], [1.0], [0.0])
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tagpr_rewards.base import finite_or_none as _num
from tagpr_rewards.remote_protocol import read_label, split_response, strip_special_tokens
from tagpr_rewards.remote_protocol import reward_component_names as _dry_run_components
from tagpr_trainers.openrlhf.export import _profile_value

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_REWARD_CONFIG",
    "OpenRLHFRewardAdapter",
    "default_adapter",
    "load_adapter_config",
    "split_response",
    "strip_special_tokens",
]

logger = logging.getLogger("tagpr_trainers.openrlhf")

#: Environment variable naming the YAML/JSON config the entry file builds its reward from.
CONFIG_ENV = "TAGPR_REWARD_CONFIG"

#: The reward without a config (ours): stage 2 without PRMU, ``α·R_base + β·R_tag``, on the
#: 9-tag schema; the task comes from each sample's label.
DEFAULT_REWARD_CONFIG: dict[str, Any] = {"preset": "stage2", "schema": "personalization-9"}

_ADAPTER_KEYS = {
    "reward", "fallback", "none_as", "score_from", "special_tokens", "response_marker",
    "log_components", "log_prefix",
}


def load_adapter_config(path: str | Path | None) -> dict[str, Any]:
    """Read an adapter config from YAML or JSON (``None`` -> defaults).

    The file is either a reward config (what ``tagpr_rewards.presets.build_from_config`` takes)
    or ``{"reward": <that>, "fallback": ..., "none_as": ..., "score_from": ..., ...}`` (the
    :class:`OpenRLHFRewardAdapter` arguments).
    """
    if path is None or str(path) == "":
        return {"reward": dict(DEFAULT_REWARD_CONFIG)}
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{CONFIG_ENV}={path}: no such file; point it at a YAML or JSON reward config")
    from tagpr_rewards.config_io import load_mapping

    data = load_mapping(p, "reward config", allow_empty=False)
    if "reward" in data:
        unknown = set(data) - _ADAPTER_KEYS
        if unknown:
            from tagpr_rewards.registry import unknown_name_error

            raise ValueError(f"{p}: {unknown_name_error('adapter key', sorted(unknown)[0], _ADAPTER_KEYS).args[0]}")
        return dict(data)
    return {"reward": dict(data)}


class OpenRLHFRewardAdapter:
    """A tagpr composite as an OpenRLHF ``reward_func`` (returns plain lists; see module doc).

    Args:
        reward: a reward config for ``build_from_config`` (a preset config may leave out
            ``task``: each sample's label then names it), or a built ``Reward``.
        fallback: the reward of a sample whose scoring failed (logged at ERROR).
        none_as: the reward where the composite is "not applicable" (``None``), and the value of
            a component a sample lacks in ``extra_logs``.
        score_from: ``"total"`` or a component key (e.g. ``"base/task"``) for OpenRLHF's
            ``scores`` (used by ``--algo.dynamic_filtering_enable``, which expects 0..1).
        special_tokens: extra special-token strings to strip from the response.
        response_marker: fallback split point when the prompt cannot be found in the query.
        log_components: the component keys to put in ``extra_logs`` (default: all, fixed by a
            dry run of the first composite).
        log_prefix: prefix of the ``extra_logs`` keys.
    """

    def __init__(
        self,
        reward: Mapping[str, Any] | Any = None,
        *,
        fallback: float = 0.0,
        none_as: float = 0.0,
        score_from: str = "total",
        special_tokens: Sequence[str] = (),
        response_marker: str | None = None,
        log_components: Sequence[str] | None = None,
        log_prefix: str = "tagpr/",
    ) -> None:
        from tagpr_rewards.base import Reward

        self.config: dict[str, Any] | None = None
        self._fixed: Any = None
        if reward is None:
            self.config = dict(DEFAULT_REWARD_CONFIG)
        elif isinstance(reward, Reward):
            self._fixed = reward
        elif isinstance(reward, Mapping):
            self.config = dict(reward)
        else:
            raise TypeError(f"reward must be a config mapping or a tagpr Reward, got {type(reward).__name__}")
        self.fallback = float(fallback)
        self.none_as = float(none_as)
        self.score_from = score_from
        self.special_tokens = list(special_tokens)
        self.response_marker = response_marker
        self.log_prefix = log_prefix
        self._log_components = None if log_components is None else list(log_components)
        self._lock = threading.Lock()
        self._by_task: dict[str | None, Any] = {}
        # build now: config errors surface at start-up, not mid-run, and the extra_logs keys are
        # fixed before the first sample (OpenRLHF needs the same keys for every sample)
        if self._task_free():
            self._build_all_tasks()
        else:
            self._reward_for(None)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> OpenRLHFRewardAdapter:
        """Build from :func:`load_adapter_config`'s mapping."""
        kw = dict(config)
        return cls(kw.pop("reward", None), **kw)

    # -- reward building ------------------------------------------------------------------
    def _task_free(self) -> bool:
        """True when the config is a preset without ``task`` (the label then names it)."""
        return self.config is not None and "preset" in self.config and "task" not in self.config

    def _build_all_tasks(self) -> None:
        """Build the preset for every LaMP task; the logged keys are the union of their components."""
        from tagpr_rewards.metrics.lamp import list_tasks

        keys: list[str] = []
        error: Exception | None = None
        for task in list_tasks():
            try:
                reward = self._reward_for(task)
            except (KeyError, TypeError, ValueError) as e:
                logger.warning("reward config cannot be built for %s: %s", task, e)
                error = e
                continue
            for k in _dry_run_components(reward):
                if k not in keys:
                    keys.append(k)
        if not self._by_task and error is not None:
            raise error
        if self._log_components is None:
            self._log_components = keys

    def _reward_for(self, task: str | None) -> Any:
        key = task if self._task_free() else None
        with self._lock:
            if key in self._by_task:
                return self._by_task[key]
            if self._fixed is not None:
                reward = self._fixed
            else:
                from tagpr_rewards.presets import build_from_config

                assert self.config is not None
                cfg = dict(self.config)
                if key is not None:
                    cfg["task"] = key
                elif self._task_free():
                    raise ValueError(
                        "the reward config has no 'task' and the sample's label names none; add \"task\" "
                        "to the labels (tagpr_trainers.openrlhf.export.export_rl does) or to the config"
                    )
                reward = build_from_config(cfg, source=os.environ.get(CONFIG_ENV) or "<reward config>")
            if self._log_components is None and not self._task_free():
                self._log_components = _dry_run_components(reward)
            self._by_task[key] = reward
            return reward

    # -- scoring --------------------------------------------------------------------------
    def __call__(self, queries: Sequence[Any], prompts: Sequence[Any], labels: Sequence[Any] | None = None,
                 **kwargs: Any) -> dict[str, Any]:
        """Score a batch; returns ``{"rewards": [...], "scores": [...], "extra_logs": {k: [...]}}``."""
        n = len(queries)
        labels = list(labels) if labels is not None else [None] * n
        prompts = list(prompts) if prompts is not None else [""] * n
        rewards = [self.fallback] * n
        scores = [self.fallback] * n
        comps: list[dict[str, float]] = [{} for _ in range(n)]
        errors = [1.0] * n
        try:
            groups: dict[str | None, list[int]] = {}
            metas: list[dict[str, Any]] = []
            bad: list[tuple[int, str]] = []
            for i, lab in enumerate(labels):
                meta, problem = read_label(lab)
                if "profile" in meta:
                    meta["profile"] = _profile_value(meta["profile"])
                metas.append(meta)
                if problem is not None:  # never score a broken label's text as the gold answer
                    bad.append((i, problem))
                    continue
                task = meta.get("task")
                groups.setdefault(task if isinstance(task, str) else None, []).append(i)
            if bad:
                i0, why = bad[0]
                logger.error("tagpr reward: %d of %d labels are unusable (labels[%d]: %s: %.80r%s); those samples "
                             "get the fallback reward %s and tagpr/error 1. Labels must be JSON objects as "
                             "tagpr_trainers.openrlhf.export.export_rl writes them", len(bad), n, i0, why,
                             labels[i0], f"; and {len(bad) - 1} more" if len(bad) > 1 else "", self.fallback)
            for task, idx in groups.items():
                try:
                    self._score_group(task, idx, queries, prompts, metas, rewards, scores, comps, errors)
                except Exception as e:
                    ids = [metas[i].get("id", i) for i in idx]
                    logger.error(
                        "tagpr reward failed for samples %s (task %r): %s: %s; giving them the fallback reward %s",
                        ids, task, type(e).__name__, e, self.fallback, exc_info=True,
                    )
        except Exception:
            logger.error("tagpr reward failed on a batch of %d; giving it the fallback reward %s", n,
                         self.fallback, exc_info=True)
        keys = list(self._log_components or [])
        extra: dict[str, list[float]] = {
            f"{self.log_prefix}{k}": [c.get(k, self.none_as) for c in comps] for k in keys
        }
        extra[f"{self.log_prefix}error"] = errors
        return {"rewards": rewards, "scores": scores, "extra_logs": extra}

    def _score_group(self, task: str | None, idx: list[int], queries: Sequence[Any], prompts: Sequence[Any],
                     metas: list[dict[str, Any]], rewards: list[float], scores: list[float],
                     comps: list[dict[str, float]], errors: list[float]) -> None:
        from tagpr_rewards.base import Batch, score_isolated, to_text

        reward = self._reward_for(task)
        responses, ptexts = [], []
        for i in idx:
            q, _ = to_text(queries[i])
            p, _ = to_text(prompts[i])
            resp, method = split_response(q, p, self.response_marker)
            if method == "none":
                logger.warning("sample %s: prompt not found in the query; scoring the whole query",
                               metas[i].get("id", i))
            responses.append(strip_special_tokens(resp, self.special_tokens))
            ptexts.append(strip_special_tokens(p, self.special_tokens))
        keys = sorted({k for i in idx for k in metas[i]} - {"reference", "user_id"})
        columns = {k: [metas[i].get(k) for i in idx] for k in keys}
        # one mapping of metadata: a label key "prompts"/"completions" cannot collide with the contract
        batch = Batch.from_columns(
            responses, ptexts,
            [metas[i].get("reference") for i in idx],
            [metas[i].get("user_id") for i in idx],
            columns,
        )
        # a sample the reward fails on costs that sample alone (fallback, tagpr/error 1, one ERROR log)
        out = score_isolated(reward.score, batch, str(getattr(reward, "name", "reward")))
        for j, i in enumerate(idx):
            if out.errors[j]:
                continue  # keeps the fallback and tagpr/error 1
            total = _num(out.scores[j])
            rewards[i] = self.none_as if total is None else total
            if self.score_from == "total":
                scores[i] = rewards[i]
            else:
                col = out.components.get(self.score_from)
                v = _num(col[j]) if col is not None else None
                scores[i] = self.none_as if v is None else v
            comps[i] = {k: v for k, vals in out.components.items() if (v := _num(vals[j])) is not None}
            errors[i] = 0.0


_DEFAULT: dict[str, OpenRLHFRewardAdapter] = {}
_DEFAULT_LOCK = threading.Lock()


def default_adapter() -> OpenRLHFRewardAdapter:
    """The process-wide adapter built from ``$TAGPR_REWARD_CONFIG`` (or the defaults), built once."""
    path = os.environ.get(CONFIG_ENV, "")
    with _DEFAULT_LOCK:
        if path not in _DEFAULT:
            _DEFAULT[path] = OpenRLHFRewardAdapter.from_config(load_adapter_config(path or None))
        return _DEFAULT[path]
