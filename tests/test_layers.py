"""The import graph runs one way: tagpr_rewards <- tagpr_eval <- tagpr_trainers, with no cycle.

Every import counts, function-level ones too (a lazy import is still a dependency). Inside a
layer, components do not import the recipe (``tagpr_trainers.recipe``), and benchmarks of the
reward and eval layers do not need the trainer package. Package ``__init__`` re-exports are not
cycles.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("tagpr_rewards", "tagpr_eval", "tagpr_trainers")


def _modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for top in LAYERS:
        for path in sorted((ROOT / top).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            mods[name.removesuffix(".__init__")] = path
    return mods


MODS = _modules()


def _imports(path: Path, module: str) -> Iterator[str]:
    pkg = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            yield mod
            yield from (f"{mod}.{a.name}" for a in node.names)


def _resolve(name: str) -> str | None:
    while name and name not in MODS:
        name = name.rpartition(".")[0]
    return name or None


def _graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for m, path in MODS.items():
        edges[m] = {r for x in _imports(path, m) if (r := _resolve(x)) and r != m}
    return edges


GRAPH = _graph()

#: Known exceptions to the rules below (issue 9 item 5): none; nothing may be added here.
KNOWN: set[str] = set()


def test_no_backward_import_between_layers() -> None:
    rank = {p: i for i, p in enumerate(LAYERS)}
    bad = sorted(f"{a} imports {b}" for a, outs in GRAPH.items() for b in outs
                 if rank[b.split(".")[0]] > rank[a.split(".")[0]] and f"{a} imports {b}" not in KNOWN)
    assert not bad, "imports against the layering rewards <- eval <- trainers:\n" + "\n".join(bad)


def test_components_do_not_import_the_recipe() -> None:
    bad = sorted(f"{a} imports {b}" for a, outs in GRAPH.items() for b in outs
                 if b.startswith("tagpr_trainers.recipe") and not a.startswith("tagpr_trainers.recipe")
                 and a != "tagpr_trainers.cli")
    assert not bad, "components importing the recipe:\n" + "\n".join(bad)


def test_no_import_cycle() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len([x for x in comp if MODS[x].name != "__init__.py"]) > 1 and \
                    " <-> ".join(sorted(comp)) not in KNOWN:
                cycles.append(sorted(comp))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("bench", sorted((ROOT / "benchmarks").glob("bench_*.py")), ids=lambda p: p.name)
def test_reward_and_eval_benchmarks_do_not_need_the_trainers(bench: Path) -> None:
    if bench.name in ("bench_trainers.py", "bench_recipe.py"):
        pytest.skip("a trainer benchmark may import the trainers")
    used = {x.split(".")[0] for x in _imports(bench, "benchmarks." + bench.stem)}
    assert "tagpr_trainers" not in used, f"{bench.name} imports tagpr_trainers"


def test_the_checker_sees_the_whole_tree() -> None:
    # guards the test itself: if module discovery broke, every check above would pass vacuously
    assert {"tagpr_rewards.base", "tagpr_eval.runner", "tagpr_trainers.trl_adapter"} <= set(MODS)
    assert "tagpr_rewards.base" in GRAPH["tagpr_trainers.trl_adapter"]
