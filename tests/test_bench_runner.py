"""Smoke test of ``python -m benchmarks``: tiny rounds, a scratch results file and page (no
timing assertions)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.integration
def test_runner_writes_results_and_the_table_between_markers(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    sys.path.insert(0, str(ROOT))
    from benchmarks.__main__ import BEGIN, END, main

    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"# Benchmarks\n\nintro\n\n{BEGIN}\nold table\n{END}\n\nafter\n", encoding="utf-8")
    results = tmp_path / "results.json"
    # an earlier run of another suite is kept
    results.write_text(json.dumps({"suites": {"other": {"machine": {"cpu": "x", "cores": 1, "python": "3",
                                                                    "commit": "c", "packages": {}},
                                                        "rows": []}}}))
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    assert main(["tags", "--min-rounds", "1", "--max-rounds", "2", "--block", "1", "--results", str(results),
                 "--doc", str(doc)]) == 0
    if cores is not None:  # pinned while measuring only: the caller gets its cores back
        assert os.sched_getaffinity(0) == cores
    store = json.loads(results.read_text())
    assert set(store["suites"]) == {"other", "tags"}
    rows = store["suites"]["tags"]["rows"]
    assert [r["key"] for r in rows] == ["tags-p9-valid", "tags-ta-valid", "tags-p9-mixed", "tags-ta-mixed",
                                        "tags-vs-scan-1k"]
    for r in rows:
        assert 1 <= r["rounds"] <= 2 and r["peer_min_ms"] <= r["peer_median_ms"]
        assert 0.0 <= r["other_share"] <= 1.0 and len(r["load_before"]) == 3
        # every tags row but the two think-answer ones has a target
        assert (r["met"] is None) == r["key"].startswith("tags-ta-")
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nintro\n\n" + BEGIN) and text.endswith(END + "\n\nafter\n")
    assert "old table" not in text and text.count("| [9-tag full check") == 3
    assert store["suites"]["tags"]["machine"]["packages"]["trl"]
    # one line per machine/commit, naming its suites (the old run's and this one's differ)
    heads = [line for line in text.splitlines() if line.startswith("Machine")]
    assert len(heads) == 2 and heads[0].startswith("Machine (suites other): x, 1 cores")
    assert heads[1].startswith("Machine (suites tags): ")
    # the vector extensions torch dispatches on: results differ between kinds of CPU
    isa = store["suites"]["tags"]["machine"]["isa"]
    assert isinstance(isa, list) and (not isa or f"({', '.join(isa)})," in heads[1])


def test_unknown_suite_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    sys.path.insert(0, str(ROOT))
    from benchmarks.__main__ import main

    with pytest.raises(SystemExit):
        main(["tagz", "--no-write"])
    assert "unknown suite(s) tagz; choose from tags" in capsys.readouterr().err
