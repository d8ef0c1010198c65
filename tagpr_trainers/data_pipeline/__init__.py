"""The tagged-chain data pipeline: teacher -> tagger -> filter -> SFT chat data.

* :mod:`~tagpr_trainers.data_pipeline.teacher` — who writes the reasoning: :class:`TemplateTeacher`
  (offline, synthetic data) or :class:`LLMTeacher` (any ``tagpr_eval`` backend);
* :mod:`~tagpr_trainers.data_pipeline.tagger` — who labels each step with a schema tag:
  :class:`EmbeddingTagger` (offline sentence encoder, order-constrained) or :class:`LLMTagger`;
* :mod:`~tagpr_trainers.data_pipeline.build` — filters by the task metric and writes the SFT and RL
  datasets with a report (kept/dropped counts, tag distribution).

``tagpr-train data --config tiny-cpu`` runs it (see docs/recipe.md).
"""

from __future__ import annotations

from tagpr_trainers.data_pipeline.tagger import EmbeddingTagger, LLMTagger, TeacherTagger, render_chain
from tagpr_trainers.data_pipeline.teacher import Chain, LLMTeacher, Step, TeacherJob, TemplateTeacher

__all__ = [
    "Chain",
    "EmbeddingTagger",
    "LLMTagger",
    "LLMTeacher",
    "Step",
    "TeacherJob",
    "TeacherTagger",
    "TemplateTeacher",
    "render_chain",
]
