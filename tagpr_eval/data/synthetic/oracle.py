"""Reading a synthetic question back: its topic, the oracle answer, the explanation a template
teacher needs — each asked of the task's family."""

from __future__ import annotations

from tagpr_eval.data.lamp_files import LampSample
from tagpr_eval.data.synthetic.core import Explanation, SyntheticUser, _detect_task
from tagpr_eval.data.synthetic.families import family_of
from tagpr_rewards.metrics.lamp import get_task

__all__ = ["explain", "oracle_answer", "sample_topic"]


def sample_topic(sample: LampSample | str, task: str | None = None) -> str | None:
    """The content topic of a synthetic question (read back from its text).

    LaMP-2: the movie's main topic; LaMP-1: the topic of the paper title in the input;
    LaMP-3: the product category; LaMP-4..7: ``None`` (no topic, see :func:`explain`).

    >>> from tagpr_eval.data.synthetic import LAMP2_TOPICS, generate_task
    >>> st = generate_task("LaMP-2", n_users=2, questions_per_user=1, profile_size=3)
    >>> sample_topic(st.data.samples[0]) in LAMP2_TOPICS
    True
    """
    text = sample if isinstance(sample, str) else sample.input
    name = get_task(task).name if task else _detect_task(text)
    return family_of(name).topic(name, text)


def oracle_answer(user: SyntheticUser, sample: LampSample) -> str:
    """The noise-free personalized answer of ``user`` to ``sample`` (read from the sample's text).

    >>> from tagpr_eval.data.synthetic import generate_task
    >>> st = generate_task("LaMP-3", n_users=2, questions_per_user=2, profile_size=4)
    >>> s = st.data.samples[0]
    >>> oracle_answer(st.users[s.user_id], s) in {"1", "2", "3", "4", "5"}
    True
    """
    return family_of(user.task).oracle(user, sample)


def explain(user: SyntheticUser, sample: LampSample) -> Explanation:
    """Everything a template teacher needs to write the reasoning for ``sample``.

    >>> from tagpr_eval.data.synthetic import generate_task
    >>> st = generate_task("LaMP-2", n_users=2, questions_per_user=1, profile_size=10)
    >>> s = st.data.samples[0]
    >>> e = explain(st.users[s.user_id], s)
    >>> e.answer == oracle_answer(st.users[s.user_id], s), all(0 <= i < 10 for i in e.evidence)
    (True, True)
    """
    return family_of(user.task).explain(user, sample, oracle_answer(user, sample))
