"""tagpr_eval.config: k=v / JSON parsing, unknown keys, precedence CLI > YAML > defaults."""

from __future__ import annotations

import pytest

from tagpr_eval.config import (
    ConfigError,
    EvalConfig,
    GenerationConfig,
    load_config,
    parse_kv_args,
    parse_value,
)


def test_kv_splits_on_first_equals_and_types_values() -> None:
    got = parse_kv_args("pretrained=/m/a=b,dtype=bfloat16,max_length=2048,trust_remote_code=True,x=None,t=0.5")
    assert got == {"pretrained": "/m/a=b", "dtype": "bfloat16", "max_length": 2048,
                   "trust_remote_code": True, "x": None, "t": 0.5}


def test_kv_keeps_commas_inside_brackets_and_quotes() -> None:
    assert parse_kv_args('stop=["\\n", "</answer>"],max_new_tokens=8') == {
        "stop": ["\n", "</answer>"], "max_new_tokens": 8}
    assert parse_kv_args("text='a,b',n=1") == {"text": "a,b", "n": 1}  # quotes protect, then go


def test_json_object_form_and_errors() -> None:
    assert parse_kv_args('{"a": 1, "b": [1, 2]}') == {"a": 1, "b": [1, 2]}
    with pytest.raises(ConfigError, match="do not parse"):
        parse_kv_args('{"a": 1,')
    with pytest.raises(ConfigError, match="no '='"):
        parse_kv_args("a=1,b")
    with pytest.raises(ConfigError, match="given twice"):
        parse_kv_args("a=1,a=2")


def test_unknown_key_names_key_and_suggests() -> None:
    with pytest.raises(ConfigError) as e:
        parse_kv_args("max_new_token=3", GenerationConfig.keys(), "gen kwarg")
    msg = str(e.value)
    assert "'max_new_token'" in msg and "did you mean 'max_new_tokens'" in msg


def test_parse_value_does_not_turn_nan_into_float() -> None:
    assert parse_value("nan") == "nan" and parse_value("inf") == "inf"
    assert parse_value("0177") == 177  # typed like lm-eval; ids never pass through here


def test_generation_config_validation() -> None:
    assert GenerationConfig.from_dict("stop=</answer>").stop == ["</answer>"]
    with pytest.raises(ConfigError, match="max_new_tokens"):
        GenerationConfig.from_dict({"max_new_tokens": 0})
    with pytest.raises(ConfigError, match="top_p"):
        GenerationConfig.from_dict({"top_p": 2})


def test_precedence_cli_over_yaml_over_defaults(tmp_path) -> None:
    y = tmp_path / "c.yaml"
    y.write_text("model: baseline\nk: 2\nbatch-size: 3\ngen_kwargs: {max_new_tokens: 9, temperature: 0.5}\n")
    cfg = load_config(y, k=5, gen_kwargs={"temperature": 0.1})
    assert cfg.model == "baseline"  # from YAML
    assert cfg.k == 5  # CLI wins
    assert cfg.batch_size == 3  # YAML, dashed spelling accepted
    assert cfg.gen_kwargs.max_new_tokens == 9 and cfg.gen_kwargs.temperature == 0.1  # merged per key
    assert cfg.prompt == EvalConfig().prompt  # default


def test_yaml_unknown_key_names_the_file(tmp_path) -> None:
    y = tmp_path / "c.yaml"
    y.write_text("modle: hf\n")
    with pytest.raises(ConfigError) as e:
        load_config(y)
    assert str(y) in str(e.value) and "did you mean 'model'" in str(e.value)


def test_invalid_values_are_rejected() -> None:
    with pytest.raises(ConfigError, match="did you mean 'tagged'"):
        load_config(prompt="taged")
    with pytest.raises(ConfigError, match="retriever"):
        load_config(retriever="bm26")


def test_tagged_prompt_defaults_to_our_schema() -> None:
    assert EvalConfig(prompt="tagged").resolved_schema() == "personalization-9"
    assert EvalConfig(prompt="tagged", schema="r2p-3").resolved_schema() == "r2p-3"
