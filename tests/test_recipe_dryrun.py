"""`tagpr-train all --dry-run` builds every component of EVERY shipped config and runs one batch."""

from __future__ import annotations

from pathlib import Path

import pytest

from tagpr_trainers.recipe.config import list_configs, load_recipe_config
from tagpr_trainers.recipe.runner import run_recipe


@pytest.fixture(scope="module")
def lamp_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic data in the official LaMP layout, standing in for data/lamp of the GPU configs."""
    from tagpr_eval.data.synthetic import write_synthetic

    d = tmp_path_factory.mktemp("lamp")
    write_synthetic(d, ["LaMP-2"], splits=["train", "dev"], n_users=4, questions_per_user=2, profile_size=6)
    return d


@pytest.mark.integration
@pytest.mark.parametrize("name", list_configs())
def test_dry_run_every_shipped_config(name: str, tmp_path: Path, lamp_dir: Path) -> None:
    overrides = [f"run.output_dir={tmp_path / 'run'}"]
    cfg0 = load_recipe_config(name)
    if cfg0.run.device == "cuda":
        overrides.append("run.device=auto")  # the CUDA smoke config dry-runs here on whatever there is
    if cfg0.data.source != "synthetic":
        overrides.append(f"data.source={lamp_dir}")
    cfg = load_recipe_config(name, overrides)
    out = run_recipe(cfg, "all", dry_run=True, progress=False)
    assert [k for k in out if not k.startswith("_")] == ["data", "sft", "prmu", "rl", "eval"]
    assert out["data"]["kept"] + out["data"]["dropped"] > 0
    assert out["prmu"].get("pairs", 0) > 0 or "skipped" in out["prmu"]
    for which in ("rl1", "rl2"):
        assert len(out["rl"][which]["one_batch_scores"]) == 2
    if cfg.model.base == "tiny":  # models that exist here run one real batch
        assert out["sft"]["one_batch_loss"] > 0
        assert out["rl"]["rl1"]["one_batch_completions"] == cfg.rl.stage1.batch_size
        assert "baseline" in out["eval"]["table"] or out["eval"]["rows"]
    else:  # hub models are not available offline: said so, not silently skipped
        assert "not available offline" in out["sft"]["skipped"]
    # a dry run trains nothing and leaves no stage markers
    assert not (tmp_path / "run" / "stages").exists()


@pytest.mark.integration
def test_cli_output_flag_sets_the_run_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tagpr_trainers.recipe.cli import main

    out_dir = tmp_path / "my-run"
    assert main(["data", "--config", "tiny-cpu", "--dry-run", "--quiet", "--output", str(out_dir)]) == 0
    assert out_dir.is_dir() and any(out_dir.iterdir())
    assert main(["data", "--config", "tiny-cpu", "--dry-run", "--quiet", "--output", str(tmp_path / "x"),
                 "sft.epocs=1"]) == 2
    assert "did you mean 'sft.epochs'" in capsys.readouterr().err


@pytest.mark.integration
def test_dry_run_pretrains_the_tiny_base_one_batch(tmp_path: Path) -> None:
    import json

    cfg = load_recipe_config("tiny-cpu", [f"run.output_dir={tmp_path / 'run'}", "model.tiny.pretrain.shuffles=2"])
    out = run_recipe(cfg, "sft", dry_run=True, progress=False)
    assert out["sft"]["one_batch_loss"] > 0
    record = json.loads((tmp_path / "run" / "dry-run" / "base" / "pretrain.json").read_text())
    assert record["steps"] == 1 and record["tokens"] == 8 * 512  # one batch of model.tiny.pretrain's shape


@pytest.mark.integration
def test_dry_run_samples_the_prompt_filter_on_one_batch(tmp_path: Path) -> None:
    """A dry run with `rl.prompt_filter` on samples one batch's prompts and reads the named
    component, so a component the stage-1 reward does not have fails in seconds, not after SFT."""
    base = [f"run.output_dir={tmp_path / 'run'}", "rl.prompt_filter.samples=2", "rl.stage1.max_completion_length=8"]
    out = run_recipe(load_recipe_config("tiny-cpu", base), "all", dry_run=True, progress=False)
    one = out["rl"]["rl1"]["prompt_filter_one_batch"]
    assert one["prompts"] == 2 * 16 and 0 <= one["kept"] <= one["prompts"]
    with pytest.raises(ValueError, match=r"'base/taks' is not a component .*base/task"):
        run_recipe(load_recipe_config("tiny-cpu", [*base, "rl.prompt_filter.component=base/taks"]), "all",
                   dry_run=True, progress=False)
