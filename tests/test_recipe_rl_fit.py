"""`tagpr_trainers.recipe.rl_fit`: greedy accuracy on the RL prompts a run trained on and on the others."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tagpr_trainers.recipe.config import config_to_dict, load_recipe_config
from tagpr_trainers.recipe.rl_fit import fit_table, main, markdown, prompt_fit

#: the ``rl_rows`` fixture (tests/conftest.py): ``rl_rows(n)`` -> n RL dataset rows
RowsFn = Callable[[int], list[dict[str, Any]]]


def _run_dir(tmp: Path, policy: Path, models: tuple[str, ...], kept: list[dict[str, Any]] | None,
             rows: list[dict[str, Any]]) -> Path:
    cfg = load_recipe_config("tiny-cpu", [f"run.output_dir={tmp}", "run.device=cpu",
                                          "rl.stage1.max_completion_length=8", "rl.prompt_filter.samples=4"])
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "config.yaml").write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    (tmp / "data").mkdir()
    (tmp / "data" / "rl.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for m in models:
        shutil.copytree(policy, tmp / m / "model")
    if kept is not None:
        (tmp / "rl1").mkdir(exist_ok=True)
        (tmp / "rl1" / "prompts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    return tmp


def test_the_table_splits_the_prompts_by_what_rl_did_with_them() -> None:
    t = fit_table(["a", "b", "c", "d", "e"], {"a", "b"},
                  {"sft": [1.0, 0.0, 1.0, 0.0, 0.0], "rl1": [1.0, 1.0, 0.0, 1.0, 0.0], "rl2": [1.0, 1.0, 1.0, 1.0, 0.0]})
    got = {g["group"]: (g["n"], g["accuracy"]) for g in t["groups"]}
    assert got["trained on"] == (2, {"sft": 0.5, "rl1": 1.0, "rl2": 1.0})
    assert got["left out, SFT right"] == (1, {"sft": 1.0, "rl1": 0.0, "rl2": 1.0})
    assert got["left out, SFT wrong"] == (2, {"sft": 0.0, "rl1": 0.5, "rl2": 0.5})  # learnt from other prompts
    assert got["every RL prompt"] == (5, {"sft": 0.4, "rl1": 0.6, "rl2": 0.8})
    text = markdown(t)
    assert "| trained on | 2 | 0.500 | 1.000 | 1.000 | +0.500 |" in text
    assert "(2 of 5)" in text
    # without the SFT model the left-out prompts are one group
    assert [g["group"] for g in fit_table(["a", "b"], {"a"}, {"rl2": [1.0, 0.0]})["groups"]] == [
        "trained on", "left out", "every RL prompt"]
    assert "| left out, SFT right | 0 |" in markdown(fit_table(["a"], set(), {"sft": [0.0], "rl2": [0.0]}))


def test_a_run_directory_is_read_and_each_model_answers_greedily(tmp_path: Path, tiny_policy: Path,
                                                                 rl_rows: RowsFn) -> None:
    rows = rl_rows(10)
    run = _run_dir(tmp_path / "run", tiny_policy, ("sft", "rl2"), rows[:4], rows)
    t = prompt_fit(run, ["sft", "rl2"])
    got = {g["group"]: g for g in t["groups"]}
    assert t["prompts"] == 10 and t["trained"] == 4 and got["trained on"]["n"] == 4
    assert got["left out, SFT right"]["n"] + got["left out, SFT wrong"]["n"] == 6
    for g in t["groups"]:  # the same weights answer greedily: the same verdicts, model by model
        assert g["accuracy"]["sft"] == g["accuracy"]["rl2"], g
    assert t["component"] == "base/task"

    assert main([str(run), "--models", "sft", "rl2"]) == 0
    assert json.loads((run / "eval" / "rl_prompt_fit.json").read_text())["groups"] == t["groups"]
    assert "| trained on | 4 |" in (run / "eval" / "rl_prompt_fit.md").read_text()

    # no prompt filter: RL drew from every prompt
    assert prompt_fit(_run_dir(tmp_path / "nofilter", tiny_policy, ("sft",), None, rows), ["sft"])["trained"] == 10


def test_a_missing_model_or_run_says_what_to_do(tmp_path: Path, tiny_policy: Path, rl_rows: RowsFn) -> None:
    rows = rl_rows(3)
    run = _run_dir(tmp_path / "run", tiny_policy, ("sft",), rows[:1], rows)
    with pytest.raises(FileNotFoundError, match=r"rl1/model: no rl1, rl2 model in .*leave rl1, rl2 out of --models"):
        prompt_fit(run)
    with pytest.raises(FileNotFoundError, match=r"config.yaml: not a tagpr-train run directory"):
        prompt_fit(tmp_path / "nothing")
