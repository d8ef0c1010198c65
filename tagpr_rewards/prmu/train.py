"""Train a PRMU on typed pairs with a pairwise Bradley–Terry loss (our recipe).

``loss = −log σ(s(chosen) − s(rejected)) + offset_l2 · ‖offsets‖²``, with per-user offsets
dropped for a fraction of examples so that "unseen user" (offset 0) is a trained state.

With a frozen encoder (the default) every text is encoded once into an
:class:`EmbeddingStore`, and training touches only the small heads — minutes on a CPU.
Checkpoints (``model.safetensors`` + ``config.json`` + ``trainer_state.pt``) are written
atomically after every epoch; ``resume=True`` continues from the last one, and refuses a
checkpoint made with other settings.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from tagpr_rewards.files import atomic_path
from tagpr_rewards.prmu.checkpoint import CheckpointError
from tagpr_rewards.prmu.config import PRMUConfig, TrainConfig, config_diff
from tagpr_rewards.prmu.encoder import TextEncoder
from tagpr_rewards.prmu.head import PRMUHead
from tagpr_rewards.prmu.model import PRMUModel
from tagpr_rewards.prmu.pairs import PairSet, Side, build_pairs, shuffle_profiles, split_users
from tagpr_rewards.prmu.texts import item_texts, query_content

__all__ = ["EmbeddingStore", "TrainResult", "score_pairs", "train_prmu"]

logger = logging.getLogger("tagpr_rewards.prmu")

STATE_FILE = "trainer_state.pt"
# the learned user x response path and the learned attention (see TrainConfig.interaction_lr_scale)
_SLOW_MODULES = ("q_att", "k_att", "v_proj", "u_proj", "r_proj")


class EmbeddingStore:
    """Frozen-encoder embeddings, one row per distinct text, encoded once (shared by models)."""

    def __init__(self, encoder: TextEncoder, batch_size: int = 128) -> None:
        self.encoder = encoder
        self.batch_size = batch_size
        self.index: dict[str, int] = {}
        self._chunks: list[torch.Tensor] = []
        self._matrix: torch.Tensor | None = None

    def ids(self, texts: Sequence[str], progress: bool = False) -> list[int]:
        """Row ids of ``texts``, encoding the ones not seen before."""
        new = [t for t in dict.fromkeys(texts) if t not in self.index]
        if new:
            emb = self.encoder.encode(new, batch_size=self.batch_size, progress=progress).cpu()
            base = len(self.index)
            for i, t in enumerate(new):
                self.index[t] = base + i
            self._chunks.append(emb)
            self._matrix = None
        return [self.index[t] for t in texts]

    @property
    def matrix(self) -> torch.Tensor:
        """All rows ``[n + 1, d]``; the last row is zeros (padding)."""
        if self._matrix is None:
            d = self.encoder.dim
            self._matrix = torch.cat([*self._chunks, torch.zeros(1, d)], dim=0)
        return self._matrix


@dataclass
class PreparedSides:
    """Index tensors for many pair sides (rows into an :class:`EmbeddingStore`)."""

    q: torch.Tensor          # [S]
    r: torch.Tensor          # [S]
    keys: torch.Tensor       # [S, P], -1 = padding
    values: torch.Tensor     # [S, P]
    user_rows: torch.Tensor  # [S]


def prepare_sides(store: EmbeddingStore, sides: Sequence[Side], profiles: Mapping[str, Sequence[Any]],
                  config: PRMUConfig, user_index: Mapping[str, int], progress: bool = False) -> PreparedSides:
    """Encode (once) every text of ``sides`` and build their index tensors."""
    qtexts = [query_content(s.query) for s in sides]
    used = sorted({s.profile for s in sides})
    prof_texts = {k: [item_texts(it) for it in profiles.get(k, [])] for k in used}
    all_texts = qtexts + [s.response for s in sides] + [t for its in prof_texts.values() for kv in its for t in kv]
    store.ids(all_texts, progress=progress)
    q = torch.tensor(store.ids(qtexts))
    r = torch.tensor(store.ids([s.response for s in sides]))
    prof_rows = {k: (store.ids([a for a, _ in its]), store.ids([b for _, b in its])) for k, its in prof_texts.items()}
    m = config.max_profile_items
    emb = store.matrix
    rows_k: list[list[int]] = []
    rows_v: list[list[int]] = []
    for i, s in enumerate(sides):
        ks, vs = prof_rows[s.profile]
        if len(ks) > m:  # keep the items most similar to the query (as at inference)
            sims = emb[ks] @ emb[int(q[i])]
            top = sorted(torch.topk(sims, m).indices.tolist())
            ks, vs = [ks[j] for j in top], [vs[j] for j in top]
        rows_k.append(ks)
        rows_v.append(vs)
    p = max((len(k) for k in rows_k), default=0)
    keys = torch.full((len(sides), p), -1, dtype=torch.long)
    values = torch.full((len(sides), p), -1, dtype=torch.long)
    for i, (ks, vs) in enumerate(zip(rows_k, rows_v)):
        if ks:
            keys[i, : len(ks)] = torch.tensor(ks)
            values[i, : len(vs)] = torch.tensor(vs)
    urows = torch.tensor([user_index.get(s.user_id, 0) for s in sides], dtype=torch.long)
    return PreparedSides(q, r, keys, values, urows)


def side_parts(head: PRMUHead, emb: torch.Tensor, sides: PreparedSides, idx: torch.Tensor,
               keep_offset: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(generic, interaction)`` for the sides ``idx`` (embeddings gathered from ``emb``)."""
    q = emb[sides.q[idx]]
    r = emb[sides.r[idx]]
    kidx, vidx = sides.keys[idx], sides.values[idx]
    pad = emb.shape[0] - 1
    mask = kidx >= 0
    keys = emb[kidx.clamp_min(0).masked_fill(~mask, pad)]
    vals = emb[vidx.clamp_min(0).masked_fill(~mask, pad)]
    u = head.user_vector(q, keys, vals, mask, sides.user_rows[idx], keep_offset)
    return head.parts(q, r, u)


@dataclass
class TrainResult:
    """What :func:`train_prmu` returns."""

    model: PRMUModel
    history: list[dict[str, float]]
    train_pairs: PairSet
    train_users: list[str]
    heldout_users: list[str]
    heldout_records: list[dict[str, Any]] = field(default_factory=list)
    store: EmbeddingStore | None = None


def train_prmu(
    records: Iterable[Any],
    config: PRMUConfig | None = None,
    train_config: TrainConfig | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    encoder: TextEncoder | None = None,
    store: EmbeddingStore | None = None,
    task: str | None = None,
    same_answer: Callable[[str, dict[str, Any]], bool] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train a PRMU on LaMP records (users split into train / held-out by ``heldout_fraction``).

    Args:
        records: LaMP records with golds (see :mod:`tagpr_rewards.prmu.pairs`).
        config, train_config: architecture and recipe (defaults: ours).
        out_dir: checkpoint directory (written atomically after every epoch); None = no files.
        resume: continue from the checkpoint in ``out_dir`` (same settings required).
        encoder, store: reuse a loaded encoder / embedding store (controls share them).
        task: LaMP task name (picks the metric for metric-ranked pairs).
        same_answer: see :func:`~tagpr_rewards.prmu.pairs.build_pairs`.
        progress: show tqdm bars.
    """
    from tqdm.auto import tqdm

    cfg = config or PRMUConfig()
    tcfg = train_config or TrainConfig()
    recs = list(records)
    if tcfg.shuffle_profiles:
        recs = shuffle_profiles(recs, tcfg.seed)
    train_recs, held_recs = split_users(recs, tcfg.heldout_fraction, tcfg.seed)
    if not train_recs:
        raise ValueError("no training records left after holding out users; lower heldout_fraction")
    train_users = sorted({r["user_id"] for r in train_recs})
    pairs = build_pairs(train_recs, tcfg.pair_types, tcfg.seed, tcfg.swaps_per_sample,
                        n_candidates=tcfg.candidates, task=task, same_answer=same_answer)
    if not pairs.pairs:
        raise ValueError("no training pairs could be built (need at least 2 users with golds)")

    start_epoch = 0
    history: list[dict[str, float]] = []
    state: dict[str, Any] | None = None
    if resume and out_dir is not None and (Path(out_dir) / "config.json").is_file():
        meta = PRMUModel.read_meta(out_dir)
        diff = {**config_diff(meta["config"], cfg.to_dict()), **config_diff(meta.get("train", {}), tcfg.to_dict())}
        diff.pop("epochs", None)  # more epochs is what resuming is for
        if diff:
            detail = ", ".join(f"{k}: checkpoint={a!r}, requested={b!r}" for k, (a, b) in diff.items())
            raise CheckpointError(f"{out_dir}: cannot resume, the checkpoint was made with other settings "
                                  f"({detail}); use the same settings or a new --output directory")
        model = PRMUModel.load(out_dir, encoder=encoder)
        spath = Path(out_dir) / STATE_FILE
        if spath.is_file():
            state = torch.load(spath, map_location="cpu", weights_only=False)
            start_epoch = int(state["epoch"]) + 1
            history = list(state.get("history", []))
        model.head.train()
    else:
        model = PRMUModel.create(cfg, train_users, encoder=encoder, seed=tcfg.seed)
        model.head.train()
    head = model.head
    slow = [p for name, p in head.named_parameters() if name.split(".")[0] in _SLOW_MODULES]
    fast = [p for name, p in head.named_parameters() if name.split(".")[0] not in _SLOW_MODULES]
    groups: list[dict[str, Any]] = [{"params": fast, "lr": tcfg.lr},
                                    {"params": slow, "lr": tcfg.lr * tcfg.interaction_lr_scale}]
    finetune = not cfg.freeze_encoder
    if finetune:
        model.encoder.model.train()
        groups.append({"params": list(model.encoder.model.parameters()), "lr": tcfg.lr * 0.01})
    opt = torch.optim.AdamW(groups, lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    if state is not None and "optimizer" in state:
        opt.load_state_dict(state["optimizer"])

    st = store if store is not None else EmbeddingStore(model.encoder, tcfg.encode_batch_size)
    sides = [p.chosen for p in pairs.pairs] + [p.rejected for p in pairs.pairs]
    prepared = prepare_sides(st, sides, pairs.profiles, cfg, model.user_index, progress=progress)
    n = len(pairs.pairs)
    epochs_bar = tqdm(range(start_epoch, tcfg.epochs), desc="PRMU epochs", disable=not progress,
                      initial=start_epoch, total=tcfg.epochs)
    for epoch in epochs_bar:
        gen = torch.Generator().manual_seed(tcfg.seed * 100003 + epoch)
        order = torch.randperm(n, generator=gen)
        tot, acc, cnt = 0.0, 0.0, 0
        for b in range(0, n, tcfg.batch_size):
            idx = order[b: b + tcfg.batch_size]
            keep = (torch.rand(len(idx), generator=gen) >= tcfg.offset_drop).float()
            emb = _finetune_matrix(model, st, prepared, idx, n) if finetune else st.matrix
            gc, ic = side_parts(head, emb, prepared, idx, keep)
            gr, ir = side_parts(head, emb, prepared, idx + n, keep)
            margin = (gc + ic) - (gr + ir)
            loss = torch.nn.functional.softplus(-margin).mean() + tcfg.offset_l2 * head.offset_penalty()
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += float(loss.detach()) * len(idx)
            acc += float((margin.detach() > 0).float().sum())
            cnt += len(idx)
        rec = {"epoch": float(epoch), "loss": tot / cnt, "train_acc": acc / cnt}
        history.append(rec)
        epochs_bar.set_postfix(loss=f"{rec['loss']:.4f}", acc=f"{rec['train_acc']:.3f}")
        if out_dir is not None:
            _save_checkpoint(model, out_dir, tcfg, epoch, opt, history, train_users, held_recs)
    head.eval()
    if finetune:
        model.encoder.model.eval()
    model.clear_cache()
    return TrainResult(model, history, pairs, train_users, sorted({r["user_id"] for r in held_recs}),
                       held_recs, st)


def _finetune_matrix(model: PRMUModel, store: EmbeddingStore, prepared: PreparedSides,
                     idx: torch.Tensor, n: int) -> torch.Tensor:
    """Store matrix with the rows this batch uses re-encoded with gradients."""
    both = torch.cat([idx, idx + n])
    rows = torch.cat([prepared.q[both], prepared.r[both], prepared.keys[both].flatten(),
                      prepared.values[both].flatten()])
    rows = torch.unique(rows[rows >= 0])
    inv = {i: t for t, i in store.index.items()}
    emb = model.encoder.encode_with_grad([inv[int(i)] for i in rows]).cpu()
    base = store.matrix.clone()
    return base.index_put((rows,), emb)


def _save_checkpoint(model: PRMUModel, out_dir: str | os.PathLike[str], tcfg: TrainConfig, epoch: int,
                     opt: torch.optim.Optimizer, history: list[dict[str, float]], train_users: list[str],
                     held_recs: list[dict[str, Any]]) -> None:
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    with atomic_path(d / STATE_FILE) as tmp:  # fsync'd, then moved into place
        torch.save({"epoch": epoch, "optimizer": opt.state_dict(), "history": history}, tmp)
    model.save(d, extra={"train": tcfg.to_dict(), "epoch": epoch,
                         "heldout_users": sorted({r["user_id"] for r in held_recs}),
                         "n_train_users": len(train_users)})


@torch.no_grad()
def score_pairs(model: PRMUModel, pairs: PairSet, store: EmbeddingStore | None = None
                ) -> dict[str, list[float]]:
    """Score both sides of every pair: ``{"chosen", "rejected", "chosen_generic", ...}``.

    Uses the frozen-encoder store (fast, shared); fine-tuned models go through :meth:`PRMUModel.score`.
    """
    if not pairs.pairs:
        return {k: [] for k in ("chosen", "rejected", "chosen_generic", "chosen_interaction",
                                "rejected_generic", "rejected_interaction")}
    if not model.config.freeze_encoder:
        out: dict[str, list[float]] = {}
        for name in ("chosen", "rejected"):
            ss = [getattr(p, name) for p in pairs.pairs]
            g, i = model.score([s.query for s in ss], [s.response for s in ss],
                               [pairs.profiles.get(s.profile, []) for s in ss], [s.user_id for s in ss])
            out[name] = [a + b for a, b in zip(g, i)]
            out[f"{name}_generic"], out[f"{name}_interaction"] = g, i
        return out
    st = store if store is not None else EmbeddingStore(model.encoder)
    sides = [p.chosen for p in pairs.pairs] + [p.rejected for p in pairs.pairs]
    prep = prepare_sides(st, sides, pairs.profiles, model.config, model.user_index)
    head = model.head.float()
    emb = st.matrix
    gs: list[float] = []
    its: list[float] = []
    for b in range(0, len(sides), 1024):
        idx = torch.arange(b, min(b + 1024, len(sides)))
        g_t, i_t = side_parts(head, emb, prep, idx)
        gs += g_t.tolist()
        its += i_t.tolist()
    model.head.to(model.dtype)
    n = len(pairs.pairs)
    return {
        "chosen": [a + b for a, b in zip(gs[:n], its[:n])],
        "rejected": [a + b for a, b in zip(gs[n:], its[n:])],
        "chosen_generic": gs[:n], "chosen_interaction": its[:n],
        "rejected_generic": gs[n:], "rejected_interaction": its[n:],
    }


def load_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """LaMP records from a JSON list or JSONL file (each with id, input, profile, user_id, output)."""
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    if p.suffix == ".jsonl":
        out = []
        for ln, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{p}: line {ln}: invalid JSON ({e.msg})") from e
        return out
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{p}: line {e.lineno}: invalid JSON ({e.msg})") from e
    if not isinstance(data, list):
        raise ValueError(f"{p}: expected a JSON list of LaMP records with 'output' (gold) fields")
    return data
