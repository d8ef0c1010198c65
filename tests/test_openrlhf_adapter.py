"""OpenRLHF adapter: reward_func entry file through OpenRLHF's own loader, data export, launch scripts."""

from __future__ import annotations

import ast
import asyncio
import json
import logging
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tagpr_rewards.presets import stage2
from tagpr_trainers.openrlhf import REWARD_FUNC_PATH
from tagpr_trainers.openrlhf.export import export_rl, export_sft, make_label, parse_label
from tagpr_trainers.openrlhf.launch import (
    OpenRLHFArgumentError,
    check_script,
    cli_parser,
    script_argv,
    shipped_scripts,
)
from tagpr_trainers.openrlhf.remote_reward import OpenRLHFRewardAdapter, split_response, strip_special_tokens

pytest.importorskip("openrlhf.utils.agent", reason="pip install --no-deps 'openrlhf>=0.11' pylatexenc")

SCHEMA = "personalization-9"


def chain(answer: str) -> str:
    return (
        "<understand-task>Pick one tag.</understand-task>"
        "<recall-history>The user tagged space films sci-fi.</recall-history>"
        "<infer-preference>This is a space film, so this user would say it.</infer-preference>"
        f"<answer>{answer}</answer>"
    )


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from transformers import AutoTokenizer

    from tagpr_eval.tiny_model import build_tiny_model

    d = build_tiny_model(tmp_path_factory.mktemp("tiny"), vocab_size=400, hidden_size=16, num_layers=1)
    return AutoTokenizer.from_pretrained(d)


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    """RL rows as tagpr_eval.to_dataset writes them (synthetic LaMP-2, tagged prompts)."""
    from tagpr_eval.data import load_task
    from tagpr_eval.dataset import to_dataset

    ds = to_dataset(load_task("synthetic", "LaMP-2", split="dev").select(6), retriever="bm25", k=1)
    return [dict(r) for r in ds]


class ScriptedEngine:
    """Stands in for OpenRLHF's vLLM engine: returns a fixed response (token ids + text)."""

    def __init__(self, tokenizer: Any, response: str) -> None:
        self.tokenizer = tokenizer
        self.response = response

    async def generate(self, prompt_token_ids: list[int], sampling_params: Any, multi_modal_data: Any = None) -> Any:
        ids = self.tokenizer(self.response, add_special_tokens=False)["input_ids"][: sampling_params.max_tokens]
        out = SimpleNamespace(token_ids=ids, text=self.tokenizer.decode(ids), finish_reason="stop", logprobs=None)
        return SimpleNamespace(outputs=[out])


def run_executor(executor: Any, tokenizer: Any, row: dict[str, Any], response: str, max_length: int = 1024,
                 max_tokens: int = 256) -> dict[str, Any]:
    prompt = tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
    params = SimpleNamespace(max_tokens=max_tokens, logprobs=None)
    engine = ScriptedEngine(tokenizer, response + "<|end|>")
    return asyncio.run(executor.execute(prompt, make_label(row), params, max_length, tokenizer, engine))


def expected_total(row: dict[str, Any], completion: str, alpha: float, beta: float) -> float:
    out = stage2("LaMP-2", schema=SCHEMA, alpha=alpha, beta=beta)(
        [completion], references=[row["reference"]], user_ids=[row["user_id"]], profile=[row["profile"]],
        task=["LaMP-2"], query=[row["query"]])
    assert out.scores[0] is not None
    return out.scores[0]


def openrlhf_experience_from_response() -> Any:
    """OpenRLHF's own ``SamplesGenerator._process_response_into_experience`` (its module imports ray and
    vLLM, so the method is compiled from the installed source with only torch and Experience)."""
    import importlib.util

    import torch
    from openrlhf.trainer.ppo_utils.experience import Experience

    spec = importlib.util.find_spec("openrlhf.trainer.ppo_utils.samples_generator")
    assert spec is not None and spec.origin is not None
    tree = ast.parse(Path(spec.origin).read_text())
    fn = next(n for n in ast.walk(tree)
              if isinstance(n, ast.FunctionDef) and n.name == "_process_response_into_experience")
    ns: dict[str, Any] = {"torch": torch, "Experience": Experience}
    exec(compile(ast.Module(body=[fn], type_ignores=[]), spec.origin, "exec"), ns)
    return ns["_process_response_into_experience"], Experience


# ------------------------------------------------------------------------- reward_func entry file


@pytest.mark.integration
def test_reward_func_through_openrlhf_single_turn_executor(
    tokenizer: Any, rows: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openrlhf.utils.agent import SingleTurnAgentExecutor

    cfg = tmp_path / "reward.yaml"
    cfg.write_text("reward:\n  preset: stage2\n  schema: personalization-9\n  alpha: 1.0\n  beta: 0.5\n"
                   "score_from: base/task\n")
    monkeypatch.setenv("TAGPR_REWARD_CONFIG", str(cfg))
    executor = SingleTurnAgentExecutor(str(REWARD_FUNC_PATH))  # OpenRLHF loads the file by path
    assert callable(executor.reward_func)

    row = rows[0]
    good, wrong, bad = chain(row["reference"]), chain("not-a-tag"), row["reference"]
    outs = [run_executor(executor, tokenizer, row, r) for r in (good, wrong, bad)]
    for out, completion in zip(outs, (good, wrong, bad)):
        assert float(out["reward"]) == pytest.approx(expected_total(row, completion, alpha=1.0, beta=0.5), abs=1e-6)
        assert out["extra_logs"]["tagpr/error"].item() == 0.0
    assert float(outs[0]["scores"]) == 1.0  # score_from: base/task (right answer, valid format)
    assert float(outs[1]["scores"]) == 0.0
    assert outs[0]["extra_logs"]["tagpr/base"].item() == 1.0
    assert outs[2]["extra_logs"]["tagpr/base"].item() == 0.0  # no tags: format gate fails
    # every sample carries the same extra_logs keys, so OpenRLHF can concatenate them
    assert len({tuple(sorted(o["extra_logs"])) for o in outs}) == 1
    assert {"tagpr/base", "tagpr/tag", "tagpr/base/task", "tagpr/tag/tag_order"} <= set(outs[0]["extra_logs"])

    # OpenRLHF's own conversion into training experiences, then concatenation of a batch
    to_experience, experience_cls = openrlhf_experience_from_response()
    exps = [to_experience(None, o, max_len=1024) for o in outs]
    batch = experience_cls.concat_experiences(exps, tokenizer.pad_token_id)
    assert batch.rewards.tolist() == pytest.approx([float(o["reward"]) for o in outs])
    assert batch.info["tagpr/base"].tolist() == [1.0, 0.0, 0.0]


@pytest.mark.integration
def test_reward_func_strips_a_left_truncated_prompt(
    tokenizer: Any, rows: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openrlhf.utils.agent import SingleTurnAgentExecutor

    cfg = tmp_path / "reward.json"
    # think-answer tolerates no text outside the tags: any prompt left in the response fails the format
    cfg.write_text(json.dumps({"preset": "stage1", "schema": "think-answer"}))
    monkeypatch.setenv("TAGPR_REWARD_CONFIG", str(cfg))
    executor = SingleTurnAgentExecutor(str(REWARD_FUNC_PATH))
    row = rows[1]
    prompt = tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
    n_prompt = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    response = f"<think>the user tags such films {row['reference']}</think><answer>{row['reference']}</answer>"
    full = run_executor(executor, tokenizer, row, response, max_length=n_prompt + 256)
    # max_length leaves room for only the last 10 prompt tokens: OpenRLHF cuts the prompt from the left
    cut = run_executor(executor, tokenizer, row, response, max_length=10 + 256, max_tokens=256)
    assert n_prompt > 10 and len(cut["observation_tokens"]) < len(full["observation_tokens"])
    assert full["observation_tokens"][:n_prompt] == tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert float(full["reward"]) == 1.0 and float(cut["reward"]) == 1.0
    wrong = run_executor(executor, tokenizer, row, response.replace(f">{row['reference']}<", ">nope<"),
                         max_length=10 + 256, max_tokens=256)
    assert float(wrong["reward"]) == 0.0


def test_reward_func_errors_give_the_fallback_and_log_at_error(
    tokenizer: Any, rows: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    adapter = OpenRLHFRewardAdapter({"preset": "stage1", "schema": SCHEMA}, fallback=-1.0)
    prompt = "<|user|>q<|end|><|assistant|>"
    query = prompt + chain("sci-fi") + "<|end|>"
    good = make_label(rows[0] | {"reference": "sci-fi"})
    with caplog.at_level(logging.ERROR, logger="tagpr_trainers.openrlhf"):
        out = adapter([query, query, query, query], [prompt] * 4,
                      [good, json.dumps({"task": "LaMP-99"}), "sci-fi", None])
    # unknown task, and labels without a task (a plain reference, no label): fallback, logged at ERROR
    assert out["rewards"] == [1.0, -1.0, -1.0, -1.0]
    assert out["extra_logs"]["tagpr/error"] == [0.0, 1.0, 1.0, 1.0]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any("LaMP-99" in r.getMessage() for r in errors)
    assert any("fallback" in r.getMessage() for r in errors)
    assert all(len(v) == 4 for v in out["extra_logs"].values())


def test_bad_config_fails_at_start_up_with_the_file_named(tmp_path: Path) -> None:
    from tagpr_trainers.openrlhf.remote_reward import load_adapter_config

    bad = tmp_path / "bad.yaml"
    bad.write_text("reward: {preset: stage2, task: LaMP-2}\nfalback: 0.0\n")
    with pytest.raises(ValueError, match=r"bad.yaml.*'falback'.*did you mean 'fallback'"):
        load_adapter_config(bad)
    bad.write_text("preset: stage3\ntask: LaMP-2\n")
    with pytest.raises(ValueError, match="stage3"):
        OpenRLHFRewardAdapter.from_config(load_adapter_config(bad))
    with pytest.raises(FileNotFoundError, match="TAGPR_REWARD_CONFIG"):
        load_adapter_config(tmp_path / "missing.yaml")


@pytest.mark.integration
def test_split_and_strip_with_the_real_tokenizer(tokenizer: Any) -> None:
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Which tag?"}], tokenize=False,
                                           add_generation_prompt=True)
    response = "<think>space</think><answer>sci-fi</answer>"
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"] + \
        tokenizer(response + "<|end|><|pad|>", add_special_tokens=False)["input_ids"]
    query = tokenizer.decode(ids, skip_special_tokens=False)  # exactly what OpenRLHF passes
    text, method = split_response(query, prompt)
    assert method == "prefix"
    assert strip_special_tokens(text) == response
    assert strip_special_tokens("<|im_start|>a<｜end▁of▁sentence｜></s>") == "a"


# ------------------------------------------------------------------------------------ data export


class StandInStrategy:
    """The attributes OpenRLHF's dataset classes read from a strategy."""

    def __init__(self, **data: Any) -> None:
        self.args = SimpleNamespace(data=SimpleNamespace(**data), use_ms=False)

    def print(self, *a: Any) -> None:
        pass

    def is_rank_0(self) -> bool:
        return True


@pytest.mark.integration
def test_rl_export_is_read_by_openrlhf_prompt_dataset(tokenizer: Any, rows: list[dict[str, Any]],
                                                      tmp_path: Path) -> None:
    from datasets import Dataset
    from openrlhf.datasets.prompts_dataset import PromptDataset
    from openrlhf.datasets.utils import blending_datasets

    info = export_rl(Dataset.from_list(rows), tmp_path / "rl.jsonl", max_profile_items=2)  # = to_dataset output
    assert info.rows == len(rows)
    strategy = StandInStrategy(input_key=info.input_key, label_key=info.label_key, apply_chat_template=True)
    data = blending_datasets(str(info.path), None, strategy)
    ds = PromptDataset(data, tokenizer, strategy)
    assert len(ds) == len(rows)
    for i, row in enumerate(rows):
        _source, prompt, label, _img = ds[i]
        assert prompt == tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
        assert prompt.endswith("<|assistant|>")
        meta = parse_label(label)
        assert meta["user_id"] == row["user_id"] and meta["reference"] == row["reference"]
        assert meta["task"] == "LaMP-2" and meta["id"] == row["id"] and meta["query"] == row["query"]
        assert meta["profile"] == json.loads(row["profile"])[:2]
    assert info.flags()[:2] == ["--data.prompt_dataset", str(info.path)]


@pytest.mark.integration
def test_sft_export_is_read_by_openrlhf_sft_dataset(tokenizer: Any, tmp_path: Path) -> None:
    from openrlhf.datasets.sft_dataset import SFTDataset
    from openrlhf.datasets.utils import blending_datasets

    src = [
        {"messages": [{"role": "user", "content": "Which tag?"}, {"role": "assistant", "content": chain("sci-fi")}]},
        {"prompt": [{"role": "user", "content": "Rate it."}], "completion": [{"role": "assistant",
                                                                            "content": chain("4")}]},
        {"prompt": "Which tag, plain?", "completion": chain("comedy")},
    ]
    info = export_sft(src, tmp_path / "sft.jsonl")
    strategy = StandInStrategy(input_key=info.input_key, output_key=info.output_key, apply_chat_template=True)
    data = blending_datasets(str(info.path), None, strategy)
    ds = SFTDataset(data, tokenizer, 512, strategy, num_processors=1)
    assert len(ds) == 3
    assert ds.prompts[0] == "<|user|>Which tag?<|end|><|assistant|>"
    assert ds.responses[0] == chain("sci-fi") + "<|end|>"
    assert ds.responses[2] == chain("comedy") + "<|end|>"
    with pytest.raises(ValueError, match=r"row 0.*'messages' or 'prompt'\+'completion'"):
        export_sft([{"text": "x"}], tmp_path / "bad.jsonl")
    assert not (tmp_path / "bad.jsonl").exists()  # atomic: nothing half-written


# --------------------------------------------------------------------------------- launch scripts


@pytest.mark.integration
def test_every_flag_of_the_shipped_scripts_is_accepted_by_the_installed_openrlhf() -> None:
    scripts = {p.name: p for p in shipped_scripts()}
    assert set(scripts) == {"train_sft.sh", "train_grpo.sh"}
    sft = check_script(scripts["train_sft.sh"])
    assert sft.data.apply_chat_template and (sft.data.input_key, sft.data.output_key) == ("input", "output")
    grpo = check_script(scripts["train_grpo.sh"])
    assert grpo.algo.advantage.estimator == "group_norm"
    assert grpo.rollout.n_samples_per_prompt > 1
    assert grpo.data.label_key == "label" and grpo.data.apply_chat_template
    assert [Path(u).resolve() for u in grpo.reward.remote_url] == [REWARD_FUNC_PATH]
    # the script passes only flags the parser defines exactly (no abbreviations)
    module, argv = script_argv(scripts["train_grpo.sh"])
    defined = {s for a in cli_parser("train_ppo_ray")._actions for s in a.option_strings}
    assert module == "openrlhf.cli.train_ppo_ray"
    assert {a for a in argv if a.startswith("--")} <= defined


@pytest.mark.integration
def test_the_flag_check_rejects_what_openrlhf_would_reject() -> None:
    grpo = next(p for p in shipped_scripts() if p.name == "train_grpo.sh")
    with pytest.raises(OpenRLHFArgumentError, match="unrecognized arguments: --rollout.n_sample_per_prompt"):
        check_script(grpo, extra=["--rollout.n_sample_per_prompt", "4"])
    with pytest.raises(OpenRLHFArgumentError, match="invalid choice: 'grpo'"):
        check_script(grpo, extra=["--algo.advantage.estimator", "grpo"])
    with pytest.raises(OpenRLHFArgumentError, match="n_samples_per_prompt > 1"):
        check_script(grpo, env={"N_SAMPLES": "1"})
    # the pre-0.11 flat flags are gone
    with pytest.raises(OpenRLHFArgumentError, match="unrecognized arguments: --remote_rm_url"):
        check_script(grpo, extra=["--remote_rm_url", "http://x"])
    assert math.isfinite(check_script(grpo, env={"LR": "2e-6"}).actor.adam.lr)


def test_concurrent_calls_from_threads_match_sequential_ones(rows: list[dict[str, Any]]) -> None:
    """OpenRLHF calls reward_func from many threads at once (asyncio.to_thread per sample)."""
    from concurrent.futures import ThreadPoolExecutor

    adapter = OpenRLHFRewardAdapter({"preset": "stage2", "schema": SCHEMA})  # built lazily, per task
    prompt = "<|user|>q<|end|><|assistant|>"
    cases = [(prompt + chain(a) + "<|end|>", make_label(r | {"task": t}))
             for r in rows for a in (r["reference"], "nope") for t in ("LaMP-2", "LaMP-1")]
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(lambda c: adapter([c[0]], [prompt], [c[1]]), cases))
    sequential = [adapter([q], [prompt], [lab]) for q, lab in cases]
    assert parallel == sequential
    assert all(out["extra_logs"]["tagpr/error"] == [0.0] for out in parallel)
    assert {out["rewards"][0] > 1.0 for out in parallel} == {True, False}


# ------------------------------------------------------------- PRMU: entry file and remote server


@pytest.fixture(scope="module")
def prmu_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny PRMU trained for 2 epochs on synthetic LaMP-2 (real encoder, offline)."""
    from tagpr_eval.data import load_task
    from tagpr_rewards.prmu import PRMUConfig, TrainConfig, train_prmu

    data = load_task("synthetic", "LaMP-2", split="train")
    recs = [{"id": s.id, "input": s.input, "profile": s.profile[:4], "user_id": s.user_id, "output": s.output}
            for s in data.samples[:12]]
    out = tmp_path_factory.mktemp("prmu")
    train_prmu(recs, PRMUConfig(hidden=16, pooling="mean"),
               TrainConfig(epochs=2, heldout_fraction=0.0, candidates=2), out_dir=out, task="LaMP-2",
               progress=False)
    return out


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.integration
def test_entry_file_and_remote_server_give_the_same_stage2_reward_with_prmu(
    tokenizer: Any, rows: list[dict[str, Any]], prmu_checkpoint: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """--reward.remote_url as a file (our entry file) and as a URL (``tagpr-rm serve`` on 127.0.0.1),
    both driven by OpenRLHF's SingleTurnAgentExecutor, against the in-process composite."""
    import shutil
    import subprocess
    import sys
    import time
    import urllib.request

    from openrlhf.utils.agent import SingleTurnAgentExecutor

    from tagpr_rewards.prmu import PRMUReward

    reward_cfg = {"preset": "stage2", "task": "LaMP-2", "schema": SCHEMA, "alpha": 1.0, "beta": 0.5, "gamma": 0.5}
    server_cfg = tmp_path / "stage2.json"
    server_cfg.write_text(json.dumps(reward_cfg))
    entry_cfg = tmp_path / "entry.yaml"
    entry_cfg.write_text(json.dumps({"reward": {**reward_cfg, "prmu": {"checkpoint": str(prmu_checkpoint)}}}))

    port = free_port()
    exe = shutil.which("tagpr-rm") or str(Path(sys.executable).with_name("tagpr-rm"))
    server = subprocess.Popen([exe, "serve", "--reward-config", str(server_cfg), "--checkpoint", str(prmu_checkpoint),
                               "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if json.load(r)["status"] == "ok":
                        break
            except OSError:
                pass
            if server.poll() is not None or time.time() > deadline:
                log = server.stdout.read().decode(errors="replace") if server.stdout else ""
                pytest.fail(f"tagpr-rm serve did not come up: {log[-2000:]}")
            time.sleep(0.3)

        monkeypatch.setenv("TAGPR_REWARD_CONFIG", str(entry_cfg))
        via_file = SingleTurnAgentExecutor(str(REWARD_FUNC_PATH))
        via_http = SingleTurnAgentExecutor(f"http://127.0.0.1:{port}/get_reward")
        composite = stage2("LaMP-2", schema=SCHEMA, prmu=PRMUReward(prmu_checkpoint), alpha=1.0, beta=0.5, gamma=0.5)
        row = rows[0]
        to_experience, _ = openrlhf_experience_from_response()
        seen = set()
        for response in (chain(row["reference"]), chain("comedy"), "no tags at all"):
            # max_length fits the whole prompt (the server does not handle a left-truncated prompt)
            a = run_executor(via_file, tokenizer, row, response, max_length=4096)
            b = run_executor(via_http, tokenizer, row, response, max_length=4096)
            want = composite([response], references=[row["reference"]], user_ids=[row["user_id"]],
                             profile=[row["profile"]], task=["LaMP-2"], query=[row["query"]])
            assert float(a["reward"]) == pytest.approx(want.scores[0], abs=1e-4)
            assert b["reward"] == pytest.approx([want.scores[0]], abs=1e-4)  # the HTTP path returns lists
            assert a["extra_logs"]["tagpr/prmu"].item() == pytest.approx(want.components["prmu"][0], abs=1e-4)
            assert a["extra_logs"]["tagpr/prmu/interaction"].item() == pytest.approx(
                want.components["prmu/interaction"][0], abs=1e-4)
            for out in (a, b):
                exp = to_experience(None, out, max_len=4096)
                assert exp.rewards.flatten().tolist() == pytest.approx([want.scores[0]], abs=1e-4)
            assert want.scores[0] is not None
            seen.add(round(want.scores[0], 4))
        assert len(seen) == 3  # the three responses score differently: a real check, not a constant
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def test_extra_logs_keys_are_the_same_for_every_task_and_for_errors() -> None:
    """OpenRLHF concatenates extra_logs per key across samples: one key set for the whole run."""
    adapter = OpenRLHFRewardAdapter({"preset": "stage2", "schema": "think-answer"})  # task from the label
    prompt = "<|user|>q<|end|><|assistant|>"
    cases = (("LaMP-2", "sci-fi"), ("LaMP-3", "4"), ("LaMP-4", "A title"), ("LaMP-99", "x"))
    outs = [adapter([prompt + f"<think>t</think><answer>{a}</answer>"], [prompt],
                    [json.dumps({"task": t, "reference": a})]) for t, a in cases]
    keys = {tuple(o["extra_logs"]) for o in outs}
    assert len(keys) == 1
    assert {"tagpr/base/task/abs_error", "tagpr/base/task/rouge-1", "tagpr/error"} <= set(next(iter(keys)))
    for (task, answer), out in zip(cases[:3], outs):
        want = stage2(task, schema="think-answer")([f"<think>t</think><answer>{answer}</answer>"],
                                                   references=[answer])
        assert out["rewards"] == want.scores and out["extra_logs"]["tagpr/base/task"] == [1.0]
    assert [o["extra_logs"]["tagpr/error"][0] for o in outs] == [0.0, 0.0, 0.0, 1.0]


# ---------------------------------------------------- fail loud at start-up, safe inside a step


def test_a_typod_config_key_or_a_missing_file_fails_openrlhf_at_construction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # both used to raise inside the step, which OpenRLHF logs at INFO and turns into reward: None
    from openrlhf.utils.agent import SingleTurnAgentExecutor

    cfg = tmp_path / "reward.yaml"
    cfg.write_text("reward:\n  preset: stage2\n  schema: personalization-9\n  alhpa: 1.0\n")
    monkeypatch.setenv("TAGPR_REWARD_CONFIG", str(cfg))
    with pytest.raises(RuntimeError, match=r"TAGPR_REWARD_CONFIG.*alhpa.*alpha"):
        SingleTurnAgentExecutor(str(REWARD_FUNC_PATH))
    monkeypatch.setenv("TAGPR_REWARD_CONFIG", str(tmp_path / "missing.yaml"))
    with pytest.raises(RuntimeError, match=r"missing.yaml: no such file"):
        SingleTurnAgentExecutor(str(REWARD_FUNC_PATH))


@pytest.mark.integration
def test_labels_that_are_not_json_objects_are_flagged_through_openrlhf(
    tokenizer: Any, rows: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # such labels used to be taken as the gold answer with tagpr/error 0
    from openrlhf.utils.agent import SingleTurnAgentExecutor

    cfg = tmp_path / "reward.json"
    cfg.write_text(json.dumps({"reward": {"preset": "stage1", "schema": SCHEMA, "task": "LaMP-2"},
                               "fallback": -1.0}))
    monkeypatch.setenv("TAGPR_REWARD_CONFIG", str(cfg))
    executor = SingleTurnAgentExecutor(str(REWARD_FUNC_PATH))
    row = rows[0]
    prompt = tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
    params = SimpleNamespace(max_tokens=256, logprobs=None)
    engine = ScriptedEngine(tokenizer, chain("{not json") + "<|end|>")
    for label in ("{not json", "null", '["sci-fi"]', "[" * 5000):
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="tagpr_trainers.openrlhf"):
            out = asyncio.run(executor.execute(prompt, label, params, 1024, tokenizer, engine))
        assert out["reward"] is not None and float(out["reward"]) == -1.0, label
        assert out["extra_logs"]["tagpr/error"].item() == 1.0, label
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and "labels[0]" in errors[0] and "JSON" in errors[0], label
    # a good label through the same executor is scored, error 0
    good = asyncio.run(executor.execute(prompt, make_label(row), params, 1024, tokenizer,
                                        ScriptedEngine(tokenizer, chain(row["reference"]) + "<|end|>")))
    assert float(good["reward"]) == 1.0 and good["extra_logs"]["tagpr/error"].item() == 0.0


def test_a_failing_sample_costs_only_itself_in_the_entry_file(caplog: pytest.LogCaptureFixture) -> None:
    from tagpr_rewards.base import Batch, Reward, RewardOutput

    class FailsOnBoom(Reward):
        name = "fragile"

        def score(self, batch: Batch) -> RewardOutput:
            if any("boom" in c for c in batch.completions):
                raise RuntimeError("kaputt")
            return RewardOutput([float(len(c)) for c in batch.completions], {"n": [1.0] * len(batch)})

    adapter = OpenRLHFRewardAdapter(FailsOnBoom(), fallback=-1.0)
    prompt = "<|user|>q<|end|><|assistant|>"
    resp = ["ab", "boom", "abcd", "a"]
    # label keys named like the contract's own arguments used to raise inside Batch.from_inputs
    labels = [json.dumps({"id": i, "prompts": "x", "completions": "y"}) for i in range(4)]
    with caplog.at_level(logging.ERROR):
        out = adapter([prompt + r + "<|end|>" for r in resp], [prompt] * 4, labels)
    assert out["rewards"] == [2.0, -1.0, 4.0, 1.0]
    assert out["extra_logs"]["tagpr/error"] == [0.0, 1.0, 0.0, 0.0]
    assert out["extra_logs"]["tagpr/n"] == [1.0, 0.0, 1.0, 1.0]
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1
