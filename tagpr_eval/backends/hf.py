"""Hugging Face ``transformers`` backend: batched, left-padded generation.

Model args: ``pretrained`` (path or hub id; required), ``dtype`` (``auto``, ``float32``,
``bfloat16``, ``float16``), ``device`` (``auto`` = CUDA when present else CPU, or ``cpu``,
``cuda``, ``cuda:1``, ``mps``), ``trust_remote_code``, ``max_length`` (prompt tokens kept, from
the left), ``chat_template`` (``auto``: apply the tokenizer's chat template to chat-list
prompts; ``true``: also wrap string prompts as one user message; ``false``: never),
``tokenizer`` (path, default = ``pretrained``), ``revision``.

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
            "tokenizer", "revision")

    def __init__(self, pretrained: str | None = None, dtype: str = "auto", device: str = "auto",
                 trust_remote_code: bool = False, max_length: int | None = None,
                 chat_template: str | bool = "auto", tokenizer: str | None = None,
                 revision: str | None = None) -> None:
        if not pretrained:
            raise ConfigError("the hf backend needs a model: --model-args pretrained=PATH_OR_ID")
        if dtype not in _DTYPES:
            raise ConfigError(f"hf dtype must be one of {_DTYPES}, got {dtype!r}")
        if chat_template not in ("auto", True, False):
            raise ConfigError(f"hf chat_template must be auto, true or false, got {chat_template!r}")
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

    def generate(self, requests: Sequence[Request | Any], gen: GenerationConfig) -> list[str]:
        torch, _ = _import_hf()
        reqs = as_requests(requests)
        if not reqs:
            return []
        texts = [self.render(r.prompt) for r in reqs]
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
