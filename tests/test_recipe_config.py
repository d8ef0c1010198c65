"""tagpr-train configs: every shipped config loads; typos and bad overrides are clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tagpr_trainers.recipe.cli import main
from tagpr_trainers.recipe.config import RecipeConfigError, apply_overrides, list_configs, load_recipe_config


def test_every_shipped_config_loads_and_validates() -> None:
    names = list_configs()
    assert {"tiny-cpu", "cuda-smoke", "qwen2.5-1.5b-gpu", "qwen2.5-7b-gpu"} <= set(names)
    for name in names:
        cfg = load_recipe_config(name)
        assert cfg.description, f"{name}: describe the config"
        assert cfg.data.tasks


def test_gpu_configs_are_paper_scale() -> None:
    for name in ("qwen2.5-1.5b-gpu", "qwen2.5-7b-gpu"):
        cfg = load_recipe_config(name)
        assert cfg.model.base.startswith("Qwen/Qwen2.5-") and cfg.model.base.endswith("-Instruct")
        assert cfg.rl.stage1.use_vllm and cfg.rl.stage2.use_vllm
        assert cfg.run.dtype in ("auto", "bfloat16")


def test_cuda_smoke_is_tiny_cpu_on_a_gpu() -> None:
    """cuda-smoke's numbers are read beside the main job's: only where and how it runs may differ."""
    import dataclasses

    from tagpr_trainers.recipe.context import _flatten  # the dotted keys the stage fingerprints use

    cpu = _flatten(dataclasses.asdict(load_recipe_config("tiny-cpu")))
    gpu = _flatten(dataclasses.asdict(load_recipe_config("cuda-smoke")))
    differ = {k for k in cpu.keys() | gpu.keys() if cpu.get(k) != gpu.get(k)}
    assert differ == {"description", "run.output_dir", "run.device", "run.dtype"}
    assert (gpu["run.device"], gpu["run.dtype"]) == ("cuda", "bfloat16")


def test_unknown_key_in_file_names_file_and_suggests(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("sft:\n  learning_rat: 0.1\n")
    with pytest.raises(RecipeConfigError) as e:
        load_recipe_config(p)
    msg = str(e.value)
    assert str(p) in msg and "'sft.learning_rat'" in msg and "did you mean 'sft.learning_rate'" in msg


def test_unknown_section_suggests(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("rl:\n  stage3: {max_steps: 1}\n")
    with pytest.raises(RecipeConfigError, match=r"'rl.stage3'.*did you mean 'rl.stage[12]'"):
        load_recipe_config(p)


def test_overrides_apply_with_types() -> None:
    cfg = load_recipe_config("tiny-cpu", ["sft.epochs=1", "data.tasks=[LaMP-2, LaMP-3]", "eval.limit=null",
                                          "rl.stage2.reward.alpha=2", "run.output_dir=/tmp/x"])
    assert cfg.sft.epochs == 1.0 and isinstance(cfg.sft.epochs, float)
    assert cfg.data.tasks == ["LaMP-2", "LaMP-3"]
    assert cfg.eval.limit is None and cfg.rl.stage2.reward["alpha"] == 2 and cfg.run.output_dir == "/tmp/x"


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("sft.epochs", "expected dotted key=value"),
        ("sft.epoch=2", "did you mean 'sft.epochs'"),
        ("sft=2", "is a section"),
        ("sft.epochs=many", "expected a number"),
        ("sft.epochs.x=1", "is a value, not a section"),
        ("rl.stage1.batch_size=10", "divisible by"),
        ("data.teacher.kind=oracle", "template or llm"),
        ("data.tagger.pool=hint", "data.tagger.pool must be lead or null"),
        ("data.tagger.lead_words=0", "data.tagger.lead_words must be >= 1"),
        ("prmu.model.hiden=3", "did you mean 'hidden'"),
        ("run.device=tpu", "auto, cpu or cuda"),
        ("rl.stage1.trl_args={num_iteration: 2}", "rl.stage1.trl_args.num_iteration: .*did you mean 'num_iterations'"),
        ("rl.stage2.trl_args={beta: 0.1}", "rl.stage2.trl_args.beta: set by the stage itself"),
        ("sft.trl_args={adam_beta: 0.95}", "sft.trl_args.adam_beta: not a trl.SFTConfig field.*did you mean"),
        ("sft.trl_args={learning_rate: 0.1}", "sft.trl_args.learning_rate: set by the stage itself"),
        ("sft.trl_args={activation_checkpointing: true}", "sft.trl_args.activation_checkpointing: set by the stage"),
        ("rl.stage1.trl_args={activation_checkpointing: true}", "activation_checkpointing: set by the stage itself"),
    ],
)
def test_bad_overrides_are_errors(override: str, match: str) -> None:
    with pytest.raises(RecipeConfigError, match=match):
        load_recipe_config("tiny-cpu", [override])


def test_unknown_config_name_suggests() -> None:
    with pytest.raises(RecipeConfigError, match="did you mean 'tiny-cpu'"):
        load_recipe_config("tiny-cp")


def test_apply_overrides_free_form_mapping() -> None:
    out = apply_overrides({}, ["prmu.train.epochs=3"])
    assert out == {"prmu": {"train": {"epochs": 3}}}


def test_cli_show_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "--config", "tiny-cpu", "sft.epochs=5"]) == 0
    assert "epochs: 5" in capsys.readouterr().out
    assert main(["sft", "--config", "tiny-cpu", "sft.epoch=5"]) == 2
    assert "did you mean 'sft.epochs'" in capsys.readouterr().err
    assert main(["configs"]) == 0
    assert "tiny-cpu" in capsys.readouterr().out.split()


def test_console_script_entry_point() -> None:
    from tagpr_trainers.cli import main as entry

    assert entry(["configs"]) == 0
