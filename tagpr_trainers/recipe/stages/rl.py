"""Stage ``rl``: GRPO stage 1 (``stage1`` preset: format-gated task reward) from the SFT model,
then GRPO stage 2 (``stage2`` preset: ``α·R_base + β·R_tag + γ·R_PRMU``) from stage 1's model.

Rewards reach TRL's ``GRPOTrainer`` through :func:`tagpr_trainers.trl_adapter.as_reward_funcs` (one
function per component, so TRL logs ``rewards/<component>/mean`` and ``reward_weights`` rebuild
the composite). RL uses the prompts of the first task in ``data.tasks`` (the presets score one
task).
"""

from __future__ import annotations

import logging
from typing import Any

from tagpr_trainers.recipe.checkpoints import is_done, latest_checkpoint, mark_done
from tagpr_trainers.recipe.context import RunContext
from tagpr_trainers.recipe.stages.common import (
    load_policy,
    model_available,
    publish_model,
    read_jsonl,
    save_log_history,
)

__all__ = ["build_reward", "build_trainer", "run", "run_stage"]

logger = logging.getLogger("tagpr_trainers.recipe")


def build_reward(ctx: RunContext, which: str) -> Any:
    """The composite reward of ``rl1`` (preset stage1) or ``rl2`` (preset stage2, + PRMU if trained)."""
    from tagpr_rewards.presets import stage1, stage2

    task, schema = ctx.cfg.data.tasks[0], ctx.cfg.data.schema
    if which == "rl1":
        return stage1(task, schema=schema)
    st = ctx.cfg.rl.stage2
    prmu = None
    if st.use_prmu and ctx.cfg.prmu.enabled:
        ckpt = ctx.path("prmu_model")
        if (ckpt / "config.json").is_file():
            from tagpr_rewards.prmu import PRMUReward

            prmu = PRMUReward(ckpt, device=ctx.device, normalize=ctx.cfg.prmu.reward_normalize,
                              use=ctx.cfg.prmu.reward_use, schema=schema)
        elif ctx.dry_run:
            logger.warning("dry run: no trained PRMU at %s; stage 2 reward built without the PRMU term", ckpt)
        else:
            raise FileNotFoundError(f"{ckpt}: no trained PRMU; run `tagpr-train prmu --config …` first "
                                    "or set rl.stage2.use_prmu=false")
    return stage2(task, schema=schema, prmu=prmu, alpha=st.alpha, beta=st.beta, gamma=st.gamma)


def _rows(ctx: RunContext) -> list[dict[str, Any]]:
    task = ctx.cfg.data.tasks[0]
    rows = [r for r in read_jsonl(ctx.path("rl_data")) if r.get("task") == task]
    if not rows:
        raise ValueError(f"{ctx.path('rl_data')}: no RL prompts for {task}; raise data.rl_fraction")
    return rows


def build_trainer(ctx: RunContext, which: str, init_model: str, reward: Any, rows: list[dict[str, Any]]) -> Any:
    """A TRL ``GRPOTrainer`` for stage ``rl1``/``rl2`` starting from ``init_model``."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from tagpr_trainers.trl_adapter import as_reward_funcs, reward_weights

    st = ctx.cfg.rl.stage1 if which == "rl1" else ctx.cfg.rl.stage2
    funcs: list[Any] = list(as_reward_funcs(reward))
    extra: dict[str, Any] = {}
    if st.use_vllm:
        extra.update(use_vllm=True, vllm_mode="colocate", vllm_gpu_memory_utilization=st.vllm_gpu_memory_utilization)
    args = GRPOConfig(
        output_dir=str(ctx.path(f"{which}_trainer")),
        learning_rate=st.learning_rate,
        per_device_train_batch_size=st.batch_size,
        gradient_accumulation_steps=st.grad_accum,
        num_generations=st.num_generations,
        max_completion_length=st.max_completion_length,
        temperature=st.temperature,
        beta=st.kl_beta,
        max_steps=1 if ctx.dry_run else st.max_steps,
        logging_steps=st.logging_steps,
        save_steps=st.save_steps,
        save_total_limit=2,
        remove_unused_columns=False,
        reward_weights=reward_weights(funcs),
        gradient_checkpointing=st.gradient_checkpointing,
        report_to="none",
        seed=ctx.cfg.run.seed,
        dataloader_num_workers=0,
        disable_tqdm=not ctx.progress,
        **extra,
        **ctx.trainer_precision(),
    )
    model, tok = load_policy(init_model, ctx)
    return GRPOTrainer(model=model, reward_funcs=funcs, args=args, train_dataset=Dataset.from_list(rows),
                       processing_class=tok)


def run_stage(ctx: RunContext, which: str) -> dict[str, Any]:
    """Run (or resume) one GRPO stage; publish ``<which>/model``; return reward figures."""
    init = str(ctx.path("sft_model") if which == "rl1" else ctx.path("rl1_model"))
    rows = _rows(ctx)
    reward = build_reward(ctx, which)
    if ctx.dry_run:
        st = ctx.cfg.rl.stage1 if which == "rl1" else ctx.cfg.rl.stage2
        need = 2 * max(1, st.batch_size // st.num_generations)
        rows = (rows * need)[: max(need, len(rows))]  # a dry run's few prompts fill one real batch
        out: dict[str, Any] = {"reward": reward.name, "prompts": len(rows)}
        # the reward on one batch of gold-answer completions (no model needed)
        schema_answer = f"<answer>{rows[0].get('reference')}</answer>"
        scored = reward([schema_answer] * 2, prompts=[rows[0]["prompt"]] * 2,
                        references=[rows[0].get("reference")] * 2, user_ids=[rows[0]["user_id"]] * 2,
                        profile=[rows[0]["profile"]] * 2, query=[rows[0]["query"]] * 2, task=[rows[0]["task"]] * 2)
        out["one_batch_scores"] = scored.scores
        if not model_available(init):
            base = ctx.base_model_path()
            if not model_available(base):
                out["skipped"] = f"model {base} not available offline"
                return out
            init = base
        trainer = build_trainer(ctx, which, init, reward, rows)
        batch = next(iter(trainer.get_train_dataloader()))
        inputs = trainer._prepare_inputs(batch)  # one rollout + scoring, no optimizer step
        out["one_batch_completions"] = int(inputs["completion_ids"].shape[0])
        return out
    trainer = build_trainer(ctx, which, init, reward, rows)
    resume = latest_checkpoint(ctx.path(f"{which}_trainer"))
    if resume is not None:
        logger.info("%s: resuming from %s", which, resume)
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    hist = save_log_history(trainer, ctx.path(f"{which}_model").parent / "log_history.json")
    publish_model(trainer, trainer.processing_class, ctx.path(f"{which}_model"))
    rewards = [h["reward"] for h in hist if "reward" in h]
    return {"model": str(ctx.path(f"{which}_model")), "steps": trainer.state.global_step,
            "resumed_from": str(resume) if resume else None,
            "first_reward": rewards[0] if rewards else None, "last_reward": rewards[-1] if rewards else None}


def run(ctx: RunContext) -> dict[str, Any]:
    """Stage 1 then stage 2 (each with its own marker, ``rl1`` / ``rl2``, so each resumes alone)."""
    out: dict[str, Any] = {}
    for which in ("rl1", "rl2"):
        if not ctx.dry_run and not ctx.force and is_done(ctx.run_dir, which):
            logger.info("%s: done already (marker stages/%s.json); skipping", which, which)
            continue
        out[which] = run_stage(ctx, which)
        if not ctx.dry_run:
            mark_done(ctx.run_dir, which, out[which])
    return out
