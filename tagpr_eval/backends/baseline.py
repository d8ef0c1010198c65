"""Honest non-LLM baselines: what the user's profile alone predicts.

* LaMP-1 (citation): the candidate whose title shares more (frequency-weighted) words with
  the user's own papers;
* LaMP-2 (tagging; also legacy news): the most frequent tag (category) in the profile, ties
  broken by the label order; an empty profile answers the first label;
* LaMP-3 (rating): the profile's mean rating (``rating=mean``; or ``median``, ``mode``,
  ``round`` = the mean rounded to an integer); an empty profile answers 3;
* LaMP-4..7 (generation): the title (LaMP-4/5/6) or text (LaMP-7) of the profile item most
  similar to the query, using the official query and document fields.

Model args: ``retriever`` (``bm25`` default; any name :func:`tagpr_eval.retrieval.get_retriever`
knows; ``none``: the first profile item), ``rating`` (see above). Both are checked when the
backend is built (and by ``tagpr-eval run`` before it writes anything). These baselines ignore the prompt: they need the
:class:`~tagpr_eval.backends.Request`'s sample and task.

>>> from tagpr_eval.backends import Request, GenerationConfig
>>> from tagpr_eval.data import LampSample
>>> s = LampSample(id="1", input="Which tag ... description: a robot", user_id="u",
...                profile=[{"id": "a", "description": "x", "tag": "comedy"},
...                         {"id": "b", "description": "y", "tag": "sci-fi"},
...                         {"id": "c", "description": "z", "tag": "comedy"}], output="comedy")
>>> BaselineBackend().generate([Request("", id="1", task="LaMP-2", sample=s)], GenerationConfig())
['comedy']
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

from tagpr_eval.backends import Backend, GenerationConfig, Request, as_requests
from tagpr_eval.config import ConfigError

RATING_MODES = ("mean", "median", "mode", "round")
_QUOTED = re.compile(r'"([^"]*)"')
_TOKEN = re.compile(r"[a-z0-9]+")


def _number(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if v == v and abs(v) != float("inf") else None


def _retriever_name(value: Any) -> Any:
    # `--model-args retriever=none` types "none" as None: it means the `none` retriever
    return "none" if value is None else value


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.4f}".rstrip("0")


class BaselineBackend(Backend):
    """Profile-only predictions per task (see the module docstring)."""

    name = "baseline"
    ARGS = ("retriever", "rating")

    def __init__(self, retriever: str | None = "bm25", rating: str = "mean") -> None:
        self.check_args({"retriever": retriever, "rating": rating})
        self.retriever_name = _retriever_name(retriever)
        self.rating = rating
        self._retriever: Any = None

    @classmethod
    def check_args(cls, args: dict[str, Any]) -> None:
        """Keys, the retriever name and the rating mode; errors say what is accepted.

        >>> BaselineBackend.check_args({"retriever": "bm52"})
        Traceback (most recent call last):
        ...
        tagpr_eval.config.ConfigError: baseline model arg retriever='bm52': unknown retriever 'bm52'; did you mean 'bm25'? (known: bm25, dense, none, random, recency)
        """
        super().check_args(args)
        if "retriever" in args:
            from tagpr_eval.retrieval import retriever_names

            name = _retriever_name(args["retriever"])
            if name not in retriever_names():
                from tagpr_rewards.registry import unknown_name_error

                err = unknown_name_error("retriever", str(name), retriever_names())
                raise ConfigError(f"baseline model arg retriever={name!r}: {err.args[0]}")
        rating = args.get("rating", "mean")
        if rating not in RATING_MODES:
            raise ConfigError(f"baseline rating must be one of {RATING_MODES}, got {rating!r}")

    def identity(self) -> dict[str, Any]:
        return {"backend": self.name, "retriever": self.retriever_name, "rating": self.rating}

    @property
    def retriever(self) -> Any:
        if self._retriever is None:
            from tagpr_eval.retrieval import get_retriever

            self._retriever = get_retriever(self.retriever_name)
        return self._retriever

    def generate(self, requests: Sequence[Request | Any], gen: GenerationConfig) -> list[str]:
        out = []
        for r in as_requests(requests):
            if r.task is None or r.sample is None:
                raise ConfigError("the baseline backend needs LaMP requests (task and sample), not bare prompts")
            out.append(self.predict(r.task, r.sample))
        return out

    def predict(self, task: str, sample: Any) -> str:
        """The baseline answer for one LaMP sample."""
        from tagpr_rewards.metrics.lamp import get_task

        spec = get_task(task)
        profile = [p for p in (sample.profile or []) if isinstance(p, dict)]
        if spec.kind == "rating":
            return self._rating(profile)
        if spec.kind == "classification":
            if spec.key == "LaMP_1":
                return self._citation(sample, profile)
            return self._majority(spec, profile)
        return self._nearest(spec, sample, profile)

    def _rating(self, profile: list[dict[str, Any]]) -> str:
        vals = [v for v in (_number(p.get("score")) for p in profile) if v is not None]
        if not vals:
            return "3"
        if self.rating == "median":
            return _fmt(float(statistics.median(vals)))
        if self.rating == "mode":
            c = Counter(vals)
            best = max(c.values())
            return _fmt(min(v for v in c if c[v] == best))
        m = sum(vals) / len(vals)
        return _fmt(float(round(m))) if self.rating == "round" else _fmt(m)

    @staticmethod
    def _majority(spec: Any, profile: list[dict[str, Any]]) -> str:
        labels = list(spec.labels)
        c = Counter(str(p.get(spec.item_value, "")).strip() for p in profile)  # the tag (news: category)
        c.pop("", None)
        if not c:
            return str(labels[0])
        order = {lab: i for i, lab in enumerate(labels)}
        best = max(c.values())
        return min((t for t in c if c[t] == best), key=lambda t: (order.get(t, len(order)), t))

    def _citation(self, sample: Any, profile: list[dict[str, Any]]) -> str:
        # Token overlap, not the retriever: BM25 over two candidate "documents" gives every
        # term an idf of about 0 (N=2), i.e. ties everywhere.
        quoted = _QUOTED.findall(str(sample.input))
        if len(quoted) < 3 or not profile:
            return "[1]"
        from tagpr_eval.retrieval import profile_document

        freq = Counter(_TOKEN.findall(" ".join(profile_document("LaMP-1", p) for p in profile).lower()))

        def score(title: str) -> float:
            toks = set(_TOKEN.findall(title.lower()))
            return sum(math.log1p(freq[t]) for t in toks) / max(1, len(toks))

        return "[2]" if score(quoted[2]) > score(quoted[1]) else "[1]"

    def _nearest(self, spec: Any, sample: Any, profile: list[dict[str, Any]]) -> str:
        if not profile:
            return ""
        from tagpr_eval.retrieval import profile_document, retrieval_query

        query = retrieval_query(spec.name, sample.input)
        docs = [profile_document(spec.name, p) for p in profile]
        idx = self.retriever.top_k(query, docs, 1, items=profile)  # recency reads the items' dates
        item = profile[idx[0] if idx else 0]
        field = spec.item_value or spec.item_key  # what the user wrote: the title (LaMP-7: the tweet)
        return str(item.get(field) or item.get("text") or "").strip()
