"""GRPO's per-token log-probabilities over full logits at the completion positions only
(``rl.stageN.fused_lm_head: false``), instead of TRL's fused, chunked LM head.

TRL's ``GRPOTrainer`` patches the policy (and the reference model) with
``trl.trainer.utils.add_fused_lm_head``: ``model(..., labels=…, fused_lm_head=True)`` returns
per-token log-probabilities without materialising the ``(batch, seq, vocab)`` logits. Without
Triton (every CPU) its torch fallback scores *every* position, prompt included, in vocabulary
tiles, and folds the tiles in Python; on the tiny model a GRPO step of 128 completions spent
~1.9 s of its ~7.5 s there (the prompt is ~5x longer than the completion). This head projects
only the positions whose label is not ``-100`` (the completion) through the LM head in one
matmul and lets autograd do the backward. The result is the same to float precision
(``tests/test_recipe_rl_lm_head.py`` checks log-probabilities, entropies and gradients against
TRL's); it materialises ``completion tokens x vocab`` logits, so it is meant for small
vocabularies (the tiny configs); real models keep TRL's head (the default).
"""

from __future__ import annotations

import functools
import types
from typing import Any

__all__ = ["add_completion_lm_head", "head_problem"]


#: config fields through which a model scales its logits beyond ``lm_head(hidden)``
_LOGIT_SCALING = ("final_logit_softcapping", "logit_scale", "output_multiplier", "lm_head_multiplier",
                  "logits_scaling")


def head_problem(model: Any) -> str | None:
    """Why ``model``'s logits are not just its LM head applied to its decoder's last hidden
    state (logit scaling, a mixture of experts' router loss, no separate decoder), or ``None``:
    then the label positions can be projected alone, as here and in the SFT loss."""
    text_config = model.config.get_text_config()
    for attr in _LOGIT_SCALING:
        if getattr(text_config, attr, None) is not None:
            return f"{type(model).__name__} scales its logits ({attr}); the completion-only LM head does not"
    if getattr(text_config, "output_router_logits", False):
        return f"{type(model).__name__} is a mixture of experts"
    if model.base_model is model or model.get_output_embeddings() is None:
        return f"{type(model).__name__} has no separate decoder and LM head"
    return None


def add_completion_lm_head(model: Any, temperature: float = 1.0, outputs: tuple[str, ...] = ("log_probs",)) -> None:
    """Replace the fused LM head TRL added to ``model`` with the completion-only full-logits head.

    Calls without ``fused_lm_head=True`` (generation, evaluation) run the model's own forward,
    unchanged. ``outputs`` names the per-token fields computed besides ``log_probs``: only
    ``"entropy"`` is supported (what GRPO asks of the policy); other fields are ``None``.

    Example (after ``trainer = GRPOTrainer(...)``; :func:`tagpr_trainers.recipe.stages.rl.build_trainer`
    does this when ``rl.stageN.fused_lm_head`` is false)::

        add_completion_lm_head(trainer.model, temperature=0.5, outputs=("log_probs", "entropy"))
        add_completion_lm_head(trainer.ref_model, temperature=0.5)
    """
    import torch
    from trl.trainer.utils import FusedCausalLMOutput

    unsupported = set(outputs) - {"log_probs", "entropy"}
    if unsupported:
        raise ValueError(f"add_completion_lm_head computes log_probs and entropy only, not {sorted(unsupported)}; "
                         "set rl.stageN.fused_lm_head: true for TRL's head")
    problem = head_problem(model)
    if problem:
        raise ValueError(f"{problem}; set rl.stageN.fused_lm_head: true for TRL's head")
    original_forward = type(model).forward.__get__(model)
    inv_t = 1.0 / temperature
    want_entropy = "entropy" in outputs

    @functools.wraps(type(model).forward)
    def _forward(self: Any, *args: Any, fused_lm_head: bool = False, labels: Any = None, shift_labels: Any = None,
                 num_items_in_batch: Any = None, **kwargs: Any) -> Any:
        if not fused_lm_head:
            for k, v in (("labels", labels), ("shift_labels", shift_labels), ("num_items_in_batch", num_items_in_batch)):
                if v is not None:
                    kwargs[k] = v
            return original_forward(*args, **kwargs)
        kwargs["use_cache"] = False
        hidden = self.base_model(*args, **kwargs).last_hidden_state
        if shift_labels is None:
            hidden, labels = hidden[:, :-1], labels[:, 1:]
        else:
            labels = shift_labels
        head = self.get_output_embeddings()
        hidden, labels = hidden.to(head.weight.device), labels.to(head.weight.device)
        mask = labels != -100
        z = head(hidden[mask]).float() * inv_t  # [valid tokens, vocab]
        logp_all = torch.log_softmax(z, dim=-1)
        logp = logp_all.gather(-1, labels[mask].unsqueeze(-1)).squeeze(-1)
        log_probs = logp.new_zeros(mask.shape).masked_scatter(mask, logp)
        entropy = None
        if want_entropy:
            ent = -(logp_all.exp() * logp_all).sum(-1)
            entropy = ent.new_zeros(mask.shape).masked_scatter(mask, ent)
        denom = mask.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch
        return FusedCausalLMOutput(loss=-log_probs.sum() / denom, log_probs=log_probs, entropy=entropy,
                                   log_sum_sq_probs=None, mean_logits=None, is_top1=None, label_mask=mask,
                                   aux_loss=None)

    model.forward = types.MethodType(_forward, model)
