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

Modules, one concern each: :mod:`~tagpr_rewards.prmu.encoder` (the sentence encoder),
:mod:`~tagpr_rewards.prmu.head` (the trainable head above), :mod:`~tagpr_rewards.prmu.checkpoint`
(safetensors + config.json I/O) and this one, :class:`PRMUModel`: cached, batched inference
(one encoder pass per chunk for queries, responses and uncached profile items, each distinct text
once).

This module imports torch at import time; :mod:`tagpr_rewards.prmu` loads it lazily.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from tagpr_rewards.prmu.checkpoint import (
    load_checkpoint,
    read_meta,
    save_checkpoint,
)
from tagpr_rewards.prmu.config import PRMUConfig
from tagpr_rewards.prmu.encoder import TextEncoder, resolve_dtype
from tagpr_rewards.prmu.head import PRMUHead
from tagpr_rewards.prmu.texts import item_texts, profile_hash, query_content

__all__ = ["PRMUModel"]

logger = logging.getLogger("tagpr_rewards.prmu")


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
        self.dtype = resolve_dtype(dtype)
        self.encoder = encoder if encoder is not None else TextEncoder(config.encoder, device, config.max_chars)
        self.head = head.to(device=device, dtype=self.dtype).eval()
        self.user_index = dict(user_index)
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self._lock = threading.Lock()
        self.cache_hits = 0
        self.cache_misses = 0
        #: distinct texts sent to the encoder so far (queries, responses, profile items)
        self.encoded_texts = 0

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
        """Write ``model.safetensors`` + ``config.json`` atomically (see :mod:`~tagpr_rewards.prmu.checkpoint`)."""
        return save_checkpoint(self, directory, extra)

    read_meta = staticmethod(read_meta)

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike[str],
        device: str = "cpu",
        dtype: str | torch.dtype | None = None,
        expect: PRMUConfig | dict[str, Any] | None = None,
        encoder: TextEncoder | None = None,
        cache_size: int = 4096,
        encoder_quantize: str | None = None,
    ) -> PRMUModel:
        """Load a checkpoint; with ``expect``, settings that differ are a :class:`CheckpointError`;
        ``encoder_quantize="int8"`` quantises the (loaded) encoder (CPU; see docs/prmu.md)."""
        config, head, user_index, enc = load_checkpoint(directory, device, expect, encoder)
        if encoder_quantize is not None:
            enc.quantize(encoder_quantize)
        return cls(config, head, user_index, enc, device, dtype, cache_size)

    # ------------------------------------------------------------------ inference
    def _user_row(self, user_id: Any) -> int:
        return self.user_index.get(str(user_id), 0) if user_id is not None else 0

    def _profile_items(self, user_id: Any, items: Sequence[Any], phash: str | None = None,
                       count_hit: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoded (keys, values) of a profile, cached by (user id, profile hash)."""
        key = (str(user_id), phash if phash is not None else profile_hash(items))
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                self.cache_hits += int(count_hit)
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
        # ONE encoder pass per chunk for the queries, the responses and the items of every profile
        # not cached yet, each distinct text once (the G completions of a prompt often repeat an
        # answer; profiles repeat their tags)
        todo: dict[tuple[str, str], list[tuple[str, str]]] = {}
        with self._lock:
            for i in group_src:
                ck = (str(uids[i]), pkeys[i])
                if ck not in self._cache and ck not in todo:
                    todo[ck] = [item_texts(it) for it in profiles[i]]
        texts: dict[str, int] = {}
        for t in qtexts:
            texts.setdefault(t, len(texts))
        for t in responses:
            texts.setdefault(t, len(texts))
        for pairs in todo.values():
            for k, v in pairs:
                texts.setdefault(k, len(texts))
                texts.setdefault(v, len(texts))
        emb = self.encoder.encode(list(texts)).to(self.device)
        self.encoded_texts += len(texts)
        if todo:
            empty = torch.zeros(0, self.encoder.dim, device=self.device)
            with self._lock:
                for ck, pairs in todo.items():
                    if pairs:
                        val = (emb[[texts[k] for k, _ in pairs]], emb[[texts[v] for _, v in pairs]])
                    else:
                        val = (empty, empty)
                    self._cache[ck] = val
                    self.cache_misses += 1
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        q_idx = [texts[t] for t in qtexts]
        gq = emb[[q_idx[i] for i in group_src]]
        encoded = [self._profile_items(uids[i], profiles[i], pkeys[i], count_hit=(str(uids[i]), pkeys[i]) not in todo)
                   for i in group_src]
        keys, vals, mask = self._pad_profiles(encoded, gq)
        rows = torch.tensor([self._user_row(uids[i]) for i in group_src], device=self.device)
        dt = self.dtype
        u = self.head.user_vector(gq.to(dt), keys.to(dt), vals.to(dt), mask, rows)
        idx = torch.tensor(members, device=self.device)
        r_emb = emb[[texts[t] for t in responses]]
        g, it = self.head.parts(emb[q_idx].to(dt), r_emb.to(dt), u[idx])
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
