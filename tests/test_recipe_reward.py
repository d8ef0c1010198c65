"""The reward node is the one currency: rl.stageN.reward is what TRL optimises and what the eval reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tagpr_trainers.recipe.config import RecipeConfigError, load_recipe_config
from tagpr_trainers.recipe.context import RunContext

CHAIN = ("<understand-task>Pick one tag.</understand-task><recall-history>The user tagged space films "
         "sci-fi.</recall-history><answer>{}</answer>")


def ctx_for(tmp_path: Path, *overrides: str) -> RunContext:
    return RunContext(load_recipe_config("tiny-cpu", [f"run.output_dir={tmp_path}", "run.device=cpu", *overrides]))


def test_a_key_a_stage_does_not_use_is_an_error() -> None:
    with pytest.raises(RecipeConfigError, match=r"rl.stage1.reward: unknown key for preset 'stage1' 'gamma'"):
        load_recipe_config("tiny-cpu", ["rl.stage1.reward.gamma=9"])
    with pytest.raises(RecipeConfigError, match=r"rl.stage2.reward: unknown key .*'normalise'; did you mean 'normalize'"):
        load_recipe_config("tiny-cpu", ["rl.stage2.reward.prmu.normalise=group"])
    with pytest.raises(RecipeConfigError, match=r"rl.stage2.reward: unknown tag reward term 'tag_ordr'"):
        load_recipe_config("tiny-cpu", ["rl.stage2.reward.tag_weights={tag_ordr: 1}"])
    with pytest.raises(RecipeConfigError, match=r"unknown key 'rl.stage2.alpha'"):  # the old loose scalars
        load_recipe_config("tiny-cpu", ["rl.stage2.alpha=2"])


def test_ablation_overrides_resolve_to_the_node(tmp_path: Path) -> None:
    from tagpr_trainers.recipe.stages.rl import reward_node

    ctx = ctx_for(tmp_path, "rl.stage2.reward.gamma=0", "rl.stage2.reward.beta=0")
    node = reward_node(ctx, "rl2")
    assert (node["preset"], node["alpha"], node["beta"], node["gamma"]) == ("stage2", 1.0, 0, 0)
    assert node["prmu"]["checkpoint"] == str(tmp_path / "prmu" / "model")  # still scored and logged, weight 0
    ctx = ctx_for(tmp_path, "rl.stage2.reward.prmu=null")
    assert reward_node(ctx, "rl2")["prmu"] is None
    ctx = ctx_for(tmp_path, "prmu.enabled=false")
    assert reward_node(ctx, "rl2")["prmu"] is None
    ctx = ctx_for(tmp_path, "rl.stage1.reward.format_credit=0.5")
    assert reward_node(ctx, "rl1") == {"preset": "stage1", "recall": 0.5, "format_credit": 0.5, "task": "LaMP-2",
                                       "schema": "personalization-9"}
    ctx = ctx_for(tmp_path, "rl.stage2.reward.recall=0")  # the no-recall arm
    assert reward_node(ctx, "rl2")["recall"] == 0 and reward_node(ctx, "rl1")["recall"] == 0.5


def test_stage2_without_a_trained_prmu_is_an_error_naming_the_fix(tmp_path: Path) -> None:
    from tagpr_trainers.recipe.stages.rl import build_reward

    with pytest.raises(FileNotFoundError, match=r"rl.stage2.reward.prmu=null"):
        build_reward(ctx_for(tmp_path), "rl2")


def tiny_rows(n: int = 4) -> list[dict[str, Any]]:
    profile = json.dumps([{"id": "1", "tag": "sci-fi", "description": "a space film"}])
    return [{"prompt": [{"role": "user", "content": f"Tag movie {i}: a crew lost in space"}], "reference": "sci-fi",
             "user_id": f"u{i}", "profile": profile, "task": "LaMP-2", "query": "a crew lost in space",
             "id": str(i)} for i in range(n)]


@pytest.mark.integration
def test_a_stage2_weight_in_the_config_is_what_trl_optimises_and_what_the_eval_reports(tmp_path: Path) -> None:
    import torch

    from tagpr_eval.config import EvalConfig
    from tagpr_eval.runner import evaluate_run
    from tagpr_eval.tiny_model import build_tiny_model
    from tagpr_trainers.recipe.stages.eval import eval_config
    from tagpr_trainers.recipe.stages.rl import build_reward, build_trainer

    beta = 0.25
    ctx = ctx_for(tmp_path, f"rl.stage2.reward.beta={beta}", "rl.stage2.reward.prmu=null",
                  "rl.stage2.batch_size=4", "rl.stage2.num_generations=2")
    reward = build_reward(ctx, "rl2")
    model_dir = build_tiny_model(tmp_path / "model", vocab_size=400, hidden_size=32, num_layers=2)
    trainer = build_trainer(ctx, "rl2", str(model_dir), reward, tiny_rows())
    # TRL's own formula: nansum(reward_weights * rewards_per_func)
    completions = [CHAIN.format("sci-fi"), CHAIN.format("comedy"), "sci-fi", CHAIN.format("sci-fi") + "<answer>"]
    inputs = [dict(r, prompt=r["prompt"]) for r in tiny_rows()]
    per_func = trainer._calculate_rewards(inputs, [r["prompt"] for r in inputs], completions, [[1]] * 4)
    trl_total = (per_func * trainer.reward_weights.unsqueeze(0)).nansum(dim=1)
    assert trainer.reward_weights.tolist() == [1.0]  # no weights to copy: the node's weights are in the reward
    comps = reward(completions, references=["sci-fi"] * 4, task=["LaMP-2"] * 4).components
    expected = torch.tensor([comps["base"][i] + beta * comps["tag"][i] for i in range(4)])
    assert torch.allclose(trl_total, expected, atol=1e-6)
    assert not torch.allclose(trl_total, torch.tensor([comps["base"][i] + 0.5 * comps["tag"][i] for i in range(4)]))

    # the eval stage passes the same node: its reward column is alpha*R_base + beta*R_tag with this beta
    node = eval_config(ctx, "baseline").reward
    assert node["beta"] == beta and node["prmu"] is None
    res = evaluate_run(EvalConfig(model="dummy", model_args={"text": CHAIN.format("comedy")}, tasks=["LaMP-2"],
                                  data="synthetic", prompt="tagged", limit=3, output=str(tmp_path / "eval"),
                                  progress=False, plots=False, reward=node))
    means = res["tasks"]["LaMP-2"]["tag_stats"]["mean_reward_components"]
    assert means["tag"] != 0
    assert means["total"] == pytest.approx(means["base"] + beta * means["tag"])


@pytest.mark.integration
def test_trl_args_reach_grpo_config(tmp_path: Path) -> None:
    from tagpr_eval.tiny_model import build_tiny_model
    from tagpr_trainers.recipe.stages.rl import build_reward, build_trainer

    ctx = ctx_for(tmp_path, "rl.stage1.batch_size=4", "rl.stage1.num_generations=2",
                  "rl.stage1.trl_args={num_iterations: 2, scale_rewards: batch}")
    model_dir = build_tiny_model(tmp_path / "model", vocab_size=400, hidden_size=32, num_layers=2)
    trainer = build_trainer(ctx, "rl1", str(model_dir), build_reward(ctx, "rl1"), tiny_rows())
    assert (trainer.args.num_iterations, trainer.args.scale_rewards) == (2, "batch")
    assert trainer.num_iterations == 2  # TRL reuses each generation batch for two optimizer steps
    assert trainer.args.learning_rate == ctx.cfg.rl.stage1.learning_rate  # the stage's own keys still apply


@pytest.mark.integration
def test_rl_seed_reaches_grpo_config(tmp_path: Path) -> None:
    from tagpr_eval.tiny_model import build_tiny_model
    from tagpr_trainers.recipe.stages.rl import build_reward, build_trainer

    model_dir = build_tiny_model(tmp_path / "model", vocab_size=400, hidden_size=32, num_layers=2)
    for over, seed in ((["run.seed=5"], 5), (["run.seed=5", "rl.seed=11"], 11)):
        ctx = ctx_for(tmp_path / str(seed), "rl.stage1.batch_size=4", "rl.stage1.num_generations=2", *over)
        trainer = build_trainer(ctx, "rl1", str(model_dir), build_reward(ctx, "rl1"), tiny_rows())
        assert trainer.args.seed == seed  # GRPO's prompt order and sampling


@pytest.mark.integration
@pytest.mark.parametrize("flag", [False, True])
def test_stages_set_checkpointing_without_the_deprecated_name(tmp_path: Path, flag: bool) -> None:
    """``gradient_checkpointing`` in our config reaches both TRL configs under the name the installed
    transformers takes, so a run is not told (FutureWarning) to rename a key it cannot see."""
    import warnings

    from tagpr_eval.tiny_model import build_tiny_model
    from tagpr_trainers.recipe.stages import sft
    from tagpr_trainers.recipe.stages.rl import build_reward, build_trainer

    value = str(flag).lower()
    ctx = ctx_for(tmp_path, "rl.stage1.batch_size=4", "rl.stage1.num_generations=2",
                  f"rl.stage1.gradient_checkpointing={value}", f"sft.gradient_checkpointing={value}")
    model_dir = build_tiny_model(tmp_path / "model", vocab_size=400, hidden_size=32, num_layers=2)
    rows = [{"prompt": r["prompt"], "completion": [{"role": "assistant", "content": "<answer>comedy</answer>"}]}
            for r in tiny_rows()]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        grpo = build_trainer(ctx, "rl1", str(model_dir), build_reward(ctx, "rl1"), tiny_rows())
        sft_trainer = sft.build_trainer(ctx, rows, str(model_dir))
    assert grpo.args.gradient_checkpointing is flag and sft_trainer.args.gradient_checkpointing is flag
    renames = [str(w.message) for w in seen if "`gradient_checkpointing` is deprecated" in str(w.message)]
    assert renames == []


def test_the_shipped_stages_score_the_recall_against_the_prompt(tmp_path: Path) -> None:
    from tagpr_trainers.recipe.stages.rl import build_reward

    ctx = ctx_for(tmp_path, "rl.stage2.reward.prmu=null")
    row = tiny_rows(1)[0]
    prompt = 'the tag for the movie: "a space film" is "sci-fi" . ' + row["prompt"][0]["content"]
    chain = '<recall-history>space -> "{}"</recall-history><answer>sci-fi</answer>'
    for which in ("rl1", "rl2"):
        out = build_reward(ctx, which)([chain.format("sci-fi"), chain.format("comedy")], prompts=[prompt] * 2,
                                       profile=[row["profile"]] * 2, references=["sci-fi"] * 2)
        assert out.components["recall"] == [1.0, 0.0], which
