"""Tag schemas as data: which tags exist, which are required, how often they may repeat, the
allowed order, the answer tag, the optional wrapper and whether free text is tolerated.

A schema is a YAML file (see ``schemas/*.yaml`` and docs/tags.md). :func:`load_schema` accepts a
shipped name or a path and returns a frozen, hashable, picklable :class:`TagSchema`.

The *order* is a regular expression over tag names: names are tokens separated by whitespace,
with ``( )`` for grouping, ``|`` for alternatives and the postfix operators ``? * +``. It is
compiled twice: to a Python regex over one private-use character per tag (``order_regex``, for
reading and cross-checks) and to a Glushkov automaton (epsilon-free NFA, one state per tag
occurrence) that decides acceptance in linear time and drives the exact partial credit of
:class:`~tagpr_rewards.tags.rewards.TagOrderReward`.

>>> s = load_schema("think-answer")
>>> s.tag_names, s.answer_tag
(('think', 'answer'), 'answer')
>>> s.accepts(["think", "answer"]), s.accepts(["answer", "think"])
(True, False)
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from tagpr_rewards.registry import suggest, unknown_name_error

TAG_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z")

#: keys a schema YAML file may contain
SCHEMA_KEYS = (
    "name",
    "description",
    "provenance",
    "tags",
    "answer_tag",
    "wrapper",
    "required",
    "max_count",
    "default_max_count",
    "max_tags",
    "order",
    "allow_text_outside",
    "unknown_tags",
)
_REQUIRED_KEYS = ("name", "tags", "answer_tag")


# --------------------------------------------------------------------------------------------
# order expressions: tokenizer, parser (to a small AST), Python regex and Glushkov automaton
# --------------------------------------------------------------------------------------------

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


def _to_python_regex(node: Any, chars: dict[str, str]) -> str:
    kind = node[0]
    if kind == "sym":
        return re.escape(chars[node[1]])
    if kind == "cat":
        return "".join(_to_python_regex(n, chars) for n in node[1])
    if kind == "alt":
        return "(?:" + "|".join(_to_python_regex(n, chars) for n in node[1]) + ")"
    return "(?:" + _to_python_regex(node[1], chars) + ")" + kind


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

    def accepts(self, seq: Sequence[str]) -> bool:
        """Whether the automaton accepts ``seq`` (set simulation, linear in ``len(seq)``)."""
        states = {0}
        syms, succ = self.symbols, self.succ
        for tag in seq:
            states = {r for q in states for r in succ[q] if syms[r - 1] == tag}
            if not states:
                return False
        return not states.isdisjoint(self.final)


# --------------------------------------------------------------------------------------------
# the schema
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TagSchema:
    """A tag schema (frozen, hashable, picklable). Build it with :func:`load_schema` or
    :meth:`from_dict`.

    Attributes:
        name: schema name (shipped names: ``personalization-9``, ``r2p-3``, ``think-answer``).
        tags: ``(tag, one-line meaning)`` pairs, in declaration order; includes the answer tag,
            never the wrapper.
        answer_tag: the tag holding the final answer.
        wrapper: tag that must enclose every step tag (``None`` when steps stand alone); the
            answer comes after the wrapper, outside it.
        required: tags a complete chain must contain (used by ``tag_coverage``).
        max_count: ``(tag, limit)`` pairs, per-tag repeat limits (``tag_spam``).
        default_max_count: limit for tags not listed in ``max_count`` (``None``: unlimited).
        max_tags: limit on the total number of tags (``None``: unlimited).
        order: allowed order as a regular expression over tag names (``None``: any order).
        allow_text_outside: whether non-whitespace text outside tags is tolerated.
        unknown_tags: ``"error"`` (``<foo>`` tokens that are not schema tags are errors) or
            ``"text"`` (they are plain text).
        description, provenance: free text (where the schema comes from).
        source: the file the schema was read from.

    >>> s = TagSchema.from_dict({"name": "t", "tags": {"a": "step", "ans": "answer"},
    ...                          "answer_tag": "ans", "order": "a+ ans"})
    >>> s.accepts(["a", "a", "ans"]), s.order_regex.pattern == "(?:\\ue000)+\\ue001"
    (True, True)
    """

    name: str
    tags: tuple[tuple[str, str], ...]
    answer_tag: str
    wrapper: str | None = None
    required: tuple[str, ...] = ()
    max_count: tuple[tuple[str, int], ...] = ()
    default_max_count: int | None = None
    max_tags: int | None = None
    order: str | None = None
    allow_text_outside: bool = True
    unknown_tags: str = "error"
    description: str = ""
    provenance: str = ""
    source: str = ""
    # derived (not part of equality / hash)
    name_key: str = field(default="", compare=False)
    automaton: OrderAutomaton | None = field(default=None, compare=False, repr=False)
    order_regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)
    _chars: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False)
    _known: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    def __post_init__(self) -> None:
        names = [t for t, _ in self.tags]
        chars = tuple((t, chr(0xE000 + i)) for i, t in enumerate(names))
        object.__setattr__(self, "_chars", chars)
        object.__setattr__(self, "_known", frozenset(names))
        if self.order is not None:
            toks = _tokenize_order(self.order)
            ast = _OrderParser(toks, set(names)).parse()
            pattern = _to_python_regex(ast, dict(chars))
            try:
                rx = re.compile(pattern)
            except re.error as e:  # pragma: no cover - our AST always yields valid regex
                raise ValueError(f"order: cannot compile {self.order!r}: {e}") from e
            object.__setattr__(self, "order_regex", rx)
            object.__setattr__(self, "automaton", OrderAutomaton.build(ast))
        payload = json.dumps(
            [self.name, self.tags, self.answer_tag, self.wrapper, self.required, self.max_count,
             self.default_max_count, self.max_tags, self.order, self.allow_text_outside,
             self.unknown_tags],
            sort_keys=True,
        )
        digest = hashlib.sha1(payload.encode()).hexdigest()[:10]
        object.__setattr__(self, "name_key", f"{self.name}@{digest}")

    def __hash__(self) -> int:  # name_key digests every field that defines behaviour
        return hash(self.name_key)

    # -- views -------------------------------------------------------------------------------

    @property
    def tag_names(self) -> tuple[str, ...]:
        """Tag names in declaration order (answer included, wrapper excluded)."""
        return tuple(t for t, _ in self.tags)

    @property
    def step_tags(self) -> tuple[str, ...]:
        """Tag names other than the answer tag."""
        return tuple(t for t, _ in self.tags if t != self.answer_tag)

    @property
    def meanings(self) -> dict[str, str]:
        """``{tag: one-line meaning}``."""
        return dict(self.tags)

    def limit(self, tag: str) -> int | None:
        """Repeat limit of ``tag`` (``None``: unlimited)."""
        for t, n in self.max_count:
            if t == tag:
                return n
        return self.default_max_count

    def accepts(self, seq: Sequence[str]) -> bool:
        """Whether the tag sequence ``seq`` fully matches the order (always true without one)."""
        if self.automaton is None:
            return True
        return self.automaton.accepts(seq)

    def encode(self, seq: Iterable[str]) -> str | None:
        """``seq`` as a string over :attr:`order_regex`'s alphabet (``None`` on unknown tags)."""
        chars = dict(self._chars)
        try:
            return "".join(chars[t] for t in seq)
        except KeyError:
            return None

    def describe(self) -> str:
        """A human-readable summary (the tag list with meanings), e.g. for prompts."""
        lines = [f"{self.name}: {self.description.strip()}".rstrip(": ")]
        if self.wrapper:
            lines.append(f"Wrap all steps in <{self.wrapper}>...</{self.wrapper}>, then give the answer.")
        for t, meaning in self.tags:
            lines.append(f"<{t}>: {meaning}")
        if self.order:
            lines.append(f"Order: {' '.join(self.order.split())}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The YAML-shaped dictionary of this schema (round-trips through :meth:`from_dict`)."""
        return {
            "name": self.name,
            "description": self.description,
            "provenance": self.provenance,
            "tags": dict(self.tags),
            "answer_tag": self.answer_tag,
            "wrapper": self.wrapper,
            "required": list(self.required),
            "max_count": dict(self.max_count),
            "default_max_count": self.default_max_count,
            "max_tags": self.max_tags,
            "order": self.order,
            "allow_text_outside": self.allow_text_outside,
            "unknown_tags": self.unknown_tags,
        }

    # -- construction --------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> TagSchema:
        """Validate a YAML-shaped mapping and build the schema.

        Raises:
            ValueError: naming ``source`` and the problem (unknown key, bad tag name, answer tag
                not among the tags, bad order expression, ...).
        """

        def bad(msg: str) -> ValueError:
            return ValueError(f"tag schema {source}: {msg}")

        if not isinstance(data, dict):
            raise bad(f"expected a mapping at the top level, got {type(data).__name__}")
        for k in data:
            if k not in SCHEMA_KEYS:
                hint = suggest(str(k), SCHEMA_KEYS)
                raise bad(f"unknown key {k!r}" + (f"; {hint}" if hint else "")
                          + f" (known keys: {', '.join(SCHEMA_KEYS)})")
        for k in _REQUIRED_KEYS:
            if k not in data or data[k] in (None, ""):
                raise bad(f"missing required key {k!r}")
        name = data["name"]
        if not isinstance(name, str):
            raise bad("'name' must be a string")

        raw_tags = data["tags"]
        if isinstance(raw_tags, list):  # also accept [{name: meaning}, ...] or [name, ...]
            merged: dict[Any, Any] = {}
            for item in raw_tags:
                if isinstance(item, dict):
                    merged.update(item)
                else:
                    merged[item] = ""
            raw_tags = merged
        if not isinstance(raw_tags, dict) or not raw_tags:
            raise bad("'tags' must be a non-empty mapping of tag name -> one-line meaning")
        tags: list[tuple[str, str]] = []
        for t, meaning in raw_tags.items():
            if not isinstance(t, str) or not TAG_NAME_RE.match(t):
                raise bad(f"bad tag name {t!r}: names start with a letter and use letters, digits, _ or -")
            if meaning is None:
                meaning = ""
            if not isinstance(meaning, str):
                raise bad(f"meaning of tag {t!r} must be a string, got {type(meaning).__name__}")
            tags.append((t, " ".join(meaning.split())))
        names = [t for t, _ in tags]

        answer_tag = data["answer_tag"]
        if answer_tag not in names:
            raise bad(f"answer_tag {answer_tag!r} is not among the tags ({', '.join(names)})")

        wrapper = data.get("wrapper")
        if wrapper is not None:
            if not isinstance(wrapper, str) or not TAG_NAME_RE.match(wrapper):
                raise bad(f"bad wrapper tag name {wrapper!r}")
            if wrapper in names:
                raise bad(f"wrapper {wrapper!r} must not also be listed under 'tags'")

        def tag_list(key: str) -> tuple[str, ...]:
            v = data.get(key) or []
            if isinstance(v, str):
                v = v.split()
            if not isinstance(v, list):
                raise bad(f"'{key}' must be a list of tag names")
            for t in v:
                if t not in names:
                    hint = suggest(str(t), names)
                    raise bad(f"'{key}' names unknown tag {t!r}" + (f"; {hint}" if hint else ""))
            return tuple(v)

        required = tag_list("required")

        def opt_int(key: str, v: Any) -> int | None:
            if v is None:
                return None
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise bad(f"{key} must be a positive integer or null, got {v!r}")
            return v

        raw_max = data.get("max_count") or {}
        if not isinstance(raw_max, dict):
            raise bad("'max_count' must be a mapping of tag name -> positive integer")
        max_count = []
        for t, v in raw_max.items():
            if t not in names:
                hint = suggest(str(t), names)
                raise bad(f"'max_count' names unknown tag {t!r}" + (f"; {hint}" if hint else ""))
            max_count.append((t, opt_int(f"max_count[{t}]", v)))
        max_count_t = tuple((t, v) for t, v in max_count if v is not None)

        allow = data.get("allow_text_outside", True)
        if not isinstance(allow, bool):
            raise bad(f"'allow_text_outside' must be true or false, got {allow!r}")
        unknown = data.get("unknown_tags", "error")
        if unknown not in ("error", "text"):
            raise bad(f"'unknown_tags' must be 'error' or 'text', got {unknown!r}")
        order = data.get("order")
        if order is not None and not isinstance(order, str):
            raise bad("'order' must be a string (a regular expression over tag names)")
        if isinstance(order, str):
            order = " ".join(order.split()) or None
        if order is not None and not re.search(rf"(?<![\w-]){re.escape(answer_tag)}(?![\w-])", order):
            raise bad(f"'order' must mention the answer tag {answer_tag!r} (it describes the whole "
                      "tag sequence, answer included)")
        try:
            return cls(
                name=name,
                tags=tuple(tags),
                answer_tag=answer_tag,
                wrapper=wrapper,
                required=required,
                max_count=max_count_t,
                default_max_count=opt_int("default_max_count", data.get("default_max_count")),
                max_tags=opt_int("max_tags", data.get("max_tags")),
                order=order,
                allow_text_outside=allow,
                unknown_tags=unknown,
                description=" ".join(str(data.get("description") or "").split()),
                provenance=" ".join(str(data.get("provenance") or "").split()),
                source=source,
            )
        except ValueError as e:
            raise bad(str(e)) from e


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------


def _schema_dir() -> Any:
    return resources.files("tagpr_rewards.tags").joinpath("schemas")


def list_schemas() -> list[str]:
    """Names of the shipped schemas.

    >>> list_schemas()
    ['personalization-9', 'r2p-3', 'think-answer']
    """
    return sorted(p.name[: -len(".yaml")] for p in _schema_dir().iterdir() if p.name.endswith(".yaml"))


def _load_file(text: str, source: str) -> TagSchema:
    from tagpr_rewards.config_io import ConfigError, parse_mapping

    try:
        data = parse_mapping(text, source, "tag schema", allow_empty=False)
    except ConfigError as e:
        raise ValueError(f"tag schema {e}") from e
    return TagSchema.from_dict(data, source=source)


@functools.cache
def _load_shipped(name: str) -> TagSchema:
    res = _schema_dir().joinpath(f"{name}.yaml")
    return _load_file(res.read_text(encoding="utf-8"), f"{name}.yaml (shipped)")


@functools.lru_cache(maxsize=64)
def _load_path(path: str, mtime: float) -> TagSchema:
    return _load_file(Path(path).read_text(encoding="utf-8"), path)


def load_schema(name_or_path: str | os.PathLike[str] | TagSchema | dict[str, Any]) -> TagSchema:
    """A schema by shipped name, YAML path, mapping, or an existing :class:`TagSchema`.

    Shipped schemas are cached by name; files by path and modification time.

    Raises:
        KeyError: unknown shipped name (with a did-you-mean hint).
        ValueError: a bad schema file, naming the file and the problem.

    >>> load_schema("personalization-9").answer_tag
    'answer'
    >>> load_schema("personalization-9") is load_schema("personalization-9")
    True
    """
    if isinstance(name_or_path, TagSchema):
        return name_or_path
    if isinstance(name_or_path, dict):
        return TagSchema.from_dict(name_or_path)
    s = os.fspath(name_or_path)
    if s in list_schemas():
        return _load_shipped(s)
    p = Path(s)
    if p.suffix in (".yaml", ".yml") or os.sep in s or p.exists():
        if not p.is_file():
            raise ValueError(f"tag schema {s}: file not found (shipped schemas: {', '.join(list_schemas())})")
        return _load_path(str(p.resolve()), p.stat().st_mtime)
    raise unknown_name_error("tag schema", s, list_schemas())
