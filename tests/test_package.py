"""Package-level promises: a light core import, console scripts, shipped data."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "sentence_transformers", "trl", "openrlhf", "datasets", "matplotlib")


@pytest.mark.parametrize("module", [
    "tagpr_rewards",
    "tagpr_rewards.presets",
    "tagpr_rewards.tags",
    "tagpr_rewards.task_rewards",
    "tagpr_rewards.metrics",
    "tagpr_rewards.prmu",
    "tagpr_rewards.cli",
    "tagpr_rewards.cli_options",
    "tagpr_rewards.config_io",
    "tagpr_eval",
])
def test_core_imports_stay_light(module):
    code = (f"import sys, {module}\n"
            "from tagpr_rewards import reward_names; reward_names()\n"
            f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing {module} loaded {out.stdout.strip()}"


def test_missing_prmu_checkpoint_gives_a_clear_error():
    from tagpr_rewards import build_reward
    from tagpr_rewards.prmu.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match=r"/nonexistent/prmu.*not a PRMU checkpoint"):
        build_reward("prmu", checkpoint="/nonexistent/prmu")


@pytest.mark.parametrize("script", ["tagpr-rewards", "tagpr-eval", "tagpr-train", "tagpr-prmu", "tagpr-rm"])
def test_console_scripts_answer_help(script):
    import shutil

    exe = shutil.which(script) or str(__import__("pathlib").Path(sys.executable).parent / script)
    out = subprocess.run([exe, "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "usage" in out.stdout.lower()


def test_import_tagpr_trainers_exposes_its_adapters_lazily():
    code = ("import sys, tagpr_trainers as t\n"
            "names = [t.trl_adapter.__name__, t.openrlhf.export.__name__, t.openrlhf.remote_reward.__name__,\n"
            "         t.data_pipeline.__name__, t.recipe.__name__]\n"
            f"print(names, [m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(["tagpr_trainers.trl_adapter", "tagpr_trainers.openrlhf.export",
                                      "tagpr_trainers.openrlhf.remote_reward", "tagpr_trainers.data_pipeline",
                                      "tagpr_trainers.recipe"]) + " []"


def test_readme_sample_command_works_from_any_directory(tmp_path):
    """The shipped sample is a package resource: no repository checkout or cwd is needed."""
    import json
    import shutil
    from pathlib import Path

    exe = shutil.which("tagpr-rewards") or str(Path(sys.executable).parent / "tagpr-rewards")
    out = subprocess.run([exe, "score", "--sample", "--tasks", "LaMP-2", "--preset", "stage2", "--quiet",
                          "--output", "scored.jsonl"], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(x) for x in (tmp_path / "scored.jsonl").read_text().splitlines()]
    assert len(rows) == 11 and sum("error" in r for r in rows) == 1  # the sample has one bad line on purpose


def test_setup_installs_the_tested_versions_and_ci_runs_every_test():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    pins = dict(line.split("==", 1) for line in (root / "constraints.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    assert pins["torch"] == "2.13.0" and "tagpr" not in pins
    for pkg in ("trl", "transformers", "datasets", "sentence-transformers", "openrlhf"):
        assert pkg in pins, pkg
    setup = (root / "scripts" / "setup.sh").read_text()
    assert setup.count('"${C[@]}"') == 3 and "constraints.txt" in setup
    assert "--integration" in (root / "scripts" / "test.sh").read_text()
    pyproject = (root / "pyproject.toml").read_text()
    for bound in ('"transformers>=4.56,<6"', '"trl>=1.16,<1.17"', '"openrlhf>=0.11,<0.12"'):
        assert bound in pyproject


def test_setup_rerun_skips_the_installs_while_nothing_that_decides_them_changed() -> None:
    """scripts/test.sh ran scripts/setup.sh first: its stamp matches, so a rerun calls no pip
    (a broken skip would reinstall and rewrite the stamp)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    stamp = root / ".venv" / ".tagpr-setup"
    if not stamp.is_file():
        pytest.skip("no stamp: this venv was not made by scripts/setup.sh")
    before = stamp.stat().st_mtime_ns
    r = subprocess.run(["bash", str(root / "scripts" / "setup.sh")], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    assert stamp.stat().st_mtime_ns == before and r.stdout == ""
