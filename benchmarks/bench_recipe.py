"""Training-step cost of the recipe's LM heads on CPU (pytest-benchmark; peer and ours on the
same batch in the same run).

The tiny configs (``tiny-cpu``, ``tiny-learn``) train with ``sft.fused_lm_head: false`` and
``rl.stageN.fused_lm_head: false``: the same loss and log-probabilities as TRL's fused, chunked
LM head (tests/test_recipe_sft_loss.py, tests/test_recipe_rl_lm_head.py), computed over the
completion's positions only. Workloads are the main job's shapes on its model (hidden 64 × 2
layers, vocabulary 1,190 as its tokenizer trains to), random token ids (the cost does not
depend on them):

1. ``sft-loss``: one forward + backward of the SFT loss, a batch of 8 sequences of ~440 tokens
   whose last ~105 (the chain) carry labels. Peer: TRL's ``SFTTrainer.compute_loss`` (fused LM
   head). Ours: :func:`tagpr_trainers.recipe.stages.sft.full_logits_trainer_class`.
2. ``grpo-logps``: one forward + backward of GRPO's per-token log-probabilities and entropies
   (what ``GRPOTrainer`` asks of the policy), 32 left-padded sequences of a ~356-token prompt and
   a ~105-token completion. Peer: TRL's ``add_fused_lm_head``. Ours:
   :func:`tagpr_trainers.recipe.stages.lm_head.add_completion_lm_head`.

Run: ``pytest benchmarks/bench_recipe.py -o python_files=bench_*.py --benchmark-only``, or
``python -m benchmarks recipe`` for the interleaved figures in docs/benchmarks.md.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

VOCAB, HIDDEN, LAYERS = 1190, 64, 2
SFT_BATCH, SFT_PROMPT, SFT_COMPLETION = 8, (300, 370), (95, 115)
GRPO_BATCH, GRPO_PROMPT, GRPO_COMPLETION = 32, (320, 390), (95, 115)


def _model_dir() -> Path:
    from tagpr_eval.tiny_model import build_tiny_model

    return build_tiny_model(Path(tempfile.mkdtemp(prefix="bench_recipe_")) / "base", vocab_size=VOCAB,
                            hidden_size=HIDDEN, num_layers=LAYERS, seed=0)


def _lengths(g: Any, n: int, span: tuple[int, int]) -> list[int]:
    return torch.randint(span[0], span[1] + 1, (n,), generator=g).tolist()


def sft_batch() -> dict[str, Any]:
    """Right-padded ``input_ids`` / ``attention_mask`` / ``labels`` (prompt and padding -100), as
    TRL's collator builds them for prompt/completion rows."""
    g = torch.Generator().manual_seed(0)
    prompts, comps = _lengths(g, SFT_BATCH, SFT_PROMPT), _lengths(g, SFT_BATCH, SFT_COMPLETION)
    width = max(p + c for p, c in zip(prompts, comps))
    ids = torch.randint(5, VOCAB, (SFT_BATCH, width), generator=g)
    attn = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for i, (p, c) in enumerate(zip(prompts, comps)):
        attn[i, :p + c] = 1
        labels[i, p:p + c] = ids[i, p:p + c]
    return {"input_ids": ids, "attention_mask": attn, "labels": labels}


def grpo_batch() -> dict[str, Any]:
    """Left-padded prompts, right-padded completions, labels on the completion (GRPO's layout)."""
    g = torch.Generator().manual_seed(1)
    prompts, comps = _lengths(g, GRPO_BATCH, GRPO_PROMPT), _lengths(g, GRPO_BATCH, GRPO_COMPLETION)
    pw, cw = max(prompts), max(comps)
    ids = torch.randint(5, VOCAB, (GRPO_BATCH, pw + cw), generator=g)
    attn = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for i, (p, c) in enumerate(zip(prompts, comps)):
        attn[i, pw - p:pw + c] = 1
        labels[i, pw:pw + c] = ids[i, pw:pw + c]
    return {"input_ids": ids, "attention_mask": attn, "labels": labels}


def make_sft_setup() -> dict[str, Any]:
    """Two SFT trainers on the same base weights (TRL's loss, ours) and one batch."""
    from tagpr_trainers.recipe.config import load_recipe_config
    from tagpr_trainers.recipe.context import RunContext
    from tagpr_trainers.recipe.stages.sft import build_trainer

    base = _model_dir()
    rows = [{"prompt": [{"role": "user", "content": f"q{i}"}], "completion": [{"role": "assistant", "content": "a"}]}
            for i in range(8)]
    out: dict[str, Any] = {"batch": sft_batch()}
    for name, fused in (("peer", True), ("ours", False)):
        cfg = load_recipe_config("tiny-cpu", [f"run.output_dir={base.parent / name}", "run.device=cpu",
                                              f"sft.fused_lm_head={str(fused).lower()}"])
        trainer = build_trainer(RunContext(cfg, progress=False), rows, str(base))
        trainer.model.train()
        out[name] = trainer
    return out


def sft_step(trainer: Any, batch: dict[str, Any]) -> float:
    """Forward + backward of the trainer's loss on ``batch``; the loss."""
    trainer.model.zero_grad(set_to_none=True)
    loss = trainer.compute_loss(trainer.model, dict(batch))
    loss.backward()
    return float(loss.detach())


def make_grpo_setup() -> dict[str, Any]:
    """Two policies on the same weights, TRL's fused head and ours, and one batch."""
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    from tagpr_trainers.recipe.stages.lm_head import add_completion_lm_head

    base = _model_dir()
    out: dict[str, Any] = {"batch": grpo_batch()}
    for name in ("peer", "ours"):
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        add_fused_lm_head(model, temperature=0.5, outputs=("log_probs", "entropy"))
        if name == "ours":
            add_completion_lm_head(model, temperature=0.5, outputs=("log_probs", "entropy"))
        model.train()
        out[name] = model
    return out


def grpo_step(model: Any, batch: dict[str, Any]) -> float:
    """Forward + backward of the per-token log-probabilities and entropies; their masked sum."""
    model.zero_grad(set_to_none=True)
    o = model(**batch, fused_lm_head=True)
    mask = batch["labels"][:, 1:] != -100
    total = (o.log_probs * mask).sum() + 0.1 * (o.entropy * mask).sum()
    total.backward()
    return float(total.detach())


@pytest.fixture(scope="module")
def sft_setup() -> dict[str, Any]:
    torch.set_num_threads(1)
    return make_sft_setup()


@pytest.fixture(scope="module")
def grpo_setup() -> dict[str, Any]:
    torch.set_num_threads(1)
    return make_grpo_setup()


def test_sft_loss_values_agree(sft_setup: dict[str, Any]) -> None:
    b = sft_setup["batch"]
    assert sft_step(sft_setup["ours"], b) == pytest.approx(sft_step(sft_setup["peer"], b), rel=1e-5)


def test_grpo_logps_values_agree(grpo_setup: dict[str, Any]) -> None:
    b = grpo_setup["batch"]
    assert grpo_step(grpo_setup["ours"], b) == pytest.approx(grpo_step(grpo_setup["peer"], b), rel=1e-5)


@pytest.mark.benchmark(group="sft-loss")
@pytest.mark.parametrize("who", ["peer", "ours"])
def test_bench_sft_loss(benchmark: Any, sft_setup: dict[str, Any], who: str) -> None:
    benchmark.pedantic(sft_step, args=(sft_setup[who], sft_setup["batch"]), rounds=10, warmup_rounds=1)


@pytest.mark.benchmark(group="grpo-logps")
@pytest.mark.parametrize("who", ["peer", "ours"])
def test_bench_grpo_logps(benchmark: Any, grpo_setup: dict[str, Any], who: str) -> None:
    benchmark.pedantic(grpo_step, args=(grpo_setup[who], grpo_setup["batch"]), rounds=5, warmup_rounds=1)
