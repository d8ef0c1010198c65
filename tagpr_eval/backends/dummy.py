"""A deterministic backend for plumbing tests (no model).

Modes (``--set model_args.mode=...``):

* ``constant`` (default): always ``text`` (default ``"dummy"``);
* ``hash``: a deterministic pseudo-answer per sample id: a label from the task's label list,
  a rating 1..5, or the first words of the input for generation tasks;
* ``gold``: the sample's gold output (an upper bound that checks the scoring plumbing).

With a tag schema (``--prompt tagged``) the answer is wrapped in the schema's answer tag,
after one short step per required tag, so tag statistics have something to count.
``log_calls=PATH`` appends one line per generated request (the resume test counts them);
``delay=S`` sleeps S seconds per batch (so a test can kill a run mid-way).

>>> from tagpr_eval.backends import GenerationConfig, Request
>>> DummyBackend(mode="constant", text="x").generate([Request("p")], GenerationConfig())
['x']
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from typing import Any

from tagpr_eval.backends import Backend, GenerationConfig, Request, as_requests

MODES = ("constant", "hash", "gold")


def _stable_int(s: str) -> int:
    return int.from_bytes(hashlib.sha256(s.encode("utf-8")).digest()[:8], "big")


class DummyBackend(Backend):
    """Deterministic fake model; see the module docstring for the modes."""

    name = "dummy"
    ARGS = ("mode", "text", "log_calls", "delay")
    NON_OUTPUT_ARGS = ("log_calls", "delay")

    def __init__(self, mode: str = "constant", text: str = "dummy", log_calls: str | None = None,
                 delay: float = 0.0) -> None:
        if mode not in MODES:
            from tagpr_eval.config import ConfigError

            raise ConfigError(f"dummy mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self.text = str(text)
        self.log_calls = log_calls
        self.delay = float(delay)

    def identity(self) -> dict[str, Any]:
        return {"backend": self.name, "mode": self.mode, "text": self.text}

    def _answer(self, r: Request) -> str:
        if self.mode == "constant" or r.task is None or r.sample is None:
            return self.text
        if self.mode == "gold":
            return str(r.sample.output or "")
        from tagpr_rewards.metrics.lamp import get_task

        spec = get_task(r.task)
        h = _stable_int(f"{spec.name}:{r.id}")
        if spec.kind == "classification" and spec.labels:
            return str(spec.labels[h % len(spec.labels)])
        if spec.kind == "rating":
            return str(1 + h % 5)
        words = str(r.sample.input).split()
        return " ".join(words[-(3 + h % 5):])

    def _wrap(self, answer: str, schema_name: str | None) -> str:
        if not schema_name:
            return answer
        from tagpr_rewards.tags import load_schema

        schema = load_schema(schema_name)
        # one step per required tag, in the schema's listed order (valid for the shipped schemas)
        steps = "".join(f"<{t}>Step {i + 1}: what the history says.</{t}>"
                        for i, t in enumerate(x for x in schema.required if x != schema.answer_tag))
        if schema.wrapper and steps:
            steps = f"<{schema.wrapper}>{steps}</{schema.wrapper}>"
        return f"{steps}<{schema.answer_tag}>{answer}</{schema.answer_tag}>"

    def generate(self, requests: Sequence[Request | Any], gen: GenerationConfig) -> list[str]:
        reqs = as_requests(requests)
        if self.delay:
            time.sleep(self.delay)
        outs: list[str] = [self._wrap(self._answer(r), r.schema) for r in reqs]
        if self.log_calls:
            with open(self.log_calls, "a", encoding="utf-8") as f:
                for r in reqs:
                    f.write(f"{r.task}\t{r.id}\n")
                f.flush()
                os.fsync(f.fileno())
        return outs

