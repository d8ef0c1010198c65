"""Every ```python block in README.md and docs/*.md runs as written (offline).

A block whose first line is ``# not run in tests`` (GPU-only, long training, network) is skipped.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def _blocks():
    for path in DOCS:
        for i, code in enumerate(BLOCK.findall(path.read_text(encoding="utf-8"))):
            if code.lstrip().startswith("# not run in tests"):
                continue
            yield pytest.param(path, code, id=f"{path.name}#{i}")


@pytest.mark.integration
@pytest.mark.parametrize("path, code", list(_blocks()))
def test_doc_example_runs(path, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    os.environ.setdefault("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": "__doc_example__"}
    exec(compile(code, str(path), "exec"), namespace)
