"""PRMU cost benchmarks (pytest-benchmark; peer and ours on the same inputs in the same run).

1. ``prmu-reward``: GRPO-shaped batches (16 prompts × G = 8 completions of ~48 words, 8 profile
   items per user).
   Peer: a bare encoder pass over the completions alone. Ours: ``PRMUReward`` with warm user
   cache (users seen before, the steady state of RL over a fixed user pool) and uncached.
2. ``prmu-server``: 64 concurrent clients sending one sample per request (as OpenRLHF does) to
   ``tagpr-rm``'s app serving PRMU, batching on vs off.

Run: ``pytest benchmarks/bench_prmu.py -o python_files=bench_*.py --benchmark-only``.
Figures: docs/benchmarks/prmu.md.
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest

pytest.importorskip("sentence_transformers")
aiohttp = pytest.importorskip("aiohttp")

P, G, ITEMS = 16, 8, 8
WORDS = ("space crew heist detective wedding dragon battle family ghost senator island coach letter "
         "rocket prison castle diary rifle vampire stadium treasure election orphan paris").split()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: Any) -> dict[str, Any]:
    from tagpr_eval.data.synthetic import generate_task
    from tagpr_rewards.prmu.config import PRMUConfig, TrainConfig
    from tagpr_rewards.prmu.pairs import as_record
    from tagpr_rewards.prmu.reward import PRMUReward
    from tagpr_rewards.prmu.train import train_prmu

    st = generate_task("LaMP-2", n_users=P, questions_per_user=2, profile_size=ITEMS, seed=3, split="train")
    recs = [as_record(s) for s in st.data.samples]
    ck = tmp_path_factory.mktemp("bench_prmu") / "ck"
    res = train_prmu(recs, PRMUConfig(), TrainConfig(epochs=1, heldout_fraction=0.1), out_dir=ck, progress=False)
    rng = random.Random(0)
    firsts = list({r["user_id"]: r for r in recs}.values())[:P]
    comps, queries, profiles, users = [], [], [], []
    for r in firsts:
        for _ in range(G):
            # a short GRPO completion (~48 words; reasoning chains are usually longer)
            comps.append("The user tags films like this one by their topic. " +
                         " ".join(rng.choice(WORDS) for _ in range(38)) + ". So the answer follows.")
            queries.append(r["input"])
            profiles.append(r["profile"])
            users.append(r["user_id"])
    reward = PRMUReward(str(ck), batch_size=256)
    return {"reward": reward, "encoder": res.model.encoder, "comps": comps, "queries": queries,
            "profiles": profiles, "users": users, "ck": ck}


def _call(s: dict[str, Any]) -> Any:
    return s["reward"](s["comps"], prompts=s["queries"], user_ids=s["users"], profile=s["profiles"],
                       query=s["queries"])


def test_bare_encoder(benchmark: Any, setup: dict[str, Any]) -> None:
    benchmark.group = "prmu-reward (128 completions = 16 prompts x G=8)"
    enc = setup["encoder"]
    benchmark.pedantic(lambda: enc.encode(setup["comps"]), rounds=10, warmup_rounds=2)


def test_prmu_reward_cached(benchmark: Any, setup: dict[str, Any]) -> None:
    benchmark.group = "prmu-reward (128 completions = 16 prompts x G=8)"
    _call(setup)  # warm the user cache
    out = benchmark.pedantic(lambda: _call(setup), rounds=10, warmup_rounds=1)
    assert len(out.scores) == P * G


def test_prmu_reward_uncached(benchmark: Any, setup: dict[str, Any]) -> None:
    benchmark.group = "prmu-reward (128 completions = 16 prompts x G=8)"
    model = setup["reward"].model
    benchmark.pedantic(lambda: _call(setup), setup=model.clear_cache, rounds=10, warmup_rounds=1)


CLIENTS, PER_CLIENT = 64, 8


def _serve_round(app: Any, bodies: list[bytes]) -> int:
    from tagpr_rewards.prmu.server import ServerThread

    async def client(session: Any, url: str, mine: list[bytes]) -> int:
        ok = 0
        for b in mine:
            async with session.post(url, data=b, headers={"Content-Type": "application/json"}) as r:
                ok += r.status == 200
                await r.read()
        return ok

    async def run(url: str) -> int:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CLIENTS)) as s:
            res = await asyncio.gather(*(client(s, url, bodies[c::CLIENTS]) for c in range(CLIENTS)))
        return sum(res)

    with ServerThread(app) as srv:
        return asyncio.run(run(srv.url + "/"))


def _bodies(s: dict[str, Any], n: int = CLIENTS * PER_CLIENT) -> list[bytes]:
    out = []
    for i in range(n):
        j = i % len(s["comps"])
        prompt = "<|user|>" + s["queries"][j] + "<|assistant|>"
        label = {"user_id": s["users"][j], "profile": s["profiles"][j], "query": s["queries"][j]}
        out.append(json.dumps({"query": [prompt + s["comps"][j] + f" #{i}<|im_end|>"], "prompts": [prompt],
                               "labels": [json.dumps(label)]}).encode())
    return out


@pytest.mark.parametrize("batching", [True, False], ids=["batching-on", "batching-off"])
def test_server_throughput(benchmark: Any, setup: dict[str, Any], batching: bool) -> None:
    from tagpr_rewards.prmu.reward import PRMUReward
    from tagpr_rewards.prmu.server import create_app

    benchmark.group = f"prmu-server ({CLIENTS} clients x {PER_CLIENT} single-sample requests, PRMU)"
    reward = PRMUReward(str(setup["ck"]))
    bodies = _bodies(setup)
    _call({**setup, "reward": reward})  # load the model and warm the user cache outside the timing
    ok = benchmark.pedantic(lambda: _serve_round(create_app(reward, batching=batching, max_wait_ms=5.0), bodies),
                            rounds=3, warmup_rounds=0)
    assert ok == len(bodies)
    benchmark.extra_info["requests_per_round"] = len(bodies)


# ------------------------------------------------------------- importable workloads (runner)


def server_batching_speedup(reward: Any, comps: list[str], queries: list[str], profiles: list[Any],
                            users: list[str], clients: int = CLIENTS, per_client: int = PER_CLIENT,
                            rounds: int = 3) -> dict[str, Any]:
    """``tagpr-rm`` with batching on vs off: ``clients`` concurrent clients sending single-sample
    requests (as OpenRLHF does); min/median seconds per round, the speed-up, and whether every
    response matched its own request (each body's completion is unique; its served reward must
    equal the in-process reward of that sample)."""
    import os
    import statistics
    import time

    from tagpr_rewards.prmu.server import create_app

    s = {"comps": comps, "queries": queries, "profiles": profiles, "users": users}
    bodies = _bodies(s, clients * per_client)
    answers = [json.loads(b)["query"][0] for b in bodies]
    prompts = [json.loads(b)["prompts"][0] for b in bodies]
    labels = [json.loads(json.loads(b)["labels"][0]) for b in bodies]
    local = reward([a[len(p):].replace("<|im_end|>", "") for a, p in zip(answers, prompts)],
                   user_ids=[lab["user_id"] for lab in labels], profile=[lab["profile"] for lab in labels],
                   query=[lab["query"] for lab in labels]).scores

    def served(batching: bool) -> tuple[float, list[float]]:
        got: list[float] = [float("nan")] * len(bodies)
        from tagpr_rewards.prmu.server import ServerThread

        async def client(session: Any, url: str, idx: list[int]) -> None:
            for i in idx:
                async with session.post(url, data=bodies[i], headers={"Content-Type": "application/json"}) as r:
                    got[i] = (await r.json())["rewards"][0]

        async def run(url: str) -> None:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as sess:
                await asyncio.gather(*(client(sess, url, list(range(c, len(bodies), clients)))
                                       for c in range(clients)))

        with ServerThread(create_app(reward, batching=batching, max_wait_ms=5.0)) as srv:
            t = time.perf_counter()
            asyncio.run(run(srv.url + "/"))
            return time.perf_counter() - t, got

    res: dict[str, list[float]] = {"on": [], "off": []}
    matched = True
    for _ in range(rounds):
        for mode in ("on", "off"):  # interleaved
            sec, got = served(mode == "on")
            res[mode].append(sec)
            matched &= all(abs(g - w) < 1e-4 for g, w in zip(got, local))
    on_min, off_min = min(res["on"]), min(res["off"])
    return {"clients": clients, "requests": len(bodies), "on_min_s": on_min, "off_min_s": off_min,
            "on_median_s": statistics.median(res["on"]), "off_median_s": statistics.median(res["off"]),
            "speedup_min": off_min / on_min,
            "speedup_median": statistics.median(res["off"]) / statistics.median(res["on"]),
            "all_matched": matched, "distinct_rewards": len({round(x, 5) for x in local}),
            "cpus": os.cpu_count(), "loadavg": open("/proc/loadavg").read().split()[:3]}


def make_setup() -> dict[str, Any]:
    """The :func:`setup` fixture's workload outside pytest (the runner and :func:`main` use it),
    with the model loaded and the user cache warm."""
    import tempfile
    from pathlib import Path

    class _Tmp:  # stands in for pytest's tmp_path_factory
        def mktemp(self, name: str) -> Path:
            return Path(tempfile.mkdtemp(prefix=name))

    fixture = getattr(setup, "_get_wrapped_function", None)
    make = fixture() if fixture else getattr(setup, "__wrapped__", setup)
    s: dict[str, Any] = make(_Tmp())
    _call(s)  # load the model and warm the user cache outside any timing
    return s


def main() -> int:
    """``python -m benchmarks.bench_prmu``: the server batching figure (on vs off, interleaved,
    every response checked against its request), printed as JSON."""
    s = make_setup()
    print(json.dumps(server_batching_speedup(s["reward"], s["comps"], s["queries"], s["profiles"], s["users"])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
