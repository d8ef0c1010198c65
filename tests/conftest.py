"""Shared test set-up: everything offline, deterministic, on CPU."""

from __future__ import annotations

import os

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
