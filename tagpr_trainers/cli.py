"""Console script ``tagpr-train`` (thin: the recipe's CLI lives in :mod:`tagpr_trainers.recipe.cli`)."""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tagpr-train``; see ``tagpr-train --help`` and docs/recipe.md."""
    from tagpr_rewards.files import quiet_broken_pipe
    from tagpr_trainers.recipe.cli import main as recipe_main

    return quiet_broken_pipe(lambda: recipe_main(argv))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
