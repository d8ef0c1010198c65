"""Configuration of an evaluation run: one dataclass, CLI over YAML over defaults.

:class:`EvalConfig` holds everything a run needs; :func:`load_config` merges the defaults, an
optional YAML file and the CLI's explicit values (CLI wins). :func:`parse_kv_args` parses the
``--model-args`` / ``--gen-kwargs`` strings in the two forms people type, ``k=v,k=v`` and JSON,
and rejects unknown keys with a did-you-mean hint (a scar of lm-evaluation-harness, whose
hand-rolled ``k=v`` parser broke on values containing ``=`` or ``,``).

>>> parse_kv_args("pretrained=/m/x,dtype=bfloat16,max_length=2048")
{'pretrained': '/m/x', 'dtype': 'bfloat16', 'max_length': 2048}
>>> parse_kv_args('{"temperature": 0.7, "stop": ["\\\\n"]}')
{'temperature': 0.7, 'stop': ['\\n']}
>>> GenerationConfig.from_dict({"max_new_tokens": 8}).max_new_tokens
8
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tagpr_rewards.config_io import ConfigError as _ConfigError
from tagpr_rewards.config_io import did_you_mean, from_dict, load_mapping, parse_value, unknown_key_message

__all__ = [
    "ConfigError",
    "EvalConfig",
    "GenerationConfig",
    "load_config",
    "parse_kv_args",
    "parse_value",
]


class ConfigError(_ConfigError):
    """A configuration value is wrong; the message names the key and what to do."""


def _did_you_mean(name: str, choices: Iterable[str]) -> str:
    hint = did_you_mean(name, choices)
    return f"; {hint}" if hint else ""


def _split_top_level(s: str) -> list[str]:
    """Split on commas that are not inside brackets or quotes (so ``stop=["a","b"]`` survives)."""
    parts: list[str] = []
    depth = 0
    quote: str | None = None
    cur: list[str] = []
    for ch in s:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = None
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return parts


def parse_kv_args(
    s: str | Mapping[str, Any] | None,
    allowed_keys: Iterable[str] | None = None,
    what: str = "argument",
) -> dict[str, Any]:
    """Parse ``k=v,k=v`` or a JSON object into a dict; unknown keys are errors.

    Each pair splits on its *first* ``=`` (so values may contain ``=``); commas inside
    brackets or quotes do not split. Values are typed by :func:`parse_value` (the one rule of
    ``tagpr_rewards.config_io``, shared by every command).

    Args:
        s: the string (or an already parsed mapping, which is only validated).
        allowed_keys: the accepted keys; ``None`` accepts any key.
        what: what the keys are, for error messages (e.g. ``"model arg of backend 'hf'"``).

    >>> parse_kv_args("a=1,b=x=y", ["a", "b"])
    {'a': 1, 'b': 'x=y'}
    >>> parse_kv_args("temprature=0.1", ["temperature", "top_p"], "gen kwarg")
    Traceback (most recent call last):
    ...
    tagpr_eval.config.ConfigError: unknown gen kwarg 'temprature'; did you mean 'temperature'?
    """
    if s is None:
        out: dict[str, Any] = {}
    elif isinstance(s, Mapping):
        out = dict(s)
    else:
        text = s.strip()
        if not text:
            out = {}
        elif text.startswith("{"):
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                raise ConfigError(
                    f"{what}s look like JSON but do not parse: {e.msg} at column {e.colno}; "
                    "write a JSON object or k=v,k=v"
                ) from e
            if not isinstance(obj, dict):
                raise ConfigError(f"{what}s must be a JSON object, got {type(obj).__name__}")
            out = obj
        else:
            out = {}
            for part in _split_top_level(text):
                if not part.strip():
                    continue
                if "=" not in part:
                    raise ConfigError(f"{what} {part.strip()!r} has no '='; write key=value")
                k, v = part.split("=", 1)
                k = k.strip()
                if not k:
                    raise ConfigError(f"{what} {part.strip()!r} has an empty key")
                if k in out:
                    raise ConfigError(f"{what} {k!r} given twice")
                out[k] = parse_value(v)
    if allowed_keys is not None:
        allowed = sorted(allowed_keys)
        for k in out:
            if k not in allowed:
                raise ConfigError(unknown_key_message(k, allowed, what))
    return out


@dataclass
class GenerationConfig:
    """Generation settings shared by every backend (``--gen-kwargs``).

    ``temperature == 0`` or ``do_sample=False`` means greedy decoding. ``stop`` strings cut
    the output at their first occurrence (the stop string itself is removed).

    >>> GenerationConfig(max_new_tokens=16).greedy
    True
    """

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    do_sample: bool = False
    seed: int = 0
    stop: list[str] = field(default_factory=list)

    @property
    def greedy(self) -> bool:
        return not self.do_sample or self.temperature <= 0.0

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | str | None) -> GenerationConfig:
        """Build from a dict or a ``k=v`` / JSON string; unknown keys are errors."""
        kv = parse_kv_args(d, cls.keys(), "gen kwarg")
        stop = kv.get("stop")
        if isinstance(stop, str):
            kv["stop"] = [stop]
        elif stop is None and "stop" in kv:
            kv["stop"] = []
        gen = cls(**kv)
        gen.validate()
        return gen

    def validate(self) -> None:
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ConfigError(f"gen kwarg max_new_tokens must be a positive int, got {self.max_new_tokens!r}")
        if not isinstance(self.temperature, (int, float)) or self.temperature < 0:
            raise ConfigError(f"gen kwarg temperature must be >= 0, got {self.temperature!r}")
        if not isinstance(self.top_p, (int, float)) or not 0 < self.top_p <= 1:
            raise ConfigError(f"gen kwarg top_p must be in (0, 1], got {self.top_p!r}")
        if not isinstance(self.stop, list) or not all(isinstance(x, str) for x in self.stop):
            raise ConfigError(f"gen kwarg stop must be a string or a list of strings, got {self.stop!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PROMPT_STYLES = ("lamp", "tagged")
RETRIEVERS = ("bm25", "dense", "recency", "random", "none")


@dataclass
class EvalConfig:
    """Everything one evaluation run needs (the resolved form is saved in results.json).

    Attributes:
        model: backend name (``hf``, ``vllm``, ``openai``, ``baseline``, ``dummy``).
        model_args: backend keyword arguments (``--model-args``).
        tasks: task names (``LaMP-2``, ``LaMP_4``, ``lamp3``) or ``["all"]``.
        data: a directory in the LaMP layout or ``"synthetic"``.
        split: ``dev``, ``train`` or ``test`` (test golds are hidden: no scores).
        retriever: ``bm25``, ``dense``, ``recency``, ``random`` or ``none``.
        k: number of retrieved profile items per prompt.
        prompt: ``lamp`` (official templates) or ``tagged`` (tagged reasoning + answer tag).
        schema: tag schema for ``--prompt tagged`` (default ``personalization-9``, ours).
        output: parent directory of run directories.
        run_name: run directory name; default derived from the model and the config hash,
            so the same arguments land in (and resume) the same directory.
        limit: evaluate only the first N samples of each task.
        batch_size: requests per backend call (and per flush of the generation log).
        gen_kwargs: :class:`GenerationConfig` settings.
        seed: seed for the random retriever, synthetic data and sampling.
        bootstrap: if set, ROUGE is aggregated by a seeded bootstrap with this many resamples
            (the official scorer's aggregation); default is the exact mean.
        plots: write PNG plots.
        rewards: compute reward components per sample (tagpr_rewards stage preset).
        reward: the reward node of the reward column (``tagpr_rewards.presets.build_from_config``;
            the same node a training run uses, e.g. ``{preset: stage2, beta: 0.25}``; its
            ``task`` and ``schema`` are set per evaluated task). Default: ``stage2`` without
            PRMU (``α·R_base + β·R_tag`` with our default weights).
        progress: show tqdm progress bars.

    >>> c = EvalConfig(model="dummy", tasks=["LaMP-2"])
    >>> c.k, c.prompt, c.resolved_schema()
    (4, 'lamp', None)
    """

    model: str = "dummy"
    model_args: dict[str, Any] = field(default_factory=dict)
    tasks: list[str] = field(default_factory=lambda: ["all"])
    data: str = "synthetic"
    split: str = "dev"
    retriever: str = "bm25"
    k: int = 4
    prompt: str = "lamp"
    schema: str | None = None
    output: str = "runs"
    run_name: str | None = None
    limit: int | None = None
    batch_size: int = 8
    gen_kwargs: GenerationConfig = field(default_factory=GenerationConfig)
    seed: int = 0
    bootstrap: int | None = None
    plots: bool = True
    rewards: bool = True
    reward: dict[str, Any] | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.gen_kwargs, Mapping) or isinstance(self.gen_kwargs, str):
            self.gen_kwargs = GenerationConfig.from_dict(self.gen_kwargs)
        if isinstance(self.model_args, str):
            self.model_args = parse_kv_args(self.model_args, None, "model arg")
        if isinstance(self.tasks, str):
            self.tasks = [t.strip() for t in self.tasks.split(",") if t.strip()]

    def validate(self) -> None:
        """Raise :class:`ConfigError` for values no run can use."""
        if self.prompt not in PROMPT_STYLES:
            raise ConfigError(f"prompt must be one of {PROMPT_STYLES}, got {self.prompt!r}"
                              f"{_did_you_mean(self.prompt, PROMPT_STYLES)}")
        if self.retriever not in RETRIEVERS:
            raise ConfigError(f"retriever must be one of {RETRIEVERS}, got {self.retriever!r}"
                              f"{_did_you_mean(self.retriever, RETRIEVERS)}")
        if not isinstance(self.k, int) or self.k < 0:
            raise ConfigError(f"k must be a non-negative int, got {self.k!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ConfigError(f"batch_size must be a positive int, got {self.batch_size!r}")
        if self.limit is not None and (not isinstance(self.limit, int) or self.limit < 1):
            raise ConfigError(f"limit must be a positive int, got {self.limit!r}")
        if self.bootstrap is not None:
            from tagpr_rewards.metrics.bootstrap import check_resamples

            try:
                check_resamples(self.bootstrap)
            except ValueError as e:
                raise ConfigError(str(e)) from None
        if not self.tasks:
            raise ConfigError("no tasks given; pass --tasks LaMP-2,LaMP-4 or --tasks all")
        self.gen_kwargs.validate()

    def resolved_schema(self) -> str | None:
        """The tag schema in use: the given one, ``personalization-9`` for tagged prompts, else None."""
        if self.schema:
            return self.schema
        return "personalization-9" if self.prompt == "tagged" else None

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["schema"] = self.resolved_schema()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "config") -> EvalConfig:
        """Build from a mapping strictly: unknown keys and values of the wrong type are errors
        naming ``source`` (``tagpr_rewards.config_io.from_dict``).

        >>> EvalConfig.from_dict({"modle": "hf"}, source="run.yaml")
        Traceback (most recent call last):
        ...
        tagpr_eval.config.ConfigError: run.yaml: unknown key 'modle'; did you mean 'model'?
        """
        d = dict(d)
        gen = d.get("gen_kwargs")
        if gen is not None and not isinstance(gen, GenerationConfig):
            d["gen_kwargs"] = GenerationConfig.from_dict(gen)
        if isinstance(d.get("model_args"), str):
            d["model_args"] = parse_kv_args(d["model_args"], None, "model arg")
        return from_dict(cls, d, source, error=ConfigError)


def load_config(yaml_path: str | Path | None = None, **overrides: Any) -> EvalConfig:
    """Merge defaults < YAML file < overrides (CLI); ``None`` overrides are ignored.

    ``model_args`` and ``gen_kwargs`` merge key by key (a CLI ``--gen-kwargs temperature=0.7``
    keeps the YAML's ``max_new_tokens``).

    >>> load_config(model="baseline", k=None).model
    'baseline'
    """
    merged: dict[str, Any] = {}
    if yaml_path is not None:
        p = Path(yaml_path)
        try:
            raw = load_mapping(p, "eval config")
        except _ConfigError as e:
            raise ConfigError(str(e)) from e
        # accept dashed spellings as on the CLI (model-args, gen-kwargs, batch-size)
        merged.update({str(k).replace("-", "_"): v for k, v in raw.items()})
        EvalConfig.from_dict(merged, source=str(p))  # validate keys early, naming the file
    for k, v in overrides.items():
        if v is None:
            continue
        if k in ("model_args", "gen_kwargs") and k in merged:
            base = merged[k]
            base = parse_kv_args(base, None, k) if not isinstance(base, GenerationConfig) else base.to_dict()
            v = {**base, **parse_kv_args(v if not isinstance(v, GenerationConfig) else v.to_dict(), None, k)}
        merged[k] = v
    cfg = EvalConfig.from_dict(merged, source="arguments")
    cfg.validate()
    return cfg
