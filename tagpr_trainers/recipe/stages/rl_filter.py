"""OUR prompt filter for the RL stages (``rl.prompt_filter``): keep the prompts GRPO can learn from.

GRPO's advantage is a completion's reward minus its group's mean, so a prompt whose sampled
completions all get the same verdict (all right or all wrong) gives no gradient. Before stage 1,
the SFT model samples ``samples`` completions of every RL prompt at stage 1's temperature; stage
1's reward scores them, and a prompt is kept when the reward component ``component`` (default
``base/task``, the task verdict of the ``stage1`` preset; ``score``: the reward's total) differs
inside its group (and, with ``max_pass_rate`` below 1, its mean at most that: the easy end of the
band left out). Both stages then draw their prompts from the kept ones; with ``refilter``, stage
2 draws from its own: the stage-1 model samples every RL prompt anew (stage 1 has learnt some of
the prompts it was given, and may now get right sometimes what the SFT model always got wrong).
This is the offline form of DAPO's dynamic sampling
(Yu et al. 2025, which refills each batch online) and of the pass-rate filtering of recent
reasoning-RL recipes; the settings and the rule are ours.

The kept prompts are written to ``RUN_DIR/rl1/prompts.jsonl`` (``rl2/`` for a refilter) with a
report (``prompt_filter.json`` beside it: how many kept, the histogram of pass rates); a resumed
stage reuses them, and ``--force`` on ``rl`` samples anew.

>>> informative([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0.0, None, 0.0]])
[True, False, False]
>>> pass_rates([[1.0, 0.0, 1.0, 0.0], [None, 1.0]])
[0.5, 0.5]
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

from tagpr_rewards.files import atomic_write_jsonl, read_jsonl
from tagpr_trainers.recipe.checkpoints import atomic_write_json
from tagpr_trainers.recipe.context import RunContext

__all__ = ["SCORE", "informative", "pass_rates", "prompt_pool", "run_verdicts", "sample_verdicts"]

logger = logging.getLogger("tagpr_trainers.recipe")

#: ``rl.prompt_filter.component`` naming the reward's total score instead of a component (a
#: stage-1 reward that is a task reward alone, e.g. the ablation's no-tags arm)
SCORE = "score"


def informative(groups: Sequence[Sequence[float | None]], tol: float = 1e-9) -> list[bool]:
    """For each group of verdicts: whether they differ (a reward ``None`` counts as 0, as TRL's
    NaN-safe reward sum makes it)."""
    out = []
    for g in groups:
        v = [0.0 if x is None else float(x) for x in g]
        out.append(bool(v) and max(v) - min(v) > tol)
    return out


def pass_rates(groups: Sequence[Sequence[float | None]]) -> list[float]:
    """The mean verdict of each group (``None`` as 0)."""
    return [sum(0.0 if x is None else float(x) for x in g) / len(g) if g else 0.0 for g in groups]


def sample_verdicts(model: Any, tokenizer: Any, rows: Sequence[dict[str, Any]], reward: Any, samples: int,
                    temperature: float, max_new_tokens: int, component: str, batch_size: int = 16,
                    seed: int = 0) -> list[list[float | None]]:
    """Sample ``samples`` completions of each row's ``prompt`` and score them with ``reward``
    (a tagpr ``Reward``, through the TRL adapter's column mapping, as GRPO scores them); return
    each row's values of the reward component ``component`` (:data:`SCORE`: the total score).

    Prompts are rendered as TRL renders them (the chat template with the generation prompt for
    a conversational prompt), sampled with ``temperature`` and no top-k / top-p cut; ``temperature``
    0 scores the greedy completion instead (as the eval stage answers; ``samples`` must be 1).
    """
    import torch

    greedy = temperature == 0
    if greedy and samples != 1:
        raise ValueError(f"temperature 0 is the greedy completion, one per prompt: samples must be 1, not {samples}")

    from tagpr_trainers.trl_adapter import as_reward_func

    runner = as_reward_func(reward).runner
    device = next(model.parameters()).device
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    gen = torch.Generator(device="cpu").manual_seed(seed)
    out: list[list[float | None]] = []
    try:
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            texts = [tokenizer.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=False)
                     if isinstance(r["prompt"], list) else r["prompt"] for r in chunk]
            enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
            with torch.no_grad():
                how: dict[str, Any] = ({"do_sample": False} if greedy else
                                       {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0})
                ids = model.generate(**enc, **how, max_new_tokens=max_new_tokens, num_return_sequences=samples,
                                     pad_token_id=tokenizer.pad_token_id)
            completions = tokenizer.batch_decode(ids[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
            rep = [r for r in chunk for _ in range(samples)]
            kw: dict[str, Any] = {c: [r.get(c) for r in rep] for c in rep[0] if c != "prompt"}
            scored = runner.score(dict(kw, prompts=[r["prompt"] for r in rep], completions=completions))
            if component == SCORE:
                values = list(scored.scores)
            elif component in scored.components:
                values = scored.components[component]
            else:
                raise ValueError(f"rl.prompt_filter.component: {component!r} is not a component of the stage-1 reward "
                                 f"(it has: {', '.join(scored.components) or 'none'}); name one of those, or "
                                 f"{SCORE!r} for the reward's total")

            out += [list(values[i * samples:(i + 1) * samples]) for i in range(len(chunk))]
    finally:
        tokenizer.padding_side = side
    return out


def run_verdicts(ctx: RunContext, model: Any, tokenizer: Any, rows: Sequence[dict[str, Any]],
                 reward: Any) -> list[list[float | None]]:
    """:func:`sample_verdicts` with the run's ``rl.prompt_filter`` settings (temperature and
    completion length default to stage 1's) and seed."""
    pf, st = ctx.cfg.rl.prompt_filter, ctx.cfg.rl.stage1
    temperature = pf.temperature if pf.temperature is not None else st.temperature
    return sample_verdicts(model, tokenizer, rows, reward, pf.samples, temperature, st.max_completion_length,
                           pf.component, pf.batch_size, ctx.cfg.rl.sampling_seed(ctx.cfg.run.seed))


def prompt_pool(ctx: RunContext, rows: list[dict[str, Any]], reward: Any, which: str = "rl1") -> list[dict[str, Any]]:
    """The RL prompts stage ``which`` draws from: ``rows`` itself when ``rl.prompt_filter.samples``
    is 0, else the kept ones. Stage 1's are sampled from the SFT model and written to
    ``rl1/prompts.jsonl``; stage 2 reads that file, or with ``rl.prompt_filter.refilter`` samples
    ``rows`` from the stage-1 model into ``rl2/prompts.jsonl``. A resumed stage reads its file
    back. ``reward`` is stage 1's (its component judges the groups)."""
    pf = ctx.cfg.rl.prompt_filter
    if pf.samples == 0:
        return rows
    own = "rl2" if which == "rl2" and pf.refilter else "rl1"
    path, report_path = ctx.path(f"{own}_prompts"), ctx.path(f"{own}_prompt_filter")
    if path.is_file():
        return read_jsonl(path, hint=f"delete {path} and rerun `tagpr-train rl --force …`")
    from tagpr_trainers.recipe.stages.common import load_policy

    st = ctx.cfg.rl.stage1 if own == "rl1" else ctx.cfg.rl.stage2
    sampler = "sft_model" if own == "rl1" else "rl1_model"
    model, tok = load_policy(str(ctx.path(sampler)), ctx, training=False)
    model.to(ctx.device).eval()
    groups = run_verdicts(ctx, model, tok, rows, reward)
    keep = informative(groups)
    rates = pass_rates(groups)
    easy = [k and r > pf.max_pass_rate + 1e-9 for k, r in zip(keep, rates)]
    kept = [r for r, k, e in zip(rows, keep, easy) if k and not e]
    need = max(1, st.batch_size // st.num_generations)
    report = {"stage": own, "sampled_by": sampler.removesuffix("_model"), "prompts": len(rows), "kept": len(kept),
              "samples": pf.samples, "component": pf.component,
              "all_right": sum(1 for r, k in zip(rates, keep) if not k and r >= 1.0),
              "all_wrong": sum(1 for r, k in zip(rates, keep) if not k and r < 1.0),
              "max_pass_rate": pf.max_pass_rate, "above_max_pass_rate": sum(easy),
              "pass_rate_histogram": {f"{r:.3f}": n for r, n in sorted(Counter(rates).items())}}
    logger.info("rl.prompt_filter (%s, sampled by %s): kept %d of %d RL prompts (%d all right, %d all wrong in %d "
                "samples; %d above max_pass_rate %g)", own, report["sampled_by"], len(kept), len(rows),
                report["all_right"], report["all_wrong"], pf.samples, sum(easy), pf.max_pass_rate)
    if len(kept) < need:
        raise ValueError(f"rl.prompt_filter kept {len(kept)} of {len(rows)} RL prompts ({ctx.path('rl_data')}) for "
                         f"{own}, fewer than one step's {need}: raise data.rl_fraction or rl.prompt_filter.samples"
                         f"{', or rl.prompt_filter.max_pass_rate' if pf.max_pass_rate < 1 else ''}, "
                         "or set rl.prompt_filter.samples=0 to train on every prompt")
    atomic_write_json(report_path, report)
    atomic_write_jsonl(path, kept)
    return kept
