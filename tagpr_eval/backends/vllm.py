"""vLLM backend (GPU; imported only when chosen).

Model args: ``pretrained`` (required), ``dtype`` (default ``auto``), ``tensor_parallel_size``,
``gpu_memory_utilization``, ``max_model_len``, ``trust_remote_code``, ``seed``, ``revision``,
``enforce_eager``. String prompts go through ``LLM.generate``; chat-list prompts through
``LLM.chat`` (the model's chat template, generation prompt added).

Example (needs ``pip install 'tagpr[vllm]'`` and a GPU)::

    tagpr-eval run --model vllm --set model_args.pretrained=Qwen/Qwen2.5-7B-Instruct --set model_args.tensor_parallel_size=2 \\
        --tasks LaMP-2 --data ~/.cache/tagpr/lamp --prompt tagged
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tagpr_eval.backends import Backend, GenerationConfig, Request, apply_stop, as_requests
from tagpr_eval.config import ConfigError


class VLLMBackend(Backend):
    """Offline batched generation with ``vllm.LLM``."""

    name = "vllm"
    ARGS = ("pretrained", "dtype", "tensor_parallel_size", "gpu_memory_utilization", "max_model_len",
            "trust_remote_code", "seed", "revision", "enforce_eager")
    NON_OUTPUT_ARGS = ("gpu_memory_utilization",)

    def __init__(self, pretrained: str | None = None, dtype: str = "auto", tensor_parallel_size: int = 1,
                 gpu_memory_utilization: float = 0.9, max_model_len: int | None = None,
                 trust_remote_code: bool = False, seed: int = 0, revision: str | None = None,
                 enforce_eager: bool = False) -> None:
        if not pretrained:
            raise ConfigError("the vllm backend needs a model: --set model_args.pretrained=PATH_OR_ID")
        try:
            import vllm
        except ImportError as e:
            raise ImportError("the vllm backend needs vLLM (CUDA): pip install 'tagpr[vllm]'") from e
        self.pretrained = str(pretrained)
        self.revision = revision
        kw: dict[str, Any] = dict(model=self.pretrained, dtype=dtype, tensor_parallel_size=int(tensor_parallel_size),
                                  gpu_memory_utilization=float(gpu_memory_utilization),
                                  trust_remote_code=bool(trust_remote_code), seed=int(seed),
                                  enforce_eager=bool(enforce_eager))
        if max_model_len:
            kw["max_model_len"] = int(max_model_len)
        if revision:
            kw["revision"] = revision
        self._vllm = vllm
        self.llm = vllm.LLM(**kw)

    def identity(self) -> dict[str, Any]:
        return {"backend": self.name, "pretrained": self.pretrained, "revision": self.revision}

    def _params(self, gen: GenerationConfig) -> Any:
        return self._vllm.SamplingParams(
            max_tokens=gen.max_new_tokens,
            temperature=0.0 if gen.greedy else float(gen.temperature),
            top_p=1.0 if gen.greedy else float(gen.top_p),
            seed=gen.seed,
            stop=list(gen.stop) or None,
        )

    def generate(self, requests: Sequence[Request | Any], gen: GenerationConfig) -> list[str]:
        reqs = as_requests(requests)
        params = self._params(gen)
        out: list[str | None] = [None] * len(reqs)
        text_idx = [i for i, r in enumerate(reqs) if isinstance(r.prompt, str)]
        chat_idx = [i for i, r in enumerate(reqs) if not isinstance(r.prompt, str)]
        if text_idx:
            res = self.llm.generate([reqs[i].prompt for i in text_idx], params, use_tqdm=False)
            for i, o in zip(text_idx, res):
                out[i] = o.outputs[0].text
        if chat_idx:
            res = self.llm.chat([reqs[i].prompt for i in chat_idx], params, use_tqdm=False,
                                add_generation_prompt=True)
            for i, o in zip(chat_idx, res):
                out[i] = o.outputs[0].text
        return [apply_stop(o or "", gen.stop) for o in out]

    def close(self) -> None:
        del self.llm
