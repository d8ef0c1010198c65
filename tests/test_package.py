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

    with pytest.raises(Exception, match="(?i)checkpoint"):
        build_reward("prmu", checkpoint="/nonexistent/prmu")


@pytest.mark.parametrize("script", ["tagpr-rewards", "tagpr-eval", "tagpr-train", "tagpr-prmu", "tagpr-rm"])
def test_console_scripts_answer_help(script):
    import shutil

    exe = shutil.which(script) or str(__import__("pathlib").Path(sys.executable).parent / script)
    out = subprocess.run([exe, "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "usage" in out.stdout.lower()
