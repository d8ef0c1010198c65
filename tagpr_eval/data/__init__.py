"""LaMP data: loading and validating the official files, synthetic data, downloads.

>>> from tagpr_eval.data import load_task
>>> load_task("synthetic", "LaMP-2").task
'LaMP-2'
"""

from __future__ import annotations

import os

from tagpr_eval.data.lamp_files import (
    PROFILE_FIELDS,
    LampDataError,
    LampOutputs,
    LampSample,
    LampTaskData,
    canonical_task,
    load_outputs,
    load_questions,
    load_task_files,
    read_outputs,
    task_key,
    write_outputs,
    write_questions,
    write_task,
)

__all__ = [
    "PROFILE_FIELDS",
    "LampDataError",
    "LampOutputs",
    "LampSample",
    "LampTaskData",
    "canonical_task",
    "load_outputs",
    "load_questions",
    "load_task",
    "load_task_files",
    "read_outputs",
    "task_key",
    "write_outputs",
    "write_questions",
    "write_task",
]


def load_task(data_dir: str | os.PathLike[str], task: str, split: str = "dev", seed: int = 0) -> LampTaskData:
    """Load one task and split: from a directory in the LaMP layout
    (:func:`~tagpr_eval.data.lamp_files.load_task_files`), or, for ``data_dir="synthetic"``, our
    synthetic LaMP-format data generated on the fly (default settings of
    :func:`tagpr_eval.data.synthetic.generate_task`, with ``seed``; ``seed`` is not used for files).

    Here, not in ``lamp_files``, so that the file layer does not import the generator that
    imports it (no import cycle).

    >>> d = load_task("synthetic", "LaMP-3", split="train")
    >>> d.task, d.split, d.samples[0].user_id is not None
    ('LaMP-3', 'train', True)
    """
    if str(data_dir) == "synthetic":
        from tagpr_eval.data.synthetic import generate_task

        return generate_task(canonical_task(task), split=split, seed=seed).data
    return load_task_files(data_dir, task, split)
