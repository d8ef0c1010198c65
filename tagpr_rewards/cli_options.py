"""The one command-line grammar of the five tagpr commands (tagpr-rewards, tagpr-eval,
tagpr-train, tagpr-prmu, tagpr-rm).

Every command builds its parser from these helpers, so an option means the same everywhere:

========================  =====================================================================
``--output PATH``         where the command's result is written: the file itself or the
                          directory itself (a run directory, a checkpoint), never a parent
``--set KEY=VALUE``       a dotted override of the command's config (repeatable), typed by
                          :func:`tagpr_rewards.config_io.parse_value`, checked with did-you-mean
``--tasks LIST``          LaMP task names, comma-separated (``LaMP-2,LaMP-4``; ``all`` where a
                          command takes several)
``--device DEVICE``       ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda``, ``cuda:N``
``--quiet``, ``-q``       no progress bars; warnings and errors only
``--debug``               tracebacks and DEBUG logs (before or after the subcommand)
========================  =====================================================================

Every ``--help`` shows the defaults. Old spellings that users may already script (``--out``,
``--task``, ``--no-progress``, ``--model-args`` ...) still work as deprecated aliases: they print
one warning naming the new spelling and are hidden from ``--help``.

>>> p = make_parser("demo", "A demo command.")
>>> sub = add_subcommands(p)
>>> s = subcommand(sub, "go", "do it")
>>> add_output(s, "DIR", "the run directory")
>>> deprecated(s, "--out", new="--output", dest="output")
>>> s.parse_args(["--out", "x"]).output   # prints a warning on stderr
'x'
>>> sorted(vars(p.parse_args(["go", "--quiet"])))
['command', 'debug', 'output', 'quiet']
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "OUTPUT_HELP",
    "DeprecatedAlias",
    "HelpFormatter",
    "add_device",
    "add_output",
    "add_set",
    "add_subcommands",
    "add_tasks",
    "deprecated",
    "make_parser",
    "resolve_device",
    "setup_logging",
    "single_task",
    "split_tasks",
    "subcommand",
    "warn_deprecated",
]

#: How every ``--output`` help starts (the test of the five parsers checks it).
OUTPUT_HELP = "write the result here:"


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows ``(default: X)`` for every option that has a default value (not for flags or
    options whose default is "not given"), and keeps descriptions as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "%(default)" in text or action.default in (None, argparse.SUPPRESS, [], ()) or action.nargs == 0:
            return text
        if not action.option_strings and action.nargs not in ("?", "*"):
            return text
        return text + " (default: %(default)s)"


def make_parser(prog: str, description: str, epilog: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser of a command, with ``--debug``."""
    p = argparse.ArgumentParser(prog=prog, description=description, epilog=epilog, formatter_class=HelpFormatter)
    p.add_argument("--debug", action="store_true", help="show tracebacks and DEBUG logs")
    return p


def add_subcommands(p: argparse.ArgumentParser, dest: str = "command") -> Any:
    """The subcommand group of ``p`` (a subcommand is required)."""
    return p.add_subparsers(dest=dest, required=True, metavar="COMMAND")


def subcommand(sub: Any, name: str, help: str, description: str | None = None,
               common: bool = True) -> argparse.ArgumentParser:
    """A subcommand parser with the shared formatter and, when ``common``, ``--quiet`` and ``--debug``.

    ``--debug`` is accepted after the subcommand as well as before it.
    """
    s: argparse.ArgumentParser = sub.add_parser(name, help=help, description=description or help,
                                                formatter_class=HelpFormatter)
    if common:
        s.add_argument("--quiet", "-q", action="store_true", help="no progress bars; warnings and errors only")
        s.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show tracebacks and DEBUG logs")
    return s


def add_output(p: argparse.ArgumentParser, kind: str, what: str, required: bool = False,
               default: str | None = None) -> None:
    """``--output FILE|DIR``: the file or directory the result is written to (never a parent)."""
    if kind not in ("FILE", "DIR"):
        raise ValueError(f"add_output kind must be FILE or DIR, got {kind!r}")
    p.add_argument("--output", "-o", metavar=kind, required=required, default=default,
                   help=f"{OUTPUT_HELP} {what}")


def add_set(p: argparse.ArgumentParser, what: str) -> None:
    """``--set KEY=VALUE`` (repeatable): dotted overrides of ``what``."""
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="set",
                   help=f"override a key of {what} (dotted, repeatable; values are typed: 3, 0.5, true, "
                        "null, [a, b], else text)")


def add_tasks(p: argparse.ArgumentParser, help: str, default: str | None = None, required: bool = False) -> None:
    """``--tasks LIST``: comma-separated LaMP task names."""
    p.add_argument("--tasks", metavar="LIST", default=default, required=required, help=help)


def add_device(p: argparse.ArgumentParser, default: str | None = "auto", help: str | None = None) -> None:
    """``--device``: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    p.add_argument("--device", default=default,
                   help=help or "auto (CUDA when available, else CPU), cpu, cuda or cuda:N")


def split_tasks(value: str | Sequence[str] | None) -> list[str]:
    """``"LaMP-2, LaMP-4"`` -> ``["LaMP-2", "LaMP-4"]``.

    >>> split_tasks("LaMP-2, LaMP-4,"), split_tasks(None)
    (['LaMP-2', 'LaMP-4'], [])
    """
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [t.strip() for t in items if t and t.strip()]


def single_task(value: str | None, prog: str) -> str | None:
    """The one task of a ``--tasks`` value for commands that score one task (else exit 2).

    >>> single_task("LaMP-2", "x"), single_task(None, "x")
    ('LaMP-2', None)
    """
    tasks = split_tasks(value)
    if len(tasks) > 1:
        raise SystemExit(f"{prog}: error: --tasks takes one task here, got {', '.join(tasks)}")
    return tasks[0] if tasks else None


def resolve_device(device: str | None) -> str:
    """``auto``/``None`` -> ``cuda`` when torch sees a GPU, else ``cpu``; anything else as given
    (imports torch only for ``auto``)."""
    if device not in (None, "auto"):
        return str(device)
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def warn_deprecated(old: str, new: str, prog: str | None = None) -> None:
    """One line on stderr: ``PROG: warning: OLD is deprecated; use NEW``."""
    print(f"{prog or _prog()}: warning: {old} is deprecated; use {new}", file=sys.stderr)


def _prog() -> str:
    import os

    return os.path.basename(sys.argv[0]) or "tagpr"


class DeprecatedAlias(argparse.Action):
    """An old spelling: warns once per use, then stores like the new option (hidden in --help)."""

    def __init__(self, option_strings: Sequence[str], dest: str, new: str = "",
                 convert: Callable[[Any], Any] | None = None, append: bool = False, **kw: Any) -> None:
        self.new = new
        self.convert = convert
        self.append = append
        kw.setdefault("help", argparse.SUPPRESS)
        super().__init__(option_strings, dest, **kw)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        warn_deprecated(option_string or self.option_strings[0], self.new, parser.prog)
        value = self.const if self.nargs == 0 else values
        if self.convert is not None:
            value = self.convert(value)
        if self.append:
            items = list(getattr(namespace, self.dest, None) or [])
            items.extend(value if isinstance(value, list) else [value])
            value = items
        setattr(namespace, self.dest, value)


def deprecated(p: argparse.ArgumentParser, *flags: str, new: str, dest: str, flag: bool = False,
               const: Any = True, convert: Callable[[Any], Any] | None = None, append: bool = False,
               **kw: Any) -> None:
    """Add ``flags`` as a deprecated alias of ``new`` (stored into ``dest``).

    ``flag=True`` makes it take no value and store ``const``; ``append=True`` adds to a list
    (``--set``); ``convert`` maps the given value first.
    """
    if flag:
        kw.update(nargs=0, const=const)
    p.add_argument(*flags, action=DeprecatedAlias, new=new, dest=dest, convert=convert, append=append,
                   default=argparse.SUPPRESS, **kw)


def setup_logging(args: argparse.Namespace, default: int = logging.INFO,
                  fmt: str = "%(levelname)s %(name)s: %(message)s") -> None:
    """DEBUG with ``--debug``, WARNING with ``--quiet``, else ``default``."""
    level = logging.DEBUG if getattr(args, "debug", False) else (
        logging.WARNING if getattr(args, "quiet", False) else default)
    logging.basicConfig(level=level, format=fmt)
