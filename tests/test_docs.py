"""Every ```python block in README.md and docs/*.md runs as written (offline).

The blocks of one page run in order in one namespace, like a notebook, so a page's later
examples may use names from its earlier ones. A block whose first line is
``# not run in tests`` (GPU-only, long training, network) is skipped.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def _pages():
    for path in DOCS:
        blocks = [b for b in BLOCK.findall(path.read_text(encoding="utf-8"))
                  if not b.lstrip().startswith("# not run in tests")]
        if blocks:
            yield pytest.param(path, blocks, id=path.name)


@pytest.mark.integration
@pytest.mark.parametrize("path, blocks", list(_pages()))
def test_doc_examples_run(path, blocks, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    os.environ.setdefault("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": "__doc_example__"}
    for i, code in enumerate(blocks):
        try:
            exec(compile(code, f"{path.name} block {i}", "exec"), namespace)
        except Exception as e:
            raise AssertionError(f"{path.name}, python block {i} failed: {e!r}\n{code}") from e
