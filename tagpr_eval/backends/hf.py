"""Hugging Face ``transformers`` backend: batched, left-padded generation.

Model args: ``pretrained`` (path or hub id; required), ``dtype`` (``auto``, ``float32``,
``bfloat16``, ``float16``), ``device`` (``auto`` = CUDA when present else CPU, or ``cpu``,
``cuda``, ``cuda:1``, ``mps``), ``trust_remote_code``, ``max_length`` (prompt tokens kept, from
the left), ``chat_template`` (``auto``: apply the tokenizer's chat template to chat-list
prompts; ``true``: also wrap string prompts as one user message; ``false``: never),
``tokenizer`` (path, default = ``pretrained``), ``revision``, ``batch_size`` (``auto``, or the
most prompts per ``model.generate`` call).

Batching. :meth:`HFBackend.generate` sorts the prompts by token length (longest first, so each
sub-batch pads little), generates in sub-batches and returns the outputs in the caller's order.
``batch_size=auto`` sizes the sub-batches to the device: on CUDA from the free memory and the
model's KV-cache per sequence (at most 128), on CPU and MPS 8 (OUR choice, measured: on the
2-core build VM, one torch thread, the tiny model, 24 LaMP-2 prompts × 32 new tokens, sorted
sub-batches of 8 took 7.96 s of CPU time against 9.91 s one prompt at a time; unsorted 8:
8.58 s; a single batch of 24 padded more and was not faster; docs/benchmarks/eval.md).
Greedy outputs do not depend on the sub-batching (left padding; tested).

Example (needs torch and transformers; see tests/test_eval_backends.py)::

    backend = get_backend("hf", pretrained="/models/tiny", dtype="float32")
    backend.generate(["Hello"], GenerationConfig(max_new_tokens=8))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tagpr_eval.backends import Backend, GenerationConfig, Request, apply_stop, as_requests
from tagpr_eval.config import ConfigError

_DTYPES = ("auto", "float32", "bfloat16", "float16")


def _import_hf() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the hf backend needs torch and transformers: pip install 'tagpr[hf]'") from e
    return torch, transformers


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when available, else ``mps`` when available, else ``cpu``."""
    if device != "auto":
        return device
    torch, _ = _import_hf()
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


class HFBackend(Backend):
    """Batched generation with a causal LM from ``transformers``."""

    name = "hf"
    ARGS = ("pretrained", "dtype", "device", "trust_remote_code", "max_length", "chat_template",
            "tokenizer", "revision", "batch_size")

    #: sub-batch size of ``batch_size=auto`` off CUDA (see the module docstring)
    CPU_BATCH = 8
    #: the most prompts per generate call on CUDA
    MAX_CUDA_BATCH = 128

    def __init__(self, pretrained: str | None = None, dtype: str = "auto", device: str = "auto",
                 trust_remote_code: bool = False, max_length: int | None = None,
                 chat_template: str | bool = "auto", tokenizer: str | None = None,
                 revision: str | None = None, batch_size: int | str = "auto") -> None:
        if not pretrained:
            raise ConfigError("the hf backend needs a model: --set model_args.pretrained=PATH_OR_ID")
        if dtype not in _DTYPES:
            raise ConfigError(f"hf dtype must be one of {_DTYPES}, got {dtype!r}")
        if chat_template not in ("auto", True, False):
            raise ConfigError(f"hf chat_template must be auto, true or false, got {chat_template!r}")
        if batch_size != "auto" and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                     or batch_size < 1):
            raise ConfigError(f"hf batch_size must be auto or a positive integer, got {batch_size!r}")
        self.batch_size = batch_size
        torch, transformers = _import_hf()
        self.pretrained = str(pretrained)
        self.device = resolve_device(device)
        self.dtype_name = dtype
        self.max_length = max_length
        self.chat_template = chat_template
        self.revision = revision
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(
            tokenizer or self.pretrained, trust_remote_code=trust_remote_code, revision=revision)
        self.tokenizer.padding_side = "left"  # decoder-only: pad on the left so outputs line up
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        torch_dtype: Any = "auto" if dtype == "auto" else getattr(torch, dtype)
        self.model = transformers.AutoModelForCausalLM.from_pretrained(
            self.pretrained, dtype=torch_dtype, trust_remote_code=trust_remote_code, revision=revision)
        self.model.to(self.device)
        self.model.eval()

    def identity(self) -> dict[str, Any]:
        cfg = getattr(self.model, "config", None)
        return {"backend": self.name, "pretrained": self.pretrained,
                "model_type": getattr(cfg, "model_type", None),
                "commit": getattr(cfg, "_commit_hash", None), "revision": self.revision}

    def render(self, prompt: str | list[dict[str, Any]]) -> str:
        """The exact text fed to the model (chat template applied where it should be)."""
        has_template = bool(getattr(self.tokenizer, "chat_template", None))
        if isinstance(prompt, list):
            if has_template and self.chat_template is not False:
                return str(self.tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True))
            # no template: plain "role: content" lines, ending with the assistant turn
            return "".join(f"{m.get('role', 'user')}: {m.get('content', '')}\n" for m in prompt) + "assistant: "
        if self.chat_template is True and has_template:
            msgs = [{"role": "user", "content": prompt}]
            return str(self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True))
        return prompt

    def sub_batch_size(self, n_tokens: int, gen: GenerationConfig) -> int:
        """Prompts per ``model.generate`` call for prompts of up to ``n_tokens`` tokens."""
        if self.batch_size != "auto":
            return int(self.batch_size)
        if not str(self.device).startswith("cuda"):
            return self.CPU_BATCH
        torch, _ = _import_hf()
        try:
            free, _total = torch.cuda.mem_get_info(torch.device(self.device))
        except Exception:  # noqa: BLE001 - no memory query: a safe middle
            return 32
        cfg = self.model.config
        layers = int(getattr(cfg, "num_hidden_layers", 0) or 12)
        heads = int(getattr(cfg, "num_attention_heads", 0) or 1)
        kv_heads = int(getattr(cfg, "num_key_value_heads", 0) or heads)
        hidden = int(getattr(cfg, "hidden_size", 0) or 768)
        width = hidden * kv_heads // heads
        elem = next(self.model.parameters()).element_size()
        seq = n_tokens + gen.max_new_tokens
        # KV cache (2 tensors per layer) plus activations and logits, with a 2x safety margin
        per_seq = 2 * layers * width * seq * elem + 4 * hidden * seq * elem + 4 * int(getattr(cfg, "vocab_size", 0)) * 4
        return max(1, min(self.MAX_CUDA_BATCH, int(free * 0.5) // max(1, 2 * per_seq)))

    def generate(self, requests: Sequence[Request | Any], gen: GenerationConfig) -> list[str]:
        reqs = as_requests(requests)
        if not reqs:
            return []
        texts = [self.render(r.prompt) for r in reqs]
        tok = self.tokenizer
        lengths = [len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"]]
        if self.max_length:
            lengths = [min(n, int(self.max_length)) for n in lengths]
        order = sorted(range(len(texts)), key=lambda i: -lengths[i])  # stable: ties keep input order
        out: list[str] = [""] * len(texts)
        k = 0
        while k < len(order):
            size = self.sub_batch_size(lengths[order[k]], gen)
            idx = order[k:k + size]
            for i, o in zip(idx, self._generate([texts[i] for i in idx], gen)):
                out[i] = o
            k += size
        return out

    def _generate(self, texts: list[str], gen: GenerationConfig) -> list[str]:
        torch, _ = _import_hf()
        tok = self.tokenizer
        enc_kw: dict[str, Any] = {"return_tensors": "pt", "padding": True, "add_special_tokens": False}
        if self.max_length:
            tok.truncation_side = "left"  # keep the end of the prompt (the question)
            enc_kw.update(truncation=True, max_length=int(self.max_length))
        enc = tok(texts, **enc_kw).to(self.device)
        kwargs: dict[str, Any] = {
            "max_new_tokens": gen.max_new_tokens,
            "pad_token_id": tok.pad_token_id,
            "do_sample": not gen.greedy,
        }
        if not gen.greedy:
            kwargs.update(temperature=float(gen.temperature), top_p=float(gen.top_p))
            torch.manual_seed(gen.seed)
        else:  # silence "temperature is set but do_sample=False" warnings from generation_config
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if gen.stop:
            kwargs.update(stop_strings=list(gen.stop), tokenizer=tok)
        with torch.inference_mode():
            out = self.model.generate(**enc, **kwargs)
        new = out[:, enc["input_ids"].shape[1]:]
        decoded = tok.batch_decode(new, skip_special_tokens=True)
        return [apply_stop(d, gen.stop) for d in decoded]

    def close(self) -> None:
        del self.model
        try:
            torch, _ = _import_hf()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # pragma: no cover
            pass
