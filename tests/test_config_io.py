"""tagpr_rewards.config_io: the one mapping reader, strict dataclass loader, override rule, did-you-mean."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tagpr_rewards.config_io import (
    ConfigError,
    apply_overrides,
    did_you_mean,
    from_dict,
    load_mapping,
    parse_value,
)


@dataclass
class Inner:
    lr: float = 1e-3
    steps: int = 10
    flag: bool = False
    extra: dict[str, object] = field(default_factory=dict)


@dataclass
class Outer:
    name: str = "run"
    tasks: list[str] = field(default_factory=lambda: ["LaMP-2"])
    limit: int | None = None
    a: Inner = field(default_factory=Inner)
    b: Inner = field(default_factory=lambda: Inner(flag=True))


def test_yaml_and_json_syntax_errors_name_file_line_col(tmp_path: Path) -> None:
    y = tmp_path / "c.yaml"
    y.write_text("a: 1\nb: {x: 1\n")
    with pytest.raises(ConfigError, match=r"c\.yaml:3:1: not valid YAML"):
        load_mapping(y)
    j = tmp_path / "c.json"
    j.write_text('{"a": 1,\n "b": }')
    with pytest.raises(ConfigError, match=r"c\.json:2:7: not valid JSON"):
        load_mapping(j)
    with pytest.raises(ConfigError, match="not found"):
        load_mapping(tmp_path / "missing.yaml")
    y.write_text("- a\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_mapping(y)
    y.write_text("\ufeffa: 1\n")  # a BOM is not part of the first key
    assert load_mapping(y) == {"a": 1}
    y.write_text("")
    assert load_mapping(y) == {}


def test_from_dict_is_strict_and_keeps_nested_defaults() -> None:
    cfg = from_dict(Outer, {"b": {"steps": 3}, "a": {"lr": 1}, "tasks": "LaMP-2, LaMP-4"})
    assert cfg.b == Inner(steps=3, flag=True)  # the factory's flag=True survives
    assert cfg.a.lr == 1.0 and isinstance(cfg.a.lr, float)
    assert cfg.tasks == ["LaMP-2", "LaMP-4"]
    with pytest.raises(ConfigError, match=r"^f\.yaml: unknown key 'b\.stesp'; did you mean 'b\.steps'\?$"):
        from_dict(Outer, {"b": {"stesp": 1}}, "f.yaml")
    with pytest.raises(ConfigError, match=r"f\.yaml: a\.steps: expected an integer, got 'x'"):
        from_dict(Outer, {"a": {"steps": "x"}}, "f.yaml")
    with pytest.raises(ConfigError, match=r"a\.flag: expected true or false, got 1"):
        from_dict(Outer, {"a": {"flag": 1}})
    with pytest.raises(ConfigError, match=r"limit: expected an integer"):
        from_dict(Outer, {"limit": 2.5})
    assert from_dict(Outer, {"limit": None}).limit is None


def test_overrides_checked_against_the_tree() -> None:
    data = apply_overrides({}, ["a.lr=0.5", "tasks=[LaMP-1, LaMP-3]", "a.extra.anything=1", "b.flag=false"],
                           Outer)
    assert data == {"a": {"lr": 0.5, "extra": {"anything": 1}}, "tasks": ["LaMP-1", "LaMP-3"],
                    "b": {"flag": False}}
    with pytest.raises(ConfigError, match=r"unknown key 'a\.lrr'; did you mean 'a\.lr'\?"):
        apply_overrides({}, ["a.lrr=1"], Outer)
    with pytest.raises(ConfigError, match="is a section"):
        apply_overrides({}, ["a=1"], Outer)
    with pytest.raises(ConfigError, match="is a value, not a section"):
        apply_overrides({}, ["name.x=1"], Outer)
    with pytest.raises(ConfigError, match="expected dotted key=value"):
        apply_overrides({}, ["a.lr"], Outer)


@pytest.mark.parametrize("text, value", [
    ("3", 3), ("-2", -2), ("0.5", 0.5), ("1e-3", 0.001), ("True", True), ("false", False), ("null", None),
    ("None", None), ("[a, b]", ["a", "b"]), ('["x", 1]', ["x", 1]), ("{k: 1}", {"k": 1}), ("bf16", "bf16"),
    ("nan", "nan"), ("'3'", "3"), ("a=b", "a=b"), ("", ""), ("[unclosed", "[unclosed"),
])
def test_one_value_typing_rule(text: str, value: object) -> None:
    assert parse_value(text) == value and type(parse_value(text)) is type(value)


def test_did_you_mean() -> None:
    assert did_you_mean("stgae1", ["stage1", "eval"]) == "did you mean 'stage1'?"
    assert did_you_mean("qqq", ["stage1"]) == ""
