"""Synthetic LaMP-format data with known latent user preferences (our design, not LaMP's).

One module per task family — :mod:`~tagpr_eval.data.synthetic.movies` (LaMP-2),
:mod:`~tagpr_eval.data.synthetic.citations` (LaMP-1), :mod:`~tagpr_eval.data.synthetic.reviews`
(LaMP-3), :mod:`~tagpr_eval.data.synthetic.styled` (LaMP-4..7) — each with its vocabulary, users,
generator and oracle behind one interface (:class:`~tagpr_eval.data.synthetic.core.Family`);
:mod:`~tagpr_eval.data.synthetic.generate` drives them, :mod:`~tagpr_eval.data.synthetic.oracle`
reads a question back, :mod:`~tagpr_eval.data.synthetic.heuristics` measures the difficulty.
The generated files are pinned byte for byte (tests/test_data_synthetic_pinned.py).

Users with hidden preferences produce profiles and questions in the exact LaMP layouts
(LaMP-1..7), so the right personalized answer is known (:func:`oracle_answer`) and two users
can need different answers for the same input. It is built to be hard enough that simple
heuristics do not saturate it (see docs/data.md, "Synthetic data"):

* **LaMP-2** (movie tagging, the main training task): each movie description is generated
  from a main content topic (space, romance, crime, …: three sentences) plus, 40% of the
  time, one distracting sentence about another topic, and filler. Each user maps some topics to a personal tag (one user tags space
  stories "sci-fi", another "dystopia"), every other topic to a favourite tag, and their
  profile tags carry label noise. The oracle applies the user's mapping to the query's topic.
  Measured ladder (defaults, dev): profile-majority ≈ 0.3 < nearest-profile-item (BM25)
  ≈ 0.6 < same-topic profile vote ≈ 0.75 < oracle ≈ 0.95 accuracy.
* **LaMP-1**: the user's research interests decide which of two candidate references is cited;
  the paper title is about the wrong candidate's topic half of the time.
* **LaMP-3**: rating = 3 + review sentiment + the user's leniency + a per-category bias (+ noise).
* **LaMP-4/5/6/7**: the content comes from the input; the user's style (prefix, casing,
  length, signature words) decides the surface form, and the user's earlier outputs show it.

Golds are the oracle answer with ``gold_noise`` applied (default 0.05: a random other label,
rating ±1, or a dropped style element); the oracle is the noise-free answer. Everything is
deterministic by ``seed`` (and task and split); splits have disjoint users.

>>> st = generate_task("LaMP-2", n_users=3, questions_per_user=2, profile_size=6, seed=1)
>>> len(st.data), sorted(st.users)[:1]
(6, ['ud0000'])
>>> s = st.data.samples[0]
>>> oracle_answer(st.users[s.user_id], s) in LAMP2_TAGS
True
>>> sample_topic(s) in LAMP2_TOPICS
True
"""

from __future__ import annotations

from tagpr_eval.data.synthetic.core import (
    INSTRUCTIONS,
    LAMP2_TAGS,
    SYNTHETIC_TASKS,
    Explanation,
    Family,
    SyntheticTask,
    SyntheticUser,
)
from tagpr_eval.data.synthetic.generate import generate_task, write_synthetic
from tagpr_eval.data.synthetic.heuristics import heuristic_scores
from tagpr_eval.data.synthetic.movies import LAMP2_TOPICS
from tagpr_eval.data.synthetic.oracle import explain, oracle_answer, sample_topic
from tagpr_eval.data.synthetic.styled import STYLE_CHOICES

__all__ = [
    "INSTRUCTIONS",
    "LAMP2_TAGS",
    "LAMP2_TOPICS",
    "STYLE_CHOICES",
    "SYNTHETIC_TASKS",
    "Explanation",
    "Family",
    "SyntheticTask",
    "SyntheticUser",
    "explain",
    "generate_task",
    "heuristic_scores",
    "oracle_answer",
    "sample_topic",
    "write_synthetic",
]
