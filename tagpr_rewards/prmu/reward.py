"""``PRMUReward``: a trained PRMU as a reward (registered lazily as ``prmu``).

Reads, per sample, the user's history from the ``profile`` column (list of LaMP items or a JSON
string of one), the query from ``query`` (else the prompt), the user from ``user_ids``, and
scores the completion's answer. Returns ``generic + interaction`` (or one part, see ``use``),
optionally normalised per group (the G completions of one prompt), with both parts as
components so that logs show the part that moves a GRPO policy (the interaction).

Never raises inside an RL step: bad input gets a defined score (``fallback``) and one logged
warning per batch; a sample the model fails on gets the fallback, its cause in ``errors`` and one
ERROR log, and costs no other sample its score.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

from tagpr_rewards.base import Batch, Reward, RewardOutput
from tagpr_rewards.prmu.texts import DEFAULT_ANSWER_SCHEMA, parse_profile, profile_hash
from tagpr_rewards.task_rewards import batch_answers

__all__ = ["PRMUReward"]

logger = logging.getLogger("tagpr_rewards.prmu")

_MODELS: dict[tuple[str, str, str, float, str], Any] = {}
_MODELS_LOCK = threading.Lock()

NORMALIZE = ("none", "group", "center")
USE = ("total", "interaction", "generic")


def _load_shared(checkpoint: str, device: str, dtype: str | None, cache_size: int,
                 encoder_quantize: str | None = None) -> Any:
    """One loaded model per (checkpoint, device, dtype, mtime, quantisation) per process (rewards share it)."""
    from tagpr_rewards.prmu.model import PRMUModel

    path = str(Path(checkpoint).resolve())
    cfg = Path(path) / "config.json"
    mtime = cfg.stat().st_mtime if cfg.is_file() else 0.0
    key = (path, device, str(dtype), mtime, str(encoder_quantize))
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = PRMUModel.load(path, device=device, dtype=dtype, cache_size=cache_size,
                                          encoder_quantize=encoder_quantize)
        return _MODELS[key]


_WARNED_NO_GROUP: list[bool] = []


def _gather_groups(local: dict[tuple[str, str], list[float]]) -> dict[tuple[str, str], list[float]]:
    """Every process's scores per group (user, query), when ``torch.distributed`` is initialised.

    Group normalisation must see the whole GRPO group, and TRL (accelerate, DeepSpeed) spreads
    one prompt's generations over processes. Every process calls this once per scored batch
    (``all_gather_object``; gloo or NCCL). Without an initialised process group but with
    ``WORLD_SIZE > 1`` the groups cannot be completed: one ERROR says so and each process
    normalises what it has.
    """
    import sys

    dist = None
    if "torch" in sys.modules:
        import torch.distributed as dist_mod

        if dist_mod.is_available() and dist_mod.is_initialized() and dist_mod.get_world_size() > 1:
            dist = dist_mod
    if dist is None:
        if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 and not _WARNED_NO_GROUP:
            _WARNED_NO_GROUP.append(True)
            logger.error("PRMUReward: normalize across WORLD_SIZE=%s processes needs torch.distributed initialised "
                         "(torchrun/accelerate do it); normalising within this process's batch only, which is "
                         "wrong when one prompt's generations are spread over processes",
                         os.environ.get("WORLD_SIZE"))
        return local
    parts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, local)
    full: dict[tuple[str, str], list[float]] = defaultdict(list)
    for part in parts:
        for key, vals in (part or {}).items():
            full[tuple(key)].extend(vals)  # type: ignore[index]
    return dict(full)


class PRMUReward(Reward):
    """PRMU score of each completion for its user (our reward model; see docs/prmu.md).

    Args:
        checkpoint: directory written by ``tagpr-prmu train`` (``config.json`` + ``model.safetensors``).
        device: torch device (``"cpu"``, ``"cuda"``, ``"cuda:1"``...).
        dtype: ``"float32"`` (default), ``"bfloat16"`` or ``"float16"`` for the heads.
        normalize: ``"none"``, ``"group"`` (z-score within the completions that share prompt and
            user, i.e. a GRPO group) or ``"center"`` (subtract the group mean). Under
            ``torch.distributed`` the group statistics are taken over every process's
            completions (one ``all_gather_object`` per scored batch).
        batch_size: completions per forward pass.
        use: ``"total"`` (generic + interaction), ``"interaction"`` or ``"generic"``.
        schema: tag schema the answer is read with (:func:`tagpr_rewards.tags.extract_answer`,
            shared with the task reward of a composite); None = ``personalization-9``.
        fallback: score for samples that cannot be scored (non-text completion, model failure).
        cache_size: profiles whose encodings stay cached (by user id and profile hash).
        model: an already loaded :class:`~tagpr_rewards.prmu.model.PRMUModel` (instead of ``checkpoint``).
        encoder_quantize: ``"int8"`` quantises the encoder (CPU; OUR option, off by default: see
            docs/prmu.md for its measured speed and held-out accuracy).

    Components: ``generic``, ``interaction`` (raw, before normalisation).

    Example (needs a trained checkpoint; see docs/prmu.md)::

        reward = PRMUReward("runs/prmu", normalize="group")
        out = reward(["<answer>sci-fi</answer>"] * 2, prompts=[p, p], user_ids=["u1", "u1"],
                     profile=[items, items], query=[q, q])
        out.components["interaction"]
    """

    name = "prmu"
    low = None
    high = None

    def __init__(
        self,
        checkpoint: str | os.PathLike[str] | None = None,
        device: str = "cpu",
        dtype: str | None = None,
        normalize: str = "none",
        batch_size: int = 256,
        use: str = "total",
        schema: str | None = None,
        fallback: float = 0.0,
        cache_size: int = 4096,
        model: Any = None,
        encoder_quantize: str | None = None,
    ) -> None:
        if normalize not in NORMALIZE:
            raise ValueError(f"PRMUReward normalize must be one of {NORMALIZE}, got {normalize!r}")
        if use not in USE:
            raise ValueError(f"PRMUReward use must be one of {USE}, got {use!r}")
        if checkpoint is None and model is None:
            raise ValueError("PRMUReward needs checkpoint=DIR (from `tagpr-prmu train --output DIR`) or model=")
        self.checkpoint = None if checkpoint is None else str(checkpoint)
        self.device = device
        self.dtype = dtype
        self.normalize = normalize
        self.batch_size = int(batch_size)
        self.use = use
        self.schema = schema
        self.fallback = float(fallback)
        self.cache_size = int(cache_size)
        self.encoder_quantize = encoder_quantize
        self._model = model
        self._lock = threading.Lock()
        if self.checkpoint is not None and model is None:
            from tagpr_rewards.prmu.model import PRMUModel

            PRMUModel.read_meta(self.checkpoint)  # fail early (at construction) on a bad path
            # load now, not in the first RL step: a checkpoint that does not match this code
            # (e.g. written by an older tagpr) must be a clear error, not a silent fallback score
            try:
                self._model = _load_shared(self.checkpoint, self.device, self.dtype, self.cache_size,
                                           self.encoder_quantize)
            except Exception as e:
                raise ValueError(
                    f"cannot load the PRMU checkpoint {self.checkpoint}: {type(e).__name__}: {e}. "
                    "Was it written by another version or with other settings? Retrain it with "
                    "`tagpr-prmu train` (or `tagpr-train prmu --force`)."
                ) from e

    # pickling: ship the settings, reload the model in the worker
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_lock"] = None
        if self.checkpoint is not None:
            state["_model"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def model(self) -> Any:
        """The loaded :class:`~tagpr_rewards.prmu.model.PRMUModel` (loaded on first use)."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    assert self.checkpoint is not None
                    self._model = _load_shared(self.checkpoint, self.device, self.dtype, self.cache_size,
                                               self.encoder_quantize)
        return self._model

    def score(self, batch: Batch) -> RewardOutput:
        n = len(batch)
        reasons = [""] * n
        errors = [""] * n
        scorable: list[int] = []
        problems: dict[str, list[str]] = defaultdict(list)
        ids = batch.column("id")
        queries = batch.column("query")
        prompts = batch.prompts
        prof_col = batch.column("profile")
        users = batch.user_ids
        qs: list[str] = []
        rs: list[str] = []
        ps: list[list[Any]] = []
        us: list[Any] = []
        hs: list[str] = []
        # the G completions of a prompt carry the same profile: parse and hash it once
        parsed: dict[Any, tuple[list[Any], str | None, str]] = {}
        # the answers, memoised on the batch: a composite's task reward already parsed them
        answers = batch_answers(batch, self.schema or DEFAULT_ANSWER_SCHEMA)
        for i in range(n):
            sid = str(ids[i]) if ids is not None else str(i)
            if batch.problems[i] is not None:
                reasons[i] = f"prmu: {batch.problems[i]}; fallback score"
                problems["non-text completion"].append(sid)
                continue
            try:
                q = queries[i] if queries is not None else (prompts[i] if prompts is not None else None)
                if not isinstance(q, str):
                    problems["no query/prompt"].append(sid)
                    q = ""
                raw = prof_col[i] if prof_col is not None else None
                pkey = raw if isinstance(raw, (str, bytes)) else id(raw)
                if pkey not in parsed:
                    its, pr = parse_profile(raw)
                    parsed[pkey] = (its, pr, profile_hash(its))
                items, prob, ph = parsed[pkey]
                response = answers[i].answer
            except Exception as e:  # one sample's bad metadata costs that sample alone
                errors[i] = reasons[i] = f"prmu: bad input ({type(e).__name__}: {e}); fallback score"
                problems[f"unreadable input ({type(e).__name__})"].append(sid)
                continue
            if prob is not None:
                problems[prob if prob.startswith("profile is") else "no profile (scored as a new user)"].append(sid)
            scorable.append(i)
            qs.append(q)
            rs.append(response)
            ps.append(items)
            hs.append(ph)
            us.append(users[i] if users is not None else None)
        for what, sids in problems.items():
            logger.warning("PRMUReward: %d sample(s) with %s (ids %s)", len(sids), what, ", ".join(sids[:5]))
        generic: list[float | None] = [None] * n
        inter: list[float | None] = [None] * n
        scores: list[float | None] = [self.fallback] * n
        if scorable:
            g, it, failed = self._score_isolated(qs, rs, ps, us, hs)
            if failed:
                first = next(iter(failed.values()))
                logger.error("PRMUReward: scoring failed for %d of %d samples (ids %s): %s; they get the "
                             "fallback score %s and an error flag, the other samples keep their scores",
                             len(failed), len(scorable),
                             ", ".join(str(ids[scorable[j]]) if ids is not None else str(scorable[j])
                                       for j in sorted(failed)[:5]), first, self.fallback)
            for j, i in enumerate(scorable):
                if j in failed:
                    errors[i] = reasons[i] = f"prmu failed: {failed[j]}"
                    continue
                gj, ij = g[j], it[j]
                if not (math.isfinite(gj) and math.isfinite(ij)):
                    reasons[i] = "prmu: non-finite score; fallback"
                    continue
                generic[i], inter[i] = gj, ij
                scores[i] = {"total": gj + ij, "interaction": ij, "generic": gj}[self.use]
        if self.normalize != "none":  # on every path: across processes this is a collective call
            self._normalise(scores, scorable, qs, us, generic)
        return RewardOutput(scores, {"generic": generic, "interaction": inter}, reasons, errors)

    def _score_isolated(self, qs: list[str], rs: list[str], ps: list[list[Any]], us: list[Any], hs: list[str]
                        ) -> tuple[list[float], list[float], dict[int, str]]:
        """The model's scores; when a call fails, halves are rescored down to single samples, so a
        sample that breaks the encoder costs that sample alone (``failed``: index -> cause)."""
        n = len(qs)
        g = [math.nan] * n
        it = [math.nan] * n
        failed: dict[int, str] = {}

        def rec(idx: list[int]) -> None:
            try:
                gg, ii = self.model.score([qs[j] for j in idx], [rs[j] for j in idx], [ps[j] for j in idx],
                                          [us[j] for j in idx], batch_size=self.batch_size,
                                          profile_keys=[hs[j] for j in idx])
            except Exception as e:  # never kill an RL step
                if len(idx) == 1:
                    failed[idx[0]] = f"{type(e).__name__}: {e}"
                    return
                mid = len(idx) // 2
                rec(idx[:mid])
                rec(idx[mid:])
                return
            for k, j in enumerate(idx):
                g[j], it[j] = gg[k], ii[k]

        rec(list(range(n)))
        return g, it, failed

    def _normalise(self, scores: list[float | None], scorable: list[int], qs: list[str], us: list[Any],
                   generic: list[float | None]) -> None:
        groups: dict[tuple[str, str], list[int]] = defaultdict(list)
        for j, i in enumerate(scorable):
            if generic[i] is not None:
                groups[(str(us[j]), qs[j])].append(i)
        # the whole group: TRL may spread one prompt's generations over processes
        full = _gather_groups({k: [float(scores[i]) for i in m] for k, m in groups.items()})  # type: ignore[arg-type]
        for key, members in groups.items():
            vals = [float(scores[i]) for i in members]  # type: ignore[arg-type]
            everyone = full.get(key, vals)
            mean = sum(everyone) / len(everyone)
            std = math.sqrt(sum((v - mean) ** 2 for v in everyone) / len(everyone))
            for i, v in zip(members, vals):
                if self.normalize == "center":
                    scores[i] = v - mean
                else:
                    scores[i] = (v - mean) / std if std > 1e-8 else 0.0
