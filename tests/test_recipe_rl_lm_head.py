"""The completion-only full-logits GRPO head (``rl.stageN.fused_lm_head: false``) gives TRL's
fused head's log-probabilities, entropies and gradients, and leaves generation alone."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")


def _models(tmp_path: Path) -> tuple[object, object]:
    from transformers import AutoModelForCausalLM

    from tagpr_eval.tiny_model import build_tiny_model

    build_tiny_model(tmp_path / "base", vocab_size=512, hidden_size=32, num_layers=2, seed=0)
    return (AutoModelForCausalLM.from_pretrained(tmp_path / "base"),
            AutoModelForCausalLM.from_pretrained(tmp_path / "base"))


def _batch() -> tuple[object, object, object]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 500, (4, 40), generator=g)
    attn = torch.ones_like(ids)
    attn[0, :7] = 0  # left padding, as GRPO's prompts are padded
    attn[2, :3] = 0
    labels = ids.masked_fill(attn == 0, -100)
    labels[:, :-12] = -100  # only the last 12 tokens (the completion) are scored
    labels[3, -2:] = -100  # a completion that ended early
    return ids, attn, labels


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_completion_head_matches_trls_fused_head(tmp_path: Path, temperature: float) -> None:
    from trl.trainer.utils import add_fused_lm_head

    from tagpr_trainers.recipe.stages.lm_head import add_completion_lm_head

    trl_model, ours = _models(tmp_path)
    add_fused_lm_head(trl_model, temperature=temperature, outputs=("log_probs", "entropy"))
    add_fused_lm_head(ours, temperature=temperature, outputs=("log_probs", "entropy"))
    add_completion_lm_head(ours, temperature=temperature, outputs=("log_probs", "entropy"))  # replaces TRL's
    ids, attn, labels = _batch()
    got = {}
    for name, m in (("trl", trl_model), ("ours", ours)):
        out = m(input_ids=ids, attention_mask=attn, labels=labels, fused_lm_head=True)
        (out.log_probs.sum() + 0.3 * out.entropy.sum()).backward()
        got[name] = (out.log_probs.detach(), out.entropy.detach(), out.loss.detach(),
                     {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None})
    (lp_t, en_t, loss_t, g_t), (lp_o, en_o, loss_o, g_o) = got["trl"], got["ours"]
    mask = labels[:, 1:] != -100
    assert lp_o.shape == lp_t.shape == mask.shape and bool((lp_o[~mask] == 0).all())
    assert bool((lp_o[mask] < 0).all())  # real log-probabilities at the scored positions
    torch.testing.assert_close(lp_o, lp_t, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(en_o, en_t, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(loss_o, loss_t, rtol=1e-5, atol=1e-6)
    assert g_o.keys() == g_t.keys() and g_t
    for n, g in g_t.items():
        torch.testing.assert_close(g_o[n], g, rtol=1e-4, atol=1e-6, msg=n)


def test_completion_head_leaves_plain_forward_and_generation_alone(tmp_path: Path) -> None:
    from tagpr_trainers.recipe.stages.lm_head import add_completion_lm_head

    plain, ours = _models(tmp_path)
    add_completion_lm_head(ours, temperature=0.5)
    ids, attn, _ = _batch()
    torch.testing.assert_close(ours(input_ids=ids, attention_mask=attn).logits,
                               plain(input_ids=ids, attention_mask=attn).logits)
    gen = {n: m.generate(input_ids=ids[:1, :20], max_new_tokens=6, do_sample=False, pad_token_id=0)
           for n, m in (("plain", plain), ("ours", ours))}
    assert torch.equal(gen["plain"], gen["ours"])


def test_completion_head_refuses_what_it_does_not_compute(tmp_path: Path) -> None:
    from tagpr_trainers.recipe.stages.lm_head import add_completion_lm_head

    _, model = _models(tmp_path)
    with pytest.raises(ValueError, match="fused_lm_head: true"):
        add_completion_lm_head(model, outputs=("log_probs", "is_top1"))
    model.config.final_logit_softcapping = 30.0
    with pytest.raises(ValueError, match="final_logit_softcapping.*fused_lm_head: true"):
        add_completion_lm_head(model)


def test_rl_stage_builds_grpo_with_the_head_the_config_names(tmp_path: Path) -> None:
    from tagpr_eval.tiny_model import build_tiny_model
    from tagpr_trainers.recipe.config import load_recipe_config
    from tagpr_trainers.recipe.context import RunContext, stage_inputs
    from tagpr_trainers.recipe.stages.rl import build_reward, build_trainer

    build_tiny_model(tmp_path / "base", vocab_size=512, hidden_size=32, num_layers=1, seed=0)
    rows = [{"prompt": [{"role": "user", "content": f"tag for the movie {i}: [comedy, drama]"}],
             "reference": "comedy", "user_id": f"u{i}", "profile": [], "query": f"movie {i}", "task": "LaMP-2"}
            for i in range(4)]
    heads = {}
    for fused in (True, False):
        cfg = load_recipe_config("tiny-cpu", [f"run.output_dir={tmp_path / str(fused)}", "run.device=cpu",
                                              f"rl.stage1.fused_lm_head={str(fused).lower()}",
                                              "rl.stage1.batch_size=4", "rl.stage1.num_generations=2"])
        ctx = RunContext(cfg, progress=False)
        trainer = build_trainer(ctx, "rl1", str(tmp_path / "base"), build_reward(ctx, "rl1"), rows)
        heads[fused] = tuple(m.forward.__func__.__code__.co_qualname for m in (trainer.model, trainer.ref_model))
        assert stage_inputs(cfg, "rl1")["rl.stage1.fused_lm_head"] is fused  # a change reruns the stage
    assert all("add_fused_lm_head" in q for q in heads[True])
    assert all("add_completion_lm_head" in q for q in heads[False])
