"""Generation backends, registered by name and imported only when chosen.

Every backend takes a list of :class:`Request` objects (prompt + the LaMP sample + the task +
the retrieved profile items) and returns one string per request. Passing the sample, not only
the prompt, is what lets the non-LLM ``baseline`` backend exist beside the LLM backends.

>>> backend_names()
['baseline', 'dummy', 'hf', 'openai', 'vllm']
>>> b = get_backend("dummy")
>>> b.generate(["hello"], GenerationConfig(max_new_tokens=4))
['dummy']
>>> get_backend("hff")
Traceback (most recent call last):
...
KeyError: "unknown backend 'hff'; did you mean 'hf'? (known: baseline, dummy, hf, openai, vllm)"
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tagpr_eval.config import ConfigError, GenerationConfig, parse_kv_args

__all__ = [
    "Backend",
    "GenerationConfig",
    "Request",
    "as_requests",
    "backend_class",
    "backend_names",
    "get_backend",
    "apply_stop",
]

# name -> "module:Class"; modules are imported only when the backend is chosen.
_BACKENDS: dict[str, str] = {
    "hf": "tagpr_eval.backends.hf:HFBackend",
    "vllm": "tagpr_eval.backends.vllm:VLLMBackend",
    "openai": "tagpr_eval.backends.openai:OpenAIBackend",
    "baseline": "tagpr_eval.backends.baseline:BaselineBackend",
    "dummy": "tagpr_eval.backends.dummy:DummyBackend",
}


@dataclass
class Request:
    """One generation request.

    Attributes:
        prompt: a string or a chat message list (``[{"role": ..., "content": ...}]``).
        id: the LaMP sample id ("" for bare prompts).
        task: the task name (``"LaMP-2"``) or ``None`` for bare prompts.
        sample: the :class:`tagpr_eval.data.LampSample` (``None`` for bare prompts).
        items: the retrieved profile items that went into the prompt.
        schema: the tag schema name when the prompt asks for tagged reasoning.
    """

    prompt: str | list[dict[str, Any]]
    id: str = ""
    task: str | None = None
    sample: Any = None
    items: list[dict[str, Any]] = field(default_factory=list)
    schema: str | None = None


def as_requests(prompts: Sequence[Any]) -> list[Request]:
    """Wrap bare prompts as requests (requests pass through unchanged).

    >>> as_requests(["hi"])[0].prompt
    'hi'
    """
    return [p if isinstance(p, Request) else Request(prompt=p) for p in prompts]


def apply_stop(text: str, stop: Sequence[str]) -> str:
    """Cut ``text`` at the first occurrence of any stop string.

    >>> apply_stop("a b\\nc", ["\\n"])
    'a b'
    """
    cut = len(text)
    for s in stop:
        if s:
            i = text.find(s)
            if i != -1:
                cut = min(cut, i)
    return text[:cut]


class Backend:
    """Base class: subclasses set ``name``, ``ARGS`` (accepted model args) and implement
    :meth:`generate`.
    """

    name: str = "backend"
    #: accepted ``--model-args`` keys
    ARGS: tuple[str, ...] = ()
    #: model args that cannot change the outputs (concurrency, logging, secrets): left out of
    #: the generation cache key, so a resumed run may change them
    NON_OUTPUT_ARGS: tuple[str, ...] = ()

    @classmethod
    def check_args(cls, args: dict[str, Any]) -> None:
        """Refuse model args no run can use, before any work is done or any file written
        (``tagpr-eval run`` calls it first). The default checks the keys against ``ARGS``."""
        parse_kv_args(dict(args), cls.ARGS, f"model arg of backend {cls.name!r}")

    def generate(self, requests: Sequence[Request | Any], gen: GenerationConfig) -> list[str]:
        raise NotImplementedError

    def identity(self) -> dict[str, Any]:
        """What identifies the model for the generation cache key (besides the model args)."""
        return {"backend": self.name}

    def close(self) -> None:
        """Free resources (models, sessions)."""


def backend_names() -> list[str]:
    """Registered backend names."""
    return sorted(_BACKENDS)


def backend_class(name: str) -> type[Backend]:
    """The backend class for ``name`` (imports its module; heavy libraries load later)."""
    if name not in _BACKENDS:
        from tagpr_rewards.registry import unknown_name_error

        raise unknown_name_error("backend", name, _BACKENDS)
    mod, attr = _BACKENDS[name].split(":")
    cls: type[Backend] = getattr(importlib.import_module(mod), attr)
    return cls


def get_backend(name: str, **model_args: Any) -> Backend:
    """Build backend ``name`` with ``model_args``; unknown args are errors with a hint."""
    cls = backend_class(name)
    cls.check_args(model_args)
    try:
        return cls(**model_args)
    except TypeError as e:  # pragma: no cover - ARGS and __init__ disagree
        raise ConfigError(f"cannot build backend {name!r} with {sorted(model_args)}: {e}") from e
