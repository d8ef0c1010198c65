"""The task families of the synthetic generator, by task: one module per family."""

from __future__ import annotations

from tagpr_eval.data.synthetic.citations import Citations
from tagpr_eval.data.synthetic.core import _FAMILIES, SYNTHETIC_TASKS, Family
from tagpr_eval.data.synthetic.movies import Movies
from tagpr_eval.data.synthetic.reviews import Reviews
from tagpr_eval.data.synthetic.styled import Styled

#: task -> its family
FAMILIES: dict[str, Family] = {t: fam for fam in (Citations(), Movies(), Reviews(), Styled()) for t in fam.tasks}
assert tuple(sorted(FAMILIES)) == SYNTHETIC_TASKS
_FAMILIES.update(FAMILIES)  # core's SyntheticUser.rule / SyntheticTask.oracle look them up there


def family_of(task: str) -> Family:
    """The family generating ``task`` (a canonical name, ``"LaMP-2"``).

    >>> type(family_of("LaMP-5")).__name__
    'Styled'
    """
    try:
        return FAMILIES[task]
    except KeyError:
        raise ValueError(f"no synthetic generator for {task!r} (have {', '.join(SYNTHETIC_TASKS)})") from None
