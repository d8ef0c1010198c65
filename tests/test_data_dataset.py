"""to_dataset: prompt rows with the column names every part of tagpr reads."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tagpr_eval.data import LampSample, LampTaskData, load_task
from tagpr_eval.dataset import COLUMNS, to_dataset, to_records
from tagpr_eval.retrieval import select_items


def test_columns_tagged() -> None:
    pytest.importorskip("datasets")
    data = load_task("synthetic", "LaMP-2").select(5)
    ds = to_dataset(data, retriever="bm25", k=3, prompt_style="tagged")
    assert ds.column_names == list(COLUMNS) and len(ds) == 5
    row = ds[0]
    s = data.samples[0]
    assert row["id"] == s.id and row["task"] == "LaMP-2" and row["query"] == s.input
    assert row["reference"] == s.output and row["user_id"] == s.user_id
    assert json.loads(row["profile"]) == s.profile  # the full profile, not only the k items
    assert [m["role"] for m in row["prompt"]] == ["system", "user"]
    chosen = select_items("LaMP-2", s.input, s.profile, "bm25", 3)
    assert f"[3] ({chosen[2]['date']}) description: {chosen[2]['description']}" in row["prompt"][1]["content"]
    assert "[4]" not in row["prompt"][1]["content"]


def test_lamp_style_is_a_string_and_k0_is_the_input() -> None:
    data = load_task("synthetic", "LaMP-3").select(3)
    rows = to_records(data, retriever="none", k=4, prompt_style="lamp")
    assert [r["prompt"] for r in rows] == [s.input for s in data]
    rows = to_records(data, retriever="recency", k=2, prompt_style="lamp")
    assert all(isinstance(r["prompt"], str) and r["prompt"].endswith(r["query"]) for r in rows)


def test_user_split_without_user_id_and_test_split_without_golds() -> None:
    data = LampTaskData("LaMP-7", "test", [LampSample("0042", "Paraphrase the following tweet: hi",
                                                      [{"id": "1", "text": "yo"}])])
    (row,) = to_records(data, k=1, prompt_style="lamp")
    assert row["user_id"] == "0042" and row["reference"] is None


def test_import_is_light() -> None:
    code = ("import sys, tagpr_eval, tagpr_eval.data, tagpr_eval.retrieval, tagpr_eval.prompts, tagpr_eval.dataset; "
            "tagpr_eval.load_task('synthetic', 'LaMP-2'); "
            "bad = [m for m in ('torch', 'datasets', 'bm25s', 'sentence_transformers', 'transformers') if m in sys.modules]; "
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
