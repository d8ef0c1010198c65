"""Atomic writes, stage markers, directory publishing and checkpoint discovery."""

from __future__ import annotations

import json
from pathlib import Path

from tagpr_trainers.recipe.checkpoints import (
    atomic_write_json,
    clear_marker,
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
    clear_marker(tmp_path, "data")
    assert not is_done(tmp_path, "data")


def test_publish_replaces_old_directory(tmp_path: Path) -> None:
    final = tmp_path / "model"
    for version in ("1", "2"):
        tmp = staging_dir(final)
        (tmp / "w").write_text(version)
        publish_dir(tmp, final)
    assert (final / "w").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_latest_checkpoint_needs_trainer_state(tmp_path: Path) -> None:
    for n in (5, 10, 20):
        (tmp_path / f"checkpoint-{n}").mkdir()
    for n in (5, 10):
        (tmp_path / f"checkpoint-{n}" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-x").mkdir()
    # checkpoint-20 was interrupted while being written: no trainer_state.json
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-10"
