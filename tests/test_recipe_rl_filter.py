"""`rl.prompt_filter`: the RL prompts whose sampled completions GRPO can learn from (differing verdicts)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tagpr_rewards.base import Batch, Reward, RewardOutput
from tagpr_trainers.recipe.config import RecipeConfigError, load_recipe_config
from tagpr_trainers.recipe.context import RunContext, stage_inputs
from tagpr_trainers.recipe.stages.rl_filter import (
    informative,
    pass_rates,
    prompt_pool,
    run_verdicts,
    sample_verdicts,
)

#: the ``rl_rows`` fixture (tests/conftest.py): ``rl_rows(n)`` -> n RL dataset rows
RowsFn = Callable[[int], list[dict[str, Any]]]


class ParityOfLength(Reward):
    """For odd users a verdict a random model's samples disagree on (1 when the completion has an
    even length); for even users always 1 (a group with nothing to learn)."""

    name = "parity"

    def score(self, batch: Batch) -> RewardOutput:
        users = batch.user_ids or [""] * len(batch.completions)
        v = [1.0 if int(u[1:]) % 2 == 0 else float(len(c) % 2 == 0) for c, u in zip(batch.completions, users)]
        return RewardOutput(v, {"parity": v})


def _ctx(run: Path, *over: str) -> RunContext:
    return RunContext(load_recipe_config("tiny-cpu", [
        f"run.output_dir={run}", "run.device=cpu", "rl.stage1.max_completion_length=6",
        "rl.stage1.batch_size=4", "rl.stage1.num_generations=2", *over]), progress=False)


def test_a_group_counts_when_its_verdicts_differ() -> None:
    assert informative([[1, 1], [0, 0], [0, 1], [None, 0.0], [None, 1.0], []]) == [False, False, True, False, True,
                                                                                      False]
    assert pass_rates([[1, 0, 0, 1], [1.0, None]]) == [0.5, 0.5]


def test_sample_verdicts_scores_every_sample_with_the_named_component(tiny_policy: Path, rl_rows: RowsFn) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tok = AutoModelForCausalLM.from_pretrained(tiny_policy), AutoTokenizer.from_pretrained(tiny_policy)
    groups = sample_verdicts(model, tok, rl_rows(5), ParityOfLength(), samples=6, temperature=1.0, max_new_tokens=6,
                             component="parity", batch_size=2, seed=3)
    assert len(groups) == 5 and all(len(g) == 6 and set(g) <= {0.0, 1.0} for g in groups)
    again = sample_verdicts(model, tok, rl_rows(5), ParityOfLength(), samples=6, temperature=1.0, max_new_tokens=6,
                            component="parity", batch_size=2, seed=3)
    assert again == groups  # seeded: a rerun keeps the same prompts
    assert tok.padding_side == "right" or tok.padding_side == AutoTokenizer.from_pretrained(tiny_policy).padding_side
    with pytest.raises(ValueError, match=r"rl.prompt_filter.component: 'base/task' is not a component .*parity"):
        sample_verdicts(model, tok, rl_rows(1), ParityOfLength(), samples=2, temperature=1.0, max_new_tokens=4,
                        component="base/task")


def test_the_pool_keeps_the_groups_that_differ_and_a_rerun_reads_it_back(tmp_path: Path, tiny_policy: Path,
                                                                         rl_rows: RowsFn) -> None:
    import shutil

    shutil.copytree(tiny_policy, tmp_path / "sft" / "model")
    ctx = _ctx(tmp_path, "rl.prompt_filter.samples=4", "rl.prompt_filter.component=parity",
               "rl.prompt_filter.temperature=1.0")
    rows = rl_rows(12)
    kept = prompt_pool(ctx, rows, ParityOfLength())
    report = json.loads(ctx.path("rl1_prompt_filter").read_text())
    assert report["prompts"] == 12 and report["kept"] == len(kept)
    assert report["kept"] + report["all_right"] + report["all_wrong"] == 12
    assert sum(report["pass_rate_histogram"].values()) == 12
    assert kept and all(int(r["id"]) % 2 == 1 for r in kept), report  # never a group that always agrees
    assert report["all_right"] >= 6 and report["pass_rate_histogram"]["1.000"] >= 6
    assert kept == [r for r in rows if r in kept]  # the data's order, rows unchanged
    shutil.rmtree(tmp_path / "sft")  # a resumed stage 1 (or stage 2) reads the kept prompts, samples nothing
    assert prompt_pool(ctx, rows, ParityOfLength()) == kept
    # off: every prompt, nothing written
    assert prompt_pool(_ctx(tmp_path / "off"), rows, ParityOfLength()) == rows
    assert not (tmp_path / "off" / "rl1").exists()


def test_max_pass_rate_leaves_out_the_prompts_the_model_mostly_gets_right(tmp_path: Path, tiny_policy: Path,
                                                                          rl_rows: RowsFn) -> None:
    import shutil

    from transformers import AutoModelForCausalLM, AutoTokenizer

    shutil.copytree(tiny_policy, tmp_path / "sft" / "model")
    over = ("rl.prompt_filter.samples=8", "rl.prompt_filter.component=parity", "rl.prompt_filter.temperature=1.0")
    rows = rl_rows(40)
    every = prompt_pool(_ctx(tmp_path, *over), rows, ParityOfLength())
    groups = run_verdicts(_ctx(tmp_path, *over), AutoModelForCausalLM.from_pretrained(tiny_policy),
                          AutoTokenizer.from_pretrained(tiny_policy), rows, ParityOfLength())
    rate = {r["id"]: p for r, p in zip(rows, pass_rates(groups))}
    assert {r["id"] for r in every} == {r["id"] for r, k in zip(rows, informative(groups)) if k}
    assert any(rate[r["id"]] > 0.5 for r in every) and any(rate[r["id"]] <= 0.5 for r in every)  # both kinds

    ctx = _ctx(tmp_path / "hard", *over, "rl.prompt_filter.max_pass_rate=0.5")
    shutil.copytree(tiny_policy, tmp_path / "hard" / "sft" / "model")
    kept = prompt_pool(ctx, rows, ParityOfLength())
    assert kept == [r for r in every if rate[r["id"]] <= 0.5]  # the same samples, the easy ones left out
    report = json.loads(ctx.path("rl1_prompt_filter").read_text())
    assert report["max_pass_rate"] == 0.5 and report["above_max_pass_rate"] == len(every) - len(kept)
    assert report["kept"] + report["above_max_pass_rate"] + report["all_right"] + report["all_wrong"] == 40
    # an input of the RL stages only when it leaves something out (runs from before it keep their fingerprint)
    on = load_recipe_config("tiny-cpu", ["rl.prompt_filter.samples=8"])
    assert "rl.prompt_filter.max_pass_rate" not in stage_inputs(on, "rl1")
    assert stage_inputs(load_recipe_config("tiny-cpu", ["rl.prompt_filter.samples=8",
                                                        "rl.prompt_filter.max_pass_rate=0.5"]), "rl1")[
        "rl.prompt_filter.max_pass_rate"] == 0.5
    for bad in ("0", "1.5"):
        with pytest.raises(RecipeConfigError, match=r"rl.prompt_filter.max_pass_rate must be in \(0, 1\]"):
            load_recipe_config("tiny-cpu", [f"rl.prompt_filter.max_pass_rate={bad}"])


def test_a_refilter_samples_every_prompt_with_the_stage1_model(tmp_path: Path, tiny_policy: Path,
                                                               rl_rows: RowsFn) -> None:
    import shutil

    shutil.copytree(tiny_policy, tmp_path / "rl1" / "model")  # no SFT model: stage 2 must not sample from it
    rows = rl_rows(12)
    (tmp_path / "rl1" / "prompts.jsonl").write_text(json.dumps(rows[1]) + "\n")  # what stage 1 kept
    over = ("rl.prompt_filter.samples=4", "rl.prompt_filter.component=parity", "rl.prompt_filter.temperature=1.0",
            "rl.stage2.batch_size=4", "rl.stage2.num_generations=2")
    assert prompt_pool(_ctx(tmp_path, *over), rows, ParityOfLength(), "rl2") == [rows[1]]  # default: stage 1's
    ctx = _ctx(tmp_path, *over, "rl.prompt_filter.refilter=true")
    assert prompt_pool(ctx, rows, ParityOfLength(), "rl1") == [rows[1]]  # stage 1 is not refiltered
    kept = prompt_pool(ctx, rows, ParityOfLength(), "rl2")
    report = json.loads(ctx.path("rl2_prompt_filter").read_text())
    assert report["stage"] == "rl2" and report["sampled_by"] == "rl1" and report["prompts"] == 12
    assert len(kept) == report["kept"] >= 2 and all(int(r["id"]) % 2 == 1 for r in kept), report
    assert [json.loads(line) for line in ctx.path("rl2_prompts").read_text().splitlines()] == kept
    assert json.loads(ctx.path("rl1_prompts").read_text()) == rows[1]  # stage 1's file untouched


def test_a_filter_that_keeps_too_few_prompts_says_what_to_change(tmp_path: Path, tiny_policy: Path,
                                                                 rl_rows: RowsFn) -> None:
    import shutil

    shutil.copytree(tiny_policy, tmp_path / "sft" / "model")
    ctx = _ctx(tmp_path, "rl.prompt_filter.samples=2")
    # the untrained model writes no valid answer: every group is all wrong under the stage-1 task verdict
    from tagpr_trainers.recipe.stages.rl import build_reward

    with pytest.raises(ValueError, match=r"kept 0 of 3 RL prompts .*data/rl.jsonl.*rl.prompt_filter.samples=0") as e:
        prompt_pool(ctx, rl_rows(3), build_reward(ctx, "rl1"))
    assert "max_pass_rate" not in str(e.value)  # not a setting this run changed
    assert not ctx.path("rl1_prompts").exists()
    banded = _ctx(tmp_path, "rl.prompt_filter.samples=2", "rl.prompt_filter.max_pass_rate=0.5")
    with pytest.raises(ValueError, match=r"kept 0 of 3 .*or rl.prompt_filter.max_pass_rate, or set"):
        prompt_pool(banded, rl_rows(3), build_reward(banded, "rl1"))


def test_rl_seed_seeds_the_filter_sampling_and_not_the_data(tiny_policy: Path, rl_rows: RowsFn) -> None:
    """``rl.seed`` reruns RL's sampling alone: the filter samples with it (``run.seed`` when unset),
    and it is an input of the RL stages only, so a rerun with another ``rl.seed`` keeps the data,
    SFT and PRMU stages (and an unset one keeps every fingerprint from before it existed)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tagpr_trainers.recipe.stages.rl_filter import run_verdicts

    model, tok = AutoModelForCausalLM.from_pretrained(tiny_policy), AutoTokenizer.from_pretrained(tiny_policy)
    over = ["rl.prompt_filter.samples=6", "rl.prompt_filter.component=parity", "rl.prompt_filter.temperature=1.0"]
    verdicts = {name: run_verdicts(_ctx(Path("unused"), *over, *extra), model, tok, rl_rows(8), ParityOfLength())
                for name, extra in (("run", ["run.seed=3"]), ("rl", ["run.seed=0", "rl.seed=3"]),
                                    ("other", ["run.seed=3", "rl.seed=4"]))}
    assert verdicts["rl"] == verdicts["run"]  # rl.seed=3 samples as run.seed=3 does
    assert verdicts["other"] != verdicts["run"]

    plain, reseeded = load_recipe_config("tiny-cpu"), load_recipe_config("tiny-cpu", ["rl.seed=1001"])
    assert "rl.seed" not in stage_inputs(plain, "rl1")
    for stage in ("data", "sft", "prmu"):
        assert stage_inputs(reseeded, stage) == stage_inputs(plain, stage)
    for stage in ("rl1", "rl2", "eval"):
        assert stage_inputs(reseeded, stage)["rl.seed"] == 1001
    with pytest.raises(RecipeConfigError, match=r"rl.seed"):
        load_recipe_config("tiny-cpu", ["rl.seed=many"])


def test_the_filter_is_an_input_of_rl_only_when_on() -> None:
    off = stage_inputs(load_recipe_config("tiny-cpu"), "rl1")
    assert not any(k.startswith("rl.prompt_filter") for k in off)  # runs from before it keep their fingerprint
    on = stage_inputs(load_recipe_config("tiny-cpu", ["rl.prompt_filter.samples=8"]), "rl2")
    assert on["rl.prompt_filter.samples"] == 8 and on["rl.prompt_filter.component"] == "base/task"
    assert not any(k.startswith("rl.prompt_filter") for k in stage_inputs(
        load_recipe_config("tiny-cpu", ["rl.prompt_filter.samples=8"]), "sft"))
    # the refilter is stage 2's input alone, and only when on (runs from before it keep their fingerprint)
    re = load_recipe_config("tiny-cpu", ["rl.prompt_filter.samples=8", "rl.prompt_filter.refilter=true"])
    assert stage_inputs(re, "rl2")["rl.prompt_filter.refilter"] is True and stage_inputs(re, "eval")[
        "rl.prompt_filter.refilter"] is True
    assert stage_inputs(re, "rl1") == stage_inputs(load_recipe_config("tiny-cpu", ["rl.prompt_filter.samples=8"]), "rl1")
    assert "rl.prompt_filter.refilter" not in on
    for bad, msg in (("samples=1", "samples must be 0"), ("temperature=0", "temperature must be > 0"),
                     ("batch_size=0", "batch_size must be >= 1")):
        with pytest.raises(RecipeConfigError, match=f"rl.prompt_filter.{msg}"):
            load_recipe_config("tiny-cpu", [f"rl.prompt_filter.{bad}"])


def test_the_ablation_arm_without_tags_filters_on_its_task_reward(tiny_policy: Path, rl_rows: RowsFn) -> None:
    """The no-tags arm's stage-1 reward is ``lamp_task`` alone (no ``base/task`` component): the
    arm names the total score, so `ablate --set rl.prompt_filter.samples=N` runs every arm."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tagpr_trainers.recipe.ablate import ARMS
    from tagpr_trainers.recipe.stages.rl import build_reward

    over = [o.replace("{task}", "LaMP-2").replace("{schema}", "personalization-9") for o in ARMS["no-tags"]]
    ctx = _ctx(Path("unused"), *over, "rl.prompt_filter.samples=2")
    reward = build_reward(ctx, "rl1")
    assert "base/task" not in reward(["<answer>sci-fi</answer>"], references=["sci-fi"], task=["LaMP-2"]).components
    model, tok = AutoModelForCausalLM.from_pretrained(tiny_policy), AutoTokenizer.from_pretrained(tiny_policy)
    pf = ctx.cfg.rl.prompt_filter
    groups = sample_verdicts(model, tok, rl_rows(2), reward, pf.samples, 1.0, 6, pf.component)
    assert groups == [[0.0, 0.0], [0.0, 0.0]]  # the untrained model answers no valid tag: the task score, 0
    with pytest.raises(ValueError, match=r"or 'score' for the reward's total"):
        sample_verdicts(model, tok, rl_rows(1), reward, 2, 1.0, 6, "base/task")


def test_temperature_zero_scores_the_greedy_completion(tiny_policy: Path, rl_rows: RowsFn) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tok = AutoModelForCausalLM.from_pretrained(tiny_policy), AutoTokenizer.from_pretrained(tiny_policy)
    got = {seed: sample_verdicts(model, tok, rl_rows(6), ParityOfLength(), samples=1, temperature=0.0,
                                 max_new_tokens=6, component="parity", batch_size=4, seed=seed) for seed in (1, 2)}
    assert got[1] == got[2]  # no sampling: the seed does not matter
    # the greedy completion's own verdict, prompt by prompt
    tok.padding_side = "left"
    want = []
    for r in rl_rows(6):
        text = tok.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=False)
        enc = tok([text], return_tensors="pt", add_special_tokens=False)
        ids = model.generate(**enc, do_sample=False, max_new_tokens=6, pad_token_id=tok.pad_token_id)
        completion = tok.decode(ids[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        want.append([1.0 if int(r["user_id"][1:]) % 2 == 0 else float(len(completion) % 2 == 0)])
    assert got[1] == want
    with pytest.raises(ValueError, match=r"samples must be 1, not 4"):
        sample_verdicts(model, tok, rl_rows(1), ParityOfLength(), samples=4, temperature=0.0, max_new_tokens=4,
                        component="parity")
