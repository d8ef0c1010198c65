"""Metric kernels for LaMP, each with a functional and an accumulating form.

* ROUGE-1 / ROUGE-L F identical to ``rouge_score`` (no stemmer), fast:
  :func:`rouge_tokenize`, :func:`rouge_f`, :func:`rouge_per_sample`, :func:`rouge_batch`,
  :class:`RougeAccumulator`, and the official bootstrap :func:`rouge_bootstrap`;
* accuracy / macro-F1 over a full label list: :func:`classification_scores`,
  :class:`ClassificationAccumulator`, :func:`label_index`;
* MAE / RMSE: :func:`rating_scores`, :func:`parse_rating`, :class:`RatingAccumulator`;
* the LaMP task registry and official scorer: :func:`get_task`, :func:`list_tasks`,
  :func:`score_task`, :class:`LampAccumulator`, :class:`TaskSpec`.

Everything here is pure Python (NumPy only for the bootstrap); see docs/metrics.md.

>>> from tagpr_rewards.metrics import score_task
>>> score_task("LaMP-2", ["comedy", "Comedy"], ["comedy", "comedy"])["accuracy"]
0.5
"""

from __future__ import annotations

from tagpr_rewards.metrics.bootstrap import rouge_bootstrap
from tagpr_rewards.metrics.classification import ClassificationAccumulator, classification_scores, label_index
from tagpr_rewards.metrics.labels import LAMP1_LABELS, LAMP2_MOVIE_TAGS, LAMP2_NEWS_CATEGORIES
from tagpr_rewards.metrics.lamp import (
    LampAccumulator,
    TaskSpec,
    align_predictions,
    get_task,
    list_tasks,
    score_task,
)
from tagpr_rewards.metrics.rating import RatingAccumulator, parse_rating, rating_fallback, rating_scores
from tagpr_rewards.metrics.rouge import (
    RougeAccumulator,
    rouge_batch,
    rouge_f,
    rouge_per_sample,
    rouge_tokenize,
)

__all__ = [
    "LAMP1_LABELS",
    "LAMP2_MOVIE_TAGS",
    "LAMP2_NEWS_CATEGORIES",
    "ClassificationAccumulator",
    "LampAccumulator",
    "RatingAccumulator",
    "RougeAccumulator",
    "TaskSpec",
    "align_predictions",
    "classification_scores",
    "get_task",
    "label_index",
    "list_tasks",
    "parse_rating",
    "rating_fallback",
    "rating_scores",
    "rouge_batch",
    "rouge_bootstrap",
    "rouge_f",
    "rouge_per_sample",
    "rouge_tokenize",
    "score_task",
]
