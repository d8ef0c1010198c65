"""The ``tagpr-eval`` command line: one small function per subcommand, each building a config
and calling a library function (so notebooks and trainers call the same code).

Subcommands: ``run``, ``score``, ``compare``, ``report``, ``ls``, ``download``.
User errors (bad config, bad data, unscorable files) exit with code 2 and a one-line message;
``--debug`` shows the traceback.

>>> main(["ls", "models"])
baseline
dummy
hf
openai
vllm
0
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["build_parser", "main"]

EXIT_USAGE = 2


def _run_overrides(a: argparse.Namespace) -> dict[str, Any]:
    """The EvalConfig keys given on the command line: flags, then ``--set`` (which wins)."""
    from pathlib import Path

    from tagpr_eval.config import ConfigError, EvalConfig, parse_kv_args
    from tagpr_rewards.config_io import ConfigError as _ConfigError
    from tagpr_rewards.config_io import apply_overrides

    out: dict[str, Any] = dict(
        model=a.model, tasks=a.tasks, data=a.data, split=a.split, retriever=a.retriever, k=a.k, prompt=a.prompt,
        schema=a.schema, limit=a.limit, batch_size=a.batch_size, seed=a.seed, bootstrap=a.bootstrap,
        plots=False if a.no_plots else None, rewards=False if a.no_rewards else None,
        progress=False if a.quiet else None,
    )
    run_name = getattr(a, "run_name", None)
    if run_name:  # deprecated: the old meaning, --output PARENT --run-name NAME
        out.update(output=a.output or "runs", run_name=run_name)
    elif a.output:  # --output is the run directory itself
        d = Path(a.output)
        out.update(output=str(d.parent), run_name=d.name)
    for key in ("model_args", "gen_kwargs"):  # deprecated --model-args / --gen-kwargs
        if getattr(a, key, None) is not None:
            out[key] = parse_kv_args(getattr(a, key), None, key.replace("_", " ").rstrip("s"))
    if a.device and a.device != "auto":  # auto is every device-taking backend's own default
        out["model_args"] = {**(out.get("model_args") or {}), "device": a.device}
    try:
        sets = apply_overrides({}, a.set, EvalConfig, what="--set")
    except _ConfigError as e:
        raise ConfigError(str(e)) from e
    for k, v in sets.items():
        if k in ("model_args", "gen_kwargs") and isinstance(out.get(k), dict):
            v = {**out[k], **v}
        out[k] = v
    return out


def _cmd_run(a: argparse.Namespace) -> int:
    from tagpr_eval.backends import backend_class
    from tagpr_eval.config import GenerationConfig, load_config, parse_kv_args
    from tagpr_eval.report import markdown_table
    from tagpr_eval.runner import evaluate_run

    kw = _run_overrides(a)
    if kw.get("model_args") is not None:
        allowed = backend_class(kw["model"]).ARGS if kw.get("model") else None
        kw["model_args"] = parse_kv_args(kw["model_args"], allowed, f"model arg of backend {kw.get('model')!r}")
    if kw.get("gen_kwargs") is not None:
        kw["gen_kwargs"] = parse_kv_args(kw["gen_kwargs"], GenerationConfig.keys(), "gen kwarg")
    cfg = load_config(a.config, **kw)
    backend_class(cfg.model)  # an unknown backend name fails before any work
    results = evaluate_run(cfg)
    print(markdown_table(results))
    print(f"\nrun directory: {results['files']['run_dir']}")
    return 0


def _cmd_score(a: argparse.Namespace) -> int:
    from pathlib import Path

    from tagpr_eval.results import write_json
    from tagpr_eval.scoring import ScoringError, score_files
    from tagpr_rewards.cli_options import single_task
    from tagpr_rewards.files import json_text, strict_json
    from tagpr_rewards.metrics.bootstrap import check_resamples

    if a.output and Path(a.output).is_dir():
        raise ScoringError(f"--output {a.output} is a directory; --output takes the JSON file to write, "
                           f"e.g. --output {Path(a.output) / 'result.json'}")
    if a.bootstrap is not None:
        check_resamples(a.bootstrap, "--bootstrap")
    rep = score_files(a.golds, a.preds, bootstrap=a.bootstrap, seed=a.seed,
                      task=single_task(a.tasks, "tagpr-eval score"))
    for note in rep.notes:
        print(f"note: {note}", file=sys.stderr)
    result, nonfinite = strict_json(rep.result)
    if nonfinite:
        print(f"warning: {', '.join(nonfinite)} not a finite number (NaN/inf); written as null, since JSON "
              "has no infinity", file=sys.stderr)
    if a.output:
        write_json(a.output, result)
    print(json_text(result))
    return 0


def _cmd_compare(a: argparse.Namespace) -> int:
    from tagpr_eval.compare import compare_runs

    c = compare_runs(a.base, a.new)
    print(json.dumps(c.to_dict(), indent=2) if a.json else c.to_markdown())
    return 0


def _cmd_report(a: argparse.Namespace) -> int:
    from tagpr_eval.report import report_runs

    notes: list[str] = []
    print(report_runs(a.runs, out_dir=a.output, plots=not a.no_plots, notes=notes))
    for note in notes:  # where the plots went (default: the run dir, or report/ beside several runs)
        print(note, file=sys.stderr)
    return 0


def _cmd_ls(a: argparse.Namespace) -> int:
    if a.what == "tasks":
        from tagpr_rewards.metrics.lamp import get_task, list_tasks

        for t in list_tasks():
            spec = get_task(t)
            print(f"{spec.name}\t{spec.key}\t{spec.kind}")
    elif a.what == "models":
        from tagpr_eval.backends import backend_names

        print("\n".join(backend_names()))
    else:
        from tagpr_rewards.tags import list_schemas

        print("\n".join(list_schemas()))
    return 0


def _cmd_download(a: argparse.Namespace) -> int:
    from tagpr_eval.data.download import download
    from tagpr_rewards.cli_options import split_tasks

    tasks = split_tasks(a.tasks)
    if [t.lower() for t in tasks] == ["all"]:
        tasks = ["LaMP-1", "LaMP-2", "LaMP-3", "LaMP-4", "LaMP-5", "LaMP-7"]  # LaMP-6 is not public (Avocado/LDC)
    kw: dict[str, Any] = {"cache_dir": a.output, "time_split": bool(a.time_split), "progress": not a.quiet,
                          "refresh": bool(a.refresh)}
    if a.base_url:
        kw["base_url"] = a.base_url
    out = download(tasks, [s.strip() for s in a.split.split(",") if s.strip()], **kw)
    print(out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of ``tagpr-eval`` (documented in docs/eval.md; the shared grammar of
    :mod:`tagpr_rewards.cli_options`)."""
    from tagpr_rewards import cli_options as co

    p = co.make_parser("tagpr-eval", "LaMP evaluation harness for personalized LLMs.")
    sub = co.add_subcommands(p)

    r = co.subcommand(sub, "run", "evaluate a model on LaMP tasks (resumable)")
    r.add_argument("--config", help="YAML file with EvalConfig keys (flags and --set override it)")
    r.add_argument("--model", help="backend: hf, vllm, openai, baseline, dummy (default: dummy)")
    co.add_tasks(r, "comma-separated tasks (LaMP-2,LaMP-4) or 'all' (default: all)")
    r.add_argument("--data", help="LaMP data directory (DIR/LaMP-k/dev_questions.json) or 'synthetic' "
                                  "(default: synthetic)")
    r.add_argument("--split", help="dev (default), train or test (no golds: predictions only)")
    r.add_argument("--retriever", help="bm25 (default), dense, recency, random, none")
    r.add_argument("--k", type=int, help="profile items per prompt (default: 4)")
    r.add_argument("--prompt", help="lamp (official templates, default) or tagged (tagged reasoning)")
    r.add_argument("--schema", help="tag schema for --prompt tagged (default: personalization-9, ours)")
    co.add_set(r, "the run's EvalConfig (model_args.pretrained=PATH, gen_kwargs.temperature=0.7, k=8, ...)")
    co.add_device(r, help="model device for the hf backend (auto: CUDA when available, else CPU)")
    co.add_output(r, "DIR", "the run directory (results.json, predictions, plots); rerunning resumes it "
                            "(default: runs/<model>-<hash of the arguments>)")
    co.deprecated(r, "--run-name", new="--output DIR", dest="run_name")
    r.add_argument("--limit", type=int, help="only the first N samples per task")
    r.add_argument("--batch-size", type=int, help="requests per backend call (default: 8)")
    r.add_argument("--seed", type=int, help="seed for random retrieval, synthetic data and sampling (default: 0)")
    r.add_argument("--bootstrap", type=int, help="aggregate ROUGE by a seeded bootstrap with N resamples")
    r.add_argument("--no-plots", action="store_true", help="do not write PNG plots")
    r.add_argument("--no-rewards", action="store_true", help="do not compute reward components")
    co.deprecated(r, "--model-args", new="--set model_args.KEY=VALUE", dest="model_args")
    co.deprecated(r, "--gen-kwargs", new="--set gen_kwargs.KEY=VALUE", dest="gen_kwargs")
    co.deprecated(r, "--no-progress", new="--quiet", dest="quiet", flag=True)
    r.set_defaults(func=_cmd_run)

    s = co.subcommand(sub, "score", "score an official-format prediction file (offline eval_task.py)")
    s.add_argument("--golds", required=True, help="outputs file {task, golds: [{id, output}]}")
    s.add_argument("--preds", required=True, help="prediction file, same layout")
    co.add_output(s, "FILE", "the official result dict (JSON)")
    co.add_tasks(s, "check that the files are for this task (one)")
    co.deprecated(s, "--task", new="--tasks", dest="tasks")
    s.add_argument("--bootstrap", type=int, help="ROUGE by a bootstrap of N resamples (default: exact mean)")
    s.add_argument("--seed", type=int, help="bootstrap seed")
    s.set_defaults(func=_cmd_score)

    c = co.subcommand(sub, "compare", "relative improvement of NEW_RUN over BASE_RUN")
    c.add_argument("base", metavar="BASE_RUN")
    c.add_argument("new", metavar="NEW_RUN")
    c.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    c.set_defaults(func=_cmd_compare)

    rp = co.subcommand(sub, "report", "table and plots from saved runs")
    rp.add_argument("runs", nargs="+", metavar="RUN_DIR")
    co.add_output(rp, "DIR", "the directory for the PNG plots (default: the run dir for one run, "
                             "report/ beside the runs for several)")
    co.deprecated(rp, "--plots-dir", new="--output", dest="output")
    rp.add_argument("--no-plots", action="store_true", help="print the table only")
    rp.set_defaults(func=_cmd_report)

    ls = co.subcommand(sub, "ls", "list tasks, models (backends) or tag schemas")
    ls.add_argument("what", choices=["tasks", "models", "schemas"])
    ls.set_defaults(func=_cmd_ls)

    d = co.subcommand(sub, "download", "fetch the official LaMP files into a cache (resumable)")
    co.add_tasks(d, "comma-separated tasks or 'all' (LaMP-6 is not public)", default="all")
    d.add_argument("--split", default="dev", help="comma-separated: train, dev, test (test has no golds)")
    co.add_output(d, "DIR", "the data directory, DIR/LaMP-k/{split}_*.json (default: ~/.cache/tagpr/lamp)")
    co.deprecated(d, "--cache", new="--output", dest="output")
    d.add_argument("--base-url", help="mirror of https://ciir.cs.umass.edu/downloads/LaMP")
    d.add_argument("--time-split", action="store_true", help="the time-based split")
    d.add_argument("--refresh", action="store_true", help="download again and accept new checksums")
    co.deprecated(d, "--no-progress", new="--quiet", dest="quiet", flag=True)
    d.set_defaults(func=_cmd_download)
    return p


def _user_error_types() -> tuple[type[BaseException], ...]:
    from tagpr_eval.config import ConfigError
    from tagpr_eval.scoring import ScoringError

    types: list[type[BaseException]] = [ConfigError, ScoringError, FileNotFoundError, KeyError]
    try:
        from tagpr_eval.data import LampDataError
        from tagpr_eval.data.download import DownloadError

        types += [LampDataError, DownloadError]
    except ImportError:  # pragma: no cover
        pass
    return tuple(types)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``tagpr-eval``; returns the exit code (141, quietly, when the reader of
    its output goes away: ``tagpr-eval compare A B | head``)."""
    from tagpr_rewards.files import quiet_broken_pipe

    return quiet_broken_pipe(lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if a.debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(a.func(a))
    except _user_error_types() as e:
        if a.debug:
            raise
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"tagpr-eval {a.command}: error: {msg}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as e:  # bad values surfacing from libraries: still a user problem
        if a.debug:
            raise
        print(f"tagpr-eval {a.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"tagpr-eval {a.command}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except ImportError as e:  # an optional dependency is missing: the message has the install hint
        if a.debug:
            raise
        print(f"tagpr-eval {a.command}: error: {e}", file=sys.stderr)
        return 1
    except RuntimeError as e:  # e.g. a server that keeps failing after retries
        if a.debug:
            raise
        print(f"tagpr-eval {a.command}: error: {type(e).__name__}: {e} (rerun to resume; --debug for details)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
