"""``tagpr-prmu`` with ``--synthetic``: the PRMU command given tagpr_eval's synthetic LaMP users.

The command itself lives in :mod:`tagpr_rewards.prmu.cli` (the rewards layer, which imports
nothing from ``tagpr_eval``); this module hands it the synthetic generator and the oracle that
removes ambiguous user swaps, so ``tagpr-prmu train --synthetic LaMP-2`` works when tagpr_eval is
installed.

>>> from tagpr_rewards.prmu.cli import build_parser
>>> recs, task, same = synthetic_records(build_parser().parse_args(
...     ["train", "--synthetic", "LaMP-2", "--users", "3", "--questions", "2", "--output", "x"]))
>>> len(recs), task, callable(same)
(6, 'LaMP-2', True)
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["main", "synthetic_records", "synthetic_same_answer"]


def synthetic_same_answer(st: Any) -> Callable[[str, dict[str, Any]], bool]:
    """For synthetic data: would user ``other`` answer record ``r`` with the same gold?"""
    from tagpr_eval.data.lamp_files import LampSample
    from tagpr_eval.data.synthetic import oracle_answer

    def same(other: str, r: dict[str, Any]) -> bool:
        s = LampSample(id=r["id"], input=r["input"], profile=r["profile"], user_id=other)
        return bool(oracle_answer(st.users[other], s) == r["output"])

    return same


def synthetic_records(args: argparse.Namespace) -> tuple[list[dict[str, Any]], str | None,
                                                         Callable[[str, dict[str, Any]], bool] | None]:
    """``--synthetic TASK --users N --questions Q --profile-size P --seed S`` -> records, task, oracle."""
    from tagpr_eval.data.synthetic import generate_task
    from tagpr_rewards.cli_options import single_task
    from tagpr_rewards.prmu.pairs import as_record

    st = generate_task(args.synthetic, n_users=args.users, questions_per_user=args.questions,
                       profile_size=args.profile_size, seed=args.seed or 0, split="train")
    task = single_task(args.tasks, "tagpr-prmu") or args.synthetic
    return [as_record(s) for s in st.data.samples], task, synthetic_same_answer(st)


def main(argv: Sequence[str] | None = None) -> int:
    """``tagpr-prmu`` (see :mod:`tagpr_rewards.prmu.cli`) with ``--synthetic`` served."""
    from tagpr_rewards.prmu.cli import main as prmu_main

    return prmu_main(argv, synthetic=synthetic_records)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
