"""The recipe's plain full-logits SFT loss is TRL's fused chunked loss, to float precision."""

from __future__ import annotations

from pathlib import Path

import pytest

from tagpr_trainers.recipe.config import load_recipe_config
from tagpr_trainers.recipe.context import RunContext
from tagpr_trainers.recipe.stages.sft import build_trainer

ROWS = [
    {"prompt": [{"role": "user", "content": f"the tag for the movie: \"story {i}\" is \"comedy\" . description: x{i}"}],
     "completion": [{"role": "assistant", "content": f"<recall-history>items {i}</recall-history>"
                                                     f"<answer>{'comedy' if i % 2 else 'drama'}</answer>"}]}
    for i in range(8)
]


def _loss_and_grads(tmp_path: Path, fused: bool) -> tuple[float, dict[str, object], type]:
    import torch

    from tagpr_eval.tiny_model import build_tiny_model

    model_dir = tmp_path / "base"
    if not (model_dir / "config.json").is_file():
        build_tiny_model(model_dir, vocab_size=512, hidden_size=32, num_layers=1, seed=0)
    cfg = load_recipe_config("tiny-cpu", [f"run.output_dir={tmp_path / ('f' if fused else 'p')}",
                                          f"sft.fused_lm_head={str(fused).lower()}", "sft.batch_size=4"])
    trainer = build_trainer(RunContext(cfg, progress=False), ROWS, str(model_dir))
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    model = trainer.model
    model.train()
    loss = trainer.compute_loss(model, batch)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    assert torch.isfinite(loss)
    return float(loss.detach()), grads, type(trainer)


def test_full_logits_loss_matches_trl_fused(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    fused_loss, fused_grads, fused_cls = _loss_and_grads(tmp_path, fused=True)
    plain_loss, plain_grads, plain_cls = _loss_and_grads(tmp_path, fused=False)
    assert fused_cls.__name__ == "SFTTrainer" and plain_cls.__name__ == "FullLogitsSFTTrainer"
    assert plain_loss == pytest.approx(fused_loss, rel=1e-5)
    assert fused_grads.keys() == plain_grads.keys() and fused_grads
    for name, g in fused_grads.items():
        torch.testing.assert_close(plain_grads[name], g, rtol=1e-4, atol=1e-6, msg=name)


def test_default_is_trls_fused_loss_and_the_tiny_configs_use_full_logits(tmp_path: Path) -> None:
    from tagpr_eval.tiny_model import build_tiny_model

    build_tiny_model(tmp_path / "base", vocab_size=512, hidden_size=32, num_layers=1, seed=0)
    kinds = {}
    for name in (None, "tiny-cpu", "tiny-learn"):
        cfg = load_recipe_config(name, [f"run.output_dir={tmp_path / 'run'}"])
        kinds[name] = type(build_trainer(RunContext(cfg, progress=False), ROWS, str(tmp_path / "base"))).__name__
    # TRL's own loss for real models (memory on large vocabularies); full logits for the tiny
    # model on CPU, 1.5x faster a step (docs/recipe.md, "Speed on CPU")
    assert kinds == {None: "SFTTrainer", "tiny-cpu": "FullLogitsSFTTrainer", "tiny-learn": "FullLogitsSFTTrainer"}


def test_sft_trl_args_reach_the_trainer_and_the_fingerprint(tmp_path: Path) -> None:
    from tagpr_eval.tiny_model import build_tiny_model
    from tagpr_trainers.recipe.context import stage_inputs

    build_tiny_model(tmp_path / "base", vocab_size=512, hidden_size=32, num_layers=1, seed=0)
    over = [f"run.output_dir={tmp_path / 'run'}", "sft.trl_args={adam_beta2: 0.95, max_grad_norm: 0.5}"]
    cfg = load_recipe_config("tiny-cpu", over)
    trainer = build_trainer(RunContext(cfg, progress=False), ROWS, str(tmp_path / "base"))
    assert (trainer.args.adam_beta2, trainer.args.max_grad_norm) == (0.95, 0.5)
    assert trainer.args.learning_rate == cfg.sft.learning_rate  # the stage's own keys still apply
    plain = stage_inputs(load_recipe_config("tiny-cpu", over[:1]), "sft")
    assert not [k for k in plain if "trl_args" in k]  # empty: the fingerprint of older runs is unchanged
    assert stage_inputs(cfg, "sft")["sft.trl_args.adam_beta2"] == 0.95  # a change retrains the stage


def test_full_logits_loss_projects_only_the_label_positions(tmp_path: Path) -> None:
    """The LM head sees the completion's positions only (the prompt has no labels), and a model
    that scales its logits falls back to its own head over every position, with the same loss."""
    torch = pytest.importorskip("torch")
    from tagpr_eval.tiny_model import build_tiny_model

    build_tiny_model(tmp_path / "base", vocab_size=512, hidden_size=32, num_layers=1, seed=0)
    cfg = load_recipe_config("tiny-cpu", [f"run.output_dir={tmp_path / 'run'}", "sft.batch_size=4"])
    trainer = build_trainer(RunContext(cfg, progress=False), ROWS, str(tmp_path / "base"))
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    model = trainer.model
    rows_seen: list[int] = []
    hook = model.get_output_embeddings().register_forward_hook(
        lambda _m, args, _out: rows_seen.append(args[0].reshape(-1, args[0].shape[-1]).shape[0]))
    try:
        fast = trainer.compute_loss(model, batch)
        assert len(rows_seen) == 1
        n_labels = int((batch["labels"][:, 1:] != -100).sum())
        assert rows_seen[0] == n_labels < batch["input_ids"].numel()
        model.config.final_logit_softcapping = 30.0  # Qwen2 ignores it; the check must not
        slow = trainer.compute_loss(model, batch)
        assert rows_seen[1] == batch["input_ids"].numel()  # every position through the head
    finally:
        hook.remove()
    assert float(slow.detach()) == pytest.approx(float(fast.detach()), rel=1e-5)
    assert torch.isfinite(fast)
