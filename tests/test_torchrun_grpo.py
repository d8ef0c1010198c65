"""GRPO under ``torchrun --nproc_per_node 2`` (gloo, CPU) with the stage-2 reward including PRMU.

One prompt's G = 4 generations are split 2 + 2 over the two processes, so PRMU's
``normalize="group"`` is only right when it sees both halves (all_gather across processes).
Every rank writes what it logged; the test checks both.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

WORKER = r'''
import json, os, sys
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import GRPOConfig, GRPOTrainer

from tagpr_rewards.presets import stage2
from tagpr_rewards.prmu import PRMUReward
from tagpr_trainers.trl_adapter import as_reward_func

model_dir, prmu_dir, rows_file, out_dir = sys.argv[1:5]
rank = int(os.environ["RANK"])
rows = json.loads(open(rows_file).read())
f = as_reward_func(stage2("LaMP-2", schema="personalization-9", prmu=PRMUReward(prmu_dir, normalize="group")))
seen = []

def stage2_reward(**kw):
    out = f.runner.score(kw)
    metrics = {}
    log_metric = kw["log_metric"]

    def logging_metric(key, value):
        metrics[key] = value
        log_metric(key, value)

    f._log(out, logging_metric, kw.get("log_extra"))
    seen.append({"step": kw["trainer_state"].global_step, "metrics": metrics, "prmu": out.components["prmu"],
                 "users": kw["user_id"], "queries": kw["query"]})
    return [s for s in out.scores]

stage2_reward.__name__ = "stage2"
tok = AutoTokenizer.from_pretrained(model_dir)
model = AutoModelForCausalLM.from_pretrained(model_dir)
args = GRPOConfig(output_dir=out_dir, per_device_train_batch_size=2, num_generations=4, max_completion_length=8,
                  max_steps=2, logging_steps=1, learning_rate=1e-2, use_cpu=True, ddp_backend="gloo",
                  report_to=[], remove_unused_columns=False, save_strategy="no", seed=0,
                  dataloader_num_workers=0, disable_tqdm=True)
trainer = GRPOTrainer(model=model, processing_class=tok, reward_funcs=[stage2_reward], args=args,
                      train_dataset=Dataset.from_list(rows))
trainer.train()
with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as fh:
    json.dump({"world": int(os.environ["WORLD_SIZE"]), "calls": seen,
               "log_history": trainer.state.log_history}, fh)
# leave the gloo group as PyTorch asks: a process that exits with its group alive can abort in
# teardown ("terminate called without an active exception", seen once on a loaded machine) ...
if torch.distributed.is_initialized():
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
# ... and skip the interpreter's teardown too: with the group destroyed, rank 1 still aborted there
# once more on a loaded machine (2026-12-07; both ranks' results already written). What this test
# checks is written above; a C++ destructor's race at exit is PyTorch's, not the adapter's
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.integration
def test_grpo_under_torchrun_two_processes_normalises_prmu_over_the_whole_group(tmp_path: Path) -> None:
    from tagpr_eval.data.synthetic import generate_task
    from tagpr_eval.tiny_model import build_tiny_model
    from tagpr_rewards.prmu import PRMUConfig, TrainConfig, train_prmu

    task = generate_task("LaMP-2", n_users=6, questions_per_user=2, profile_size=4, seed=0, split="train")
    samples = task.data.samples
    recs = [{"id": s.id, "input": s.input, "profile": s.profile, "user_id": s.user_id, "output": s.output}
            for s in samples]
    prmu_dir = tmp_path / "prmu"
    train_prmu(recs, PRMUConfig(hidden=16, pooling="mean"), TrainConfig(epochs=1, heldout_fraction=0.0, candidates=2),
               out_dir=prmu_dir, task="LaMP-2", progress=False)
    model_dir = build_tiny_model(tmp_path / "model", vocab_size=400, hidden_size=32, num_layers=2)
    rows = [{"prompt": [{"role": "user", "content": "Tag this movie: " + s.input.split("description:")[-1][:60]}],
             "reference": s.output, "user_id": s.user_id, "profile": json.dumps(s.profile), "task": "LaMP-2",
             "query": s.input, "id": s.id} for s in samples[:4]]
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), str(worker), str(model_dir), str(prmu_dir), str(tmp_path / "rows.json"),
           str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)  # a hang guard only
    assert proc.returncode == 0, proc.stderr[-4000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    for r in ranks:
        assert r["world"] == 2 and len(r["calls"]) == 2
        for call in r["calls"]:  # every rank logged every component with a finite value
            for key in ("rewards/base/mean", "rewards/tag/mean", "rewards/prmu/mean", "rewards/prmu/interaction/mean"):
                assert math.isfinite(call["metrics"][key]), key
        logged = [h for h in r["log_history"] if "reward" in h]
        assert len(logged) == 2 and all("rewards/prmu/mean" in h for h in logged)
    # each step: both ranks hold halves of the same group (same user and query) ...
    local_means: list[float] = []
    for c0, c1 in zip(ranks[0]["calls"], ranks[1]["calls"]):
        assert set(c0["users"]) == set(c1["users"]) and set(c0["queries"]) == set(c1["queries"])
        group = [v for v in c0["prmu"] + c1["prmu"] if v is not None]
        assert len(group) == 4
        # ... and PRMU's z-score is over the whole group of 4: mean 0, std 1 across both processes
        mean = sum(group) / 4
        std = math.sqrt(sum((v - mean) ** 2 for v in group) / 4)
        assert abs(mean) < 1e-6 and (std == pytest.approx(1.0, abs=1e-4) or std == 0.0)
        local_means += [sum(c["prmu"]) / len(c["prmu"]) for c in (c0, c1)]
    # within one process alone the halves are not centred (a per-process z-score would make them so)
    assert any(abs(m) > 1e-6 for m in local_means)
    # the logged step means are the same on every rank (TRL gathers them)
    assert [h["reward"] for h in ranks[0]["log_history"] if "reward" in h] == \
        [h["reward"] for h in ranks[1]["log_history"] if "reward" in h]


def test_group_normalisation_without_a_process_group_says_so(monkeypatch: pytest.MonkeyPatch,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from tagpr_rewards.prmu import reward as prmu_reward

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(prmu_reward, "_WARNED_NO_GROUP", [])
    local: dict[Any, list[float]] = {("u", "q"): [1.0, 2.0]}
    with caplog.at_level(logging.ERROR, logger="tagpr_rewards.prmu"):
        assert prmu_reward._gather_groups(local) == local
        prmu_reward._gather_groups(local)
    errors = [r for r in caplog.records if "needs torch.distributed initialised" in r.getMessage()]
    assert len(errors) == 1
