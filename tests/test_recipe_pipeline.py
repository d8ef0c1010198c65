"""`tagpr-train all` end to end on the tiny offline model (shrunk tiny-cpu), and resume."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tagpr_trainers.recipe.cli import main
from tagpr_trainers.recipe.config import load_recipe_config
from tagpr_trainers.recipe.runner import run_recipe

# tiny-cpu shrunk to test size (same code path; fewer samples and steps; a learning rate at which
# ~120 steps learn the tag format, not the task: the learning floor is tests/test_recipe_learning.py).
# 8 epochs, not 6: at 6 (90 steps) an AVX-512 EPYC's SFT model wrote the format for only 10 of 16
# answers (1.0 at 8, 0.8 and up on AVX2), so the floor below rested on the CPU's kernels
SHRINK = [
    "data.synthetic.train_users=20", "data.synthetic.eval_users=6", "data.tagger.kind=teacher",
    "sft.epochs=8", "sft.learning_rate=1e-2", "sft.save_steps=1000", "prmu.train.epochs=1",
    "rl.stage1.max_steps=2", "rl.stage2.max_steps=2", "rl.stage1.batch_size=16", "rl.stage2.batch_size=16",
    "eval.limit=16",
]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    import contextlib
    import io

    run = tmp_path_factory.mktemp("tiny") / "run"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["all", "--config", "tiny-cpu", "--quiet", f"run.output_dir={run}", *SHRINK])
    assert rc == 0
    return run, buf.getvalue()


def _copy_upstream_of_rl(src: Path, run: Path) -> Path:
    """A new run directory holding ``src``'s finished data, SFT and PRMU stages (RL not run)."""
    (run / "stages").mkdir(parents=True)
    for d in ("data", "base", "sft", "prmu"):
        shutil.copytree(src / d, run / d)
    for m in ("data", "sft", "prmu"):
        shutil.copy(src / "stages" / f"{m}.json", run / "stages" / f"{m}.json")
    return run


def _rows(run: Path) -> dict[str, dict]:  # type: ignore[type-arg]
    rows = json.loads((run / "eval" / "comparison.json").read_text())["rows"]
    return {r["model"]: r for r in rows}


@pytest.mark.integration
def test_all_stages_run_and_print_the_comparison(pipeline: tuple[Path, str]) -> None:
    run, printed = pipeline
    for stage in ("data", "sft", "prmu", "rl1", "rl2", "rl", "eval"):
        assert (run / "stages" / f"{stage}.json").is_file(), stage
    for model in ("direct", "sft", "rl1", "rl2"):
        assert (run / model / "model" / "model.safetensors").is_file()
    # the table goes base (direct answer) -> SFT -> RL stage 1 -> RL stage 2, with format validity and rewards
    assert "| model | accuracy | f1 | format valid |" in printed
    order = [printed.index(f"| {m} |") for m in ("base (direct answer)", "SFT", "RL stage 1", "RL stage 2")]
    assert order == sorted(order)
    for png in ("reward_curves.png", "sft_loss.png"):
        assert (run / "plots" / png).stat().st_size > 1000
    # the RL stages logged every reward component through the TRL adapter
    rl2 = json.loads((run / "rl2" / "log_history.json").read_text())
    keys = {k for h in rl2 for k in h}
    assert {"rewards/base/mean", "rewards/tag/mean", "rewards/prmu/mean"} <= keys
    prmu = json.loads((run / "stages" / "prmu.json").read_text())["outputs"]
    assert 0.0 <= prmu["accuracy"] <= 1.0 and prmu["pairs"] > 0
    # synthetic LaMP-2 with the listing chain: the step audit of every tagged model, on the same
    # questions as the table (the direct-answer base writes no chain and is not audited)
    audit = json.loads((run / "eval" / "chain_audit.json").read_text())
    assert list(audit) == ["SFT", "RL stage 1", "RL stage 2"]
    rows = _rows(run)
    for label, key in (("SFT", "sft"), ("RL stage 1", "rl1"), ("RL stage 2", "rl2")):
        assert audit[label]["n"] == 16 and audit[label]["accuracy"] == pytest.approx(rows[key]["accuracy"])
    assert "| tags copied in order |" in (run / "eval" / "chain_audit.md").read_text()


@pytest.mark.integration
def test_sft_learns_the_tag_format(pipeline: tuple[Path, str]) -> None:
    rows = _rows(pipeline[0])
    assert rows["sft"]["format_valid"] >= 0.8, rows["sft"]
    # the direct-answer base writes only the answer tag: it answers, without the reasoning tags
    # (format validity does not require them; the tag reward, which scores coverage, does)
    assert rows["direct"]["answer_tag"] >= 0.8, rows["direct"]
    assert rows["direct"]["reward_tag"] < rows["sft"]["reward_tag"], (rows["direct"], rows["sft"])
    # "vs base" is the relative improvement over the direct-answer model (0 accuracy: undefined)
    if rows["direct"]["accuracy"] > 0:
        assert rows["sft"]["vs_base"] == pytest.approx(rows["sft"]["accuracy"] / rows["direct"]["accuracy"] - 1)


@pytest.mark.integration
def test_finished_stages_are_skipped(pipeline: tuple[Path, str]) -> None:
    run = pipeline[0]
    before = (run / "sft" / "model" / "model.safetensors").stat().st_mtime_ns
    cfg = load_recipe_config("tiny-cpu", [f"run.output_dir={run}", *SHRINK])
    out = run_recipe(cfg, "sft", progress=False)
    assert out["_timings"] == {} and out["sft"]["steps"] > 0  # read back from the marker
    assert (run / "sft" / "model" / "model.safetensors").stat().st_mtime_ns == before


@pytest.mark.integration
def test_interrupted_sft_resumes_from_its_checkpoint(pipeline: tuple[Path, str], tmp_path: Path) -> None:
    src = pipeline[0]
    run = tmp_path / "run"
    (run / "stages").mkdir(parents=True)
    shutil.copytree(src / "data", run / "data")
    shutil.copytree(src / "base", run / "base")
    shutil.copy(src / "stages" / "data.json", run / "stages" / "data.json")
    cfg = load_recipe_config("tiny-cpu", [f"run.output_dir={run}", *SHRINK, "sft.max_steps=6", "sft.save_steps=3",
                                          "sft.logging_steps=1"])
    first = run_recipe(cfg, "sft", progress=False)["sft"]
    assert first["steps"] == 6 and first["resumed_from"] is None
    first_losses = {h["step"]: h["loss"] for h in json.loads((run / "sft" / "log_history.json").read_text())
                    if "loss" in h}
    # what a kill between step 3 and step 6 leaves behind: checkpoint-3, no marker, no final model
    (run / "stages" / "sft.json").unlink()
    shutil.rmtree(run / "sft" / "model")
    shutil.rmtree(run / "sft" / "trainer" / "checkpoint-6")
    second = run_recipe(cfg, "sft", progress=False)["sft"]
    assert second["resumed_from"].endswith("checkpoint-3")
    assert second["steps"] == 6
    losses = {h["step"]: h["loss"] for h in json.loads((run / "sft" / "log_history.json").read_text())
              if "loss" in h}
    assert sorted(losses) == [1, 2, 3, 4, 5, 6]  # steps 1-3 restored from the checkpoint, 4-6 trained
    for step in (4, 5, 6):  # same data order and state as the uninterrupted run
        assert losses[step] == pytest.approx(first_losses[step], rel=1e-3)
    assert (run / "sft" / "model" / "model.safetensors").is_file()


@pytest.mark.integration
def test_eval_run_before_a_model_existed_runs_again_once_it_does(pipeline: tuple[Path, str], tmp_path: Path) -> None:
    """`tagpr-train eval` while SFT or RL was still training skips the missing model; once it
    exists the next `eval` evaluates it instead of reporting the old, shorter table as done."""
    src = pipeline[0]
    run = tmp_path / "run"
    (run / "stages").mkdir(parents=True)
    for d in ("data", "base", "sft"):
        shutil.copytree(src / d, run / d)
    for m in ("data", "sft"):
        shutil.copy(src / "stages" / f"{m}.json", run / "stages" / f"{m}.json")
    cfg = load_recipe_config("tiny-cpu", [f"run.output_dir={run}", *SHRINK, "eval.models=[sft, rl1]",
                                          "eval.baseline=false"])
    first = run_recipe(cfg, "eval", progress=False)["eval"]
    assert [r["model"] for r in first["rows"]] == ["sft"] and first["skipped"] == ["rl1"]
    shutil.copytree(src / "rl1", run / "rl1")  # RL stage 1 finished meanwhile
    second = run_recipe(cfg, "eval", progress=False)
    assert "eval" in second["_timings"]  # ran again
    assert [r["model"] for r in second["eval"]["rows"]] == ["sft", "rl1"] and second["eval"]["skipped"] == []
    assert run_recipe(cfg, "eval", progress=False)["_timings"] == {}  # complete now: skipped


@pytest.mark.integration
def test_forced_rl_starts_over_and_a_changed_config_does_not_resume_an_interrupted_one(
        pipeline: tuple[Path, str], tmp_path: Path) -> None:
    """`--force` redoes a stage from its start (it used to resume the earlier run's last GRPO
    checkpoint), and checkpoints an interrupted run left are not resumed under another config."""
    from tagpr_trainers.recipe.context import StageInputsChanged

    run = _copy_upstream_of_rl(pipeline[0], tmp_path / "run")
    over = [f"run.output_dir={run}", *SHRINK, "rl.stage1.save_steps=1", "rl.stage2.save_steps=1"]
    cfg = load_recipe_config("tiny-cpu", over)
    first = run_recipe(cfg, "rl", progress=False)["rl"]
    assert first["rl1"]["steps"] == 2 and first["rl1"]["resumed_from"] is None
    forced = run_recipe(cfg, "rl", force=True, progress=False)["rl"]
    for which in ("rl1", "rl2"):
        assert forced[which]["resumed_from"] is None and forced[which]["steps"] == 2, forced[which]
    # what a kill of stage 1 after its first step leaves: checkpoint-1, no markers
    for m in ("rl", "rl1", "rl2"):
        (run / "stages" / f"{m}.json").unlink()
    shutil.rmtree(run / "rl1" / "trainer" / "checkpoint-2")
    changed = load_recipe_config("tiny-cpu", [*over, "rl.stage1.learning_rate=5e-4"])
    with pytest.raises(StageInputsChanged, match=r"interrupted run of stage rl1 .*rl\.stage1\.learning_rate.*--force"):
        run_recipe(changed, "rl", progress=False)
    assert (run / "rl1" / "trainer" / "checkpoint-1").is_dir()  # refused before anything was removed
    resumed = run_recipe(cfg, "rl", progress=False)["rl"]["rl1"]
    assert resumed["resumed_from"].endswith("checkpoint-1") and resumed["steps"] == 2


@pytest.mark.integration
def test_rl_on_the_filtered_prompts(pipeline: tuple[Path, str], tmp_path: Path) -> None:
    """`rl.prompt_filter` end to end: stage 1 samples the SFT model on every RL prompt, keeps those
    whose task verdicts differ, and both stages train on them (stage 2 reads stage 1's file)."""
    run = _copy_upstream_of_rl(pipeline[0], tmp_path / "run")
    cfg = load_recipe_config("tiny-cpu", [f"run.output_dir={run}", *SHRINK, "rl.prompt_filter.samples=4",
                                          "rl.prompt_filter.temperature=1.0"])
    out = run_recipe(cfg, "rl", progress=False)["rl"]
    report = json.loads((run / "rl1" / "prompt_filter.json").read_text())
    rows = [json.loads(line) for line in (run / "data" / "rl.jsonl").read_text().splitlines()]
    kept = [json.loads(line) for line in (run / "rl1" / "prompts.jsonl").read_text().splitlines()]
    assert report["prompts"] == len(rows) and report["kept"] == len(kept) == out["rl1"]["prompts"] == out["rl2"]["prompts"]
    assert 2 <= len(kept) < len(rows) and all(r in rows for r in kept), report
    assert out["rl1"]["steps"] == 2 and out["rl2"]["steps"] == 2
    # refilter (stage 1 does not depend on it): a stage 2 run anew from the finished stage 1, whose
    # model samples every prompt
    import shutil

    shutil.rmtree(run / "rl2")
    for marker in ("rl2.json", "rl2.started.json", "rl.json", "rl.started.json"):
        (run / "stages" / marker).unlink(missing_ok=True)
    again = run_recipe(load_recipe_config("tiny-cpu", [f"run.output_dir={run}", *SHRINK, "rl.prompt_filter.samples=4",
                                                       "rl.prompt_filter.temperature=1.0",
                                                       "rl.prompt_filter.refilter=true"]), "rl", progress=False)["rl"]
    assert "rl1" not in again and again["rl2"]["steps"] == 2
    report2 = json.loads((run / "rl2" / "prompt_filter.json").read_text())
    kept2 = [json.loads(line) for line in (run / "rl2" / "prompts.jsonl").read_text().splitlines()]
    assert report2["sampled_by"] == "rl1" and report2["prompts"] == len(rows), report2
    assert again["rl2"]["prompts"] == report2["kept"] == len(kept2) and all(r in rows for r in kept2)
