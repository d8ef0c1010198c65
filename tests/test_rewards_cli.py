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


def test_bad_lines_are_left_out_of_the_means_and_counted(tmp_path, capsys):
    f = tmp_path / "in.jsonl"
    good = {"completion": "<think>x</think><answer>4</answer>", "reference": "4"}
    f.write_text(json.dumps(good) + "\n{not json\n" + json.dumps({"reference": "4"}) + "\n[1, 2]\n")
    summary_path = tmp_path / "summary.json"
    rc = main(["score", "--schema", "think-answer", "--tasks", "LaMP-3", str(f), "-o", str(tmp_path / "o.jsonl"),
               "--summary-json", str(summary_path)])
    assert rc == 0
    rows = [json.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and [bool(r.get("error")) for r in rows] == [False, True, True, True]
    summary = json.loads(summary_path.read_text())
    assert summary["count"] == 4 and summary["bad_lines"] == 3 and summary["scored"] == 1
    # the means are those of the one good line, not dragged down by the bad lines' fallback scores
    assert summary["means"]["total"] == rows[0]["total"] == 1.0
    assert summary["format_validity"] == 1.0
    out = capsys.readouterr().out
    assert "scored 1 completions (3 bad lines, left out of the means)" in out


def test_typo_key_is_warned_once_with_did_you_mean(tmp_path, capsys):
    f = tmp_path / "in.jsonl"
    rec = {"completion": "<answer>4</answer>", "refernce": "4", "my_meta": 1}
    f.write_text(json.dumps(rec) + "\n" + json.dumps(rec) + "\n")
    rc = main(["score", "--schema", "think-answer", "--tasks", "LaMP-3", str(f), "-o", str(tmp_path / "o.jsonl")])
    assert rc == 0
    err = capsys.readouterr().err
    assert f"{f}:1: warning: key 'refernce' is not read by any shipped reward; did you mean 'reference'?" in err
    assert err.count("'refernce'") == 1  # once per file, not per line
    assert "key 'my_meta' is not read by any shipped reward (kept as a column" in err
    assert "'completion'" not in err


# --- every console script ends quietly on a closed pipe (`tagpr-eval compare A B | head`)

_CLIS = {
    "tagpr-rewards": "tagpr_rewards.cli",
    "tagpr-eval": "tagpr_eval.cli",
    "tagpr-train": "tagpr_trainers.cli",
    "tagpr-prmu": "tagpr_rewards.prmu.cli",
    "tagpr-rm": "tagpr_rewards.prmu.server_cli",
}


def _run_into_closed_pipe(module: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    import os

    r, w = os.pipe()
    os.close(r)  # the reader is gone before the command writes a byte (what `| head` does early)
    try:
        code = f"import sys; from {module} import main; sys.exit(main(sys.argv[1:]))"
        return subprocess.run([sys.executable, "-c", code, *args], stdout=w, stderr=subprocess.PIPE, timeout=300)
    finally:
        os.close(w)


@pytest.mark.parametrize("name", sorted(_CLIS))
def test_closed_pipe_ends_quietly(name):
    proc = _run_into_closed_pipe(_CLIS[name], "--help")
    assert b"Traceback" not in proc.stderr and b"BrokenPipe" not in proc.stderr, proc.stderr.decode()
    assert proc.returncode in (0, 141)  # argparse ends --help with exit 0 before our guard sees the pipe


def test_closed_pipe_on_real_output(tmp_path):
    f = tmp_path / "in.jsonl"
    f.write_text("".join(json.dumps({"completion": f"<answer>{i}</answer>"}) + "\n" for i in range(2000)))
    for module, args in (("tagpr_rewards.cli", ["score", "--schema", "think-answer", str(f)]),
                         ("tagpr_eval.cli", ["ls", "tasks"])):
        proc = _run_into_closed_pipe(module, *args)
        assert b"Traceback" not in proc.stderr, proc.stderr.decode()
        assert proc.returncode == 141


# --- files are created with the umask's mode (a colleague or a Ray worker can read them)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664), (0o077, 0o600)])
def test_files_get_the_umask_mode(tmp_path, umask, mode):
    """A real umask in a real process: the scorer's result file and every atomic writer."""
    g = tmp_path / "g.json"
    g.write_text(json.dumps({"task": "LaMP_3", "golds": [{"id": "1", "output": "4"}]}))
    script = (
        "import os, sys\n"
        f"os.umask({umask})\n"
        "from tagpr_eval.cli import main\n"
        "from tagpr_rewards.files import atomic_write_jsonl, atomic_write_text\n"
        f"assert main(['score', '--golds', {str(g)!r}, '--preds', {str(g)!r}, '--output', {str(tmp_path / 'r.json')!r}]) == 0\n"
        f"atomic_write_jsonl({str(tmp_path / 'rows.jsonl')!r}, [{{'a': 1}}])\n"
        f"atomic_write_text({str(tmp_path / 'sub' / 't.txt')!r}, 'x')\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for name in ("r.json", "rows.jsonl", "sub/t.txt"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name


def test_replacing_a_file_keeps_its_mode(tmp_path):
    from tagpr_rewards.files import atomic_write_text

    p = tmp_path / "shared.txt"
    p.write_text("old")
    p.chmod(0o664)
    atomic_write_text(p, "new")
    assert p.read_text() == "new" and p.stat().st_mode & 0o777 == 0o664
    assert [x.name for x in tmp_path.iterdir()] == ["shared.txt"]  # no temp file left behind
