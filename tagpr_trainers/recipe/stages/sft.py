"""Stage ``sft``: TRL ``SFTTrainer`` on the tagged chains (loss on the completion only)."""

from __future__ import annotations

import logging
from typing import Any

from tagpr_trainers.recipe.checkpoints import latest_checkpoint
from tagpr_trainers.recipe.context import RunContext
from tagpr_trainers.recipe.stages.common import (
    ensure_base_model,
    load_policy,
    model_available,
    one_batch_loss,
    publish_model,
    read_jsonl,
    save_log_history,
    tokenizer_corpus,
)

__all__ = ["build_trainer", "run"]

logger = logging.getLogger("tagpr_trainers.recipe")


def build_trainer(ctx: RunContext, rows: list[dict[str, Any]], model_path: str) -> Any:
    """An ``SFTTrainer`` for ``rows`` (prompt/completion chat rows) from ``model_path``."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    c = ctx.cfg.sft
    ds = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])
    args = SFTConfig(
        output_dir=str(ctx.path("sft_trainer")),
        num_train_epochs=c.epochs,
        max_steps=1 if ctx.dry_run else c.max_steps,
        learning_rate=c.learning_rate,
        per_device_train_batch_size=c.batch_size,
        gradient_accumulation_steps=c.grad_accum,
        max_length=c.max_length,
        warmup_steps=c.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        weight_decay=c.weight_decay,
        lr_scheduler_type=c.lr_scheduler,
        logging_steps=c.logging_steps,
        save_steps=c.save_steps,
        save_total_limit=2,
        completion_only_loss=True,
        gradient_checkpointing=c.gradient_checkpointing,
        report_to="none",
        seed=ctx.cfg.run.seed,
        dataloader_num_workers=0,
        disable_tqdm=not ctx.progress,
        **ctx.trainer_precision(),
    )
    model, tok = load_policy(model_path, ctx)
    return SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)


def run(ctx: RunContext) -> dict[str, Any]:
    """Train (or resume) SFT; publish ``sft/model``; return loss figures."""
    rows = read_jsonl(ctx.path("sft_data"))
    if not rows:
        raise ValueError(f"{ctx.path('sft_data')}: no SFT rows (every chain was dropped); lower data.threshold "
                         "or check data/report.md")
    corpus = tokenizer_corpus(rows + read_jsonl(ctx.path("rl_data")))
    base = ensure_base_model(ctx, corpus)
    if ctx.dry_run and not model_available(base):
        logger.warning("dry run: base model %s is not available locally (offline); SFT trainer not built", base)
        return {"skipped": f"model {base} not available offline", "rows": len(rows)}
    trainer = build_trainer(ctx, rows, base)
    if ctx.dry_run:
        loss = one_batch_loss(trainer)
        logger.info("dry run: SFT batch loss %.4f on %d rows", loss, len(rows))
        return {"one_batch_loss": loss, "rows": len(rows)}
    resume = latest_checkpoint(ctx.path("sft_trainer"))
    if resume is not None:
        logger.info("sft: resuming from %s", resume)
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    hist = save_log_history(trainer, ctx.path("sft_model").parent / "log_history.json")
    publish_model(trainer, trainer.processing_class, ctx.path("sft_model"))
    losses = [h["loss"] for h in hist if "loss" in h]
    return {"model": str(ctx.path("sft_model")), "rows": len(rows), "steps": trainer.state.global_step,
            "resumed_from": str(resume) if resume else None,
            "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None}
