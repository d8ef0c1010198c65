"""Tag schemas as data: which tags exist, which are required, how often they may repeat, the
allowed order, the answer tag, the optional wrapper and whether free text is tolerated.

A schema is a YAML file (see ``schemas/*.yaml`` and docs/tags.md). :func:`load_schema` accepts a
shipped name or a path and returns a frozen, hashable, picklable :class:`TagSchema`.

The *order* is a regular expression over tag names: names are tokens separated by whitespace,
with ``( )`` for grouping, ``|`` for alternatives and the postfix operators ``? * +``. Its
compiler lives in :mod:`tagpr_rewards.tags.order`: a Python regex over one private-use
character per tag (``order_regex``, for reading and cross-checks) and a Glushkov automaton
(``automaton``) that decides acceptance in linear time and drives the exact partial credit of
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
from tagpr_rewards.tags.order import OrderAutomaton, compile_order

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
    #: the order expression's AST (see :mod:`tagpr_rewards.tags.order`; ``None`` without order)
    order_ast: Any = field(default=None, compare=False, repr=False)
    _chars: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False)
    _known: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    def __post_init__(self) -> None:
        names = [t for t, _ in self.tags]
        chars = tuple((t, chr(0xE000 + i)) for i, t in enumerate(names))
        object.__setattr__(self, "_chars", chars)
        object.__setattr__(self, "_known", frozenset(names))
        if self.order is not None:
            ast, rx, aut = compile_order(self.order, frozenset(names), dict(chars))
            object.__setattr__(self, "order_ast", ast)
            object.__setattr__(self, "order_regex", rx)
            object.__setattr__(self, "automaton", aut)
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
