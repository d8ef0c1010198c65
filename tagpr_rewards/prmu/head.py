"""PRMU's trainable head on top of text embeddings (our architecture; see
:mod:`tagpr_rewards.prmu.model` for the formulas and docs/prmu.md for the design)."""

from __future__ import annotations

import math

import torch
from torch import nn

from tagpr_rewards.prmu.config import PRMUConfig

__all__ = ["PRMUHead"]


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
