"""Order expressions: a regular expression over tag names, compiled to a Python regex and to a
Glushkov automaton.

Syntax: tag names are tokens separated by whitespace, with ``( )`` for grouping, ``|`` for
alternatives and the postfix operators ``? * +``. :func:`compile_order` parses an expression
into a small AST (tuples: ``("sym", name)``, ``("cat", [nodes])``, ``("alt", [nodes])`` or
``(op, node)`` for ``op`` in ``? * +``) and builds

* a Python regex over one private-use character per tag (``TagSchema.order_regex``, for
  reading and cross-checks);
* the :class:`OrderAutomaton` (epsilon-free NFA, one state per tag occurrence) that decides
  acceptance in linear time and drives the exact partial credit of
  :class:`~tagpr_rewards.tags.rewards.TagOrderReward`;
* on request (:func:`render`), a regex in which every tag is replaced by a pattern of your
  choice: the parser's fast path renders each tag as ``<tag>content</tag>`` to check a whole
  completion's structure *and* order with one compiled expression.

>>> ast, rx, aut = compile_order("a+ (b | c)? ans", {"a", "b", "c", "ans"}, {"a": "A", "b": "B", "c": "C", "ans": "Z"})
>>> bool(rx.fullmatch("AAZ")), aut.accepts(["a", "c", "ans"]), aut.accepts(["b", "ans"])
(True, True, False)
>>> aut.deterministic
True
>>> render(ast, lambda t: f"<{t}>")
'(?:<a>)+(?:(?:<b>|<c>))?<ans>'
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tagpr_rewards.registry import suggest

__all__ = ["OrderAutomaton", "compile_order", "parse_order", "render"]


_ORDER_TOKEN_RE = re.compile(r"\s*(?:([A-Za-z][A-Za-z0-9_-]*)|([()|?*+])|(\S))")

# AST nodes as tuples: ("sym", name) | ("cat", [nodes]) | ("alt", [nodes]) | (op, node) for op in ?*+


def _tokenize_order(expr: str) -> list[tuple[str, str]]:
    toks: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expr):
        m = _ORDER_TOKEN_RE.match(expr, pos)
        if m is None:  # only trailing whitespace left
            break
        pos = m.end()
        if m.group(1):
            toks.append(("name", m.group(1)))
        elif m.group(2):
            toks.append(("op", m.group(2)))
        elif m.group(3):
            raise ValueError(
                f"order: unexpected character {m.group(3)!r} at offset {m.start(3)}; allowed are tag "
                "names, whitespace, ( ) | ? * +"
            )
    return toks


class _OrderParser:
    """Recursive-descent parser: alt := cat ('|' cat)*; cat := rep*; rep := atom [?*+]*;
    atom := NAME | '(' alt ')'."""

    def __init__(self, toks: list[tuple[str, str]], names: set[str]) -> None:
        self.toks = toks
        self.i = 0
        self.names = names

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def parse(self) -> Any:
        node = self.alt()
        if self.peek() is not None:
            raise ValueError(f"order: unexpected {self.peek()[1]!r} (token {self.i + 1})")  # type: ignore[index]
        return node

    def alt(self) -> Any:
        branches = [self.cat()]
        while self.peek() == ("op", "|"):
            self.i += 1
            branches.append(self.cat())
        return branches[0] if len(branches) == 1 else ("alt", branches)

    def cat(self) -> Any:
        items = []
        while True:
            t = self.peek()
            if t is None or t == ("op", "|") or t == ("op", ")"):
                break
            items.append(self.rep())
        return items[0] if len(items) == 1 else ("cat", items)

    def rep(self) -> Any:
        node = self.atom()
        while self.peek() in (("op", "?"), ("op", "*"), ("op", "+")):
            node = (self.peek()[1], node)  # type: ignore[index]
            self.i += 1
        return node

    def atom(self) -> Any:
        t = self.peek()
        if t is None:
            raise ValueError("order: expression ends where a tag name or '(' was expected")
        kind, val = t
        self.i += 1
        if kind == "name":
            if val not in self.names:
                hint = suggest(val, self.names)
                raise ValueError(
                    f"order: unknown tag {val!r}" + (f"; {hint}" if hint else "")
                    + f" (tags: {', '.join(sorted(self.names))})"
                )
            return ("sym", val)
        if val == "(":
            node = self.alt()
            if self.peek() != ("op", ")"):
                raise ValueError("order: '(' is never closed")
            self.i += 1
            return node
        raise ValueError(f"order: operator {val!r} at token {self.i} has nothing to apply to")


def render(node: Any, sym: Callable[[str], str], possessive: bool = False) -> str:
    """The regex of ``node`` with every tag name replaced by ``sym(name)``.

    ``possessive=True`` makes the quantifiers possessive (``?+ *+ ++``): no backtracking, which
    is exact only when the expression is deterministic (:attr:`OrderAutomaton.deterministic`)
    and ``sym`` patterns of different tags never match the same text.
    """
    kind = node[0]
    if kind == "sym":
        return sym(node[1])
    if kind == "cat":
        return "".join(render(n, sym, possessive) for n in node[1])
    if kind == "alt":
        return "(?:" + "|".join(render(n, sym, possessive) for n in node[1]) + ")"
    return "(?:" + render(node[1], sym, possessive) + ")" + kind + ("+" if possessive else "")


def _to_python_regex(node: Any, chars: dict[str, str]) -> str:
    return render(node, lambda name: re.escape(chars[name]))


def parse_order(expr: str, names: set[str] | frozenset[str]) -> Any:
    """The AST of the order expression ``expr`` over the tag ``names`` (``ValueError`` naming
    the problem on a bad expression)."""
    return _OrderParser(_tokenize_order(expr), set(names)).parse()


def compile_order(expr: str, names: set[str] | frozenset[str],
                  chars: dict[str, str]) -> tuple[Any, re.Pattern[str], OrderAutomaton]:
    """``(ast, regex over chars, automaton)`` of the order expression ``expr``.

    ``chars`` maps every tag name to the one character that stands for it in the regex.
    """
    ast = parse_order(expr, names)
    pattern = _to_python_regex(ast, chars)
    try:
        rx = re.compile(pattern)
    except re.error as e:  # pragma: no cover - our AST always yields valid regex
        raise ValueError(f"order: cannot compile {expr!r}: {e}") from e
    return ast, rx, OrderAutomaton.build(ast)


def _glushkov(node: Any) -> tuple[tuple[str, ...], frozenset[int], frozenset[int], bool,
                                  tuple[frozenset[int], ...]]:
    """Position automaton of ``node``: (symbol per position, first, last, nullable, follow)."""
    syms: list[str] = []
    follow: list[set[int]] = []

    def walk(n: Any) -> tuple[frozenset[int], frozenset[int], bool]:
        kind = n[0]
        if kind == "sym":
            p = len(syms)
            syms.append(n[1])
            follow.append(set())
            return frozenset([p]), frozenset([p]), False
        if kind == "cat":
            first: frozenset[int] = frozenset()
            last: frozenset[int] = frozenset()
            nullable = True
            for child in n[1]:
                f, la, nu = walk(child)
                for p in last:
                    follow[p] |= f
                if nullable:
                    first = first | f
                last = (last | la) if nu else la
                nullable = nullable and nu
            return first, last, nullable
        if kind == "alt":
            first, last, nullable = frozenset(), frozenset(), False
            for child in n[1]:
                f, la, nu = walk(child)
                first, last, nullable = first | f, last | la, nullable or nu
            return first, last, nullable
        f, la, nu = walk(n[1])
        if kind in ("*", "+"):
            for p in la:
                follow[p] |= f
        return f, la, nu or kind in ("*", "?")

    if node == ("cat", []):  # empty expression: accepts only the empty sequence
        return (), frozenset(), frozenset(), True, ()
    first, last, nullable = walk(node)
    # state 0 = start; position p is state p + 1
    return tuple(syms), first, last, nullable, tuple(frozenset(s) for s in follow)


@dataclass(frozen=True)
class OrderAutomaton:
    """Glushkov automaton of an order expression (epsilon-free NFA).

    States are ``0`` (start) and ``p + 1`` for each tag occurrence ``p`` in the expression;
    entering state ``p + 1`` emits ``symbols[p]``. ``succ[q]`` lists the successor states of ``q``,
    ``final`` the accepting states and ``dist[q][r]`` the fewest tags emitted to go from ``q``
    to ``r`` (``-1`` when unreachable).
    """

    symbols: tuple[str, ...]
    succ: tuple[tuple[int, ...], ...]
    final: frozenset[int]
    dist: tuple[tuple[int, ...], ...]
    #: shortest number of tags from each state to acceptance (-1 when impossible)
    to_final: tuple[int, ...]
    #: like ``dist`` but with at least one step (so ``step_dist[q][q]`` is the shortest cycle)
    step_dist: tuple[tuple[int, ...], ...] = ()
    #: states entered by each tag (``{tag: (state, ...)}`` as sorted pairs)
    states_of: tuple[tuple[str, tuple[int, ...]], ...] = ()

    @classmethod
    def build(cls, node: Any) -> OrderAutomaton:
        syms, first, last, nullable, follow = _glushkov(node)
        n = len(syms) + 1
        succ = [tuple(sorted(p + 1 for p in first))] + [tuple(sorted(p + 1 for p in f)) for f in follow]
        final = frozenset({p + 1 for p in last} | ({0} if nullable else set()))
        dist = []
        for q in range(n):  # BFS from every state (automata are tiny)
            d = [-1] * n
            d[q] = 0
            frontier = [q]
            while frontier:
                nxt = []
                for a in frontier:
                    for b in succ[a]:
                        if d[b] < 0:
                            d[b] = d[a] + 1
                            nxt.append(b)
                frontier = nxt
            dist.append(tuple(d))
        to_final = tuple(
            min((dist[q][f] for f in final if dist[q][f] >= 0), default=-1) for q in range(n)
        )
        step_dist = []
        for q in range(n):
            row = []
            for r in range(n):
                cands = [dist[x][r] + 1 for x in succ[q] if dist[x][r] >= 0]
                row.append(min(cands) if cands else -1)
            step_dist.append(tuple(row))
        states_of: dict[str, list[int]] = {}
        for p, sym in enumerate(syms):
            states_of.setdefault(sym, []).append(p + 1)
        return cls(syms, tuple(succ), final, tuple(dist), to_final, tuple(step_dist),
                   tuple(sorted((k, tuple(v)) for k, v in states_of.items())))

    @property
    def n_states(self) -> int:
        return len(self.succ)

    @property
    def deterministic(self) -> bool:
        """Whether from every state each tag leads to at most one state (a deterministic
        Glushkov automaton: the expression is 1-unambiguous, so a regex over it needs no
        backtracking)."""
        syms = self.symbols
        return all(len({syms[r - 1] for r in s}) == len(s) for s in self.succ)

    def accepts(self, seq: Sequence[str]) -> bool:
        """Whether the automaton accepts ``seq`` (set simulation, linear in ``len(seq)``)."""
        states = {0}
        syms, succ = self.symbols, self.succ
        for tag in seq:
            states = {r for q in states for r in succ[q] if syms[r - 1] == tag}
            if not states:
                return False
        return not states.isdisjoint(self.final)
