"""The five commands share one grammar (tagpr_rewards.cli_options): checked on their parsers' actions.

tagpr-rewards, tagpr-eval, tagpr-train, tagpr-prmu and tagpr-rm: the same meaning of
``--output``, one override syntax (``--set KEY=VALUE``), ``--quiet``, ``--debug``, ``--tasks``,
``--device auto``, defaults in every ``--help``, and old spellings only as deprecated aliases.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tagpr_rewards.cli_options import OUTPUT_HELP, DeprecatedAlias, HelpFormatter

ROOT = Path(__file__).resolve().parents[1]


def _builders() -> dict[str, Callable[[], argparse.ArgumentParser]]:
    from tagpr_eval.cli import build_parser as eval_parser
    from tagpr_rewards.cli import build_parser as rewards_parser
    from tagpr_rewards.prmu.cli import build_parser as prmu_parser
    from tagpr_rewards.prmu.server_cli import build_parser as rm_parser
    from tagpr_trainers.recipe.cli import build_parser as train_parser

    return {"tagpr-rewards": rewards_parser, "tagpr-eval": eval_parser, "tagpr-train": train_parser,
            "tagpr-prmu": prmu_parser, "tagpr-rm": rm_parser}


BUILDERS = _builders()

#: spellings from before the shared grammar; they may only exist as deprecated aliases
OLD_SPELLINGS = {"--out", "--task", "--no-progress", "--model-args", "--gen-kwargs", "--report", "--plots-dir",
                 "--cache", "--run-name"}

#: the arguments each subcommand needs to parse at all
REQUIRED = {
    "tagpr-eval score": ["--golds", "g.json", "--preds", "p.json"],
    "tagpr-eval compare": ["a", "b"],
    "tagpr-eval report": ["r"],
    "tagpr-eval ls": ["tasks"],
    "tagpr-prmu train": ["--synthetic", "LaMP-2"],
    "tagpr-prmu eval": ["--synthetic", "LaMP-2"],
    **{f"tagpr-train {c}": ["--config", "tiny-cpu"] for c in ("data", "sft", "prmu", "rl", "eval", "all", "show", "ablate")},
}


def _subparsers(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            return dict(a.choices)
    return {}


def _leaves() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    for prog, build in BUILDERS.items():
        for name, sp in _subparsers(build()).items():
            yield f"{prog} {name}", sp


LEAVES = dict(_leaves())


def _options(p: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {s: a for a in p._actions for s in a.option_strings}


def test_the_five_console_scripts_are_these_parsers() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(scripts) == set(BUILDERS)
    assert len(LEAVES) >= 15  # every subcommand was found (guards the checks below)


@pytest.mark.parametrize("prog", sorted(BUILDERS))
def test_top_level_parser_has_debug_and_the_shared_formatter(prog: str) -> None:
    p = BUILDERS[prog]()
    assert p.formatter_class is HelpFormatter and p.prog == prog
    assert "--debug" in _options(p)


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_every_subcommand_has_the_common_options(leaf: str) -> None:
    p = LEAVES[leaf]
    opts = _options(p)
    assert p.formatter_class is HelpFormatter
    assert {"--quiet", "-q", "--debug"} <= set(opts), leaf
    ns = p.parse_args([*REQUIRED.get(leaf, []), "--quiet", "--debug"])
    assert ns.quiet is True and ns.debug is True


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_output_means_the_written_file_or_directory(leaf: str) -> None:
    opts = _options(LEAVES[leaf])
    if "--output" not in opts:
        return
    a = opts["--output"]
    assert a.option_strings == ["--output", "-o"] and a.dest == "output"
    assert a.metavar in ("FILE", "DIR") and (a.help or "").startswith(OUTPUT_HELP), (leaf, a.help)
    assert "parent" not in (a.help or "")


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_old_spellings_are_only_hidden_deprecated_aliases(leaf: str) -> None:
    for flag, a in _options(LEAVES[leaf]).items():
        if flag in OLD_SPELLINGS:
            assert isinstance(a, DeprecatedAlias) and a.help == argparse.SUPPRESS, (leaf, flag)
        if isinstance(a, DeprecatedAlias):
            assert a.new and a.default == argparse.SUPPRESS


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_one_override_syntax(leaf: str) -> None:
    p = LEAVES[leaf]
    opts = _options(p)
    takes_config = any(f in opts for f in ("--config", "--reward-config"))
    if takes_config:
        a = opts.get("--set")
        assert a is not None and isinstance(a, argparse._AppendAction) and a.metavar == "KEY=VALUE", leaf
    visible_positionals = [a.dest for a in p._actions if not a.option_strings and a.help != argparse.SUPPRESS]
    assert "overrides" not in visible_positionals


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_device_defaults_to_auto_and_tasks_is_one_spelling(leaf: str) -> None:
    opts = _options(LEAVES[leaf])
    if "--device" in opts:
        a = opts["--device"]
        assert a.default == "auto" or (a.default is None and "auto" in (a.help or "")), leaf
    for a in set(opts.values()):
        if a.dest == "tasks" and not isinstance(a, DeprecatedAlias):
            assert a.option_strings == ["--tasks"] and a.metavar == "LIST", leaf


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_help_shows_every_default(leaf: str) -> None:
    p = LEAVES[leaf]
    text = " ".join(p.format_help().split())
    for a in p._actions:
        if (not a.option_strings or a.help == argparse.SUPPRESS or a.nargs == 0
                or a.default in (None, argparse.SUPPRESS, [])):
            continue
        assert f"(default: {a.default})" in text, (leaf, a.option_strings)


def _alias_cases() -> Iterator[tuple[str, str]]:
    for leaf, p in LEAVES.items():
        for a in p._actions:
            if isinstance(a, DeprecatedAlias):
                yield leaf, a.option_strings[0]


@pytest.mark.parametrize("leaf, flag", sorted(_alias_cases()))
def test_deprecated_alias_warns_and_means_the_new_spelling(leaf: str, flag: str,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    p = LEAVES[leaf]
    a = _options(p)[flag]
    req = REQUIRED.get(leaf, [])
    old = p.parse_args([*req, flag] if a.nargs == 0 else [*req, flag, "LaMP-2"])
    err = capsys.readouterr().err
    assert re.search(rf"warning: {re.escape(flag)} is deprecated; use ", err), err
    new_flag = a.new.split()[0]
    if new_flag in _options(p) and " " not in a.new:  # a plain renaming: both spellings parse the same
        new = p.parse_args([*req, new_flag] if a.nargs == 0 else [*req, new_flag, "LaMP-2"])
        assert vars(old) == vars(new)
        assert capsys.readouterr().err == ""


def test_debug_before_or_after_the_subcommand() -> None:
    p = BUILDERS["tagpr-eval"]()
    assert p.parse_args(["--debug", "ls", "tasks"]).debug is True
    assert p.parse_args(["ls", "tasks", "--debug"]).debug is True
    assert p.parse_args(["ls", "tasks"]).debug is False


def test_train_positional_overrides_still_work_with_a_warning(capsys: pytest.CaptureFixture[str]) -> None:
    from tagpr_trainers.recipe.cli import main

    assert main(["show", "--config", "tiny-cpu", "sft.epochs=7", "--set", "sft.max_steps=3",
                 "--tasks", "LaMP-2,LaMP-3"]) == 0
    cap = capsys.readouterr()
    assert "positional key=value overrides is deprecated; use --set" in cap.err
    assert "epochs: 7.0" in cap.out and "max_steps: 3" in cap.out and "- LaMP-3" in cap.out
