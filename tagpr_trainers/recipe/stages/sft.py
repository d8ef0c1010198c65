"""Stage ``sft``: TRL ``SFTTrainer`` on the tagged chains (loss on the completion only)."""

from __future__ import annotations

import logging
from typing import Any

from tagpr_trainers.recipe.checkpoints import latest_checkpoint
from tagpr_trainers.recipe.context import RunContext, cpu_cores
from tagpr_trainers.recipe.stages.common import (
    LOG_HISTORY,
    checkpointing_kwargs,
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


def build_trainer(ctx: RunContext, rows: list[dict[str, Any]], model_path: str, arm: str = "sft") -> Any:
    """An ``SFTTrainer`` for ``rows`` (prompt/completion chat rows) from ``model_path``.

    ``arm``: ``sft`` (tagged chains, ``sft/trainer``) or ``direct`` (the direct-answer base arm,
    ``direct/trainer``); both use the same ``sft`` settings."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    c = ctx.cfg.sft
    ds = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])
    args = SFTConfig(
        output_dir=str(ctx.path(f"{arm}_trainer")),
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
        completion_only_loss=c.completion_only_loss,
        **checkpointing_kwargs(SFTConfig, c.gradient_checkpointing),
        report_to="none",
        seed=ctx.cfg.run.seed,
        dataloader_num_workers=0,
        disable_tqdm=not ctx.progress,
        **ctx.trainer_precision(),
        **c.trl_args,
    )
    model, tok = load_policy(model_path, ctx)
    cls = SFTTrainer if c.fused_lm_head else full_logits_trainer_class()
    return cls(model=model, args=args, train_dataset=ds, processing_class=tok)


def full_logits_trainer_class() -> type:
    """``SFTTrainer`` with the plain cross-entropy over the label positions' logits instead of
    TRL's fused, chunked LM head (``sft.fused_lm_head: false``). The loss is the same (mean over
    the label tokens of the batch, ``-100`` ignored) and so are the logged ``entropy``,
    ``mean_token_accuracy`` and ``num_tokens``; it skips the chunking, which costs more than it
    saves for a small vocabulary on CPU, and projects only the positions that have a label
    through the LM head (with the loss on the completion only, the prompt's ~3/4 of the
    positions need no logits: a tiny-model step 0.19 s → 0.14 s of forward and backward on one
    core, docs/recipe.md "Speed on CPU"). Models that scale their logits, and evaluation
    (``return_outputs``), take the model's own head over every position."""
    import torch
    from trl import SFTTrainer

    class FullLogitsSFTTrainer(SFTTrainer):  # type: ignore[misc]
        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            labels = inputs["labels"]
            fwd = {k: v for k, v in inputs.items() if k not in ("labels", "completion_mask")}
            target = labels[:, 1:]
            mask = target != -100
            outputs = None
            if return_outputs or not _plain_head(model):
                outputs = model(**fwd, use_cache=False)
                logits = outputs.logits[:, :-1][mask.to(outputs.logits.device)].float()
            else:  # the decoder, then the LM head at the label positions only
                hidden = model.base_model(**fwd, use_cache=False).last_hidden_state[:, :-1]
                head = model.get_output_embeddings()
                logits = head(hidden[mask.to(hidden.device)].to(head.weight.device)).float()
            target = target[mask].to(logits.device)
            n = mask.sum() if num_items_in_batch is None else num_items_in_batch
            # one log-softmax serves the loss and the logged entropy / token accuracy
            logp = torch.log_softmax(logits, dim=-1)
            nll = -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
            loss = nll.sum() / torch.as_tensor(n, device=logits.device).clamp(min=1)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes
            self._log_token_metrics(logp.detach(), target, inputs)
            return (loss, outputs) if return_outputs else loss

        def _log_token_metrics(self, logp: Any, target: Any, inputs: dict[str, Any]) -> None:
            """``logp``/``target``: the label positions only (``[n, vocab]`` / ``[n]``)."""
            metrics = getattr(self, "_metrics", None)
            if metrics is None:  # a TRL without the metrics store: nothing to log into
                return
            mode = "train" if getattr(self.model, "training", True) else "eval"
            with torch.no_grad():
                entropy = -(logp.exp() * logp).sum(-1)
                valid = self.accelerator.gather_for_metrics(torch.as_tensor(target.numel(), device=logp.device)).sum()
                ent = self.accelerator.gather_for_metrics(entropy.sum()).sum()
                top1 = self.accelerator.gather_for_metrics((logp.argmax(-1) == target).sum()).sum()
            metrics[mode]["entropy"].append((ent / valid).item() if valid > 0 else 0.0)
            metrics[mode]["mean_token_accuracy"].append((top1 / valid).item() if valid > 0 else 0.0)
            if mode == "train" and "attention_mask" in inputs and hasattr(self, "_total_train_tokens"):
                self._total_train_tokens += self.accelerator.gather_for_metrics(
                    inputs["attention_mask"].sum()).sum().item()
                metrics[mode]["num_tokens"] = [self._total_train_tokens]

    return FullLogitsSFTTrainer


def _plain_head(model: Any) -> bool:
    """Whether the label positions of ``model`` can be projected through its LM head alone: a
    bare ``PreTrainedModel`` (a DDP or compile wrapper must see the whole forward) whose logits
    are its head applied to its decoder's last hidden state."""
    from tagpr_trainers.recipe.stages.lm_head import head_problem

    return hasattr(model, "base_model") and hasattr(model, "config") and head_problem(model) is None


def _train_arm(ctx: RunContext, arm: str, rows: list[dict[str, Any]], base: str) -> dict[str, Any]:
    trainer = build_trainer(ctx, rows, base, arm)
    if ctx.dry_run:
        loss = one_batch_loss(trainer)
        logger.info("dry run: %s batch loss %.4f on %d rows", arm, loss, len(rows))
        return {"one_batch_loss": loss, "rows": len(rows)}
    final = ctx.path(f"{arm}_model")
    if (final / "config.json").is_file() and not ctx.force:  # published by an interrupted run of this stage
        logger.info("%s: %s exists; not retrained", arm, final)
        return {"model": str(final), "rows": len(rows), "reused": True}
    resume = latest_checkpoint(ctx.path(f"{arm}_trainer"))
    if resume is not None:
        logger.info("%s: resuming from %s", arm, resume)
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    hist = save_log_history(trainer, final.parent / LOG_HISTORY)
    publish_model(trainer, trainer.processing_class, final)
    losses = [h["loss"] for h in hist if "loss" in h]
    return {"model": str(final), "rows": len(rows), "steps": trainer.state.global_step,
            "resumed_from": str(resume) if resume else None,
            "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None}


def run(ctx: RunContext) -> dict[str, Any]:
    """Train (or resume) SFT on the tagged chains (``sft/model``) and, with ``sft.direct``, the
    direct-answer base arm (``direct/model``); return loss figures per arm."""
    rows = read_jsonl(ctx.path("sft_data"))
    if not rows:
        raise ValueError(f"{ctx.path('sft_data')}: no SFT rows (every chain was dropped); lower data.threshold "
                         "or check data/report.md")
    direct_rows = read_jsonl(ctx.path("direct_data")) if ctx.cfg.sft.direct else []
    corpus = tokenizer_corpus(rows + read_jsonl(ctx.path("rl_data")))
    base = ensure_base_model(ctx, corpus)
    if ctx.dry_run and not model_available(base):
        logger.warning("dry run: base model %s is not available locally (offline); SFT trainer not built", base)
        return {"skipped": f"model {base} not available offline", "rows": len(rows)}
    if direct_rows and _parallel_arms(ctx):
        return _train_arms_in_parallel(ctx, rows, direct_rows, base)
    out = _train_arm(ctx, "sft", rows, base)
    if direct_rows:
        out["direct"] = _train_arm(ctx, "direct", direct_rows, base)
    return out


def _parallel_arms(ctx: RunContext) -> bool:
    """Train the two arms side by side, each on its own half of the CPU cores, when that is
    faster: on CPU with at least two cores (``sft.parallel_arms``). A tiny model trains fastest
    on one thread per process at SFT's batch size (measured here: two threads on one model were
    slower than one), so two arms on two cores beat one after the other."""
    cores = cpu_cores()
    return (ctx.cfg.sft.parallel_arms and not ctx.dry_run and not ctx.use_cuda and len(cores) >= 2)


def _arm_worker(cfg: Any, arm: str, rows: list[dict[str, Any]], base: str, progress: bool, force: bool,
                cores: list[int | None], queue: Any) -> None:
    import os

    try:
        pinned = {c for c in cores if c is not None}
        if pinned and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, pinned)
        import torch
        from transformers import set_seed

        # its half of the cores, at most run.threads (a tiny model: one thread, see _parallel_arms)
        torch.set_num_threads(max(1, min(len(cores), cfg.run.threads or len(cores))))
        set_seed(cfg.run.seed)
        queue.put((arm, _train_arm(RunContext(cfg, progress=progress, force=force), arm, rows, base), None))
    except BaseException as e:  # reported to the parent, which raises
        import traceback

        queue.put((arm, None, f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))


def _train_arms_in_parallel(ctx: RunContext, rows: list[dict[str, Any]], direct_rows: list[dict[str, Any]],
                            base: str) -> dict[str, Any]:
    """The tagged-SFT and direct-answer arms in two processes (spawned), each pinned to its half
    of the cores. Each arm is the same computation as when trained alone (same seed, data order
    and settings) with that many threads."""
    import multiprocessing as mp

    cores = cpu_cores()
    half = len(cores) // 2
    shares = [cores[:half], cores[half:2 * half]]
    mpc = mp.get_context("spawn")
    queue = mpc.Queue()
    procs = [mpc.Process(target=_arm_worker, args=(ctx.cfg, arm, r, base, ctx.progress and arm == "sft",
                                                  ctx.force, shares[i], queue), daemon=False)
             for i, (arm, r) in enumerate((("sft", rows), ("direct", direct_rows)))]
    logger.info("sft: training the tagged-SFT and direct-answer arms in parallel (%d core(s) each)", half)
    for p in procs:
        p.start()
    import queue as queue_mod

    results: dict[str, Any] = {}
    errors = []
    arms = ["sft", "direct"]
    while len(results) < len(procs):
        try:
            arm, res, err = queue.get(timeout=5)
        except queue_mod.Empty:
            for name, p in zip(arms, procs):  # a worker killed without reporting (OOM, signal)
                if name not in results and not p.is_alive() and p.exitcode not in (0, None):
                    results[name] = None
                    errors.append(f"{name}: worker exited with code {p.exitcode}")
            continue
        if err:
            errors.append(f"{arm}: {err}")
        results[arm] = res
    for p in procs:
        p.join()
    if errors:
        raise RuntimeError("SFT arm failed:\n" + "\n".join(errors))
    out = dict(results["sft"])
    out["direct"] = results["direct"]
    return out
