"""`tagpr-eval score`: parity with the official scorer's arithmetic, exit codes, messages, fuzzing,
and the offline `evaluate` metric module."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tagpr_eval.cli import main
from tagpr_eval.scoring import ScoringError, metric_path, score_files
from tagpr_rewards.metrics.lamp import get_task

# ---------------------------------------------------------------- reference (official arithmetic)


def reference_score(task: str, preds: list[str], golds: list[str]) -> dict[str, float]:
    """What LaMP's eval_task.py computes, with sklearn and rouge_score (mean instead of bootstrap)."""
    spec = get_task(task)
    preds = [p.strip() for p in preds]
    golds = [g.strip() for g in golds]
    if spec.kind == "classification":
        from sklearn.metrics import accuracy_score, f1_score

        labels = list(spec.labels)

        def to_id(x: str) -> int:
            return labels.index(x) if x in labels else -1

        p = [to_id(x) for x in preds]
        g = [to_id(x) for x in golds]
        return {"accuracy": float(accuracy_score(g, p)),
                "f1": float(f1_score(g, p, labels=list(range(len(labels))), average="macro"))}
    if spec.kind == "rating":
        from sklearn.metrics import mean_absolute_error, mean_squared_error

        def to_float(x: str, y: float) -> float:
            try:
                v = float(x)
                if math.isfinite(v):
                    return v
            except ValueError:
                pass
            return 1.0 if abs(1 - y) > abs(5 - y) else 5.0

        g = [float(x) for x in golds]
        p = [to_float(x, y) for x, y in zip(preds, g)]
        return {"MAE": float(mean_absolute_error(g, p)), "RMSE": float(math.sqrt(mean_squared_error(g, p)))}
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=False)
    s = [scorer.score_multi([g], p) for p, g in zip(preds, golds)]
    return {"rouge-1": sum(x["rouge1"].fmeasure for x in s) / len(s),
            "rouge-L": sum(x["rougeL"].fmeasure for x in s) / len(s)}


WORDS = ["the", "Café", "naïve", "x-ray", "3D", "AI", "data", "über", "graph", "!!", "model", "東京", "rock'n'roll",
         "", " ", "state-of-the-art", "LLM", "user", "réseau", "42"]


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 12)))


def _pair(task: str, n: int, seed: int) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    spec = get_task(task)
    if spec.kind == "classification":
        labels = list(spec.labels)
        golds = [rng.choice(labels) for _ in range(n)]
        preds = [rng.choice(labels + ["Sci-Fi", " comedy ", "none", ""]) for _ in range(n)]
    elif spec.kind == "rating":
        golds = [str(rng.randint(1, 5)) for _ in range(n)]
        preds = [rng.choice(["1", "2", "3.5", " 4 ", "5", "7", "-1", "four", "", "nan", "inf", "2e0"]) for _ in range(n)]
    else:
        golds = [_text(rng) for _ in range(n)]
        preds = [_text(rng) for _ in range(n)]
    return preds, golds


def _write(path: Path, task_key: str, pairs: list[tuple[str, object]]) -> Path:
    path.write_text(json.dumps({"task": task_key, "golds": [{"id": i, "output": o} for i, o in pairs]}))
    return path


@pytest.mark.parametrize("task", ["LaMP-1", "LaMP-2", "LaMP-2N", "LaMP-3", "LaMP-4", "LaMP-5", "LaMP-7"])
def test_score_files_equals_reference(tmp_path: Path, task: str) -> None:
    preds, golds = _pair(task, 300, seed=hash(task) % 1000)
    key = get_task(task).key
    ids = [f"{i:04d}" for i in range(len(golds))]
    g = _write(tmp_path / "g.json", key, list(zip(ids, golds)))
    # predictions in another order: pairing is by id
    p = _write(tmp_path / "p.json", key, list(reversed(list(zip(ids, preds)))))
    got = score_files(g, p, task=task if task != "LaMP-2N" else None).result
    want = reference_score(task, preds, golds)
    assert list(got) == list(want)
    for m in want:
        assert got[m] == pytest.approx(want[m], abs=1e-12), m


def test_sanity_always_first_label_lamp1(tmp_path: Path) -> None:
    golds = ["[1]", "[2]"] * 50
    g = _write(tmp_path / "g.json", "LaMP_1", [(str(i), x) for i, x in enumerate(golds)])
    p = _write(tmp_path / "p.json", "LaMP_1", [(str(i), "[1]") for i in range(100)])
    r = score_files(g, p).result
    assert r["accuracy"] == 0.5 and r["f1"] == pytest.approx(1 / 3)


def test_bootstrap_option_is_seeded(tmp_path: Path) -> None:
    preds, golds = _pair("LaMP-4", 200, seed=3)
    ids = [str(i) for i in range(200)]
    g = _write(tmp_path / "g.json", "LaMP_4", list(zip(ids, golds)))
    p = _write(tmp_path / "p.json", "LaMP_4", list(zip(ids, preds)))
    a = score_files(g, p, bootstrap=200, seed=1).result
    b = score_files(g, p, bootstrap=200, seed=1).result
    mean = score_files(g, p).result
    assert a == b
    assert abs(a["rouge-1"] - mean["rouge-1"]) < 0.02


# ---------------------------------------------------------------- CLI exit codes and messages


def _run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["score", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_writes_exactly_the_official_dict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    g = _write(tmp_path / "g.json", "LaMP_3", [("0177", "4"), ("0002", "3")])
    p = _write(tmp_path / "p.json", "LaMP_3", [("0002", "nan"), ("0177", "4")])
    code, out, err = _run_cli(capsys, "--golds", str(g), "--preds", str(p), "--output", str(tmp_path / "o.json"))
    assert code == 0
    saved = json.loads((tmp_path / "o.json").read_text())
    assert saved == {"MAE": 1.0, "RMSE": math.sqrt(2.0)}  # nan -> farther of 1 and 5 from gold 3 = 5
    assert "nan/inf" in err and "'0002'" in err


def test_cli_mismatched_ids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    g = _write(tmp_path / "g.json", "LaMP_2", [(f"{i:03d}", "comedy") for i in range(10)])
    p = _write(tmp_path / "p.json", "LaMP_2", [(f"{i:03d}", "comedy") for i in range(2, 12)])
    code, _, err = _run_cli(capsys, "--golds", str(g), "--preds", str(p))
    assert code == 2
    assert "2 gold ids have no prediction" in err and "'000', '001'" in err
    assert "2 prediction ids are not in the golds" in err and "'010', '011'" in err
    assert "Traceback" not in err


def test_cli_wrong_task(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    g = _write(tmp_path / "g.json", "LaMP_2", [("a", "comedy")])
    p = _write(tmp_path / "p.json", "LaMP_3", [("a", "3")])
    code, _, err = _run_cli(capsys, "--golds", str(g), "--preds", str(p))
    assert code == 2 and "wrong task" in err and "LaMP_3" in err
    code, _, err = _run_cli(capsys, "--golds", str(g), "--preds", str(g), "--task", "LaMP-4")
    assert code == 2 and "--task" in err


def test_cli_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run_cli(capsys, "--golds", str(tmp_path / "nope.json"), "--preds", str(tmp_path / "p.json"))
    assert code == 2 and "not found" in err


def test_numbers_as_outputs_are_scored_as_text(tmp_path: Path) -> None:
    g = _write(tmp_path / "g.json", "LaMP_3", [("a", "4"), ("b", "2")])
    p = _write(tmp_path / "p.json", "LaMP_3", [("a", 4), ("b", 2.5)])
    rep = score_files(g, p)
    assert rep.result["MAE"] == 0.25 and any("numbers" in n for n in rep.notes)


# ---------------------------------------------------------------- fuzzing

_VALUE = st.one_of(st.text(max_size=30), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                   st.none(), st.booleans(), st.lists(st.text(max_size=3), max_size=2),
                   st.just("x" * 200_000), st.sampled_from(["nan", "inf", "-inf", "NaN", "1e309", "3", "[1]"]))
_ENTRY = st.one_of(
    st.fixed_dictionaries({"id": st.sampled_from(["0", "1", "2", "3"]), "output": _VALUE}),
    st.fixed_dictionaries({"id": st.one_of(st.integers(), st.none())}),
    st.fixed_dictionaries({"output": _VALUE}),
    _VALUE,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(task=st.sampled_from(["LaMP_1", "LaMP_2", "LaMP_3", "LaMP_5"]),
       entries=st.one_of(st.lists(_ENTRY, max_size=6), _VALUE),
       top=st.sampled_from(["ok", "no-task", "task-int", "list"]))
def test_fuzzed_prediction_files_never_traceback(tmp_path: Path, task: str, entries: object, top: str) -> None:
    gold_out = {"LaMP_1": "[1]", "LaMP_2": "comedy", "LaMP_3": "3", "LaMP_5": "a title"}[task]
    g = _write(tmp_path / "g.json", task, [(str(i), gold_out) for i in range(4)])
    obj: object = {"task": task, "golds": entries}
    if top == "no-task":
        obj = {"golds": entries}
    elif top == "task-int":
        obj = {"task": 2, "golds": entries}
    elif top == "list":
        obj = entries
    p = tmp_path / "p.json"
    p.write_text(json.dumps(obj, allow_nan=True), encoding="utf-8")
    try:
        rep = score_files(g, p)
    except ScoringError as e:
        assert str(p) in str(e) or "ids do not match" in str(e) or "wrong task" in str(e)
        return
    for v in rep.result.values():
        assert isinstance(v, float) and math.isfinite(v)


def test_huge_and_unicode_predictions(tmp_path: Path) -> None:
    g = _write(tmp_path / "g.json", "LaMP_7", [("a", "Café naïve über"), ("b", "東京 tower")])
    p = _write(tmp_path / "p.json", "LaMP_7", [("a", "caf na ber " * 20_000), ("b", "\u0000\ud7ff 東京")])
    r = score_files(g, p).result
    assert r == pytest.approx(reference_score("LaMP-7", ["caf na ber " * 20_000, "\u0000\ud7ff 東京"],
                                              ["Café naïve über", "東京 tower"]))


# ---------------------------------------------------------------- console script and evaluate module


def test_console_script_exit_code(tmp_path: Path) -> None:
    g = _write(tmp_path / "g.json", "LaMP_2", [("a", "comedy")])
    p = _write(tmp_path / "p.json", "LaMP_2", [("b", "comedy")])
    r = subprocess.run([sys.executable, "-m", "tagpr_eval.cli", "score", "--golds", str(g), "--preds", str(p)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "'a'" in r.stderr and "Traceback" not in r.stderr


def test_evaluate_module_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import evaluate

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path / "modules"))
    path = metric_path()
    assert path.exists() and "site-packages" in str(path) or "tagpr_eval" in str(path)
    lamp = evaluate.load(str(path), config_name="LaMP-2")
    preds, golds = _pair("LaMP-2", 50, seed=1)
    assert lamp.compute(predictions=preds, references=golds) == pytest.approx(reference_score("LaMP-2", preds, golds))
    gen = evaluate.load(str(path))
    preds, golds = _pair("LaMP-5", 50, seed=2)
    assert gen.compute(predictions=preds, references=golds, task="LaMP-5") == pytest.approx(
        reference_score("LaMP-5", preds, golds))


# --- edges of `tagpr-eval score` (issue 12, item 8): each exits 2 with a message, no traceback


def test_cli_output_directory_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    g = _write(tmp_path / "g.json", "LaMP_3", [("1", "4")])
    (tmp_path / "outdir").mkdir()
    code, out, err = _run_cli(capsys, "--golds", str(g), "--preds", str(g), "--output", str(tmp_path / "outdir"))
    assert code == 2 and out == ""
    assert f"--output {tmp_path / 'outdir'} is a directory" in err and "result.json" in err
    assert "Traceback" not in err and "IsADirectoryError" not in err


@pytest.mark.parametrize("n, needle", [("1000000000", "more than the 10000"), ("0", "must be positive")])
def test_cli_bootstrap_is_bounded(tmp_path: Path, capsys: pytest.CaptureFixture[str], n: str, needle: str) -> None:
    g = _write(tmp_path / "g.json", "LaMP_4", [("1", "a b")])
    code, out, err = _run_cli(capsys, "--golds", str(g), "--preds", str(g), "--bootstrap", n)
    assert code == 2 and out == ""
    assert "--bootstrap" in err and needle in err


def test_cli_huge_rating_writes_strict_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """-1e308 is a number: MAE is finite, the squared error overflows; JSON has no Infinity."""
    g = _write(tmp_path / "g.json", "LaMP_3", [("1", "4"), ("2", "3")])
    p = _write(tmp_path / "p.json", "LaMP_3", [("1", "-1e308"), ("2", "3")])
    code, out, err = _run_cli(capsys, "--golds", str(g), "--preds", str(p), "--output", str(tmp_path / "o.json"))
    assert code == 0

    def refuse(name: str) -> None:
        raise AssertionError(f"non-strict JSON constant {name}")

    for text in (out, (tmp_path / "o.json").read_text()):
        res = json.loads(text, parse_constant=refuse)
        assert res["RMSE"] is None and res["MAE"] == pytest.approx(5e307)
    assert "RMSE" in err and "null" in err and "'1'" in err  # says what happened and which id


def test_cli_5000_digit_number_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    g = _write(tmp_path / "g.json", "LaMP_3", [("1", "4")])
    p = tmp_path / "p.json"
    p.write_text('{"task": "LaMP_3", "golds": [{"id": "1", "output": ' + "7" * 5000 + "}]}")
    code, out, err = _run_cli(capsys, "--golds", str(g), "--preds", str(p))
    assert code == 2 and out == ""
    assert str(p) in err and "digits" in err and "Traceback" not in err
