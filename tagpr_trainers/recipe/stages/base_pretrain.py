"""Language-model pretraining of the tiny base on the training users' profiles (ours; opt-in).

``model.tiny.pretrain.shuffles: N`` (:class:`~tagpr_trainers.recipe.config.TinyPretrainConfig`).
The paper's base is a pretrained LLM that can already answer; the tiny model we build offline
starts from random weights, and learns to copy from its context only late in SFT, if at all
(docs/recipe.md, "The onset is fragile"). Pretraining it on a LaMP-format corpus first is what
an LLM's pretraining gives it in miniature: the corpus is each training user's whole profile
written with the official LaMP prompt's per-item template (:func:`profile_corpus`), so
predicting an item's tag from the items before it is the in-context reading the task needs. The
corpus holds only inputs the users gave (their profiles), never a question's gold output, and
no dev user (the run's ``train`` split only).

>>> rows = [{"user_id": "u1", "profile": [{"description": "A rocket flies.", "tag": "sci-fi"},
...                                       {"description": "A clown trips.", "tag": "comedy"}]},
...         {"user_id": "u1", "profile": [{"description": "A rocket flies.", "tag": "sci-fi"}]}]
>>> profile_corpus("LaMP-2", rows, shuffles=1, seed=0)
['the tag for the movie: "A rocket flies." is "sci-fi" , and the tag for the movie: "A clown trips." is "comedy" . ']
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["pretrain_corpus", "pretrain_lm", "pretrain_problem", "profile_corpus"]

logger = logging.getLogger("tagpr_trainers")

#: a prompt budget no profile reaches: the per-item template, never truncated
_NO_TRUNCATION = 10**9


def pretrain_problem(task: str) -> str | None:
    """Why ``task``'s profiles cannot be written as a corpus, or ``None`` (an unknown task name is
    left to the checks that own it). The config check and :func:`profile_corpus` both ask this.

    >>> pretrain_problem("LaMP-2") is None, pretrain_problem("LaMP_1")[:28]
    (True, "model.tiny.pretrain: LaMP-1'")
    """
    from tagpr_eval.data.lamp_files import canonical_task

    try:
        name = canonical_task(task)
    except (KeyError, ValueError):
        return None
    if name == "LaMP-1":
        return ("model.tiny.pretrain: LaMP-1's official prompt weaves the profile's titles into the question, so it "
                "has no item template to write a profile with; drop LaMP-1 from data.tasks or set "
                "model.tiny.pretrain.shuffles: 0")
    return None


def profile_corpus(task: str, rows: Iterable[Any], shuffles: int, seed: int = 0) -> list[str]:
    """One text per user and pass: the user's profile items in a random order, joined the way
    the official LaMP prompt joins retrieved items (:func:`tagpr_eval.prompts.lamp_prompt` with an
    empty input). A user is read once (the first question's profile; LaMP's questions of one user
    share it); questions without a ``user_id`` count as their own user. ``rows``: mappings or
    :class:`~tagpr_eval.data.LampSample` objects with ``profile`` (and ``user_id``, ``id``)."""
    from tagpr_eval.prompts import lamp_prompt

    problem = pretrain_problem(task)
    if problem:
        raise ValueError(problem)
    profiles: dict[str, list[Mapping[str, Any]]] = {}
    for i, row in enumerate(rows):
        get = row.get if isinstance(row, Mapping) else lambda k, d=None, r=row: getattr(r, k, d)
        user = get("user_id") or f"question:{get('id', i)}"
        profile = get("profile") or []
        if profile and user not in profiles:
            profiles[user] = list(profile)
    rng = random.Random(seed)
    texts = []
    for _ in range(shuffles):
        users = sorted(profiles)
        rng.shuffle(users)
        for user in users:
            items = list(profiles[user])
            rng.shuffle(items)
            texts.append(lamp_prompt(task, "", items, max_length=_NO_TRUNCATION))
    return texts


def pretrain_corpus(lamp_dir: str | Path, tasks: Iterable[str], split: str, shuffles: int, seed: int = 0) -> list[str]:
    """:func:`profile_corpus` of each task's ``split`` questions in the LaMP directory ``lamp_dir``
    (the run's training split: the dev users' profiles are never read)."""
    from tagpr_eval.data import load_task

    texts: list[str] = []
    for task in tasks:
        texts += profile_corpus(task, load_task(lamp_dir, task, split).samples, shuffles, seed=seed)
    return texts


def pretrain_lm(model_dir: str | Path, texts: list[str], learning_rate: float, block_size: int, batch_size: int,
                seed: int = 0, max_steps: int | None = None) -> dict[str, Any]:
    """Train the causal LM in ``model_dir`` (its tokenizer beside it) on ``texts`` with the next-token
    loss, one pass, and save it there; return ``{"steps", "tokens", "loss_first", "loss_last", "seconds"}``
    (also written to ``model_dir/pretrain.json``).

    The texts are tokenized, each closed with the end-of-sequence token, concatenated and cut into
    blocks of ``block_size`` tokens (the tail that fills no block is dropped), which are shuffled
    and fed ``batch_size`` at a time; AdamW at ``learning_rate``, linear warm-up over the first 5%
    of the steps then a cosine decay to 0, gradients clipped at norm 1. Deterministic for a
    ``seed`` and a thread count. ``max_steps`` stops early (the schedule is the whole pass's; a
    dry run takes one step). Raises ``ValueError`` when the corpus fills no batch.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = Path(model_dir)
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    eos = tok.eos_token_id
    ids: list[int] = []
    for text_ids in tok(texts, add_special_tokens=False)["input_ids"] if texts else []:  # one batched call
        ids.extend(text_ids)
        if eos is not None:
            ids.append(eos)
    n_blocks = len(ids) // block_size
    steps = n_blocks // batch_size
    if steps < 1:
        raise ValueError(f"model.tiny.pretrain: the profile corpus has {len(ids)} tokens, less than one batch of "
                         f"{batch_size} x {block_size}; lower model.tiny.pretrain.block_size or batch_size, or "
                         "raise model.tiny.pretrain.shuffles")
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    blocks = torch.tensor(ids[: n_blocks * block_size]).view(n_blocks, block_size)
    blocks = blocks[torch.randperm(n_blocks, generator=gen)]
    warm = max(1, int(0.05 * steps))

    def schedule(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1.0 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))

    opt = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    model.train()
    t0 = time.perf_counter()
    first = last = float("nan")
    done = steps if max_steps is None else min(steps, max_steps)
    for step in range(done):
        x = blocks[step * batch_size:(step + 1) * batch_size]
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        last = float(loss.item())
        if step == 0:
            first = last
        if step % 100 == 0 or step == done - 1:
            logger.info("pretraining the tiny base: step %d/%d, loss %.4f", step + 1, done, last)
    model.save_pretrained(str(model_dir))
    out = {"steps": done, "tokens": done * batch_size * block_size, "loss_first": first, "loss_last": last,
           "seconds": round(time.perf_counter() - t0, 1)}
    (model_dir / "pretrain.json").write_text(json.dumps(out, indent=2) + "\n")
    return out
