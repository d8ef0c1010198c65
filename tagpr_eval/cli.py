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


class _UserError(Exception):
    pass


def _cmd_run(a: argparse.Namespace) -> int:
    from tagpr_eval.backends import backend_class
    from tagpr_eval.config import load_config, parse_kv_args
    from tagpr_eval.report import markdown_table
    from tagpr_eval.runner import evaluate_run

    model_args = None
    if a.model_args is not None:
        allowed = backend_class(a.model).ARGS if a.model else None
        model_args = parse_kv_args(a.model_args, allowed, f"model arg of backend {a.model!r}")
    gen_kwargs = None
    if a.gen_kwargs is not None:
        from tagpr_eval.config import GenerationConfig

        gen_kwargs = parse_kv_args(a.gen_kwargs, GenerationConfig.keys(), "gen kwarg")
    cfg = load_config(
        a.config, model=a.model, model_args=model_args, tasks=a.tasks, data=a.data, split=a.split,
        retriever=a.retriever, k=a.k, prompt=a.prompt, schema=a.schema, output=a.output, run_name=a.run_name,
        limit=a.limit, batch_size=a.batch_size, gen_kwargs=gen_kwargs, seed=a.seed, bootstrap=a.bootstrap,
        plots=False if a.no_plots else None, rewards=False if a.no_rewards else None,
        progress=False if a.no_progress else None,
    )
    backend_class(cfg.model)  # an unknown backend name fails before any work
    results = evaluate_run(cfg)
    print(markdown_table(results))
    print(f"\nrun directory: {results['files']['run_dir']}")
    return 0


def _cmd_score(a: argparse.Namespace) -> int:
    from tagpr_eval.results import write_json
    from tagpr_eval.scoring import score_files

    rep = score_files(a.golds, a.preds, bootstrap=a.bootstrap, seed=a.seed, task=a.task)
    for note in rep.notes:
        print(f"note: {note}", file=sys.stderr)
    if a.output:
        write_json(a.output, rep.result)
    print(json.dumps(rep.result))
    return 0


def _cmd_compare(a: argparse.Namespace) -> int:
    from tagpr_eval.compare import compare_runs

    c = compare_runs(a.base, a.new)
    print(json.dumps(c.to_dict(), indent=2) if a.json else c.to_markdown())
    return 0


def _cmd_report(a: argparse.Namespace) -> int:
    from tagpr_eval.report import report_runs

    print(report_runs(a.runs, out_dir=a.plots_dir, plots=not a.no_plots))
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

    tasks = [t.strip() for t in a.tasks.split(",") if t.strip()]
    if [t.lower() for t in tasks] == ["all"]:
        tasks = ["LaMP-1", "LaMP-2", "LaMP-3", "LaMP-4", "LaMP-5", "LaMP-7"]  # LaMP-6 is not public (Avocado/LDC)
    kw: dict[str, Any] = {"cache_dir": a.cache, "time_split": bool(a.time_split), "progress": not a.no_progress,
                          "refresh": bool(a.refresh)}
    if a.base_url:
        kw["base_url"] = a.base_url
    out = download(tasks, [s.strip() for s in a.split.split(",") if s.strip()], **kw)
    print(out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of ``tagpr-eval`` (documented in docs/eval.md)."""
    p = argparse.ArgumentParser(prog="tagpr-eval", description="LaMP evaluation harness for personalized LLMs.")
    p.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="evaluate a model on LaMP tasks (resumable)")
    r.add_argument("--config", help="YAML file with EvalConfig keys (CLI flags override it)")
    r.add_argument("--model", help="backend: hf, vllm, openai, baseline, dummy")
    r.add_argument("--model-args", help="backend args: k=v,k=v or JSON (e.g. pretrained=PATH,dtype=bfloat16)")
    r.add_argument("--tasks", help="comma-separated tasks (LaMP-2,LaMP-4) or 'all'")
    r.add_argument("--data", help="LaMP data directory (DIR/LaMP-k/dev_questions.json) or 'synthetic'")
    r.add_argument("--split", help="dev (default), train or test (no golds: predictions only)")
    r.add_argument("--retriever", help="bm25 (default), dense, recency, random, none")
    r.add_argument("--k", type=int, help="profile items per prompt (default 4)")
    r.add_argument("--prompt", help="lamp (official templates, default) or tagged (tagged reasoning)")
    r.add_argument("--schema", help="tag schema for --prompt tagged (default personalization-9, ours)")
    r.add_argument("--output", help="parent directory of run directories (default runs/)")
    r.add_argument("--run-name", help="run directory name (default: derived from the arguments)")
    r.add_argument("--limit", type=int, help="only the first N samples per task")
    r.add_argument("--batch-size", type=int, help="requests per backend call (default 8)")
    r.add_argument("--gen-kwargs", help="generation: max_new_tokens, temperature, top_p, do_sample, seed, stop")
    r.add_argument("--seed", type=int, help="seed for random retrieval, synthetic data and sampling")
    r.add_argument("--bootstrap", type=int, help="aggregate ROUGE by a seeded bootstrap with N resamples")
    r.add_argument("--no-plots", action="store_true", help="do not write PNG plots")
    r.add_argument("--no-rewards", action="store_true", help="do not compute reward components")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    r.set_defaults(func=_cmd_run)

    s = sub.add_parser("score", help="score an official-format prediction file (offline eval_task.py)")
    s.add_argument("--golds", required=True, help="outputs file {task, golds: [{id, output}]}")
    s.add_argument("--preds", required=True, help="prediction file, same layout")
    s.add_argument("--output", help="write the official result dict here (JSON)")
    s.add_argument("--task", help="check that the files are for this task")
    s.add_argument("--bootstrap", type=int, help="ROUGE by a bootstrap of N resamples (default: exact mean)")
    s.add_argument("--seed", type=int, help="bootstrap seed")
    s.set_defaults(func=_cmd_score)

    c = sub.add_parser("compare", help="relative improvement of NEW_RUN over BASE_RUN")
    c.add_argument("base", metavar="BASE_RUN")
    c.add_argument("new", metavar="NEW_RUN")
    c.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    c.set_defaults(func=_cmd_compare)

    rp = sub.add_parser("report", help="table and plots from saved runs")
    rp.add_argument("runs", nargs="+", metavar="RUN_DIR")
    rp.add_argument("--plots-dir", help="where to write the PNGs (default: the run dir when one run is given)")
    rp.add_argument("--no-plots", action="store_true")
    rp.set_defaults(func=_cmd_report)

    ls = sub.add_parser("ls", help="list tasks, models (backends) or tag schemas")
    ls.add_argument("what", choices=["tasks", "models", "schemas"])
    ls.set_defaults(func=_cmd_ls)

    d = sub.add_parser("download", help="fetch the official LaMP files into a cache (resumable)")
    d.add_argument("--tasks", default="all", help="comma-separated tasks or 'all' (LaMP-6 is not public)")
    d.add_argument("--split", default="dev", help="comma-separated: train, dev, test (test has no golds)")
    d.add_argument("--cache", help="cache directory (default ~/.cache/tagpr/lamp)")
    d.add_argument("--base-url", help="mirror of https://ciir.cs.umass.edu/downloads/LaMP")
    d.add_argument("--time-split", action="store_true", help="the time-based split")
    d.add_argument("--refresh", action="store_true", help="download again and accept new checksums")
    d.add_argument("--no-progress", action="store_true")
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
    """Entry point of ``tagpr-eval``; returns the exit code."""
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
