"""Launch scripts for OpenRLHF 0.11 and a check of their flags against the installed OpenRLHF.

Shipped scripts (``tagpr_trainers/openrlhf/scripts/``, settings from environment variables):

* ``train_sft.sh`` — ``openrlhf.cli.train_sft`` on the JSONL of :func:`~tagpr_trainers.openrlhf.export.export_sft`;
* ``train_grpo.sh`` — ``openrlhf.cli.train_ppo_ray`` with ``--algo.advantage.estimator group_norm``
  (GRPO) on the JSONL of :func:`~tagpr_trainers.openrlhf.export.export_rl`, rewarded by
  ``tagpr_trainers/openrlhf/reward_func.py`` (or a ``tagpr-rm serve`` URL).

With ``TAGPR_PRINT_ARGS=1`` a script prints the module it would run and its arguments
(NUL-separated) instead of running. :func:`check_script` reads them that way and validates them
with OpenRLHF's *own* parser: OpenRLHF builds its parser inside ``if __name__ == "__main__":``
of modules that import Ray and DeepSpeed at the top, so :func:`cli_parser` reads that block from
the installed source and runs only its parser-building statements (no Ray, no CUDA).
:func:`validate_cli_args` then runs the block's argument validation too (its asserts), without
the final ``train(args)``. Abbreviated flags are rejected (``allow_abbrev=False``), so a flag
passes only if the installed OpenRLHF defines it exactly.

Command line::

    python -m tagpr_trainers.openrlhf.launch check            # check every shipped script
    python -m tagpr_trainers.openrlhf.launch check my_run.sh  # or your own (same TAGPR_PRINT_ARGS protocol)
    python -m tagpr_trainers.openrlhf.launch reward-func      # path for --reward.remote_url

>>> p = cli_parser("train_ppo_ray")
>>> p.parse_args(["--algo.advantage.estimator", "group_norm"]).__dict__["algo.advantage.estimator"]
'group_norm'
>>> p.parse_args(["--algo.advantage.estim", "group_norm"])
Traceback (most recent call last):
...
tagpr_trainers.openrlhf.launch.OpenRLHFArgumentError: openrlhf.cli.train_ppo_ray: unrecognized arguments: --algo.advantage.estim group_norm
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tagpr_trainers.openrlhf import REWARD_FUNC_PATH, SCRIPTS_DIR

__all__ = [
    "PLACEHOLDER_ENV",
    "OpenRLHFArgumentError",
    "check_script",
    "cli_parser",
    "script_argv",
    "shipped_scripts",
    "validate_cli_args",
]

#: Values the scripts' required variables get when only their arguments are printed.
PLACEHOLDER_ENV: dict[str, str] = {
    "MODEL": "/placeholder/model",
    "DATA": "/placeholder/data.jsonl",
    "OUTPUT": "/placeholder/output",
}


class OpenRLHFArgumentError(ValueError):
    """An argument list the installed OpenRLHF would reject."""


def _strict_parser_class(module: str) -> type[argparse.ArgumentParser]:
    class StrictParser(argparse.ArgumentParser):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["allow_abbrev"] = False
            kwargs.setdefault("prog", f"openrlhf.cli.{module}")
            super().__init__(*args, **kwargs)

        def error(self, message: str) -> Any:  # argparse would print and sys.exit(2)
            raise OpenRLHFArgumentError(f"openrlhf.cli.{module}: {message}")

    return StrictParser


def _main_block(module: str) -> tuple[list[ast.stmt], list[ast.stmt], str]:
    """The ``__main__`` block of ``openrlhf.cli.<module>``: (parser statements, validation, path)."""
    spec = importlib.util.find_spec(f"openrlhf.cli.{module}")
    if spec is None or spec.origin is None:
        raise ImportError(
            f"openrlhf.cli.{module} is not installed; pip install --no-deps 'openrlhf>=0.11' pylatexenc "
            "(see docs/trainers.md)"
        )
    path = spec.origin
    tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=path)
    for node in tree.body:
        if (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
                and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__"):
            body = node.body
            break
    else:
        raise RuntimeError(f"{path}: no `if __name__ == '__main__':` block; this OpenRLHF version is not supported")
    for i, stmt in enumerate(body):
        if (isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Call)
                and isinstance(stmt.value.func, ast.Attribute) and stmt.value.func.attr == "parse_args"):
            rest = [s for s in body[i + 1:] if not _is_train_call(s)]
            return body[:i], rest, path
    raise RuntimeError(f"{path}: no `args = parser.parse_args()` in the __main__ block; unsupported OpenRLHF version")


def _is_train_call(stmt: ast.stmt) -> bool:
    return (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
            and isinstance(stmt.value.func, ast.Name) and stmt.value.func.id == "train")


def _namespace(module: str) -> dict[str, Any]:
    import datetime

    shim = SimpleNamespace(**{k: getattr(argparse, k) for k in dir(argparse) if not k.startswith("__")})
    shim.ArgumentParser = _strict_parser_class(module)
    return {"__name__": f"openrlhf_cli_{module}_check", "argparse": shim, "os": os,
            "datetime": datetime.datetime}


def cli_parser(module: str) -> argparse.ArgumentParser:
    """The argument parser of ``openrlhf.cli.<module>`` (``train_sft``, ``train_ppo_ray``, ...), as installed.

    Built by running the parser-building statements of the module's ``__main__`` block, read
    from the installed source; it rejects abbreviations and raises
    :class:`OpenRLHFArgumentError` instead of exiting.
    """
    stmts, _rest, path = _main_block(module)
    ns = _namespace(module)
    exec(compile(ast.Module(body=stmts, type_ignores=[]), path, "exec"), ns)
    parser = ns.get("parser")
    if not isinstance(parser, argparse.ArgumentParser):
        raise RuntimeError(f"{path}: the __main__ block builds no `parser`; unsupported OpenRLHF version")
    return parser


def validate_cli_args(module: str, argv: Sequence[str]) -> Any:
    """Parse ``argv`` and run ``openrlhf.cli.<module>``'s own argument checks, without training.

    Returns the hierarchical ``args`` OpenRLHF would train with; raises
    :class:`OpenRLHFArgumentError` where OpenRLHF would refuse the arguments.

    >>> args = validate_cli_args("train_ppo_ray", ["--algo.advantage.estimator", "group_norm",
    ...                                            "--rollout.n_samples_per_prompt", "4"])
    >>> args.algo.advantage.estimator, args.rollout.n_samples_per_prompt
    ('group_norm', 4)
    >>> validate_cli_args("train_ppo_ray", ["--algo.advantage.estimator", "group_norm",
    ...                                     "--rollout.n_samples_per_prompt", "1"])
    Traceback (most recent call last):
    ...
    tagpr_trainers.openrlhf.launch.OpenRLHFArgumentError: openrlhf.cli.train_ppo_ray rejects the arguments: group_norm requires n_samples_per_prompt > 1
    """
    stmts, rest, path = _main_block(module)
    ns = _namespace(module)
    exec(compile(ast.Module(body=stmts, type_ignores=[]), path, "exec"), ns)
    ns["args"] = ns["parser"].parse_args(list(argv))
    try:
        exec(compile(ast.Module(body=rest, type_ignores=[]), path, "exec"), ns)
    except AssertionError as e:
        raise OpenRLHFArgumentError(f"openrlhf.cli.{module} rejects the arguments: {e}") from e
    return ns["args"]


def shipped_scripts() -> list[Path]:
    """The launch scripts shipped in ``tagpr_trainers/openrlhf/scripts``.

    >>> [p.name for p in shipped_scripts()]
    ['train_grpo.sh', 'train_sft.sh']
    """
    return sorted(SCRIPTS_DIR.glob("*.sh"))


def script_argv(script: str | Path, env: Mapping[str, str] | None = None,
                extra: Sequence[str] = ()) -> tuple[str, list[str]]:
    """``(module, argv)`` a launch script would run (it is run with ``TAGPR_PRINT_ARGS=1``).

    ``env`` adds to the environment; :data:`PLACEHOLDER_ENV` fills required variables not set;
    ``extra`` are arguments given to the script (the shipped ones append them to OpenRLHF's).
    """
    full = {**os.environ, **PLACEHOLDER_ENV, **(env or {}), "TAGPR_PRINT_ARGS": "1"}
    for k in PLACEHOLDER_ENV:
        if k in os.environ and not (env and k in env):
            full[k] = os.environ[k]
    proc = subprocess.run(["bash", str(script), *extra], env=full, capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{script}: exited {proc.returncode} in print mode: {proc.stderr.decode(errors='replace')}")
    parts = proc.stdout.decode().split("\0")
    if parts and parts[-1] == "":
        parts = parts[:-1]
    if not parts or not parts[0].startswith("openrlhf.cli."):
        raise RuntimeError(f"{script}: print mode must output the module (openrlhf.cli.*) then the arguments, NUL-separated")
    return parts[0], parts[1:]


def check_script(script: str | Path, env: Mapping[str, str] | None = None, extra: Sequence[str] = ()) -> Any:
    """Validate every argument ``script`` passes against the installed OpenRLHF (see module doc).

    Returns OpenRLHF's hierarchical ``args``; raises :class:`OpenRLHFArgumentError`.
    """
    module, argv = script_argv(script, env, extra)
    return validate_cli_args(module.removeprefix("openrlhf.cli."), argv)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tagpr_trainers.openrlhf.launch {check [SCRIPT...] | reward-func | scripts}``."""
    ap = argparse.ArgumentParser(prog="python -m tagpr_trainers.openrlhf.launch", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="check launch scripts' flags against the installed openrlhf")
    c.add_argument("scripts", nargs="*", help="scripts (default: the shipped ones)")
    sub.add_parser("reward-func", help="print the path of the reward_func.py entry file")
    sub.add_parser("scripts", help="print the paths of the shipped launch scripts")
    a = ap.parse_args(argv)
    if a.cmd == "reward-func":
        print(REWARD_FUNC_PATH)
        return 0
    if a.cmd == "scripts":
        for p in shipped_scripts():
            print(p)
        return 0
    status = 0
    for script in a.scripts or shipped_scripts():
        try:
            module, args = script_argv(script)
            validate_cli_args(module.removeprefix("openrlhf.cli."), args)
            print(f"ok   {script}: {module} with {sum(x.startswith('--') for x in args)} flags")
        except (OpenRLHFArgumentError, RuntimeError, ImportError) as e:
            print(f"FAIL {script}: {e}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    raise SystemExit(main())
