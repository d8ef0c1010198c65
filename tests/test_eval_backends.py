"""Backends: registry, dummy, baseline, the hf backend on a tiny offline model, and the openai
backend against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tagpr_eval.backends import GenerationConfig, Request, backend_names, get_backend
from tagpr_eval.config import ConfigError
from tagpr_eval.data import LampSample


def test_registry_lists_and_suggests() -> None:
    assert backend_names() == ["baseline", "dummy", "hf", "openai", "vllm"]
    with pytest.raises(KeyError, match="did you mean 'openai'"):
        get_backend("opena")


def test_unknown_model_arg_is_an_error_with_hint() -> None:
    with pytest.raises(ConfigError) as e:
        get_backend("dummy", mdoe="hash")
    assert "'mdoe'" in str(e.value) and "did you mean 'mode'" in str(e.value)


def test_choosing_a_light_backend_imports_no_torch() -> None:
    import subprocess
    import sys

    code = ("import sys; from tagpr_eval.backends import get_backend; get_backend('dummy'); "
            "import tagpr_eval.backends.openai, tagpr_eval.backends.hf, tagpr_eval.backends.vllm; "
            "print('torch' in sys.modules, 'vllm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_vllm_missing_gives_install_hint() -> None:
    pytest.importorskip("torch")
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"pip install 'tagpr\[vllm\]'"):
            get_backend("vllm", pretrained="x")
    else:  # pragma: no cover
        pytest.skip("vllm installed")


def _sample(task: str, input: str, profile: list[dict[str, Any]], output: str = "") -> LampSample:
    return LampSample(id="7", input=input, profile=profile, user_id="u1", output=output)


def test_baseline_per_task() -> None:
    b = get_backend("baseline")
    gen = GenerationConfig()
    l2 = _sample("LaMP-2", "Which tag does this movie relate to? description: a robot.",
                 [{"id": "1", "description": "x", "tag": "comedy"}, {"id": "2", "description": "y", "tag": "sci-fi"},
                  {"id": "3", "description": "z", "tag": "sci-fi"}])
    l3 = _sample("LaMP-3", "What is the score of the following review? review: fine",
                 [{"id": "1", "text": "a", "score": "5"}, {"id": "2", "text": "b", "score": "4"}])
    l4 = _sample("LaMP-4", "Generate a headline for the following article: rockets launch to space",
                 [{"id": "1", "title": "Cooking pasta", "text": "pasta recipes with tomato"},
                  {"id": "2", "title": "Rockets reach orbit", "text": "space rockets launch"}])
    l1 = _sample("LaMP-1", 'For an author who has written the paper with the title "Deep nets", which reference '
                 'is related? Just answer with [1] or [2] without explanation. [1]: "Cooking with tomato" '
                 '[2]: "Neural nets for vision"',
                 [{"id": "1", "title": "Neural nets", "abstract": "deep neural nets for vision"}])
    outs = b.generate([Request("", id="7", task="LaMP-2", sample=l2), Request("", id="7", task="LaMP-3", sample=l3),
                       Request("", id="7", task="LaMP-4", sample=l4), Request("", id="7", task="LaMP-1", sample=l1)],
                      gen)
    assert outs == ["sci-fi", "4.5", "Rockets reach orbit", "[2]"]
    assert get_backend("baseline", rating="round").generate([Request("", task="LaMP-3", sample=l3)], gen) == ["4"]
    with pytest.raises(ConfigError, match="needs LaMP requests"):
        b.generate(["a bare prompt"], gen)


def test_dummy_is_deterministic_and_logs(tmp_path: Path) -> None:
    log = tmp_path / "calls.txt"
    b = get_backend("dummy", mode="hash", log_calls=str(log))
    s = _sample("LaMP-2", "description: x", [])
    reqs = [Request("p", id=str(i), task="LaMP-2", sample=s) for i in range(5)]
    a = b.generate(reqs, GenerationConfig())
    assert a == b.generate(reqs, GenerationConfig())
    assert len(log.read_text().splitlines()) == 10


# ---------------------------------------------------------------- hf backend on a tiny model


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    from tagpr_eval.tiny_model import build_tiny_model

    return Path(build_tiny_model(tmp_path_factory.mktemp("tiny"), vocab_size=400, hidden_size=32, num_layers=2))


@pytest.mark.integration
def test_hf_batched_equals_one_by_one(tiny_model: Path) -> None:
    b = get_backend("hf", pretrained=str(tiny_model), dtype="float32", device="cpu")
    prompts: list[Any] = [
        [{"role": "user", "content": "Which tag fits the movie about space?"}],
        [{"role": "user", "content": "hi"}],
        "a plain string prompt that is a little longer than the others, to force padding",
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "rate it"}],
    ]
    gen = GenerationConfig(max_new_tokens=12)
    batched = b.generate(prompts, gen)
    single = [b.generate([p], gen)[0] for p in prompts]
    assert batched == single  # left padding must not change greedy outputs
    assert all(isinstance(x, str) for x in batched)
    # the chat template was applied to chat prompts
    assert b.render(prompts[1]) == "<|user|>hi<|end|><|assistant|>"
    assert b.render("raw") == "raw"
    stopped = b.generate(prompts[:1], GenerationConfig(max_new_tokens=12, stop=[batched[0][:2]]))
    if batched[0][:2].strip():
        assert stopped == [""]


@pytest.mark.integration
def test_cli_run_hf_tiny_model(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tagpr_eval.cli import main

    code = main(["run", "--model", "hf", "--model-args", f"pretrained={tiny_model},dtype=float32",
                 "--tasks", "LaMP-2,LaMP-3", "--data", "synthetic", "--limit", "6", "--batch-size", "3",
                 "--prompt", "tagged", "--gen-kwargs", "max_new_tokens=8", "--output", str(tmp_path),
                 "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert "| LaMP-2 | accuracy |" in out and "| LaMP-3 | MAE ↓ |" in out
    res = json.loads((tmp_path / "results.json").read_text())  # --output is the run directory itself
    assert res["config"]["model_args"]["pretrained"] == str(tiny_model)
    assert res["tasks"]["LaMP-2"]["n_samples"] == 6
    assert set(res["tasks"]["LaMP-2"]["tag_stats"]) >= {"format_valid_rate", "tag_distribution"}


# ---------------------------------------------------------------- openai backend on loopback


class _Handler(BaseHTTPRequestHandler):
    server: Any

    def log_message(self, *a: Any) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        srv = self.server
        with srv.lock:
            srv.calls.append((self.path, body, self.headers.get("Authorization")))
            n = len(srv.calls)
        if srv.fail_first and n <= srv.fail_first:
            self.send_response(503)
            self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(b'{"error": "busy"}')
            return
        if body.get("model") != "tiny":
            self._json(404, {"error": {"message": f"model {body.get('model')} not found"}})
            return
        if self.path == "/v1/chat/completions":
            text = "chat:" + body["messages"][-1]["content"][::-1]
            self._json(200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]})
        elif self.path == "/v1/completions":
            self._json(200, {"choices": [{"index": 0, "text": "text:" + body["prompt"][::-1] + "\nSTOP here"}]})
        else:
            self._json(404, {"error": "no route"})

    def _json(self, code: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture()
def server() -> Any:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.calls = []
    srv.lock = threading.Lock()
    srv.fail_first = 0
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.mark.integration
def test_openai_chat_and_completions(server: Any) -> None:
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    b = get_backend("openai", model="tiny", base_url=url, api_key="k", concurrency=4)
    prompts: list[Any] = [[{"role": "user", "content": f"q{i}"}] for i in range(6)] + ["abc"]
    outs = b.generate(prompts, GenerationConfig(max_new_tokens=5, stop=["\nSTOP"]))
    assert outs == [f"chat:{i}q" for i in range(6)] + ["text:cba"]
    paths = sorted(p for p, _, _ in server.calls)
    assert paths.count("/v1/chat/completions") == 6 and paths.count("/v1/completions") == 1
    body = next(b for p, b, _ in server.calls if p == "/v1/completions")
    assert body["max_tokens"] == 5 and body["temperature"] == 0.0 and body["stop"] == ["\nSTOP"]
    assert all(auth == "Bearer k" for _, _, auth in server.calls)


@pytest.mark.integration
def test_openai_retries_then_succeeds_and_fails_clearly(server: Any) -> None:
    from tagpr_eval.backends.openai import OpenAIError

    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.fail_first = 2
    b = get_backend("openai", model="tiny", base_url=url, max_retries=3, backoff=0.01, endpoint="chat")
    assert b.generate(["hello"], GenerationConfig()) == ["chat:olleh"]
    assert len(server.calls) == 3
    bad = get_backend("openai", model="other", base_url=url, max_retries=3, backoff=0.01)
    with pytest.raises(OpenAIError, match="HTTP 404"):
        bad.generate(["x"], GenerationConfig())
    assert len(server.calls) == 4  # 404 is not retried
    down = get_backend("openai", model="tiny", base_url="http://127.0.0.1:9/v1", max_retries=1, backoff=0.01)
    with pytest.raises(OpenAIError, match="giving up after 2 attempts"):
        down.generate(["x"], GenerationConfig())


@pytest.mark.integration
def test_cli_run_openai_backend(server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tagpr_eval.cli import main

    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    code = main(["run", "--model", "openai", "--model-args", f"model=tiny,base_url={url}", "--tasks", "LaMP-7",
                 "--limit", "5", "--output", str(tmp_path), "--no-progress", "--no-plots"])
    assert code == 0
    assert len(server.calls) == 5
    assert "| LaMP-7 | rouge-1 |" in capsys.readouterr().out
