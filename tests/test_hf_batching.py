"""The hf backend's length-sorted sub-batching: outputs in the caller's order, equal to one
prompt at a time, batch size sized to the device (issue 11 item 5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tagpr_eval.backends import GenerationConfig, get_backend
from tagpr_eval.config import ConfigError


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    from tagpr_eval.tiny_model import build_tiny_model

    return Path(build_tiny_model(tmp_path_factory.mktemp("tiny"), vocab_size=400, hidden_size=32, num_layers=2))


PROMPTS: list[Any] = [
    "short",
    "a plain string prompt that is a good deal longer than the others, to force padding and sorting",
    [{"role": "user", "content": "Which tag fits the movie about space?"}],
    "mid length prompt here",
    [{"role": "user", "content": "hi"}],
]


@pytest.mark.integration
def test_sorted_sub_batches_keep_order_and_equal_one_by_one(tiny_model: Path) -> None:
    gen = GenerationConfig(max_new_tokens=10)
    b2 = get_backend("hf", pretrained=str(tiny_model), dtype="float32", device="cpu", batch_size=2)
    assert b2.sub_batch_size(100, gen) == 2
    single = [b2.generate([p], gen)[0] for p in PROMPTS]
    assert b2.generate(PROMPTS, gen) == single
    auto = get_backend("hf", pretrained=str(tiny_model), dtype="float32", device="cpu")
    assert auto.sub_batch_size(100, gen) == auto.CPU_BATCH == 8
    assert auto.generate(PROMPTS, gen) == single
    assert auto.generate([], gen) == []


def test_bad_batch_size_is_a_config_error(tiny_model: Path) -> None:
    with pytest.raises(ConfigError, match="batch_size must be auto or a positive integer"):
        get_backend("hf", pretrained=str(tiny_model), dtype="float32", device="cpu", batch_size=0)
