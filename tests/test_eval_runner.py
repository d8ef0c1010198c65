"""evaluate_run / `tagpr-eval run`: plumbing on synthetic data, outputs, resume after SIGKILL,
compare and report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tagpr_eval.cli import main
from tagpr_eval.compare import compare_results, relative_improvement
from tagpr_eval.config import EvalConfig
from tagpr_eval.results import SCHEMA_VERSION, load_results
from tagpr_eval.runner import GenerationLog, evaluate_run, resolve_tasks, run_dir_for
from tagpr_eval.scoring import score_files


def _cfg(tmp_path: Path, **kw: object) -> EvalConfig:
    base: dict[str, object] = dict(model="dummy", tasks=["LaMP-2"], limit=10, output=str(tmp_path),
                                   plots=False, progress=False)
    base.update(kw)
    return EvalConfig(**base)  # type: ignore[arg-type]


def test_cli_run_baseline_all_tasks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--model", "baseline", "--data", "synthetic", "--tasks", "all", "--limit", "20",
                 "--output", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    run_dir = Path(out.strip().splitlines()[-1].split(": ", 1)[1])
    res = load_results(run_dir)
    assert res["schema_version"] == SCHEMA_VERSION
    assert set(res["metrics"]) == {f"LaMP-{i}" for i in range(1, 8)}
    assert res["metrics"]["LaMP-3"].keys() == {"MAE", "RMSE"}
    assert res["tasks"]["LaMP-3"]["metric_directions"] == {"MAE": "lower", "RMSE": "lower"}
    for _task, tr in res["tasks"].items():
        pred = run_dir / tr["predictions_file"]
        obj = json.loads(pred.read_text())
        assert obj["task"] == tr["key"] and len(obj["golds"]) == 20
        assert all(isinstance(g["id"], str) for g in obj["golds"])
    # the honest baseline is better than chance on the synthetic LaMP-2 (15 labels)
    assert res["metrics"]["LaMP-2"]["accuracy"] > 1 / 15
    assert (run_dir / "metrics.png").stat().st_size > 1000
    assert "| LaMP-4 | rouge-1 |" in out
    assert res["config"]["tasks"] == [f"LaMP-{i}" for i in range(1, 8)]
    assert res["versions"]["python"] and "git_hash" in res
    assert res["machine"]["cpu"] and res["machine"]["logical_cpus"] >= 1  # what the numbers were computed on


def test_predictions_rescore_to_the_same_metrics(tmp_path: Path) -> None:
    """The written prediction files + the golds reproduce results.json through `tagpr-eval score`."""
    from tagpr_eval.data import load_task

    res = evaluate_run(_cfg(tmp_path, model="baseline", tasks=["LaMP-3", "LaMP-5"], limit=None))
    run_dir = Path(res["files"]["run_dir"])
    for task in ("LaMP-3", "LaMP-5"):
        data = load_task("synthetic", task)
        gold = tmp_path / f"golds_{task}.json"
        gold.write_text(json.dumps({"task": res["tasks"][task]["key"],
                                    "golds": [{"id": s.id, "output": s.output} for s in data.samples]}))
        rep = score_files(gold, run_dir / res["tasks"][task]["predictions_file"])
        assert rep.result == res["metrics"][task]


def test_gold_dummy_scores_perfectly_and_tagged_stats(tmp_path: Path) -> None:
    res = evaluate_run(_cfg(tmp_path, model_args={"mode": "gold"}, tasks=["LaMP-2", "LaMP-3", "LaMP-7"],
                            prompt="tagged", schema="think-answer"))
    assert res["metrics"]["LaMP-2"] == {"accuracy": 1.0, "f1": pytest.approx(res["metrics"]["LaMP-2"]["f1"])}
    assert res["metrics"]["LaMP-3"] == {"MAE": 0.0, "RMSE": 0.0}
    assert res["metrics"]["LaMP-7"]["rouge-1"] == pytest.approx(1.0)
    ts = res["tasks"]["LaMP-2"]["tag_stats"]
    assert ts["format_valid_rate"] == 1.0 and ts["answer_tag_rate"] == 1.0
    assert ts["tag_distribution"] == {"think": 10}
    assert "total" in ts["mean_reward_components"]
    run_dir = Path(res["files"]["run_dir"])
    rec = json.loads((run_dir / "samples.jsonl").read_text().splitlines()[0])
    assert rec["method"] == "tag" and rec["tag_parse"]["valid"] is True
    assert rec["raw_output"].startswith("<think>") and rec["answer"] == rec["gold"]
    assert "total" in rec["rewards"]


def test_the_reward_column_scores_the_recall_against_the_prompt_the_model_saw(tmp_path: Path) -> None:
    # the recall term reads which profile items the prompt shows: scored without the prompt it
    # was None for every sample (the eval's reward column silently dropped it)
    node = {"preset": "stage2", "beta": 0.5, "recall": 0.5, "prmu": None}
    chain = ('<understand-task>Pick one.</understand-task><recall-history>The user\'s history items: '
             'space -> "sci-fi"; space -> "comedy".</recall-history><answer>comedy</answer>')
    res = evaluate_run(_cfg(tmp_path, data="synthetic", prompt="lamp", schema="personalization-9", limit=5,
                            model_args={"text": chain}, reward=node))
    rows = [json.loads(line) for line in (Path(res["files"]["run_dir"]) / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 5
    for r in rows:
        rw = r["rewards"]
        assert rw["recall/shown"] == len(r["retrieved_ids"]) and rw["recall/recalled"] == 2.0
        assert rw["recall"] is not None and 0.0 <= rw["recall"] <= 1.0
        assert rw["total"] == pytest.approx(rw["base"] + 0.5 * rw["tag"] + 0.5 * rw["recall"])
    assert any(r["rewards"]["recall"] > 0 for r in rows)  # some user's shown tags include sci-fi or comedy


def test_lamp_prompt_answers_are_stripped_raw_output(tmp_path: Path) -> None:
    res = evaluate_run(_cfg(tmp_path, model_args={"mode": "constant", "text": "  comedy \n"}))
    assert res["tasks"]["LaMP-2"]["answer_methods"] == {"raw": 10}
    obj = json.loads((Path(res["files"]["run_dir"]) / "predictions_LaMP_2.json").read_text())
    assert {g["output"] for g in obj["golds"]} == {"comedy"}


def test_same_arguments_same_run_dir_and_cache_hits(tmp_path: Path) -> None:
    log = tmp_path / "calls.txt"
    cfg = _cfg(tmp_path, model_args={"mode": "hash", "log_calls": str(log)})
    a = evaluate_run(cfg)
    b = evaluate_run(_cfg(tmp_path, model_args={"mode": "hash", "log_calls": str(log)}))
    assert a["files"]["run_dir"] == b["files"]["run_dir"]
    assert len(log.read_text().splitlines()) == 10  # second run generated nothing
    assert b["tasks"]["LaMP-2"]["n_cached"] == 10 and a["metrics"] == b["metrics"]
    # other generation settings -> other cache key (and another run dir)
    c = evaluate_run(_cfg(tmp_path, model_args={"mode": "hash", "log_calls": str(log)},
                          gen_kwargs={"max_new_tokens": 7}))
    assert c["files"]["run_dir"] != a["files"]["run_dir"]
    assert len(log.read_text().splitlines()) == 20
    # same run name but another model mode: keys differ, so nothing stale is reused
    d1 = evaluate_run(_cfg(tmp_path, run_name="shared", model_args={"mode": "hash", "log_calls": str(log)}))
    d2 = evaluate_run(_cfg(tmp_path, run_name="shared", model_args={"mode": "gold", "log_calls": str(log)}))
    assert len(log.read_text().splitlines()) == 40
    assert d1["metrics"] != d2["metrics"]


def test_generation_log_drops_truncated_line(tmp_path: Path) -> None:
    p = tmp_path / "g.jsonl"
    log = GenerationLog(p)
    log.append([{"key": "a", "output": "x"}, {"key": "b", "output": "ü"}])
    with open(p, "ab") as f:
        f.write(b'{"key": "c", "output": "pa')
    again = GenerationLog(p)
    assert again.outputs == {"a": "x", "b": "ü"} and again.dropped_partial
    again.append([{"key": "c", "output": "z"}])
    assert GenerationLog(p).outputs == {"a": "x", "b": "ü", "c": "z"}


def test_resolve_tasks_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert resolve_tasks(["all"]) == [f"LaMP-{i}" for i in range(1, 8)]
    code = main(["run", "--model", "dummy", "--tasks", "LaMP-9", "--output", str(tmp_path)])
    assert code == 2 and "unknown LaMP task 'LaMP-9'" in capsys.readouterr().err
    code = main(["run", "--model", "dumy", "--tasks", "LaMP-2", "--output", str(tmp_path)])
    assert code == 2 and "did you mean 'dummy'" in capsys.readouterr().err
    code = main(["run", "--model", "dummy", "--model-args", "mod=hash", "--output", str(tmp_path)])
    assert code == 2 and "did you mean 'mode'" in capsys.readouterr().err
    code = main(["run", "--model", "dummy", "--data", str(tmp_path / "nowhere"), "--tasks", "LaMP-2",
                 "--output", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "nowhere" in err and "Traceback" not in err


def test_bad_data_file_names_file_and_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "data" / "LaMP-2"
    d.mkdir(parents=True)
    (d / "dev_questions.json").write_text(json.dumps([{"id": "01", "input": "description: x", "profile": "oops"}]))
    code = main(["run", "--model", "dummy", "--data", str(tmp_path / "data"), "--tasks", "LaMP-2",
                 "--output", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and "dev_questions.json" in err and "01" in err


def test_test_split_without_golds_writes_predictions_only(tmp_path: Path) -> None:
    from tagpr_eval.data import load_task, write_questions

    data = load_task("synthetic", "LaMP-2")
    d = tmp_path / "data" / "LaMP-2"
    d.mkdir(parents=True)
    write_questions(d / "test_questions.json", data.samples[:5])
    res = evaluate_run(_cfg(tmp_path / "runs", model="baseline", data=str(tmp_path / "data"), split="test"))
    assert res["metrics"] == {} and res["tasks"]["LaMP-2"]["scored"] is False
    assert len(json.loads((Path(res["files"]["run_dir"]) / "predictions_LaMP_2.json").read_text())["golds"]) == 5


def test_compare_sign_convention_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert relative_improvement("MAE", 0.5, 0.25) == 0.5  # lower MAE is an improvement
    assert relative_improvement("RMSE", 0.5, 1.0) == -1.0
    assert relative_improvement("accuracy", 0.5, 0.75) == 0.5
    assert relative_improvement("rouge-L", 0.0, 0.1) is None
    base = evaluate_run(_cfg(tmp_path, model_args={"mode": "hash"}, tasks=["LaMP-2", "LaMP-3"], limit=30))
    new = evaluate_run(_cfg(tmp_path, model="baseline", tasks=["LaMP-2", "LaMP-3"], limit=30))
    c = compare_results(base, new)
    for task, metric in (("LaMP-2", "accuracy"), ("LaMP-3", "MAE")):
        b, n = base["metrics"][task][metric], new["metrics"][task][metric]
        assert c.per_task[task] == relative_improvement(metric, b, n)
    assert c.average == pytest.approx(sum(c.per_task.values()) / 2)
    code = main(["compare", base["files"]["run_dir"], new["files"]["run_dir"]])
    out = capsys.readouterr().out
    assert code == 0 and "(base - new) / base for MAE and RMSE" in out and "Average relative improvement" in out
    code = main(["report", base["files"]["run_dir"], new["files"]["run_dir"], "--plots-dir", str(tmp_path / "rep")])
    out = capsys.readouterr().out
    assert code == 0 and "| LaMP-3 | MAE ↓ |" in out and (tmp_path / "rep" / "metrics.png").exists()


def test_ls(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ls", "tasks"]) == 0 and "LaMP-2\tLaMP_2\tclassification" in capsys.readouterr().out
    assert main(["ls", "schemas"]) == 0 and "personalization-9" in capsys.readouterr().out


# ---------------------------------------------------------------- kill and resume


def _run_args(out: Path, log: Path, delay: float) -> list[str]:
    return [sys.executable, "-m", "tagpr_eval.cli", "run", "--model", "dummy", "--model-args",
            f"mode=hash,log_calls={log},delay={delay}", "--tasks", "LaMP-2,LaMP-4", "--limit", "40",
            "--batch-size", "4", "--prompt", "tagged", "--output", str(out), "--run-name", "r", "--no-progress",
            "--no-plots"]


@pytest.mark.integration
def test_sigkill_mid_run_then_resume_is_identical(tmp_path: Path) -> None:
    # uninterrupted reference run
    ref_log = tmp_path / "ref_calls.txt"
    subprocess.run(_run_args(tmp_path / "ref", ref_log, 0.0), check=True, capture_output=True)
    # interrupted run: kill -9 once some batches are in the generation log
    log = tmp_path / "calls.txt"
    gens = tmp_path / "int" / "r" / "generations.jsonl"
    proc = subprocess.Popen(_run_args(tmp_path / "int", log, 0.2), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        if gens.exists() and len(gens.read_bytes().splitlines()) >= 30:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # also simulate a kill in the middle of writing a line
    with open(gens, "ab") as f:
        f.write(b'{"key": "abc", "task": "LaMP-2", "id": "9", "outp')
    done_before = {json.loads(line)["id"] + "/" + json.loads(line)["task"]
                   for line in gens.read_bytes().splitlines()[:-1]}
    assert 30 <= len(done_before) < 80
    calls_before = len(log.read_text().splitlines())
    subprocess.run(_run_args(tmp_path / "int", log, 0.0), check=True, capture_output=True)
    calls_after = [tuple(x.split("\t")) for x in log.read_text().splitlines()[calls_before:]]
    regenerated = {f"{i}/{t}" for t, i in calls_after} & done_before
    assert not regenerated  # nothing that was in the log was generated again
    assert len(calls_after) == 80 - len(done_before)
    ref_dir, int_dir = tmp_path / "ref" / "r", tmp_path / "int" / "r"
    ref, got = load_results(ref_dir), load_results(int_dir)
    assert got["metrics"] == ref["metrics"]
    for tr in ref["tasks"].values():
        assert (int_dir / tr["predictions_file"]).read_bytes() == (ref_dir / tr["predictions_file"]).read_bytes()
    assert (int_dir / "samples.jsonl").read_bytes() == (ref_dir / "samples.jsonl").read_bytes()
    assert len(GenerationLog(int_dir / "generations.jsonl").outputs) == 80


def test_run_dir_is_stable_and_hides_secrets(tmp_path: Path) -> None:
    a = run_dir_for(_cfg(tmp_path, model="openai", model_args={"model": "m", "api_key": "sekret"}))
    b = run_dir_for(_cfg(tmp_path, model="openai", model_args={"model": "m", "api_key": "other"}))
    assert a == b and a.name.startswith("openai-m-")


@pytest.mark.integration
def test_cli_download_then_run_from_cache(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`tagpr-eval download` against a real HTTP server on 127.0.0.1 serving official-layout files,
    then `tagpr-eval run --data CACHE` on what it fetched."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from tagpr_eval.data import load_task, write_outputs, write_questions
    from tagpr_eval.data.download import official_urls

    root = tmp_path / "www"
    data = load_task("synthetic", "LaMP-2")
    for kind, url in official_urls("LaMP-2", "dev", base_url="http://x/LaMP").items():
        dest = root / url.split("http://x/", 1)[1]
        dest.parent.mkdir(parents=True, exist_ok=True)
        if kind == "questions":
            write_questions(dest, data.samples[:12])
        else:
            write_outputs(dest, "LaMP-2", {s.id: s.output for s in data.samples[:12]})

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{srv.server_address[1]}/LaMP"
        cache = tmp_path / "cache"
        code = main(["download", "--tasks", "LaMP-2", "--split", "dev", "--cache", str(cache), "--base-url", base,
                     "--no-progress"])
        out, err = capsys.readouterr()
        assert code == 0, err
        assert (cache / "LaMP-2" / "dev_questions.json").exists()
        code = main(["download", "--tasks", "LaMP-6", "--cache", str(cache), "--base-url", base, "--no-progress"])
        assert code == 2 and "LDC" in capsys.readouterr().err
    finally:
        srv.shutdown()
        srv.server_close()
    code = main(["run", "--model", "baseline", "--data", out.strip().splitlines()[-1], "--tasks", "all",
                 "--output", str(tmp_path / "runs"), "--no-progress", "--no-plots"])
    out = capsys.readouterr().out
    assert code == 0 and "| LaMP-2 | accuracy |" in out and "LaMP-3" not in out


# --- options that work or are refused before anything is written (issue 10, item 4)


@pytest.mark.parametrize("retriever", ["none", "recency", "random"])
def test_baseline_retriever_options_run_every_task(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   retriever: str) -> None:
    run_dir = tmp_path / "run"
    code = main(["run", "--model", "baseline", "--set", f"model_args.retriever={retriever}", "--tasks", "all",
                 "--limit", "3", "--output", str(run_dir), "--quiet", "--no-plots"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert set(load_results(run_dir)["metrics"]) == {f"LaMP-{i}" for i in range(1, 8)}


@pytest.mark.parametrize("args, needle", [
    (["--set", "model_args.retriever=bm52"], "did you mean 'bm25'"),
    (["--set", "model_args.rating=avg"], "rating must be one of"),
    (["--set", "model_args.retriver=bm25"], "did you mean 'retriever'"),
])
def test_bad_baseline_options_are_refused_before_any_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                              args: list[str], needle: str) -> None:
    out = tmp_path / "runs"
    code = main(["run", "--model", "baseline", *args, "--tasks", "all", "--limit", "3", "--output", str(out / "run"),
                 "--quiet", "--no-plots"])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "Traceback" not in err
    assert not out.exists()


def test_data_that_fails_at_a_later_task_leaves_no_run_directory(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Recency retrieval needs dates; LaMP-4's items here have none. The failure used to come
    after LaMP-1..3 were generated and written into a half-finished run directory."""
    from tagpr_eval.data.synthetic import write_synthetic

    data = tmp_path / "data"
    write_synthetic(data, ["LaMP-2", "LaMP-4"], splits=["dev"], n_users=3, questions_per_user=1, profile_size=4)
    q = data / "LaMP-4" / "dev_questions.json"
    qs = json.loads(q.read_text())
    for s in qs:
        for it in s["profile"]:
            it.pop("date")
    q.write_text(json.dumps(qs))
    out = tmp_path / "runs"
    code = main(["run", "--model", "dummy", "--data", str(data), "--tasks", "LaMP-2,LaMP-4", "--retriever",
                 "recency", "--output", str(out / "run"), "--quiet", "--no-plots"])
    err = capsys.readouterr().err
    assert code == 2 and "has no 'date'" in err
    assert not out.exists()


def test_task_spellings_are_one_run(tmp_path: Path) -> None:
    dirs = {run_dir_for(_cfg(tmp_path, tasks=[t])) for t in ("LaMP-2", "LaMP2", "lamp-2", "LaMP_2", "lamp2")}
    assert len(dirs) == 1
    assert run_dir_for(_cfg(tmp_path, tasks=["lamp_4", "LaMP2"])) == run_dir_for(_cfg(tmp_path, tasks=["LaMP-2", "LaMP-4"]))
    first = evaluate_run(_cfg(tmp_path, tasks=["LaMP2"]))
    again = evaluate_run(_cfg(tmp_path, tasks=["LaMP_2"]))  # resumes: nothing regenerated
    assert again["files"]["run_dir"] == first["files"]["run_dir"]
    assert again["tasks"]["LaMP-2"]["n_cached"] == 10 and again["tasks"]["LaMP-2"]["n_generated"] == 0
    assert again["run_key"] == first["run_key"] and list(tmp_path.iterdir()) == [Path(first["files"]["run_dir"])]


# --- report: readable names, a default place for plots, and it says where (issue 10, item 6)


def test_report_on_two_runs_writes_plots_to_a_default_and_says_where(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    a = evaluate_run(_cfg(tmp_path, model="baseline", run_name=None, plots=False))
    b = evaluate_run(_cfg(tmp_path, model="dummy", model_args={"mode": "constant"}, plots=False))
    code = main(["report", a["files"]["run_dir"], b["files"]["run_dir"]])
    out, err = capsys.readouterr()
    assert code == 0
    target = tmp_path / "report"
    assert (target / "metrics.png").stat().st_size > 1000
    assert f"plots: {target / 'metrics.png'}" in err
    # readable run names, not the config hash of the default run directory
    header = out.splitlines()[0]
    assert header == "| Task | Metric | baseline | dummy (constant) |", header


def test_legend_names_tell_colliding_runs_apart() -> None:
    from tagpr_eval.report import _unique_labels

    def run(d: str, **cfg: object) -> dict:
        return {"files": {"run_dir": d}, "config": {"model": "baseline", "retriever": "bm25", "k": 4, **cfg}}

    labels = _unique_labels([run("runs/baseline-0123456789", model_args={"retriever": None}),
                             run("runs/baseline-abcdef0123", k=8),
                             run("runs/my-run")])
    assert labels == ["baseline · retriever=none, prompt k=4", "baseline · retriever=default, prompt k=8", "my-run"]
    assert _unique_labels([run("runs/baseline-0123456789"), run("runs/baseline-abcdef0123")]) == [
        "baseline #1", "baseline #2"]
