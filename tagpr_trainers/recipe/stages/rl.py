"""Stage ``rl``: GRPO stage 1 (``stage1`` preset: format-gated task reward) from the SFT model,
then GRPO stage 2 (``stage2`` preset: ``α·R_base + β·R_tag + γ·R_PRMU``) from stage 1's model.

Each stage's reward is one config node, ``rl.stage1.reward`` / ``rl.stage2.reward`` (see
:class:`tagpr_trainers.recipe.config.RLStageConfig`), built by
``tagpr_rewards.presets.build_from_config`` — the same node ``tagpr-rm --reward-config``,
``tagpr-rewards score --config`` and OpenRLHF's ``TAGPR_REWARD_CONFIG`` take; the resolved node
is written to ``RUN_DIR/rl{1,2}/reward.yaml``. It reaches TRL's ``GRPOTrainer`` as ONE reward
function (:func:`tagpr_trainers.trl_adapter.as_reward_func`): TRL's ``reward_weights`` stay
``[1.0]`` and the weights in the node are the weights TRL optimises (no weight round trip);
every component is logged as ``rewards/<component>/mean``. The eval stage reports the reward
of the stage-2 node (without its PRMU term; :func:`eval_reward_node`). RL uses the prompts of
the first task in ``data.tasks``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from tagpr_trainers.recipe.checkpoints import atomic_write_text, latest_checkpoint
from tagpr_trainers.recipe.context import RunContext
from tagpr_trainers.recipe.stages.common import (
    LOG_HISTORY,
    checkpointing_kwargs,
    load_policy,
    model_available,
    publish_model,
    read_jsonl,
    save_log_history,
)

__all__ = ["build_reward", "build_trainer", "eval_reward_node", "restore_sampler", "reward_node", "run", "run_stage"]

logger = logging.getLogger("tagpr_trainers.recipe")

_STAGE = {"rl1": "stage1", "rl2": "stage2"}


def reward_node(ctx: RunContext, which: str) -> dict[str, Any]:
    """The resolved reward node of ``rl1``/``rl2`` (task, schema and the run's PRMU filled in)."""
    return ctx.cfg.rl.reward_node(_STAGE[which], ctx.cfg.data.tasks[0], ctx.cfg.data.schema,
                                  prmu_checkpoint=str(ctx.path("prmu_model")), prmu_enabled=ctx.cfg.prmu.enabled,
                                  device=ctx.device)


def eval_reward_node(ctx: RunContext) -> dict[str, Any]:
    """The reward node the eval stage reports: stage 2's node without its PRMU term (the eval
    harness scores generations offline; the same α, β, tag weights and options as RL)."""
    node = ctx.cfg.rl.reward_node("stage2", ctx.cfg.data.tasks[0], ctx.cfg.data.schema, prmu_enabled=False)
    if node.get("preset") == "stage2":
        node["prmu"] = None
    return node


def build_reward(ctx: RunContext, which: str, node: dict[str, Any] | None = None) -> Any:
    """The reward of ``rl1``/``rl2``: ``build_from_config`` of its node (:func:`reward_node`)."""
    from tagpr_rewards.presets import build_from_config

    node = dict(node or reward_node(ctx, which))
    prmu = node.get("prmu")
    if isinstance(prmu, dict) and "checkpoint" in prmu and "type" not in prmu:
        ckpt = Path(prmu["checkpoint"])
        if not (ckpt / "config.json").is_file():
            if ctx.dry_run:
                logger.warning("dry run: no trained PRMU at %s; stage 2 reward built without the PRMU term", ckpt)
                node["prmu"] = None
            else:
                raise FileNotFoundError(f"{ckpt}: no trained PRMU; run `tagpr-train prmu --config …` first "
                                        "or set rl.stage2.reward.prmu=null")
    return build_from_config(node, source=f"rl.{_STAGE[which]}.reward")


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

    from tagpr_trainers.trl_adapter import as_reward_func, check_dataset

    st = ctx.cfg.rl.stage1 if which == "rl1" else ctx.cfg.rl.stage2
    funcs: list[Any] = [as_reward_func(reward)]  # one function: the node's weights are TRL's
    dataset = Dataset.from_list(rows)
    check_dataset(funcs, dataset)  # a column the reward needs is missing: an error before training
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
        **checkpointing_kwargs(GRPOConfig, st.gradient_checkpointing),
        report_to="none",
        seed=ctx.cfg.rl.sampling_seed(ctx.cfg.run.seed),
        dataloader_num_workers=0,
        disable_tqdm=not ctx.progress,
        **extra,
        **ctx.trainer_precision(),
        **st.trl_args,
    )
    model, tok = load_policy(init_model, ctx)
    trainer = GRPOTrainer(model=model, reward_funcs=funcs, args=args, train_dataset=dataset, processing_class=tok)
    if not st.fused_lm_head:  # replaces the head TRL added at init, before accelerate prepares the model
        from tagpr_trainers.recipe.stages.lm_head import add_completion_lm_head

        add_completion_lm_head(trainer.model, temperature=st.temperature, outputs=("log_probs", "entropy"))
        if trainer.ref_model is not None:
            add_completion_lm_head(trainer.ref_model, temperature=st.temperature)
    return trainer


def restore_sampler(trainer: Any, checkpoint: str | Path) -> int:
    """Make a resumed GRPO run draw the same prompts as an uninterrupted one; returns the
    number of finished epochs replayed.

    transformers restores the RNG states and skips the batches of the current epoch, but TRL's
    ``RepeatSampler`` (TRL 1.16) draws each epoch's order from its own ``torch.Generator``
    seeded anew when the trainer builds it: a run resumed in epoch ``e ≥ 1`` would replay
    epoch 0's order (observed: tiny-cpu RL killed after checkpoint 32, in its second epoch,
    diverged from step 33). The sampler's generator is advanced by one permutation per
    finished epoch, exactly as the uninterrupted run advanced it.
    """
    import json

    import torch

    try:
        epoch = float(json.loads((Path(checkpoint) / "trainer_state.json").read_text(encoding="utf-8"))["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0
    done = int(epoch + 1e-9)
    if done <= 0:
        return 0
    original = trainer._get_train_sampler

    def sampler(*args: Any, **kwargs: Any) -> Any:
        s = original(*args, **kwargs)
        gen, n = getattr(s, "generator", None), getattr(s, "num_samples", None)
        if gen is None or n is None or not getattr(s, "shuffle", True):
            if gen is None and getattr(s, "shuffle", True):
                logger.warning("resume: the train sampler (%s) has no generator to advance; a resumed run may draw "
                               "other prompts than an uninterrupted one", type(s).__name__)
            return s
        for _ in range(done):
            torch.randperm(n, generator=gen)
        return s

    trainer._get_train_sampler = sampler
    return done


def run_stage(ctx: RunContext, which: str) -> dict[str, Any]:
    """Run (or resume) one GRPO stage; publish ``<which>/model``; return reward figures."""
    init = str(ctx.path("sft_model") if which == "rl1" else ctx.path("rl1_model"))
    rows = _rows(ctx)
    node = reward_node(ctx, which)
    reward = build_reward(ctx, which, node)
    if not ctx.dry_run and ctx.cfg.rl.prompt_filter.samples:
        from tagpr_trainers.recipe.stages.rl_filter import prompt_pool

        # stage 1's reward judges the groups; stage 2 reads the prompts stage 1 kept (or refilters)
        rows = prompt_pool(ctx, rows, reward if which == "rl1" else build_reward(ctx, "rl1"), which)
    import yaml

    atomic_write_text(ctx.path(f"{which}_model").parent / "reward.yaml", yaml.safe_dump(node, sort_keys=False))
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
        if ctx.cfg.rl.prompt_filter.samples and which == "rl1":  # the filter's sampling on one batch's prompts
            from tagpr_trainers.recipe.stages.rl_filter import informative, run_verdicts

            groups = run_verdicts(ctx, trainer.model, trainer.processing_class, rows[:need], reward)
            out["prompt_filter_one_batch"] = {"prompts": len(groups), "kept": sum(informative(groups))}
        return out
    trainer = build_trainer(ctx, which, init, reward, rows)
    resume = latest_checkpoint(ctx.path(f"{which}_trainer"))
    if resume is not None:
        epochs = restore_sampler(trainer, resume)
        logger.info("%s: resuming from %s (sampler advanced past %d finished epoch(s))", which, resume, epochs)
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    hist = save_log_history(trainer, ctx.path(f"{which}_model").parent / LOG_HISTORY)
    publish_model(trainer, trainer.processing_class, ctx.path(f"{which}_model"))
    rewards = [h["reward"] for h in hist if "reward" in h]
    return {"model": str(ctx.path(f"{which}_model")), "steps": trainer.state.global_step, "prompts": len(rows),
            "resumed_from": str(resume) if resume else None,
            "first_reward": rewards[0] if rewards else None, "last_reward": rewards[-1] if rewards else None}


def run(ctx: RunContext) -> dict[str, Any]:
    """Stage 1 then stage 2 (each with its own marker, ``rl1`` / ``rl2``, so each resumes alone)."""
    out: dict[str, Any] = {}
    for which in ("rl1", "rl2"):
        if not ctx.dry_run and ctx.check_inputs(which, redo=ctx.force):
            logger.info("%s: done already (marker stages/%s.json); skipping", which, which)
            continue
        ctx.start_stage(which)
        out[which] = run_stage(ctx, which)
        if not ctx.dry_run:
            ctx.mark_done(which, out[which])
    return out
