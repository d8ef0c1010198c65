"""The runnable examples of docs/tags.md stay true."""

from __future__ import annotations

import doctest
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "tags.md"


def test_docs_tags_examples_run() -> None:
    result = doctest.testfile(str(DOC), module_relative=False, verbose=False)
    assert result.attempted > 20
    assert result.failed == 0
