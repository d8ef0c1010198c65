"""A batching HTTP reward server speaking OpenRLHF's remote reward protocol (aiohttp).

``POST /`` (or ``/get_reward``) with ``{"query": [...], "prompts": [...], "labels": [...]}`` answers
``{"rewards": [...], "scores": [...], "extra_logs": {component: [...]}}``. ``query`` holds prompt +
response as OpenRLHF decodes it (special tokens included): the response is what follows the
prompt, with trailing end-of-turn tokens stripped. Each label is a JSON object carrying the
sample's metadata (``user_id``, ``profile``, ``reference``, ``task``, ``query``, ``id``); plain
text is taken as the reference.

OpenRLHF calls once per sample from many workers, so the server gathers concurrent requests into
one reward call (at most ``max_batch_size`` samples, waiting at most ``max_wait_ms`` for more).
It serves any :class:`~tagpr_rewards.base.Reward`, not only PRMU.

Errors: malformed JSON or fields → 400 with a message; body over ``max_body_bytes`` or more than
``max_samples`` samples → 413; wrong bearer token → 401 (compared in constant time; an empty
token is refused at start-up). ``GET /health`` answers ``{"status": "ok"}`` to anyone and the
served reward and counters only with the token. JSON decoding and response recovery run off the
event loop (``/health`` answers while a 16 MB request is decoded) and are linear in the body.

Isolation: a sample the reward fails on, or whose label is unusable (see
:func:`~tagpr_rewards.remote_protocol.read_label`), gets the ``fallback`` reward and
``reward_error`` 1 with one ERROR log per batch; the other samples of the batch — other
clients' requests — keep their rewards (never a 500 in an RL step).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tagpr_rewards.base import Batch, Reward, score_isolated
from tagpr_rewards.remote_protocol import (
    read_label,
    reward_component_names,
    split_response,
    strip_special_tokens,
)

__all__ = ["RewardBatcher", "ServerThread", "create_app", "parse_payload", "serve"]

logger = logging.getLogger("tagpr_rewards.prmu.server")

METADATA_KEYS = ("user_id", "profile", "reference", "task", "query", "id")


@dataclass
class Item:
    """One sample of a request."""

    completion: str
    prompt: str
    meta: dict[str, Any] = field(default_factory=dict)
    #: why the sample cannot be scored ("" = it can): it gets the fallback and reward_error 1
    error: str = ""


def parse_payload(payload: Any, max_samples: int) -> list[Item]:
    """Validate an OpenRLHF reward payload into items; raises ``ValueError`` with a message.

    >>> items = parse_payload({"query": ["P R"], "prompts": ["P"], "labels": ['{"user_id": "u1"}']}, 10)
    >>> items[0].completion, items[0].meta["user_id"]
    ('R', 'u1')
    """
    if not isinstance(payload, dict):
        raise ValueError(f"body must be a JSON object with 'query', 'prompts', 'labels'; got {type(payload).__name__}")
    queries = payload.get("query")
    if not isinstance(queries, list):
        raise ValueError("'query' must be a list of strings (prompt + response, as OpenRLHF sends)")
    n = len(queries)
    if n > max_samples:
        raise OverflowError(f"{n} samples in one request; the limit is {max_samples}")
    prompts = payload.get("prompts")
    labels = payload.get("labels")
    if prompts is None:
        prompts = [""] * n
    if labels is None:
        labels = [None] * n
    if not isinstance(prompts, list) or len(prompts) != n:
        raise ValueError(f"'prompts' must be a list of {n} strings")
    if not isinstance(labels, list) or len(labels) != n:
        raise ValueError(f"'labels' must be a list of {n} values")
    items = []
    for i, (q, p, lab) in enumerate(zip(queries, prompts, labels)):
        if not isinstance(q, str):
            raise ValueError(f"query[{i}] must be a string, got {type(q).__name__}")
        if not isinstance(p, str):
            raise ValueError(f"prompts[{i}] must be a string, got {type(p).__name__}")
        meta, problem = read_label(lab)
        # the same recovery as the in-process entry file: prompt prefix (also when OpenRLHF
        # cut a long prompt from the left) and special tokens removed
        response, _method = split_response(q, p)
        items.append(Item(strip_special_tokens(response), strip_special_tokens(p), meta,
                          f"labels[{i}]: {problem}" if problem else ""))
    return items


def decode_request(raw: bytes, max_samples: int) -> list[Item]:
    """Body bytes → items (``ValueError`` → 400, ``OverflowError`` → 413). Linear in the body:
    JSON nested deeper than the decoder allows is a ``ValueError``, not a ``RecursionError``.

    >>> decode_request(b"[" * 100000, 8)
    Traceback (most recent call last):
    ...
    ValueError: body nests JSON deeper than the decoder allows; send a flat JSON object with 'query', 'prompts', 'labels'
    """
    try:
        payload = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"body is not valid JSON: {e}") from e
    except RecursionError as e:
        raise ValueError("body nests JSON deeper than the decoder allows; send a flat JSON object with "
                         "'query', 'prompts', 'labels'") from e
    return parse_payload(payload, max_samples)


def items_to_batch(items: Sequence[Item]) -> Batch:
    """One reward batch from items of many requests (missing metadata = None)."""
    cols: dict[str, list[Any]] = {}
    extra = sorted({k for it in items for k in it.meta} - {"reference", "user_id"})
    for k in extra:
        cols[k] = [it.meta.get(k) for it in items]
    if "query" not in cols:  # PRMU reads the query column; fall back to the prompt
        cols["query"] = [it.prompt for it in items]
    else:
        cols["query"] = [q if q is not None else it.prompt for q, it in zip(cols["query"], items)]
    refs = [it.meta.get("reference") for it in items]
    uids = [it.meta.get("user_id") for it in items]
    # the metadata go in as one mapping: a label key named like a contract argument
    # ("prompts", "completions") stays an inert column instead of breaking the whole batch
    return Batch.from_columns([it.completion for it in items], [it.prompt for it in items],
                              refs if any(r is not None for r in refs) else None,
                              uids if any(u is not None for u in uids) else None, cols)


class RewardBatcher:
    """Gathers concurrent requests into reward calls (bounded size, bounded wait).

    With ``batching=False`` every request is scored on its own (the comparison baseline).
    Reward calls run one at a time in a worker thread, so the event loop keeps accepting.
    """

    def __init__(self, reward: Reward, max_batch_size: int = 256, max_wait_ms: float = 5.0,
                 batching: bool = True, fallback: float = 0.0) -> None:
        self.reward = reward
        self.max_batch_size = max(1, int(max_batch_size))
        self.max_wait = max(0.0, max_wait_ms) / 1000.0
        self.batching = batching
        self.fallback = fallback
        self._queue: asyncio.Queue[tuple[list[Item], asyncio.Future[dict[str, Any]]]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tagpr-reward")
        self.stats = {"requests": 0, "samples": 0, "reward_calls": 0, "errors": 0}
        # OpenRLHF concatenates extra_logs per key across samples: every response carries the
        # same keys (the reward's components from a dry run, plus reward_error)
        self.log_keys = [*reward_component_names(reward), "reward_error"]

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, items: list[Item]) -> dict[str, Any]:
        assert self._queue is not None, "batcher not started"
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        await self._queue.put((items, fut))
        return await fut

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            first = await self._queue.get()
            jobs = [first]
            size = len(first[0])
            if self.batching:
                deadline = loop.time() + self.max_wait
                while size < self.max_batch_size:
                    try:
                        nxt = self._queue.get_nowait()
                    except asyncio.QueueEmpty:
                        left = deadline - loop.time()
                        if left <= 0:
                            break
                        try:
                            nxt = await asyncio.wait_for(self._queue.get(), left)
                        except asyncio.TimeoutError:
                            break
                    jobs.append(nxt)
                    size += len(nxt[0])
            items = [it for its, _ in jobs for it in its]
            try:
                result = await loop.run_in_executor(self._executor, self._score, items)
            except Exception as e:  # pragma: no cover - _score already catches
                logger.error("reward server: scoring failed: %s", e)
                result = None
            k = 0
            for its, fut in jobs:
                n = len(its)
                if fut.done():
                    k += n
                    continue
                if result is None:
                    fut.set_result(self._fallback_result(n))
                else:
                    fut.set_result({"rewards": result["rewards"][k:k + n], "scores": result["scores"][k:k + n],
                                    "extra_logs": {c: v[k:k + n] for c, v in result["extra_logs"].items()}})
                k += n

    def _score(self, items: list[Item]) -> dict[str, Any]:
        self.stats["reward_calls"] += 1
        self.stats["samples"] += len(items)
        n = len(items)
        bad = [i for i, it in enumerate(items) if it.error]
        if bad:
            self.stats["errors"] += len(bad)
            logger.error("reward server: %d of %d samples cannot be scored (%s%s); they get the fallback "
                         "reward %s and reward_error 1", len(bad), n, items[bad[0]].error,
                         f" and {len(bad) - 1} more" if len(bad) > 1 else "", self.fallback)
        good = [i for i, it in enumerate(items) if not it.error]
        result = self._fallback_result(n)
        if good:
            part = self._score_good([items[i] for i in good])
            for j, i in enumerate(good):
                result["rewards"][i] = result["scores"][i] = part["rewards"][j]
                for key, vals in part["extra_logs"].items():
                    result["extra_logs"][key][i] = vals[j]
        return result

    def _score_good(self, items: list[Item]) -> dict[str, Any]:
        n = len(items)
        name = str(getattr(self.reward, "name", "reward"))
        try:
            batch = items_to_batch(items)
            # a sample the reward fails on costs that sample alone (its request gets the fallback
            # and reward_error 1); the other requests of the batch keep their rewards
            out = score_isolated(self.reward.score, batch, name, self.fallback)
        except Exception as e:  # never fail an RL step: fallback reward, loud log
            self.stats["errors"] += n
            logger.error("reward server: %s raised %s: %s; fallback reward %s for %d samples",
                         name, type(e).__name__, e, self.fallback, n)
            return self._fallback_result(n)
        errs = [1.0 if e else 0.0 for e in out.errors]
        self.stats["errors"] += int(sum(errs))
        scores = [self.fallback if (s is None or e) else float(s) for s, e in zip(out.scores, errs)]
        logs: dict[str, list[float]] = {}
        for key in self.log_keys:
            vals = out.components.get(key)
            logs[key] = [0.0] * n if vals is None else [0.0 if v is None else float(v) for v in vals]
        logs["reward_error"] = errs
        return {"rewards": scores, "scores": scores, "extra_logs": logs}

    def _fallback_result(self, n: int) -> dict[str, Any]:
        logs = {name: [0.0] * n for name in self.log_keys}
        logs["reward_error"] = [1.0] * n
        return {"rewards": [self.fallback] * n, "scores": [self.fallback] * n, "extra_logs": logs}


def _app_key() -> Any:
    from aiohttp import web

    return web.AppKey("batcher", RewardBatcher) if hasattr(web, "AppKey") else "batcher"


BATCHER_KEY: Any = None


def create_app(
    reward: Reward,
    token: str | None = None,
    max_batch_size: int = 256,
    max_wait_ms: float = 5.0,
    batching: bool = True,
    max_body_bytes: int = 16 * 1024 * 1024,
    max_samples: int = 4096,
    fallback: float = 0.0,
) -> Any:
    """The aiohttp application (see the module docstring for the protocol and limits).

    ``app[BATCHER_KEY].stats`` counts requests, samples, reward calls and errors.
    """
    from aiohttp import web

    global BATCHER_KEY
    if BATCHER_KEY is None:
        BATCHER_KEY = _app_key()
    if token is not None and not token.strip():
        raise ValueError("the bearer token is empty: set it to a secret, or pass token=None for no auth "
                         "(an empty token would silently accept every request)")
    batcher = RewardBatcher(reward, max_batch_size, max_wait_ms, batching, fallback)
    started = time.time()
    # JSON decoding and response recovery are CPU work proportional to the body (up to
    # max_body_bytes): they run in their own threads, so /health and other requests keep answering
    decode_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="tagpr-decode")
    expected = None if token is None else f"Bearer {token}".encode()

    def _error(status: int, msg: str) -> Any:
        return web.json_response({"error": msg}, status=status)

    def _authorised(request: Any) -> bool:
        if expected is None:
            return True
        got = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
        return hmac.compare_digest(got, expected)

    async def score(request: Any) -> Any:
        if not _authorised(request):
            return _error(401, "missing or wrong bearer token (send 'Authorization: Bearer <token>')")
        if request.content_length is not None and request.content_length > max_body_bytes:
            return _error(413, f"request body of {request.content_length} bytes exceeds {max_body_bytes}")
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"request body exceeds {max_body_bytes} bytes")
        loop = asyncio.get_running_loop()
        try:
            items = await loop.run_in_executor(decode_pool, decode_request, raw, max_samples)
        except OverflowError as e:
            return _error(413, str(e))
        except ValueError as e:
            return _error(400, str(e))
        batcher.stats["requests"] += 1
        if not items:
            return web.json_response({"rewards": [], "scores": [], "extra_logs": {}})
        return web.json_response(await batcher.submit(items))

    async def health(request: Any) -> Any:
        # liveness for anyone; what is served and the counters only with the token
        if expected is not None and not _authorised(request):
            return web.json_response({"status": "ok"})
        return web.json_response({"status": "ok", "reward": getattr(reward, "name", type(reward).__name__),
                                  "batching": batching, "max_batch_size": max_batch_size,
                                  "uptime_s": round(time.time() - started, 1), **batcher.stats})

    async def on_startup(app: Any) -> None:
        await batcher.start()

    async def on_cleanup(app: Any) -> None:
        await batcher.stop()
        decode_pool.shutdown(wait=False, cancel_futures=True)

    app = web.Application(client_max_size=max_body_bytes)
    app.router.add_post("/", score)
    app.router.add_post("/get_reward", score)
    app.router.add_get("/health", health)
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    app[BATCHER_KEY] = batcher
    return app


def serve(reward: Reward, host: str = "127.0.0.1", port: int = 5000, **kwargs: Any) -> None:
    """Run the server until interrupted (``tagpr-rm serve``)."""
    from aiohttp import web

    app = create_app(reward, **kwargs)
    logger.info("serving %s on http://%s:%d (POST / or /get_reward, GET /health)",
                getattr(reward, "name", "reward"), host, port)
    web.run_app(app, host=host, port=port, print=None, access_log=None)


class ServerThread:
    """Run :func:`create_app` on 127.0.0.1 in a background thread (tests, benchmarks, notebooks).

    >>> from tagpr_rewards.base import Reward, RewardOutput
    >>> class Len(Reward):
    ...     name = "len"
    ...     def score(self, batch):
    ...         return RewardOutput([float(len(c)) for c in batch.completions])
    >>> with ServerThread(create_app(Len())) as srv:
    ...     import json, urllib.request
    ...     req = urllib.request.Request(srv.url + "/", json.dumps(
    ...         {"query": ["Q:abc"], "prompts": ["Q:"], "labels": [None]}).encode())
    ...     json.loads(urllib.request.urlopen(req).read())["rewards"]
    [3.0]
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: Any = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ServerThread:
        self._thread = threading.Thread(target=self._main, name="tagpr-reward-server", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise RuntimeError(f"reward server failed to start: {self._error}") from self._error
        return self

    def _main(self) -> None:
        from aiohttp import web

        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)

        async def up() -> None:
            self._runner = web.AppRunner(self.app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.host, self.port)
            await site.start()
            server = getattr(site, "_server", None)
            if server is not None and server.sockets:
                self.port = server.sockets[0].getsockname()[1]

        try:
            loop.run_until_complete(up())
        except BaseException as e:  # report to the starting thread
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self._runner.cleanup())
        loop.close()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
