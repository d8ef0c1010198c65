"""Loading, validating and writing LaMP files (tagpr_eval.data.lamp_files)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tagpr_eval.data import (
    LampDataError,
    LampSample,
    LampTaskData,
    load_outputs,
    load_questions,
    load_task,
    write_outputs,
    write_task,
)


def _write(path: Path, obj: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def _q(qid: str = "0177", **kw: object) -> dict:
    rec = {"id": qid, "input": "Which tag? description: a pilot", "profile": [
        {"id": "0001", "description": "a rocket", "tag": "sci-fi", "date": "2001-02-03"},
        {"id": "0002", "description": "a kiss", "tag": "romance", "date": 2004},
    ]}
    rec.update(kw)
    return rec


def _task_dir(tmp_path: Path, questions: list, golds: list | None, split: str = "dev", task: str = "LaMP-2") -> Path:
    _write(tmp_path / task / f"{split}_questions.json", questions)
    if golds is not None:
        _write(tmp_path / task / f"{split}_outputs.json", {"task": task.replace("-", "_"), "golds": golds})
    return tmp_path


def test_load_task_keeps_string_ids_and_leading_zeros(tmp_path: Path) -> None:
    d = _task_dir(tmp_path, [_q("0177"), _q("42", user_id="u7")],
                  [{"id": "0177", "output": "sci-fi"}, {"id": "42", "output": "comedy"}])
    data = load_task(d, "lamp2")
    assert data.task == "LaMP-2" and data.split == "dev"
    assert [s.id for s in data.samples] == ["0177", "42"]
    assert [s.output for s in data.samples] == ["sci-fi", "comedy"]
    assert [s.user_id for s in data.samples] == [None, "u7"]
    assert data.samples[0].profile[1]["date"] == 2004
    assert data.questions_path == d / "LaMP-2" / "dev_questions.json"
    assert data.golds() == {"0177": "sci-fi", "42": "comedy"}


def test_test_split_without_outputs(tmp_path: Path) -> None:
    d = _task_dir(tmp_path, [_q("1")], None, split="test")
    data = load_task(d, "LaMP-2", split="test")
    assert data.outputs_path is None and data.samples[0].output is None and not data.has_golds


def test_int_id_is_an_error_naming_file_and_id(tmp_path: Path) -> None:
    p = _write(tmp_path / "q.json", [_q(), {**_q(), "id": 177}])
    with pytest.raises(LampDataError) as e:
        load_questions(p, "LaMP-2")
    msg = str(e.value)
    assert str(p) in msg and "177" in msg and "string" in msg and "leading" in msg


def test_int_profile_item_id_is_an_error(tmp_path: Path) -> None:
    q = _q("0177")
    q["profile"][1]["id"] = 2
    p = _write(tmp_path / "q.json", [q])
    with pytest.raises(LampDataError, match=r"question '0177', profile item 1: id must be a string; 2 is a number"):
        load_questions(p, "LaMP-2")


def test_duplicate_question_id(tmp_path: Path) -> None:
    p = _write(tmp_path / "q.json", [_q("5"), _q("6"), _q("5")])
    with pytest.raises(LampDataError, match=r"question '5': duplicate id \(also question #0\)"):
        load_questions(p, "LaMP-2")


def test_missing_task_field_names_the_field_and_task_fields(tmp_path: Path) -> None:
    q = _q("9")
    del q["profile"][0]["tag"]
    p = _write(tmp_path / "q.json", [q])
    with pytest.raises(LampDataError) as e:
        load_questions(p, "LaMP-2")
    assert "question '9', profile item 0: missing field 'tag'" in str(e.value)
    assert "description, tag" in str(e.value)


def test_wrong_task_fields(tmp_path: Path) -> None:
    p = _write(tmp_path / "q.json", [_q("9")])
    with pytest.raises(LampDataError, match="missing field 'title'.*another task"):
        load_questions(p, "LaMP-4")


def test_missing_input(tmp_path: Path) -> None:
    q = _q("3")
    del q["input"]
    p = _write(tmp_path / "q.json", [q])
    with pytest.raises(LampDataError, match=r"question '3': missing field 'input'"):
        load_questions(p, "LaMP-2")


def test_malformed_json_reports_line_and_column(tmp_path: Path) -> None:
    p = tmp_path / "q.json"
    p.write_text('[\n  {"id": "1",\n   "input": "x" "profile": []}\n]', encoding="utf-8")
    with pytest.raises(LampDataError) as e:
        load_questions(p, "LaMP-2")
    assert f"{p}:3:17: malformed JSON" in str(e.value)


def test_outputs_file_passed_as_questions(tmp_path: Path) -> None:
    p = _write(tmp_path / "q.json", {"task": "LaMP_2", "golds": []})
    with pytest.raises(LampDataError, match="looks like an outputs file"):
        load_questions(p, "LaMP-2")


def test_question_output_id_mismatch(tmp_path: Path) -> None:
    d = _task_dir(tmp_path, [_q("1"), _q("2")], [{"id": "1", "output": "comedy"}, {"id": "3", "output": "comedy"}])
    with pytest.raises(LampDataError) as e:
        load_task(d, "LaMP-2")
    msg = str(e.value)
    assert "dev_outputs.json" in msg and "1 question id has no output (first: '2')" in msg
    assert "1 output id is not in the questions (first: '3')" in msg


def test_outputs_task_name_checked(tmp_path: Path) -> None:
    p = _write(tmp_path / "o.json", {"task": "LaMP_3", "golds": [{"id": "1", "output": "4"}]})
    with pytest.raises(LampDataError, match="'LaMP_3' but 'LaMP_2' was expected"):
        load_outputs(p, "LaMP-2")
    assert load_outputs(p).task == "LaMP-3"


def test_legacy_news_task_shares_the_file_key(tmp_path: Path) -> None:
    p = _write(tmp_path / "o.json", {"task": "LaMP_2", "golds": [{"id": "1", "output": "sports"}]})
    assert load_outputs(p, "LaMP-2N").task == "LaMP-2N"


def test_missing_directory_and_file_messages(tmp_path: Path) -> None:
    with pytest.raises(LampDataError, match="data directory not found"):
        load_task(tmp_path / "nope", "LaMP-2")
    (tmp_path / "LaMP-2").mkdir()
    with pytest.raises(LampDataError, match="tagpr-eval download"):
        load_task(tmp_path, "LaMP-2")


def test_write_task_round_trip_official_layout(tmp_path: Path) -> None:
    data = LampTaskData("LaMP-3", "train", [
        LampSample("007", "review: good", [{"id": "01", "text": "fine", "score": "4"}], user_id="u1", output="5"),
        LampSample("008", "review: bad", [], user_id=None, output="1"),
    ])
    paths = write_task(data, tmp_path)
    assert paths["questions"] == tmp_path / "LaMP-3" / "train_questions.json"
    raw = json.loads(paths["outputs"].read_text())
    assert raw == {"task": "LaMP_3", "golds": [{"id": "007", "output": "5"}, {"id": "008", "output": "1"}]}
    q = json.loads(paths["questions"].read_text())
    assert q[0] == {"id": "007", "input": "review: good", "user_id": "u1",
                    "profile": [{"id": "01", "text": "fine", "score": "4"}]}
    assert "user_id" not in q[1]
    back = load_task(tmp_path, "LaMP-3", "train")
    assert [(s.id, s.output, s.user_id) for s in back] == [("007", "5", "u1"), ("008", "1", None)]
    assert not list(tmp_path.glob("LaMP-3/.*tmp"))  # no temp files left behind


def test_write_outputs_is_loadable(tmp_path: Path) -> None:
    p = write_outputs(tmp_path / "preds.json", "LaMP-7", {"0001": "hello", "2": ""})
    assert load_outputs(p, "LaMP-7").outputs == {"0001": "hello", "2": ""}


def test_synthetic_data_dir() -> None:
    d = load_task("synthetic", "LaMP-5", split="test")
    assert d.task == "LaMP-5" and d.split == "test" and len(d) > 0
    assert all(s.user_id for s in d) and all(isinstance(s.output, str) for s in d)


def test_synthetic_seed_is_passed_through() -> None:
    a = load_task("synthetic", "LaMP-2", seed=0)
    b = load_task("synthetic", "LaMP-2", seed=1)
    assert [s.input for s in a] != [s.input for s in b]
    assert [s.input for s in a] == [s.input for s in load_task("synthetic", "LaMP-2")]


# ---------------------------------------------------------------------------------------------
# the outputs layout: one reader (read_outputs), one verdict for loading and for scoring
# (this table replaces the reader tests that tests/test_eval_scoring.py and this file each had)

_GOOD = {"task": "LaMP_3", "golds": [{"id": "1", "output": "4"}]}
_CASES: list[tuple[str, object, str | None]] = [
    # (name, file content (bytes, or an object written as JSON), error message part or None if accepted)
    ("well formed", _GOOD, None),
    ("utf-8 bom", b"\xef\xbb\xbf" + json.dumps(_GOOD).encode(), None),
    ("integer output", {"task": "LaMP_3", "golds": [{"id": "1", "output": 4}]}, None),
    ("float output", {"task": "LaMP_3", "golds": [{"id": "1", "output": 4.5}]}, None),
    ("not utf-8", b'{"task": "LaMP_3", "golds": [{"id": "1", "output": "\xff"}]}', "is not UTF-8 (byte"),
    ("malformed", b'{"task": "LaMP_3",\n "golds": [{"id": "1", "output": "4"},]}', ":2:"),
    ("5000 digits", b'{"task": "LaMP_3", "golds": [{"id": "1", "output": ' + b"7" * 5000 + b"}]}", "digits"),
    ("deep nesting", b"[" * 100_000, "nests too deeply"),
    ("questions file", [{"id": "1", "input": "x", "profile": []}], "looks like a questions file"),
    ("no task", {"golds": []}, "'task' must be a string"),
    ("unknown task", {"task": "LaMP_9", "golds": []}, "unknown task 'LaMP_9'"),
    ("golds not a list", {"task": "LaMP_3", "golds": {"1": "4"}}, "'golds' must be a list"),
    ("entry not an object", {"task": "LaMP_3", "golds": ["a"]}, "golds[0] must be an object"),
    ("no id", {"task": "LaMP_3", "golds": [{"output": "4"}]}, "golds[0] has no 'id' key"),
    ("no output", {"task": "LaMP_3", "golds": [{"id": "1"}]}, "id '1' (golds[0]) has no 'output' key"),
    ("integer id", {"task": "LaMP_3", "golds": [{"id": 177, "output": "4"}]}, "golds[0]: id must be a string; 177"),
    ("null id", {"task": "LaMP_3", "golds": [{"id": None, "output": "4"}]}, "id must be a string, got NoneType"),
    ("null output", {"task": "LaMP_3", "golds": [{"id": "1", "output": None}]}, "output must be a string"),
    ("list output", {"task": "LaMP_3", "golds": [{"id": "1", "output": ["4"]}]}, "output must be a string"),
    ("bool output", {"task": "LaMP_3", "golds": [{"id": "1", "output": True}]}, "output must be a string"),
    ("duplicate id", {"task": "LaMP_3", "golds": [{"id": "1", "output": "4"}, {"id": "2", "output": "4"},
                                                  {"id": "1", "output": "3"}]},
     "duplicate id '1' (golds[0] and golds[2])"),
]


def _verdicts(path: Path) -> dict[str, str | None]:
    """The verdict of every command that reads an outputs file: None (accepted) or the message."""
    from tagpr_eval.scoring import ScoringError, read_outputs_file, score_files

    out: dict[str, str | None] = {}
    for name, call in (("load_outputs", lambda: load_outputs(path)),
                       ("read_outputs_file", lambda: read_outputs_file(path, "golds")),
                       ("score_files", lambda: score_files(path, path))):
        try:
            call()
            out[name] = None
        except (LampDataError, ScoringError) as e:  # the same words, but for the file's role
            out[name] = re.sub(r"\b(golds|predictions|outputs) file\b", "<role> file", str(e))
    return out


@pytest.mark.parametrize("name, content, error", _CASES, ids=[c[0] for c in _CASES])
def test_one_reader_one_verdict(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: object,
                                error: str | None) -> None:
    from tagpr_eval.cli import main

    p = tmp_path / "outputs.json"
    p.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
    verdicts = _verdicts(p)
    if error is None:
        assert verdicts == dict.fromkeys(verdicts), verdicts
        assert load_outputs(p).outputs["1"] in ("4", "4.5")
    else:
        assert len(set(verdicts.values())) == 1, verdicts  # the same message from every reader
        msg = next(iter(verdicts.values()))
        assert msg is not None and error in msg and str(p) in msg, msg
    code = main(["score", "--golds", str(p), "--preds", str(p)])
    err = capsys.readouterr().err
    assert (code == 0) == (error is None) and "Traceback" not in err
    if error is not None:
        assert error in err


def test_numbers_are_noted_by_id(tmp_path: Path) -> None:
    p = _write(tmp_path / "o.json", {"task": "LaMP_3", "golds": [{"id": "a", "output": 4}, {"id": "b", "output": "2"},
                                                                 {"id": "c", "output": 2.5}]})
    o = load_outputs(p)
    assert o.outputs == {"a": "4", "b": "2", "c": "2.5"} and o.raw_task == "LaMP_3"
    assert o.notes == [f"{p}: 2 outputs were numbers, taken as their text (ids 'a', 'c')"]


def test_golds_and_questions_pair_with_the_scoring_rule(tmp_path: Path) -> None:
    """One id-pairing function: loading a task and scoring files list the same ids."""
    from tagpr_eval.scoring import ScoringError, score_files
    from tagpr_rewards.metrics.lamp import IdMismatchError, pair_by_id

    with pytest.raises(IdMismatchError) as e:
        pair_by_id({f"{i:03d}": 1 for i in range(10)}, {f"{i:03d}": 1 for i in range(3, 12)})
    assert e.value.missing == ["000", "001", "002"] and e.value.extra == ["010", "011"]
    assert str(e.value) == ("3 gold ids have no prediction (first: '000', '001', '002'); "
                            "2 prediction ids are not in the golds (first: '010', '011')")
    g = _write(tmp_path / "g.json", {"task": "LaMP_2", "golds": [{"id": f"{i:03d}", "output": "comedy"}
                                                                 for i in range(10)]})
    p = _write(tmp_path / "p.json", {"task": "LaMP_2", "golds": [{"id": f"{i:03d}", "output": "comedy"}
                                                                 for i in range(3, 12)]})
    with pytest.raises(ScoringError) as se:
        score_files(g, p)
    assert str(e.value) in str(se.value)


def test_the_file_layer_does_not_import_the_generator() -> None:
    """lamp_files <- synthetic, one way: the file layer imports the generator nowhere (not even
    lazily); `load_task("synthetic", ...)` dispatches in tagpr_eval.data."""
    import ast

    import tagpr_eval.data.lamp_files as lf

    tree = ast.parse(Path(lf.__file__).read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not [m for m in imported if m.startswith("tagpr_eval")], imported
    assert load_task("synthetic", "LaMP-7").task == "LaMP-7"
