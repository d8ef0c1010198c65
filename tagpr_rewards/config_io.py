"""The config toolkit every tagpr CLI and config uses: read, check, override, suggest.

Four jobs, each done here and nowhere else:

* :func:`load_mapping` reads a YAML or JSON config file into a dict; a syntax error names
  ``file:line:col``.
* :func:`from_dict` builds a (nested) dataclass from a mapping, strictly: an unknown key is an
  error with a did-you-mean hint, and every value is checked against its field's annotation.
* :func:`apply_overrides` applies dotted ``key=value`` overrides (``sft.epochs=2``), checking
  each key against the dataclass tree; :func:`parse_value` is the one rule that types a value.
* :func:`did_you_mean` is the one did-you-mean helper.

>>> from dataclasses import field, make_dataclass
>>> Opt = make_dataclass("Opt", [("lr", float, 1e-3), ("tags", list[str], field(default_factory=list))])
>>> Cfg = make_dataclass("Cfg", [("name", str, "x"), ("opt", Opt, field(default_factory=Opt))])
>>> data = apply_overrides({"name": "run"}, ["opt.lr=0.5", "opt.tags=[a, b]"], Cfg)
>>> from_dict(Cfg, data)
Cfg(name='run', opt=Opt(lr=0.5, tags=['a', 'b']))
>>> from_dict(Cfg, {"opt": {"lrr": 1}}, source="my.yaml")
Traceback (most recent call last):
...
tagpr_rewards.config_io.ConfigError: my.yaml: unknown key 'opt.lrr'; did you mean 'opt.lr'?
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, Union

__all__ = [
    "ConfigError",
    "apply_overrides",
    "check_type",
    "closest",
    "did_you_mean",
    "from_dict",
    "load_mapping",
    "parse_mapping",
    "parse_value",
    "unknown_key_message",
]

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file, key or value that cannot be used; the message says where and what to do.

    The packages' own config errors (``RecipeConfigError``, ``tagpr_eval.config.ConfigError``)
    subclass it, so ``except ConfigError`` catches them all.
    """


# ---------------------------------------------------------------------------------------------
# did you mean


def closest(name: str, choices: Iterable[str], cutoff: float = 0.5) -> str | None:
    """The closest of ``choices`` to ``name`` (``difflib`` ratio >= ``cutoff``), or ``None``.

    >>> closest("recal-history", ["recall-history", "answer"])
    'recall-history'
    """
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=cutoff)
    return close[0] if close else None


def did_you_mean(name: str, choices: Iterable[str], cutoff: float = 0.5) -> str:
    """``"did you mean 'x'?"`` for the closest of ``choices``, or ``""`` when none is close.

    >>> did_you_mean("tag_ordr", ["tag_order", "tag_format"])
    "did you mean 'tag_order'?"
    >>> did_you_mean("zzz", ["tag_order"])
    ''
    """
    hit = closest(name, choices, cutoff)
    return f"did you mean {hit!r}?" if hit is not None else ""


def unknown_key_message(name: str, choices: Iterable[str], kind: str = "key", prefix: str = "") -> str:
    """``unknown KIND 'PREFIX+NAME'; did you mean 'PREFIX+X'?``, or ``(known: ...)`` when no
    name is close.

    >>> unknown_key_message("epoch", ["epochs", "lr"], prefix="sft.")
    "unknown key 'sft.epoch'; did you mean 'sft.epochs'?"
    >>> unknown_key_message("zzz", ["epochs", "lr"])
    "unknown key 'zzz' (known: epochs, lr)"
    """
    names = [str(c) for c in choices]
    hit = closest(name, names)
    hint = f"; did you mean {prefix + hit!r}?" if hit is not None else f" (known: {', '.join(names)})"
    return f"unknown {kind} {prefix + str(name)!r}{hint}"


# ---------------------------------------------------------------------------------------------
# reading files


def load_mapping(path: str | os.PathLike[str], what: str = "config", allow_empty: bool = True) -> dict[str, Any]:
    """Read a YAML (``.yaml``/``.yml``/other) or JSON (``.json``) file whose top level is a mapping.

    Errors are :class:`ConfigError` naming ``file:line:col`` (syntax) or the file (missing file,
    top level not a mapping). An empty file is ``{}`` unless ``allow_empty`` is false.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.yaml"
    >>> _ = p.write_text("a: 1\\nb: [x, y]\\n")
    >>> load_mapping(p)
    {'a': 1, 'b': ['x', 'y']}
    >>> _ = p.write_text("a: 1\\nb: [x, y\\n")
    >>> load_mapping(p)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tagpr_rewards.config_io.ConfigError: .../c.yaml:3:1: not valid YAML: ...
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError as e:
        raise ConfigError(f"{what} file {str(p)!r} not found") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{what} file {str(p)!r} cannot be read: {e}") from e
    return parse_mapping(text, str(p), what, allow_empty, json_only=p.suffix.lower() == ".json")


def parse_mapping(text: str, source: str, what: str = "config", allow_empty: bool = True,
                  json_only: bool = False) -> dict[str, Any]:
    """:func:`load_mapping` of text already read (``source`` names it in errors).

    >>> parse_mapping("[1, 2]", "inline")
    Traceback (most recent call last):
    ...
    tagpr_rewards.config_io.ConfigError: inline: expected a mapping of keys at the top level of the config, got list
    """
    text = text.removeprefix("\ufeff")
    if json_only:
        try:
            data = json.loads(text) if text.strip() else None
        except json.JSONDecodeError as e:
            raise ConfigError(f"{source}:{e.lineno}:{e.colno}: not valid JSON: {e.msg}") from e
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
            problem = getattr(e, "problem", None) or str(e)
            raise ConfigError(f"{where}: not valid YAML: {problem}") from e
    if data is None:
        if allow_empty:
            return {}
        raise ConfigError(f"{source}: the {what} is empty")
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping of keys at the top level of the {what}, "
                          f"got {type(data).__name__}")
    return dict(data)


# ---------------------------------------------------------------------------------------------
# typing one value


def parse_value(text: str) -> Any:
    """Type one ``key=value`` value (the one rule every command uses).

    ``true``/``false`` (any case) are booleans, ``none``/``null`` is ``None``, integers and
    finite floats are numbers (``1e-3`` too), text in ``[...]``/``{...}`` is a YAML flow
    collection (JSON included; ``[LaMP-2, LaMP-3]`` needs no quotes), a quoted string is that
    string; anything else is the text itself (so ``bf16``, ``nan`` and ``a=b`` stay strings).

    >>> [parse_value(v) for v in ["3", "0.5", "1e-3", "TRUE", "null", "[a, 2]", '{"k": 1}', "bf16", '"3"']]
    [3, 0.5, 0.001, True, None, ['a', 2], {'k': 1}, 'bf16', '3']
    """
    s = text.strip()
    low = s.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null", "~"):
        return None
    try:
        return int(s)
    except ValueError:
        pass
    try:
        f = float(s)
        if math.isfinite(f):
            return f
    except ValueError:
        pass
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "\"'":
        return s[1:-1]
    if s[:1] in ("[", "{"):
        import yaml

        try:
            return yaml.safe_load(s)
        except yaml.YAMLError:
            return s
    return s


# ---------------------------------------------------------------------------------------------
# strict dataclass loading


def _unwrap_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def check_type(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and return it (ints widen to floats, a
    YAML string like ``1e-3`` becomes a float, ``"a,b"`` a list of strings).

    >>> check_type(2, float, "lr"), check_type("a, b", list[str], "tasks")
    (2.0, ['a', 'b'])
    >>> check_type("yes", bool, "f.yaml: run.resume")
    Traceback (most recent call last):
    ...
    tagpr_rewards.config_io.ConfigError: f.yaml: run.resume: expected true or false, got 'yes'
    """
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return check_type(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if tp is Any or tp is object:
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if isinstance(value, tp):
            return value
        return from_dict(tp, value, source=where.rsplit(": ", 1)[0] if ": " in where else "config",
                         prefix=(where.rsplit(": ", 1)[-1] + ".") if where else "")
    if origin in (list, Sequence, tuple) or tp in (list, tuple):
        if isinstance(value, str):  # "a,b" from an override or a flag
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        inner_args = typing.get_args(tp)
        inner = inner_args[0] if inner_args else Any
        out = [check_type(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if (origin is tuple or tp is tuple) else out
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # PyYAML reads 1e-3 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is str:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    return value


def _default_of(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def from_dict(cls: type[T], data: Any, source: str = "config", prefix: str = "",
              error: type[Exception] = ConfigError, kind: str = "key") -> T:
    """Build dataclass ``cls`` from ``data`` strictly (unknown keys and wrong types are errors).

    A nested dataclass field starts from its default (so ``{"stage1": {"max_steps": 3}}`` keeps
    the other defaults of ``stage1``, including ones its ``default_factory`` set). Errors are
    ``error`` (a :class:`ConfigError` subclass, or ``ValueError``), worded
    ``SOURCE: unknown KIND 'PREFIX.key'; did you mean ...`` (no ``SOURCE: `` when ``source`` is
    empty). ``__post_init__`` checks of ``cls`` run as usual; their errors are re-raised as
    ``error`` naming the source.
    """
    try:
        return _from_dict(cls, data, source, prefix, kind)
    except ConfigError as e:
        if error is ConfigError or isinstance(e, error):
            raise
        raise error(str(e)) from e


def _at(source: str) -> str:
    return f"{source}: " if source else ""


def _from_dict(cls: type[T], data: Any, source: str, prefix: str, kind: str) -> T:
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(f"{_at(source)}{prefix.rstrip('.') or 'config'} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(f"{_at(source)}{unknown_key_message(str(key), list(fields), kind, prefix)}")
        tp = _unwrap_optional(hints[key]) if value is not None else hints[key]
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            if isinstance(value, tp):
                kwargs[key] = value
                continue
            default = _default_of(fields[key])
            base = dataclasses.asdict(default) if dataclasses.is_dataclass(default) and not isinstance(default, type) else {}
            if value is not None and not isinstance(value, Mapping):
                raise ConfigError(f"{_at(source)}{prefix}{key} must be a mapping, got {value!r}")
            kwargs[key] = _from_dict(tp, {**base, **(value or {})}, source, f"{prefix}{key}.", kind)
        else:
            kwargs[key] = check_type(value, hints[key], f"{_at(source)}{prefix}{key}")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:  # a __post_init__ check of cls
        where = prefix.rstrip(".")
        raise ConfigError(f"{_at(source)}{where + ': ' if where else ''}{e}") from e


# ---------------------------------------------------------------------------------------------
# dotted overrides


def _field_type(cls: Any, part: str) -> Any:
    tp = typing.get_type_hints(cls)[part]
    return _unwrap_optional(tp)


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str], schema: type | None = None,
                    what: str = "override") -> dict[str, Any]:
    """Apply dotted ``key=value`` overrides to a raw config mapping (a new dict is returned).

    Values are typed by :func:`parse_value`. With ``schema`` (a dataclass), every key is
    checked against its tree: an unknown key is a :class:`ConfigError` with a did-you-mean
    hint; a key under a free-form ``dict`` field (e.g. ``prmu.train.epochs``) is left to its
    owner's check.

    >>> apply_overrides({"sft": {"epochs": 1}}, ["sft.epochs=3", "data.tasks=[LaMP-2, LaMP-3]"])
    {'sft': {'epochs': 3}, 'data': {'tasks': ['LaMP-2', 'LaMP-3']}}
    """
    out = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in data.items()}
    for ov in overrides:
        if "=" not in ov:
            raise ConfigError(f"{what} {ov!r}: expected dotted key=value, e.g. sft.epochs=2")
        key, _, raw = ov.partition("=")
        key = key.strip()
        parts = key.split(".")
        if not all(parts):
            raise ConfigError(f"{what} {ov!r}: empty key segment in {key!r}")
        if schema is not None:
            cls: Any = schema
            for i, part in enumerate(parts):
                if not dataclasses.is_dataclass(cls):
                    if typing.get_origin(cls) in (dict, Mapping) or cls in (dict, Mapping) or cls is Any:
                        break  # free-form mapping: its owner checks it
                    raise ConfigError(f"{what} {ov!r}: {'.'.join(parts[:i])!r} is a value, not a section")
                names = [f.name for f in dataclasses.fields(cls) if f.init]
                if part not in names:
                    pre = ".".join(parts[:i]) + "." if i else ""
                    raise ConfigError(f"{what} {ov!r}: {unknown_key_message(part, names, prefix=pre)}")
                cls = _field_type(cls, part)
            else:
                if dataclasses.is_dataclass(cls):
                    raise ConfigError(f"{what} {ov!r}: {key!r} is a section; set one of its keys")
        node = out
        for part in parts[:-1]:
            nxt = node.get(part)
            if dataclasses.is_dataclass(nxt) and not isinstance(nxt, type):
                nxt = dataclasses.asdict(nxt)
            nxt = dict(nxt) if isinstance(nxt, Mapping) else {}
            node[part] = nxt
            node = nxt
        node[parts[-1]] = parse_value(raw)
    return out
