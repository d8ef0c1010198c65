"""Shared test set-up: everything offline, deterministic, on CPU."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")
os.environ.setdefault("MPLBACKEND", "Agg")


# -- integration tests: skipped by a plain `pytest`, run by scripts/test.sh (CI) -----------------


def pytest_addoption(parser):
    parser.addoption("--integration", action="store_true", default=False,
                     help="also run the slow @pytest.mark.integration tests (scripts/test.sh does)")


def pytest_collection_modifyitems(config, items):
    import pytest

    if config.getoption("--integration") or os.environ.get("TAGPR_INTEGRATION") == "1" or config.option.markexpr:
        return  # asked for (or an explicit -m chooses)
    skip = pytest.mark.skip(reason="integration test: run with --integration (scripts/test.sh runs everything)")
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(skip)


# -- RL prompt rows and a tiny untrained policy (the RL-filter and rl_fit tests) -------------------


def _rl_rows(n: int) -> list[dict]:
    """``n`` RL dataset rows of LaMP-2 (the columns the data stage writes), user ``u{i}``, id ``i``."""
    import json

    profile = json.dumps([{"id": "1", "tag": "sci-fi", "description": "a space film"}])
    return [{"prompt": [{"role": "user", "content": f"Tag movie {i}: a crew lost in space"}], "reference": "sci-fi",
             "user_id": f"u{i}", "profile": profile, "task": "LaMP-2", "query": "a crew lost in space", "id": str(i)}
            for i in range(n)]


@pytest.fixture()
def rl_rows():
    """``rl_rows(n)``: ``n`` RL dataset rows (see :func:`_rl_rows`)."""
    return _rl_rows


@pytest.fixture(scope="session")
def tiny_policy(tmp_path_factory):
    """A tiny untrained causal LM directory (vocabulary 400, hidden 32, 2 layers), built once."""
    from pathlib import Path

    from tagpr_eval.tiny_model import build_tiny_model

    return Path(build_tiny_model(tmp_path_factory.mktemp("policy") / "model", vocab_size=400, hidden_size=32,
                                 num_layers=2))
