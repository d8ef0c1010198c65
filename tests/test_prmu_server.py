"""The batching OpenRLHF remote-reward server, with real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from tagpr_rewards.base import Batch, Reward, RewardOutput
from tagpr_rewards.prmu.server import ServerThread, create_app

pytestmark = pytest.mark.integration
aiohttp = pytest.importorskip("aiohttp")


class EchoId(Reward):
    """Scores each sample with the number in its label's ``id`` (so responses can be matched)."""

    name = "echo_id"

    def score(self, batch: Batch) -> RewardOutput:
        ids = batch.column("id") or [None] * len(batch)
        scores = [float(i) if i is not None else -1.0 for i in ids]
        return RewardOutput(scores, {"len": [float(len(c)) for c in batch.completions]})


class Boom(Reward):
    name = "boom"

    def score(self, batch: Batch) -> RewardOutput:
        raise RuntimeError("kaputt")


def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(url, body, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def payload(i: int, prompt: str = "<|user|>q<|assistant|>") -> dict[str, Any]:
    return {"query": [prompt + f"answer {i}<|im_end|>"], "prompts": [prompt],
            "labels": [json.dumps({"id": i, "user_id": f"u{i % 7}"})]}


def test_protocol_and_errors() -> None:
    app = create_app(EchoId(), token="s3cret", max_body_bytes=4096, max_samples=4)
    with ServerThread(app) as srv:
        auth = {"Authorization": "Bearer s3cret"}
        code, body = post(srv.url + "/get_reward", json.dumps(payload(5)).encode(), auth)
        assert code == 200
        assert body["rewards"] == [5.0] and body["scores"] == [5.0]
        assert body["extra_logs"]["len"] == [float(len("answer 5"))]
        assert post(srv.url + "/", json.dumps(payload(5)).encode())[0] == 401
        code, body = post(srv.url + "/", b"{not json", auth)
        assert code == 400 and "not valid JSON" in body["error"]
        code, body = post(srv.url + "/", json.dumps({"query": "x"}).encode(), auth)
        assert code == 400 and "'query' must be a list" in body["error"]
        code, body = post(srv.url + "/", json.dumps({"query": ["a"] * 5}).encode(), auth)
        assert code == 413 and "limit is 4" in body["error"]
        code, body = post(srv.url + "/", json.dumps({"query": ["x" * 5000]}).encode(), auth)
        assert code == 413
        # liveness for anyone, but what is served and the counters only with the token
        with urllib.request.urlopen(srv.url + "/health", timeout=10) as r:
            assert json.loads(r.read()) == {"status": "ok"}
        req = urllib.request.Request(srv.url + "/health", headers={"Authorization": "Bearer wrong"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert json.loads(r.read()) == {"status": "ok"}
        req = urllib.request.Request(srv.url + "/health", headers=auth)
        with urllib.request.urlopen(req, timeout=10) as r:
            health = json.loads(r.read())
        assert health["status"] == "ok" and health["reward"] == "echo_id" and health["requests"] >= 1
        # a token that differs only in its last character, or is a prefix, is refused too
        for wrong in ("Bearer s3crex", "Bearer s3cre", "Bearer s3cret2", "s3cret"):
            assert post(srv.url + "/", json.dumps(payload(5)).encode(), {"Authorization": wrong})[0] == 401


def test_empty_token_is_an_error_not_silently_no_auth(tmp_path) -> None:
    with pytest.raises(ValueError, match="token is empty"):
        create_app(EchoId(), token="")
    # the CLI refuses an empty token variable before it loads anything
    env = {**os.environ, "TAGPR_RM_TOKEN": ""}
    proc = subprocess.run([sys.executable, "-m", "tagpr_rewards.prmu.server_cli", "serve", "--checkpoint",
                           str(tmp_path / "missing")], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "$TAGPR_RM_TOKEN is set but empty" in proc.stderr


def test_deeply_nested_json_is_a_clean_400() -> None:
    with ServerThread(create_app(EchoId())) as srv:
        code, body = post(srv.url + "/", b"[" * 100000)
        assert code == 400 and "nests JSON deeper" in body["error"]
        code, body = post(srv.url + "/", json.dumps({"query": ["[" * 100000]}).encode() + b"]" * 0)
        assert code == 200  # deep text inside a string is just text
        # a deeply nested label costs its own sample alone
        good = payload(3)
        deep = {"query": good["query"] * 2, "prompts": good["prompts"] * 2,
                "labels": [good["labels"][0], "[" * 100000 + "]" * 100000]}
        code, body = post(srv.url + "/", json.dumps(deep).encode())
    assert code == 200, body
    assert body["rewards"] == [3.0, 0.0] and body["extra_logs"]["reward_error"] == [0.0, 1.0]


def test_health_answers_while_a_16mb_hostile_request_is_decoded() -> None:
    # a query whose response recovery was quadratic (~280 s at 16 MB) and a body at the size
    # limit: the request must come back (hang guard) and /health must keep answering meanwhile
    import threading

    hostile = json.dumps({"query": ["Z" + "a" * (16 * 1024 * 1024 - 200)], "prompts": ["b" + "a" * 100],
                          "labels": [None]}).encode()
    result: dict[str, Any] = {}
    with ServerThread(create_app(EchoId(), max_body_bytes=17 * 1024 * 1024)) as srv:
        def send() -> None:
            result["code"], _ = post(srv.url + "/", hostile)

        t = threading.Thread(target=send)
        t.start()
        answered = 0
        for _ in range(5):
            with urllib.request.urlopen(srv.url + "/health", timeout=20) as r:
                answered += json.loads(r.read())["status"] == "ok"
        t.join(120)
        assert not t.is_alive(), "the hostile request did not come back within the hang guard"
    assert result["code"] == 200 and answered == 5


def test_split_response_is_linear_on_hostile_queries() -> None:
    from tagpr_rewards.remote_protocol import split_response

    # each case took 2 s (0.25 MB) to 280 s (16 MB) with the quadratic scan; the guard only catches hangs
    t0 = time.perf_counter()
    for n in (4 * 1024 * 1024, 16 * 1024 * 1024):
        assert split_response("Z" + "a" * n, "b" + "a" * 100)[1] == "tail"
        assert split_response("Z" + "ab" * (n // 2), "x" + "ab" * 50)[1] in ("tail", "none")
    assert time.perf_counter() - t0 < 60


def test_metadata_keys_named_like_contract_arguments_do_not_break_a_batch() -> None:
    # a label key "prompts" or "completions" used to raise inside Batch.from_inputs and zero
    # every other request of the batch
    n = 20
    bodies = []
    for i in range(n):
        b = payload(i)
        meta = {"id": i, "user_id": "u"}
        if i % 5 == 0:
            meta.update({"prompts": "p", "completions": "c", "references": 1, "user_ids": 2})
        b["labels"] = [json.dumps(meta)]
        bodies.append(b)

    async def run(url: str) -> list[Any]:
        async with aiohttp.ClientSession() as s:
            async def one(b: dict[str, Any]) -> Any:
                async with s.post(url, json=b) as r:
                    return r.status, await r.json()
            return await asyncio.gather(*(one(b) for b in bodies))

    with ServerThread(create_app(EchoId(), max_wait_ms=50.0)) as srv:
        res = asyncio.run(run(srv.url + "/"))
    assert [c for c, _ in res] == [200] * n
    assert [b["rewards"] for _, b in res] == [[float(i)] for i in range(n)]
    assert all(b["extra_logs"]["reward_error"] == [0.0] for _, b in res)


def test_one_failing_sample_costs_only_its_own_request() -> None:
    # 20 good concurrent requests + 1 on which the reward raises: the good ones keep their rewards
    class FailsOnBoom(EchoId):
        def score(self, batch: Batch) -> RewardOutput:
            if any("boom" in c for c in batch.completions):
                raise RuntimeError("kaputt")
            return super().score(batch)

    bodies = [payload(i) for i in range(20)]
    bad = payload(99)
    bad["query"] = [bad["prompts"][0] + "boom"]
    bodies.insert(7, bad)

    async def run(url: str) -> list[Any]:
        async with aiohttp.ClientSession() as s:
            async def one(b: dict[str, Any]) -> Any:
                async with s.post(url, json=b) as r:
                    return await r.json()
            return await asyncio.gather(*(one(b) for b in bodies))

    app = create_app(FailsOnBoom(), fallback=-1.0, max_wait_ms=200.0)
    with ServerThread(app) as srv:
        res = asyncio.run(run(srv.url + "/"))
        from tagpr_rewards.prmu import server

        stats = app[server.BATCHER_KEY].stats
    assert stats["reward_calls"] < len(bodies)  # they were batched together
    for body, out in zip(bodies, res):
        i = json.loads(body["labels"][0])["id"]
        if i == 99:
            assert out["rewards"] == [-1.0] and out["extra_logs"]["reward_error"] == [1.0]
        else:
            assert out["rewards"] == [float(i)] and out["extra_logs"]["reward_error"] == [0.0]


def test_failing_reward_gets_fallback_not_500() -> None:
    with ServerThread(create_app(Boom(), fallback=-1.0)) as srv:
        code, body = post(srv.url + "/", json.dumps(payload(1)).encode())
    assert code == 200 and body["rewards"] == [-1.0] and body["extra_logs"]["reward_error"] == [1.0]


class SometimesBoom(Reward):
    """Components on success, an exception when any completion says 'boom'."""

    name = "sometimes"

    def score(self, batch: Batch) -> RewardOutput:
        if any("boom" in c for c in batch.completions):
            raise RuntimeError("kaputt")
        return RewardOutput([1.0] * len(batch), {"len": [float(len(c)) for c in batch.completions]})


def test_extra_logs_keys_are_the_same_on_success_and_on_error() -> None:
    # OpenRLHF concatenates extra_logs per key across samples: a key set that changed on errors
    # would misalign its batches
    with ServerThread(create_app(SometimesBoom(), fallback=0.0, batching=False)) as srv:
        ok_code, ok = post(srv.url + "/", json.dumps(payload(1)).encode())
        bad = payload(2)
        bad["query"] = [bad["prompts"][0] + "boom"]
        bad_code, err = post(srv.url + "/", json.dumps(bad).encode())
    assert ok_code == bad_code == 200
    assert set(ok["extra_logs"]) == set(err["extra_logs"]) == {"len", "reward_error"}
    assert ok["extra_logs"]["reward_error"] == [0.0] and err["extra_logs"]["reward_error"] == [1.0]


def test_load_64_clients_x_500_requests_all_matched() -> None:
    app = create_app(EchoId(), max_batch_size=256, max_wait_ms=2.0)
    n_clients, n_req = 64, 500

    async def client(session: Any, url: str, c: int) -> list[str]:
        errors = []
        for k in range(n_req):
            i = c * n_req + k
            async with session.post(url, json=payload(i)) as r:
                if r.status != 200:
                    errors.append(f"{i}: HTTP {r.status}")
                    continue
                body = await r.json()
                if body["rewards"] != [float(i)]:
                    errors.append(f"{i}: got {body['rewards']}")
        return errors

    async def run(url: str) -> list[str]:
        conn = aiohttp.TCPConnector(limit=n_clients)
        async with aiohttp.ClientSession(connector=conn) as s:
            res = await asyncio.gather(*(client(s, url, c) for c in range(n_clients)))
        return [e for r in res for e in r]

    with ServerThread(app) as srv:
        errors = asyncio.run(run(srv.url + "/"))
        from tagpr_rewards.prmu import server

        stats = app[server.BATCHER_KEY].stats
    assert errors == []
    assert stats["samples"] == n_clients * n_req
    assert stats["reward_calls"] < stats["samples"]  # concurrent requests were gathered into batches


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def prmu_setup(tmp_path_factory):
    pytest.importorskip("sentence_transformers")
    from tagpr_eval.data.synthetic import generate_task
    from tagpr_rewards.prmu.config import PRMUConfig, TrainConfig
    from tagpr_rewards.prmu.pairs import as_record
    from tagpr_rewards.prmu.train import train_prmu

    st = generate_task("LaMP-2", n_users=10, questions_per_user=3, profile_size=6, seed=2, split="train")
    recs = [as_record(s) for s in st.data.samples]
    ck = tmp_path_factory.mktemp("srv") / "ck"
    train_prmu(recs, PRMUConfig(hidden=16), TrainConfig(epochs=1), out_dir=ck, progress=False)
    return ck, recs


def test_tagpr_rm_serve_prmu_matches_in_process_reward(prmu_setup) -> None:
    from tagpr_rewards.prmu.reward import PRMUReward

    ck, recs = prmu_setup
    port = _free_port()
    env = {**os.environ, "TAGPR_RM_TOKEN": "tok", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "tagpr_rewards.prmu.server_cli", "serve", "--checkpoint", str(ck),
                             "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 600  # hang guard: loading the encoder on a loaded machine is slow
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None:
                    raise AssertionError(proc.stdout.read().decode() if proc.stdout else "server died") from None
                assert time.monotonic() < deadline, "tagpr-rm serve did not answer /health within 600 s"
                time.sleep(0.2)
        r = recs[0]
        prompt = "<|user|>" + r["input"] + "<|assistant|>"
        tags = ["comedy", "sci-fi", r["output"]]
        body = {"query": [prompt + f"<answer>{t}</answer><|im_end|>" for t in tags], "prompts": [prompt] * 3,
                "labels": [json.dumps({"user_id": r["user_id"], "profile": r["profile"], "query": r["input"],
                                       "reference": r["output"]})] * 3}
        code, out = post(url + "/get_reward", json.dumps(body).encode(), {"Authorization": "Bearer tok"})
        assert code == 200, out
        local = PRMUReward(str(ck))([f"<answer>{t}</answer>" for t in tags], prompts=[prompt] * 3,
                                    user_ids=[r["user_id"]] * 3, profile=[r["profile"]] * 3, query=[r["input"]] * 3)
        assert out["rewards"] == pytest.approx(local.scores, abs=1e-5)
        assert out["extra_logs"]["interaction"] == pytest.approx(local.components["interaction"], abs=1e-5)
    finally:
        proc.terminate()
        proc.wait(30)


def test_serves_stage2_composite_with_prmu(prmu_setup, tmp_path) -> None:
    pytest.importorskip("tagpr_rewards.presets")
    from tagpr_rewards.prmu.server_cli import build_served_reward

    ck, recs = prmu_setup
    cfg = tmp_path / "stage2.json"
    cfg.write_text(json.dumps({"preset": "stage2", "task": "LaMP-2", "schema": "think-answer"}))
    reward = build_served_reward(str(ck), str(cfg))
    r = recs[0]
    prompt = "<|user|>" + r["input"] + "<|assistant|>"
    label = json.dumps({"user_id": r["user_id"], "profile": r["profile"], "query": r["input"], "reference": r["output"]})
    body = {"query": [prompt + f"<think>the user tags such films</think><answer>{r['output']}</answer></s>",
                      prompt + "no tags at all"],
            "prompts": [prompt] * 2, "labels": [label] * 2}
    with ServerThread(create_app(reward)) as srv:
        code, out = post(srv.url + "/", json.dumps(body).encode())
    assert code == 200, out
    logs = out["extra_logs"]
    assert {"base", "tag", "prmu", "prmu/interaction"} <= set(logs)
    assert logs["base"][0] == 1.0 and logs["base"][1] == 0.0  # correct tagged answer vs unformatted
    assert out["rewards"][0] > out["rewards"][1]


def test_poison_batch_through_the_real_prmu_server(prmu_setup) -> None:
    # 20 good concurrent requests + 1 with a lone surrogate in its answer and profile: all 21 went
    # to the fallback 0.5-ish with reward_error 0; the good ones must keep their own rewards
    from tagpr_rewards.prmu.reward import PRMUReward

    ck, recs = prmu_setup
    reward = PRMUReward(str(ck))

    def body(r: dict[str, Any], answer: str, profile: Any) -> dict[str, Any]:
        prompt = "<|user|>" + r["input"] + "<|assistant|>"
        return {"query": [prompt + f"<answer>{answer}</answer><|im_end|>"], "prompts": [prompt],
                "labels": [json.dumps({"user_id": r["user_id"], "profile": profile, "query": r["input"]})]}

    good = [body(recs[i % len(recs)], ["comedy", "sci-fi", "action"][i % 3], recs[i % len(recs)]["profile"])
            for i in range(20)]
    r0 = recs[0]
    poison_profile = [dict(r0["profile"][0], description="x\ud800y")] + list(r0["profile"][1:])
    poison = body(r0, "sci\udc00fi", poison_profile)
    alone = []
    for b in good:  # each good request scored alone, in process
        meta = json.loads(b["labels"][0])
        answer = b["query"][0][len(b["prompts"][0]):-len("<|im_end|>")]
        alone.append(reward([answer], user_ids=[meta["user_id"]], profile=[meta["profile"]],
                            query=[meta["query"]]).scores[0])

    async def run(url: str) -> list[Any]:
        async with aiohttp.ClientSession() as s:
            async def one(b: dict[str, Any]) -> Any:
                async with s.post(url, data=json.dumps(b)) as r:  # ensure_ascii: "\ud800" on the wire
                    assert r.status == 200
                    return await r.json()
            return await asyncio.gather(*(one(b) for b in [*good[:10], poison, *good[10:]]))

    app = create_app(reward, max_wait_ms=200.0)
    with ServerThread(app) as srv:
        res = asyncio.run(run(srv.url + "/"))
        from tagpr_rewards.prmu import server

        stats = app[server.BATCHER_KEY].stats
    assert stats["reward_calls"] < 21
    outs = [*res[:10], *res[11:]]
    assert [o["rewards"][0] for o in outs] == pytest.approx(alone, abs=1e-4)
    assert all(o["extra_logs"]["reward_error"] == [0.0] for o in res)
    assert len({round(a, 4) for a in alone}) > 1  # the rewards differ per request, so a swap would show
