"""`tagpr-rewards` CLI: schemas listing and JSONL scoring with bad lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tagpr_rewards.cli import main

SAMPLES = Path(__file__).resolve().parents[1] / "tagpr_rewards" / "data" / "sample_completions.jsonl"


def test_schemas_lists_every_shipped_schema(capsys):
    assert main(["schemas"]) == 0
    out = capsys.readouterr().out
    for name in ("personalization-9", "r2p-3", "think-answer"):
        assert name in out
    assert "infer-preference" in out and "not public" in out


def test_score_writes_per_sample_jsonl_and_summary(tmp_path, capsys):
    out_path = tmp_path / "scored.jsonl"
    rc = main(["score", "--schema", "personalization-9", "--task", "LaMP-2", str(SAMPLES), "-o", str(out_path),
               "--summary-json", str(tmp_path / "summary.json")])
    assert rc == 0
    rows = [json.loads(line) for line in out_path.read_text().splitlines()]
    n_lines = len([line for line in SAMPLES.read_text().splitlines() if line.strip()])
    assert len(rows) == n_lines
    first = rows[0]
    assert first["line"] == 1 and first["total"] == 1.0 and first["format_valid"] is True
    assert {"base", "base/format", "base/task"} <= set(first)
    # the unparseable last line is reported with its number, scored invalid, and the run went on
    bad = rows[-1]
    assert bad["line"] == n_lines and "invalid JSON" in bad["error"] and bad["total"] == 0.0
    err = capsys.readouterr()
    assert f"sample_completions.jsonl:{n_lines}: invalid JSON" in err.err
    assert "format validity" in err.out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["count"] == n_lines and summary["bad_lines"] == 1
    assert 0 < summary["format_validity"] < 1
    assert summary["tag_distribution"]["answer"] > 0


def test_score_stage2_and_tags_only_to_stdout(tmp_path):
    f = tmp_path / "in.jsonl"
    f.write_text(json.dumps({"completion": "<think>x</think><answer>4</answer>", "reference": "4"}) + "\n"
                 + json.dumps({"reference": "4"}) + "\n")
    proc = subprocess.run([sys.executable, "-m", "tagpr_rewards.cli", "score", "--schema", "think-answer",
                           "--task", "LaMP-3", "--preset", "stage2", str(f)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(x) for x in proc.stdout.splitlines()]
    assert rows[0]["base"] == 1.0 and "tag" in rows[0]
    assert rows[1]["error"] == "missing key 'completion'"
    assert f"{f}:2: missing key 'completion'" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "tagpr_rewards.cli", "score", "--schema", "think-answer", str(f)],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "format" in json.loads(proc.stdout.splitlines()[0])


@pytest.mark.parametrize("args, message", [
    (["--schema", "think-anwser"], "did you mean 'think-answer'"),
    (["--task", "LaMP-9"], "unknown"),
    (["--preset", "stage2"], "needs --task"),
])
def test_score_bad_options_exit_2_with_a_hint(args, message, capsys):
    rc = main(["score", *args, str(SAMPLES)])
    assert rc == 2
    assert message in capsys.readouterr().err
