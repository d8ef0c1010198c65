"""LaMP metrics as a Hugging Face ``evaluate`` module, loadable offline by path.

The numbers come from :func:`tagpr_rewards.metrics.lamp.score_task` — the same code as
``tagpr-eval score`` — so they equal the official LaMP scorer's (exact mean for ROUGE by
default; ``bootstrap=N, seed=S`` for the official bootstrap aggregation, seeded).

Usage::

    import evaluate
    from tagpr_eval.scoring import metric_path
    lamp = evaluate.load(str(metric_path()), config_name="LaMP-2")
    lamp.compute(predictions=["sci-fi"], references=["sci-fi"])
    # {'accuracy': 1.0, 'f1': ...}

The task comes from ``config_name`` (``LaMP-1`` … ``LaMP-7``, ``LaMP_2``, ``lamp3``) or from
``compute(..., task="LaMP-3")``.
"""

from __future__ import annotations

import datasets
import evaluate

_CITATION = """\
@inproceedings{salemi-etal-2024-lamp,
  title = {LaMP: When Large Language Models Meet Personalization},
  author = {Salemi, Alireza and Mysore, Sheshera and Bendersky, Michael and Zamani, Hamed},
  booktitle = {Proceedings of ACL 2024},
  year = {2024}
}
"""

_DESCRIPTION = """\
The official LaMP metrics: accuracy and macro-F1 over the full label list (LaMP-1/2), MAE and
RMSE with the official fallback for unparseable ratings (LaMP-3), ROUGE-1 and ROUGE-L F-measure
with rouge_score's tokenizer and no stemming (LaMP-4..7).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of predicted outputs (strings).
    references: list of gold outputs (strings), aligned with predictions.
    task: LaMP task name; defaults to the config name given to evaluate.load.
    bootstrap: ROUGE by a bootstrap of this many resamples (default: exact mean).
    seed: bootstrap seed.
Returns:
    the official LaMP result dict for the task.
Examples:
    >>> lamp = evaluate.load("path/to/lamp_metric.py", config_name="LaMP-3")  # doctest: +SKIP
    >>> lamp.compute(predictions=["4"], references=["5"])  # doctest: +SKIP
    {'MAE': 1.0, 'RMSE': 1.0}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class LampMetric(evaluate.Metric):
    """LaMP-1..7 metrics backed by tagpr's single metric implementation."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Value("string")}),
            reference_urls=["https://lamp-benchmark.github.io/", "https://github.com/LaMP-Benchmark/LaMP"],
        )

    def _compute(self, predictions, references, task=None, bootstrap=None, seed=None):  # type: ignore[no-untyped-def]
        from tagpr_rewards.metrics.lamp import get_task, score_task

        name = task or (self.config_name if self.config_name not in (None, "", "default") else None)
        if name is None:
            raise ValueError("say which LaMP task: evaluate.load(path, config_name='LaMP-2') or "
                             "compute(..., task='LaMP-2')")
        spec = get_task(name)
        preds = ["" if p is None else str(p) for p in predictions]
        golds = ["" if r is None else str(r) for r in references]
        return dict(score_task(spec.name, preds, golds, bootstrap=bootstrap, seed=seed))
