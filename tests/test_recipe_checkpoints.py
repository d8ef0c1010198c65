"""Atomic writes, stage markers, directory publishing and checkpoint discovery."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tagpr_trainers.recipe.checkpoints import (
    atomic_write_json,
    checkpoint_problem,
    is_done,
    latest_checkpoint,
    mark_done,
    publish_dir,
    read_marker,
    staging_dir,
)


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    p = atomic_write_json(tmp_path / "d" / "x.json", {"a": 1})
    atomic_write_json(p, {"a": 2})
    assert json.loads(p.read_text()) == {"a": 2}
    assert [f.name for f in p.parent.iterdir()] == ["x.json"]


def test_markers_roundtrip(tmp_path: Path) -> None:
    assert not is_done(tmp_path, "data") and read_marker(tmp_path, "data") == {}
    mark_done(tmp_path, "data", {"kept": 3})
    assert is_done(tmp_path, "data") and read_marker(tmp_path, "data")["outputs"] == {"kept": 3}


def test_publish_replaces_old_directory(tmp_path: Path) -> None:
    final = tmp_path / "model"
    for version in ("1", "2"):
        tmp = staging_dir(final)
        (tmp / "w").write_text(version)
        publish_dir(tmp, final)
    assert (final / "w").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def write_checkpoint(d: Path, step: int) -> Path:
    """A checkpoint as transformers writes it: trainer state, safetensors weights, torch optimizer."""
    import torch
    from safetensors.torch import save_file

    d.mkdir(parents=True)
    (d / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": []}))
    save_file({"w": torch.arange(64, dtype=torch.float32)}, str(d / "model.safetensors"))
    torch.save({"state": {}}, d / "optimizer.pt")
    return d


def test_latest_checkpoint_needs_a_complete_checkpoint(tmp_path: Path) -> None:
    for n in (5, 10):
        write_checkpoint(tmp_path / f"checkpoint-{n}", n)
    (tmp_path / "checkpoint-x").mkdir()
    (tmp_path / "checkpoint-20").mkdir()  # interrupted while being written: no trainer_state.json
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-10"


def test_torn_checkpoints_fall_back_to_the_previous_one_with_a_warning(tmp_path: Path, caplog: Any) -> None:
    import logging

    write_checkpoint(tmp_path / "checkpoint-4", 4)
    torn_state = write_checkpoint(tmp_path / "checkpoint-8", 8)
    text = (torn_state / "trainer_state.json").read_text()
    (torn_state / "trainer_state.json").write_text(text[: len(text) // 2])  # TRL writes it non-atomically
    with caplog.at_level(logging.WARNING, logger="tagpr_trainers.recipe"):
        assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-4"
    assert "checkpoint-8 is incomplete (trainer_state.json is not valid JSON" in caplog.text
    torn_weights = write_checkpoint(tmp_path / "checkpoint-12", 12)
    data = (torn_weights / "model.safetensors").read_bytes()
    (torn_weights / "model.safetensors").write_bytes(data[:-16])
    no_weights = write_checkpoint(tmp_path / "checkpoint-16", 16)
    (no_weights / "model.safetensors").unlink()
    torn_optim = write_checkpoint(tmp_path / "checkpoint-20", 20)
    data = (torn_optim / "optimizer.pt").read_bytes()
    (torn_optim / "optimizer.pt").write_bytes(data[: len(data) // 2])
    assert (checkpoint_problem(torn_weights) or "").startswith("model.safetensors is truncated")
    assert checkpoint_problem(no_weights) == "no model weights (model.safetensors)"
    assert checkpoint_problem(torn_optim) == "optimizer.pt is not a whole torch archive"
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-4"
    assert checkpoint_problem(tmp_path / "checkpoint-4") is None


def test_a_changed_config_on_a_finished_stage_is_refused_and_config_yaml_kept(tmp_path: Path) -> None:
    import pytest

    from tagpr_trainers.recipe.config import load_recipe_config
    from tagpr_trainers.recipe.context import RunContext, StageInputsChanged
    from tagpr_trainers.recipe.runner import run_recipe

    base = [f"run.output_dir={tmp_path}", "run.device=cpu"]
    ctx = RunContext(load_recipe_config("tiny-cpu", base))
    ctx.mark_done("data", {"kept": 1})
    ctx.mark_done("sft", {"model": "sft/model"})
    (tmp_path / "config.yaml").write_text("the config the artifacts were built with\n")
    assert read_marker(tmp_path, "sft")["inputs"]["sft.learning_rate"] == 5e-3  # tiny-cpu's value
    # same config: a finished stage is skipped
    assert ctx.check_inputs("sft") is True
    # a changed SFT hyperparameter: refused before anything runs, config.yaml untouched
    changed = load_recipe_config("tiny-cpu", [*base, "sft.learning_rate=0.02"])
    with pytest.raises(StageInputsChanged, match=r"stage sft was built with another config "
                                                 r"\(sft.learning_rate: 0.005 -> 0.02\).*--force"):
        run_recipe(changed, "sft")
    assert (tmp_path / "config.yaml").read_text() == "the config the artifacts were built with\n"
    # a stage that reads sft's outputs is refused too, even with --force (it does not redo sft)
    with pytest.raises(StageInputsChanged, match="stage sft"):
        run_recipe(changed, "eval", force=True)
    # --force redoes the changed stage itself
    assert RunContext(changed, force=True).check_inputs("sft", redo=True) is False
    # a change outside a stage's inputs does not touch it
    other = RunContext(load_recipe_config("tiny-cpu", [*base, "rl.stage2.max_steps=3", "run.threads=1"]))
    assert other.check_inputs("sft") is True and other.check_inputs("data") is True
    # an older marker without inputs is trusted (with a warning)
    mark_done(tmp_path, "prmu", {})
    assert other.changed_inputs("prmu") is None and other.check_inputs("prmu") is True


def test_an_option_newer_than_the_run_is_not_a_change_at_its_default(tmp_path: Path) -> None:
    import pytest

    from tagpr_trainers.recipe.config import load_recipe_config
    from tagpr_trainers.recipe.context import RunContext, StageInputsChanged

    base = [f"run.output_dir={tmp_path}", "run.device=cpu"]
    ctx = RunContext(load_recipe_config("tiny-cpu", base))
    ctx.mark_done("sft", {"model": "sft/model"})
    marker = tmp_path / "stages" / "sft.json"
    record = json.loads(marker.read_text())
    del record["inputs"]["sft.parallel_arms"]  # a run directory from before the option existed
    marker.write_text(json.dumps(record))
    assert ctx.changed_inputs("sft") == {} and ctx.check_inputs("sft") is True
    # set away from its default, the new option is a change, said as such
    forced = RunContext(load_recipe_config("tiny-cpu", [*base, "sft.parallel_arms=false"]))
    with pytest.raises(StageInputsChanged, match=r"sft.parallel_arms: <not recorded> -> False"):
        forced.check_inputs("sft")


@pytest.mark.integration
@pytest.mark.parametrize("kill_at, steps", [(2, 4), (3, 5)])
def test_rl_resume_equals_an_uninterrupted_run(tmp_path: Path, kill_at: int, steps: int) -> None:
    """RL stage 1 killed after checkpoint ``kill_at`` and resumed (a new trainer, as a new process
    builds it) gives the same per-step rewards and the same final weights as ``steps``
    uninterrupted steps: transformers restores the optimizer, scheduler and RNG states and skips
    the current epoch's batches; ``restore_sampler`` replays the sampler's finished epochs (3
    steps per epoch here: kill_at=3 resumes in epoch 1, where TRL alone would replay epoch 0's
    prompt order). The bound is 0 (bit-identical) on CPU in float32."""
    import json as _json

    import torch
    from transformers import TrainerCallback, set_seed

    from tagpr_eval.tiny_model import build_tiny_model
    from tagpr_trainers.recipe.config import load_recipe_config
    from tagpr_trainers.recipe.context import RunContext
    from tagpr_trainers.recipe.stages.rl import build_reward, build_trainer, restore_sampler

    model_dir = str(build_tiny_model(tmp_path / "model", vocab_size=400, hidden_size=32, num_layers=2))
    profile = _json.dumps([{"id": "1", "tag": "sci-fi", "description": "a space film"}])
    rows = [{"prompt": [{"role": "user", "content": f"Tag movie {i}: a crew lost in space"}], "reference": "sci-fi",
             "user_id": f"u{i}", "profile": profile, "task": "LaMP-2", "query": "a crew lost in space", "id": str(i)}
            for i in range(6)]

    def trainer(out: str) -> Any:
        ctx = RunContext(load_recipe_config("tiny-cpu", [
            f"run.output_dir={out}", "run.device=cpu", f"rl.stage1.max_steps={steps}",
            f"rl.stage1.save_steps={kill_at}",
            "rl.stage1.batch_size=4", "rl.stage1.num_generations=2", "rl.stage1.max_completion_length=8",
            "rl.stage1.reward.format_credit=0.5"]), progress=False)
        set_seed(0)  # what tagpr-train does when it starts
        return build_trainer(ctx, "rl1", model_dir, build_reward(ctx, "rl1"), rows), ctx

    class KillAfterCheckpoint(TrainerCallback):
        def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            control.should_training_stop = state.global_step == kill_at

    full, _ = trainer(str(tmp_path / "a"))
    full.train()
    part, ctx = trainer(str(tmp_path / "b"))
    part.add_callback(KillAfterCheckpoint())
    part.train()
    resumed, _ = trainer(str(tmp_path / "b"))
    checkpoint = latest_checkpoint(ctx.path("rl1_trainer"))
    assert checkpoint is not None and checkpoint.name == f"checkpoint-{kill_at}"
    assert restore_sampler(resumed, checkpoint) == kill_at // 3  # what the recipe's run_stage does
    resumed.train(resume_from_checkpoint=str(checkpoint))

    def rewards(t: Any) -> list[float]:
        return [h["reward"] for h in t.state.log_history if "reward" in h]

    assert len(rewards(full)) == steps and rewards(resumed) == rewards(full)
    assert any(h["reward_std"] > 0 for h in full.state.log_history if "reward_std" in h)  # the policy moves
    a, b = dict(full.model.named_parameters()), dict(resumed.model.named_parameters())
    assert max(float((a[k] - b[k]).detach().abs().max()) for k in a) == 0.0
    assert not all(torch.equal(a[k], v) for k, v in part.model.named_parameters())  # steps 3-4 did change it


def test_the_cli_names_a_changed_stage_without_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tagpr_trainers.recipe.cli import main
    from tagpr_trainers.recipe.config import load_recipe_config
    from tagpr_trainers.recipe.context import RunContext

    ctx = RunContext(load_recipe_config("tiny-cpu", [f"run.output_dir={tmp_path}", "run.device=cpu"]))
    ctx.mark_done("data", {"kept": 1})
    rc = main(["data", "--config", "tiny-cpu", "--output", str(tmp_path), "--set", "data.k=2"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("tagpr-train: error: ") and "data.k: 4 -> 2" in err and "--force" in err
    assert "Traceback" not in err


def test_force_removes_what_a_stage_would_resume_from_and_its_marker(tmp_path: Path) -> None:
    from tagpr_trainers.recipe.config import load_recipe_config
    from tagpr_trainers.recipe.context import RESUME_STATE, RunContext

    base = [f"run.output_dir={tmp_path}", "run.device=cpu"]
    ctx = RunContext(load_recipe_config("tiny-cpu", base))
    ctx.start_stage("sft")
    ctx.mark_done("sft", {})
    ckpt = write_checkpoint(tmp_path / "sft" / "trainer" / "checkpoint-4", 4)
    direct = write_checkpoint(tmp_path / "direct" / "trainer" / "checkpoint-4", 4)  # the other SFT arm
    keep = write_checkpoint(tmp_path / "rl1" / "trainer" / "checkpoint-2", 2)  # another stage's
    tiny_base = tmp_path / "base"  # built (and pretrained) from sft's inputs: rebuilt, not reused
    tiny_base.mkdir()
    (tiny_base / "config.json").write_text("{}")
    RunContext(load_recipe_config("tiny-cpu", base), force=True).start_stage("sft")
    assert not ckpt.exists() and not direct.exists() and not is_done(tmp_path, "sft") and keep.is_dir()
    assert not tiny_base.exists()
    assert "rl1_trainer" in RESUME_STATE["rl1"]
    started = json.loads((tmp_path / "stages" / "sft.started.json").read_text())
    assert started["inputs"]["sft.epochs"] == 6.0 and len(started["fingerprint"]) == 16
