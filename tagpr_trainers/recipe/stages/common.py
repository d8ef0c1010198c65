"""Helpers the stages share: JSONL reading, the tiny base model, policy loading, trainer logs."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tagpr_rewards.files import read_jsonl as _read_jsonl
from tagpr_trainers.recipe.checkpoints import atomic_write_json, publish_dir, staging_dir
from tagpr_trainers.recipe.context import RunContext

__all__ = ["LOG_HISTORY", "checkpointing_kwargs", "ensure_base_model", "load_policy", "model_available", "read_jsonl",
           "read_log_history", "save_log_history", "tokenizer_corpus"]

logger = logging.getLogger("tagpr_trainers.recipe")


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file; a bad line is an error naming the file and line."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p} not found; run the stage that writes it first (tagpr-train data --config …)")
    return _read_jsonl(p, hint="delete the file and rerun the data stage")


def checkpointing_kwargs(config_cls: type, enabled: bool) -> dict[str, Any]:
    """The keyword that switches activation (gradient) checkpointing on or off in a TRL config.

    transformers 5.x renamed ``gradient_checkpointing`` to ``activation_checkpointing`` and warns
    (FutureWarning) whenever only the old name is set, as TRL's configs do by default; older
    releases (the floor we allow, 4.56) know only the old name. Setting the name the installed
    ``config_cls`` has keeps the flag's meaning on both and the warning out of every run.

    >>> import dataclasses
    >>> @dataclasses.dataclass
    ... class Old:
    ...     gradient_checkpointing: bool = False
    >>> checkpointing_kwargs(Old, True)
    {'gradient_checkpointing': True}
    """
    import dataclasses

    names = {f.name for f in dataclasses.fields(config_cls)}  # TRL's configs are dataclasses
    key = "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
    return {key: bool(enabled)}


def tokenizer_corpus(rows: Iterable[dict[str, Any]], max_rows: int = 400) -> list[str]:
    """Distinct texts of up to ``max_rows`` SFT/RL rows (prompt messages and completions) for
    training the tiny tokenizer (a sample is enough for a ~1k vocabulary and keeps it fast)."""
    out: dict[str, None] = {}
    for r in list(rows)[:max_rows]:
        for m in list(r.get("prompt") or []) + list(r.get("completion") or []):
            out[str(m.get("content", ""))] = None
    return list(out)


def ensure_base_model(ctx: RunContext, corpus: list[str] | None = None) -> str:
    """The base policy path; for ``model.base: tiny`` build it once (atomically) from ``corpus``."""
    if ctx.cfg.model.base != "tiny":
        return ctx.cfg.model.base
    final = ctx.path("base_model")
    if (final / "config.json").is_file() and (final / "tokenizer.json").is_file():
        return str(final)
    from tagpr_eval.tiny_model import build_tiny_model

    t = ctx.cfg.model.tiny
    tmp = staging_dir(final)
    build_tiny_model(tmp, corpus=corpus or None, vocab_size=t.vocab_size, hidden_size=t.hidden_size,
                     num_layers=t.num_layers, seed=ctx.cfg.run.seed, max_position_embeddings=t.max_position_embeddings)
    if t.pretrain.shuffles > 0:  # ours: every arm starts from the pretrained base (stages/base_pretrain.py)
        _pretrain_base(ctx, tmp)
    publish_dir(tmp, final)
    logger.info("built the tiny base model in %s", final)
    return str(final)


def _pretrain_base(ctx: RunContext, model_dir: Path) -> None:
    """LM pretraining of the just-built tiny model on the training users' profiles, in place."""
    from tagpr_trainers.recipe.stages.base_pretrain import pretrain_corpus, pretrain_lm

    p = ctx.cfg.model.tiny.pretrain
    texts = pretrain_corpus(ctx.lamp_dir, ctx.cfg.data.tasks, ctx.cfg.data.train_split, p.shuffles, seed=ctx.cfg.run.seed)
    out = pretrain_lm(model_dir, texts, p.learning_rate, p.block_size, p.batch_size, seed=ctx.cfg.run.seed,
                      max_steps=1 if ctx.dry_run else None)  # a dry run: one batch, like every other component
    logger.info("pretrained the tiny base on %d profile texts: %d steps, %d tokens, loss %.3f -> %.3f, %.0f s",
                len(texts), out["steps"], out["tokens"], out["loss_first"], out["loss_last"], out["seconds"])


def model_available(path: str) -> bool:
    """Whether ``path`` is a local model directory or a hub id already in the local cache."""
    if Path(path).is_dir():
        return (Path(path) / "config.json").is_file()
    try:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(path, "config.json")
        return isinstance(hit, str)
    except Exception:
        return False


def load_policy(path: str, ctx: RunContext, training: bool = True) -> tuple[Any, Any]:
    """``(model, tokenizer)`` for training: fp32 weights when ``run.fp32_master_weights`` (the
    trainer then computes in bf16/fp16 autocast on CUDA), else the run's dtype."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = torch.float32 if (training and ctx.cfg.run.fp32_master_weights) else ctx.torch_dtype
    kw: dict[str, Any] = {"dtype": dtype}
    if ctx.cfg.model.attn_implementation:
        kw["attn_implementation"] = ctx.cfg.model.attn_implementation
    model = AutoModelForCausalLM.from_pretrained(path, **kw)
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model, tok


#: the file a training stage writes its trainer's log history to, in the stage's model directory
LOG_HISTORY = "log_history.json"


def save_log_history(trainer: Any, path: str | Path) -> list[dict[str, Any]]:
    """Write the trainer's log history (loss and reward curves) as JSON; return it."""
    hist = list(getattr(trainer.state, "log_history", []) or [])
    atomic_write_json(path, hist)
    return hist


def read_log_history(run_dir: str | Path, stage: str) -> list[dict[str, Any]] | None:
    """The log history a stage (``sft``, ``rl1``, ``rl2``) of the run in ``run_dir`` wrote, ``None``
    when it wrote none or the file cannot be read (logged: a report leaves that stage out)."""
    import json

    p = Path(run_dir) / stage / LOG_HISTORY
    if not p.is_file():
        return None
    try:
        hist = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        logger.warning("%s: unreadable trainer log (%s); the report leaves this stage out", p, e)
        return None
    if not isinstance(hist, list):
        logger.warning("%s: not a trainer log (a JSON list of entries); the report leaves this stage out", p)
        return None
    return [h for h in hist if isinstance(h, dict)]


def publish_model(trainer: Any, tokenizer: Any, final: str | Path) -> Path:
    """Save the trained model + tokenizer into a staging dir and move it to ``final`` atomically."""
    tmp = staging_dir(final)
    trainer.save_model(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    return publish_dir(tmp, final)


def one_batch_loss(trainer: Any) -> float:
    """Dry run: pull one batch from the trainer's dataloader and compute the loss (no update)."""
    import torch

    batch = next(iter(trainer.get_train_dataloader()))
    model = trainer.model
    model.eval()
    with torch.no_grad():
        batch = trainer._prepare_inputs(batch)
        loss = trainer.compute_loss(model, batch)
    return float(loss.detach().float().mean())
