"""PRMU's share of a real GRPO step (issue 11 item 2): TRL ``GRPOTrainer``, the tiny-cpu policy
shape (4 prompts x G = 8 = 32 completions, 160 new tokens), synthetic LaMP-2 users with 24
profile items, the stage-2 reward with PRMU; PRMU's own time is measured inside the step.

Workload builders are importable functions (the ``python -m benchmarks`` runner calls them):

* :func:`grpo_prmu_share` — one measurement: per-step wall time, PRMU time, PRMU share;
* :func:`prmu_call_cost` — PRMU's own seconds per GRPO-shaped batch (cached / new users);
* :func:`prmu_accuracy` — held-out pairwise accuracy of a checkpoint with an encoder setting.

Run by hand::

    python -m benchmarks.prmu_grpo --policy runs/tiny-cpu/sft/model --steps 4
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

__all__ = ["TimedReward", "build_prmu_checkpoint", "grpo_prmu_share", "heldout_pairs", "prmu_accuracy",
           "prmu_call_cost", "rl_rows"]

PROMPTS, G, NEW_TOKENS, PROFILE = 4, 8, 160, 24


class TimedReward:
    """Wraps a reward and adds up the seconds spent in its ``score`` (PRMU inside the composite)."""

    def __new__(cls, inner: Any) -> Any:
        from tagpr_rewards.base import Reward, RewardOutput

        class _Timed(Reward):
            name = getattr(inner, "name", "timed")
            low, high = None, None

            def __init__(self) -> None:
                self.inner = inner
                self.seconds = 0.0
                self.calls = 0

            def score(self, batch: Any) -> RewardOutput:
                t = time.perf_counter()
                try:
                    return self.inner.score(batch)  # type: ignore[no-any-return]
                finally:
                    self.seconds += time.perf_counter() - t
                    self.calls += 1

        return _Timed()


def build_prmu_checkpoint(out: str | os.PathLike[str], n_users: int = 60, seed: int = 0,
                          epochs: int = 4) -> tuple[Path, list[dict[str, Any]]]:
    """A PRMU trained like tiny-cpu's (hidden 64, attention pooling, 4 epochs, 30% users held out)."""
    from tagpr_eval.data.synthetic import generate_task
    from tagpr_rewards.prmu.config import PRMUConfig, TrainConfig
    from tagpr_rewards.prmu.pairs import as_record
    from tagpr_rewards.prmu.train import train_prmu

    st = generate_task("LaMP-2", n_users=n_users, questions_per_user=10, profile_size=PROFILE, seed=seed,
                       split="train")
    recs = [as_record(s) for s in st.data.samples]
    ck = Path(out)
    if not (ck / "config.json").is_file():
        train_prmu(recs, PRMUConfig(hidden=64, pooling="attention"),
                   TrainConfig(epochs=epochs, heldout_fraction=0.3, seed=seed), out_dir=ck, progress=False)
    return ck, recs


def rl_rows(n: int, seed: int = 11) -> list[dict[str, Any]]:
    """``n`` RL rows (LaMP prompt, profile of :data:`PROFILE` items, query, user), each of its own
    synthetic user; the prompt is one user chat message, as in the recipe's RL data
    (``prompt_style: lamp``), so the tiny-cpu SFT policy writes the tagged chains it was trained on.

    >>> rows = rl_rows(3)
    >>> len({r["user_id"] for r in rows}), len(json.loads(rows[0]["profile"])), rows[0]["prompt"][0]["role"]
    (3, 24, 'user')
    """
    from tagpr_eval.data.synthetic import generate_task
    from tagpr_eval.dataset import to_dataset

    st = generate_task("LaMP-2", n_users=max(n, 1), questions_per_user=1, profile_size=PROFILE, seed=seed,
                       split="dev")
    ds = to_dataset(st.data, retriever="bm25", k=4, prompt_style="lamp")
    return [dict(r, prompt=[{"role": "user", "content": r["prompt"]}]) for r in list(ds)[:n]]


def grpo_prmu_share(checkpoint: str | os.PathLike[str], policy: str | None = None, users: str = "cached",
                    steps: int = 4, prmu_kwargs: dict[str, Any] | None = None, work: str | None = None,
                    threads: int | None = None) -> dict[str, Any]:
    """Run ``steps`` real GRPO steps and measure PRMU's share of each (the first step is warm-up).

    ``users="cached"``: the same 4 prompts every step (their users' profiles are encoded once);
    ``"new"``: 4 prompts of users never seen before in every step. ``policy``: a model directory
    (the tiny-cpu SFT policy) or ``None`` for an untrained tiny model (no tags: PRMU then scores
    whole completions, the expensive case).
    """
    import tempfile

    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from tagpr_rewards.presets import stage2
    from tagpr_rewards.prmu.reward import PRMUReward
    from tagpr_trainers.trl_adapter import as_reward_func

    if threads:
        torch.set_num_threads(threads)
    work = work or tempfile.mkdtemp(prefix="prmu_grpo_")
    if policy is None:
        from tagpr_eval.tiny_model import build_tiny_model

        policy = str(build_tiny_model(Path(work) / "tiny", vocab_size=2048, hidden_size=64, num_layers=2))
    n_rows = PROMPTS if users == "cached" else PROMPTS * (steps + 1)
    rows = rl_rows(n_rows)
    if users == "cached":
        rows = rows * (steps + 1)
    prmu = PRMUReward(str(checkpoint), normalize="group", **(prmu_kwargs or {}))
    timed = TimedReward(prmu)
    reward = stage2("LaMP-2", schema="personalization-9", alpha=1.0, beta=0.5, gamma=0.5, prmu=timed)
    func = as_reward_func(reward)
    step_times: list[float] = []
    prmu_times: list[float] = []

    class Clock(TrainerCallback):  # type: ignore[misc]
        def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.t = time.perf_counter()
            self.p = timed.seconds

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            step_times.append(time.perf_counter() - self.t)
            prmu_times.append(timed.seconds - self.p)

    args = GRPOConfig(output_dir=str(Path(work) / "grpo"), per_device_train_batch_size=PROMPTS * G,
                      num_generations=G, max_completion_length=NEW_TOKENS, temperature=0.8, beta=0.0,
                      learning_rate=2e-4, max_steps=steps + 1, logging_steps=1, save_strategy="no",
                      report_to="none", seed=0, remove_unused_columns=False, dataloader_num_workers=0,
                      disable_tqdm=True, shuffle_dataset=False, bf16=False, fp16=False, use_cpu=True)
    tok = AutoTokenizer.from_pretrained(policy)
    model = AutoModelForCausalLM.from_pretrained(policy)
    trainer = GRPOTrainer(model=model, reward_funcs=[func], args=args, train_dataset=Dataset.from_list(rows),
                          processing_class=tok, callbacks=[Clock()])
    trainer.train()
    st, pt = step_times[1:], prmu_times[1:]
    share = [p / s for p, s in zip(pt, st)]
    return {"users": users, "steps": len(st), "step_s": sum(st) / len(st), "prmu_s": sum(pt) / len(pt),
            "share": sum(pt) / sum(st), "share_min": min(share), "share_max": max(share),
            "prmu_kwargs": prmu_kwargs or {}, "loadavg": open("/proc/loadavg").read().split()[:3]}


def prmu_call_cost(checkpoint: str | os.PathLike[str], users: str = "cached", calls: int = 5,
                   prmu_kwargs: dict[str, Any] | None = None, seed: int = 0) -> dict[str, Any]:
    """PRMU's own seconds per GRPO batch (4 prompts x G = 8 tagged personalization-9 chains, three
    candidate answers per prompt, 24 profile items) inside the reward call: min and median of
    ``calls`` calls, ``users="cached"`` (the same users every call) or ``"new"`` (cache cleared,
    other users every call)."""
    import random
    import statistics

    from tagpr_rewards.base import Batch
    from tagpr_rewards.prmu.reward import PRMUReward

    rows = rl_rows(PROMPTS * (calls + 1))
    groups = [rows[i:i + PROMPTS] for i in range(0, len(rows) - PROMPTS + 1, PROMPTS)]
    rng = random.Random(seed)
    tags = ["sci-fi", "comedy", "action", "romance", "dystopia", "fantasy", "violence", "classic"]

    def chain(ans: str) -> str:
        return ("<understand-task>Pick one tag for the film.</understand-task><recall-history>The user "
                "tagged films about " + " ".join(rng.choice(tags) for _ in range(20)) + ".</recall-history>"
                "<infer-preference>So this user would pick it.</infer-preference><answer>" + ans + "</answer>")

    def batch_for(rs: list[dict[str, Any]]) -> Batch:
        comps, prompts, uids, profiles, queries = [], [], [], [], []
        for r in rs:
            cands = rng.sample(tags, 3)
            for _ in range(G):
                comps.append(chain(rng.choice(cands)))
                prompts.append(r["prompt"][0]["content"])
                uids.append(r["user_id"])
                profiles.append(r["profile"])
                queries.append(r["query"])
        return Batch.from_inputs(comps, prompts, None, uids, profile=profiles, query=queries)

    reward = PRMUReward(str(checkpoint), normalize="group", schema="personalization-9", **(prmu_kwargs or {}))
    reward.score(batch_for(groups[0]))  # load and warm up
    times = []
    for k in range(calls):
        if users == "cached":
            b = batch_for(groups[0])
        else:
            reward.model.clear_cache()
            b = batch_for(groups[1 + k % (len(groups) - 1)])
        t = time.perf_counter()
        reward.score(b)
        times.append(time.perf_counter() - t)
    return {"users": users, "prmu_kwargs": prmu_kwargs or {}, "min_s": min(times),
            "median_s": statistics.median(times), "batches": len(groups),
            "loadavg": open("/proc/loadavg").read().split()[:3]}


def heldout_pairs(n_users: int = 20, seed: int = 100) -> Any:
    """Pairs of users the checkpoint never saw (a different synthetic seed), all pair types."""
    from tagpr_eval.data.synthetic import generate_task
    from tagpr_rewards.prmu.pairs import as_record, build_pairs

    st = generate_task("LaMP-2", n_users=n_users, questions_per_user=6, profile_size=PROFILE, seed=seed,
                       split="train")
    return build_pairs([as_record(s) for s in st.data.samples], seed=seed, task="LaMP-2")


def prmu_accuracy(checkpoint: str | os.PathLike[str], pairs: Any, **model_kwargs: Any) -> dict[str, float]:
    """Held-out pairwise accuracy through the inference path (``PRMUModel.score``, the path a
    reward uses) with a model loaded with ``model_kwargs``: macro over pair types, and per type."""
    from tagpr_rewards.prmu.evaluate import macro_accuracy
    from tagpr_rewards.prmu.model import PRMUModel

    model = PRMUModel.load(checkpoint, **model_kwargs)
    sides = [p.chosen for p in pairs.pairs] + [p.rejected for p in pairs.pairs]
    g, i = model.score([s.query for s in sides], [s.response for s in sides],
                       [pairs.profiles[s.profile] for s in sides], [s.user_id for s in sides])
    tot = [a + b for a, b in zip(g, i)]
    n = len(pairs.pairs)
    acc = macro_accuracy(pairs, tot[:n], tot[n:], n_boot=10)
    per = {k: float(v["acc"]) for k, v in acc.items()}
    return {"macro": sum(per.values()) / len(per), **per}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--policy", default=None)
    p.add_argument("--checkpoint", default="/tmp/prmu_bench_ck")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--users", default="cached", choices=("cached", "new"))
    p.add_argument("--prmu", default="{}", help="PRMUReward kwargs as JSON")
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args(argv)
    ck, _ = build_prmu_checkpoint(a.checkpoint)
    print(json.dumps(grpo_prmu_share(ck, a.policy, a.users, a.steps, json.loads(a.prmu), threads=a.threads)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
