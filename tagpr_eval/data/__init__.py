"""LaMP data: loading and validating the official files, synthetic data, downloads.

>>> from tagpr_eval.data import load_task
>>> load_task("synthetic", "LaMP-2").task
'LaMP-2'
"""

from __future__ import annotations

from tagpr_eval.data.lamp_files import (
    PROFILE_FIELDS,
    LampDataError,
    LampOutputs,
    LampSample,
    LampTaskData,
    canonical_task,
    load_outputs,
    load_questions,
    load_task,
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
    "task_key",
    "write_outputs",
    "write_questions",
    "write_task",
]
