"""OpenAI-compatible HTTP backend (vLLM serve, SGLang, llama.cpp server, TGI, OpenAI, ...).

Model args: ``model`` (the served model name; required), ``base_url`` (default
``http://127.0.0.1:8000/v1``), ``api_key`` (default ``$OPENAI_API_KEY``, else none sent),
``endpoint`` (``auto``: chat prompts → ``/chat/completions``, string prompts →
``/completions``; or ``chat`` / ``completions`` to force one; a string prompt sent to
``chat`` becomes one user message), ``concurrency`` (parallel requests, default 8),
``max_retries`` (default 5; retried on connection errors, 408, 409, 429 and 5xx with
exponential backoff honouring ``Retry-After``), ``timeout`` (seconds per request, default 120),
``backoff`` (first retry delay in seconds, default 1.0).

Only the Python standard library is used (urllib + a thread pool).

Example (against a local server)::

    tagpr-eval run --model openai --set model_args.model=qwen --set model_args.base_url=http://127.0.0.1:8000/v1 --tasks LaMP-2
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tagpr_eval.backends import Backend, GenerationConfig, Request, apply_stop, as_requests
from tagpr_eval.config import ConfigError

_RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


class OpenAIError(RuntimeError):
    """A request to the server failed for good (after retries, or a non-retryable status)."""


class OpenAIBackend(Backend):
    """Concurrent requests to an OpenAI-compatible server, with retries."""

    name = "openai"
    ARGS = ("model", "base_url", "api_key", "endpoint", "concurrency", "max_retries", "timeout", "backoff")
    NON_OUTPUT_ARGS = ("api_key", "concurrency", "max_retries", "timeout", "backoff")

    def __init__(self, model: str | None = None, base_url: str = "http://127.0.0.1:8000/v1",
                 api_key: str | None = None, endpoint: str = "auto", concurrency: int = 8,
                 max_retries: int = 5, timeout: float = 120.0, backoff: float = 1.0) -> None:
        if not model:
            raise ConfigError("the openai backend needs the served model name: --set model_args.model=NAME --set model_args.base_url=URL")
        if endpoint not in ("auto", "chat", "completions"):
            raise ConfigError(f"openai endpoint must be auto, chat or completions, got {endpoint!r}")
        self.model = str(model)
        self.base_url = str(base_url).rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.endpoint = endpoint
        self.concurrency = max(1, int(concurrency))
        self.max_retries = max(0, int(max_retries))
        self.timeout = float(timeout)
        self.backoff = float(backoff)

    def identity(self) -> dict[str, Any]:
        # the served model name and server identify the model; the api key must not enter the cache key
        return {"backend": self.name, "model": self.model, "base_url": self.base_url, "endpoint": self.endpoint}

    def _payload(self, prompt: str | list[dict[str, Any]], gen: GenerationConfig) -> tuple[str, dict[str, Any]]:
        chat = self.endpoint == "chat" or (self.endpoint == "auto" and not isinstance(prompt, str))
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": gen.max_new_tokens,
            "temperature": 0.0 if gen.greedy else float(gen.temperature),
            "top_p": 1.0 if gen.greedy else float(gen.top_p),
            "seed": gen.seed,
            "n": 1,
        }
        if gen.stop:
            body["stop"] = list(gen.stop)[:4]  # the OpenAI API accepts at most 4 stop strings
        if chat:
            msgs = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
            body["messages"] = msgs
            return "/chat/completions", body
        if not isinstance(prompt, str):
            raise ConfigError("openai endpoint=completions needs string prompts; use endpoint=chat or auto")
        body["prompt"] = prompt
        return "/completions", body

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        url = self.base_url + path
        last: str = ""
        for attempt in range(self.max_retries + 1):
            delay = self.backoff * (2 ** attempt)
            try:
                req = urllib.request.Request(url, data=data, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    out: dict[str, Any] = json.loads(resp.read().decode("utf-8"))
                    return out
            except urllib.error.HTTPError as e:
                detail = e.read()[:500].decode("utf-8", errors="replace")
                last = f"HTTP {e.code} from {url}: {detail}"
                if e.code not in _RETRY_STATUS:
                    raise OpenAIError(last) from e
                ra = e.headers.get("Retry-After") if e.headers else None
                if ra:
                    try:
                        delay = max(delay, float(ra))
                    except ValueError:
                        pass
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError) as e:
                last = f"{type(e).__name__} for {url}: {e}"
            if attempt < self.max_retries:
                time.sleep(min(delay, 60.0))
        raise OpenAIError(f"giving up after {self.max_retries + 1} attempts: {last}")

    def _one(self, r: Request, gen: GenerationConfig) -> str:
        path, body = self._payload(r.prompt, gen)
        resp = self._post(path, body)
        try:
            choice = resp["choices"][0]
            text = choice["message"]["content"] if path == "/chat/completions" else choice["text"]
        except (KeyError, IndexError, TypeError) as e:
            raise OpenAIError(f"unexpected response from {self.base_url + path} for id {r.id!r}: "
                              f"{json.dumps(resp)[:300]}") from e
        return apply_stop(text or "", gen.stop)

    def generate(self, requests: Sequence[Request | Any], gen: GenerationConfig) -> list[str]:
        reqs = as_requests(requests)
        if len(reqs) <= 1 or self.concurrency == 1:
            return [self._one(r, gen) for r in reqs]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(reqs))) as pool:
            return list(pool.map(lambda r: self._one(r, gen), reqs))
