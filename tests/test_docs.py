"""Every ```python block in README.md and docs/*.md runs as written (offline) and prints what the
page says it prints.

The blocks of one page run in order in one namespace, like a notebook, so a page's later
examples may use names from its earlier ones. A block whose first line is
``# not run in tests`` (GPU-only, long training, network) is skipped.

What a block prints is written right under it in an ```output block and compared as doctest
compares (``...`` matches anything, runs of whitespace are equal). A block that prints and has
no ```output block fails: write down what the reader will see. ``TAGPR_DOCS_WRITE=1 pytest
--integration tests/test_docs.py`` writes the missing ones (check them before committing).
"""

from __future__ import annotations

import contextlib
import doctest
import io
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# a python block, optionally followed (blank lines between) by its expected output
BLOCK = re.compile(r"```python\n(?P<code>.*?)```\n(?:[ \t]*\n)*(?:```output\n(?P<out>.*?)```\n)?", re.S)
CHECKER = doctest.OutputChecker()
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _blocks(path: Path) -> list[tuple[str, str | None, int]]:
    """``(code, expected output or None, end offset of the code block)`` of the blocks that run."""
    text = path.read_text(encoding="utf-8")
    return [(m["code"], m["out"], m.end("code") + 4) for m in BLOCK.finditer(text)
            if not m["code"].lstrip().startswith("# not run in tests")]


def _pages():
    for path in DOCS:
        if _blocks(path):
            yield pytest.param(path, id=path.name)


def _write_missing(path: Path, missing: dict[int, str]) -> None:
    text = path.read_text(encoding="utf-8")
    for end in sorted(missing, reverse=True):
        text = text[:end] + "\n```output\n" + missing[end] + "```\n" + text[end:]
    path.write_text(text, encoding="utf-8")


@pytest.mark.integration
@pytest.mark.parametrize("path", list(_pages()))
def test_doc_examples_run_and_print_what_the_page_says(path: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    os.environ.setdefault("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": "__doc_example__"}
    problems, missing = [], {}
    for i, (code, want, end) in enumerate(_blocks(path)):
        buf = io.StringIO()
        try:
            with contextlib.redirect_stdout(buf):
                exec(compile(code, f"{path.name} block {i}", "exec"), namespace)
        except Exception as e:
            raise AssertionError(f"{path.name}, python block {i} failed: {e!r}\n{code}") from e
        got = buf.getvalue()
        if want is None:
            if got.strip():
                missing[end] = got
                problems.append(f"{path.name}, python block {i} prints output the page does not show "
                                f"(add an ```output block under it):\n{got}")
        elif not CHECKER.check_output(want, got, FLAGS):
            problems.append(f"{path.name}, python block {i}:\n"
                            + CHECKER.output_difference(doctest.Example(code, want), got, FLAGS))
    if missing and os.environ.get("TAGPR_DOCS_WRITE") == "1":
        _write_missing(path, missing)
    assert not problems, "\n\n".join(problems)


def test_every_python_block_with_output_is_paired() -> None:
    # guards the pattern itself: an ```output block must sit right under a python block
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        paired = sum(m["out"] is not None for m in BLOCK.finditer(text))
        assert text.count("```output\n") == paired, f"{path.name}: an ```output block not under a python block"


def test_reward_names_in_the_docs_match_the_registry() -> None:
    from tagpr_rewards.registry import reward_names

    text = (ROOT / "docs" / "rewards.md").read_text(encoding="utf-8")
    m = re.search(r"Registered names \((\d+)\): (.*?) \(PRMU", text, re.S)
    assert m, "docs/rewards.md lists the registered reward names"
    listed = re.findall(r"`([a-z_]+)`", m[2])
    assert int(m[1]) == len(listed) and sorted(listed) == reward_names()


def test_no_dead_references() -> None:
    shipped = {p.name for p in ROOT.glob("*.md")}
    for path in [*DOCS, *ROOT.glob("tagpr_*/**/*.py"), ROOT / "docs" / "dev" / "contracts.md"]:
        text = path.read_text(encoding="utf-8")
        for name in ("DESIGN.md", "STYLE.md", "LAMP.md"):
            assert name in shipped or name not in text, f"{path.relative_to(ROOT)} refers to {name}, not shipped"
        for link in re.findall(r"\]\(((?:docs/|\.\./|\./)?[\w./-]+\.md)\)", text) if path.suffix == ".md" else []:
            assert (path.parent / link).resolve().is_file(), f"{path.relative_to(ROOT)}: dead link {link}"
