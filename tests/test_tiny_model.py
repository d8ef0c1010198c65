"""The offline tiny model: tokenizer, chat template, generation, determinism."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tagpr_eval.tiny_model import ASSISTANT_TOKEN, END_TOKEN, build_tiny_model


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"), vocab_size=500, hidden_size=64, num_layers=2)


def test_loads_offline_with_auto_classes(tiny_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    assert tok.is_fast
    assert tok.eos_token == END_TOKEN and tok.pad_token != tok.eos_token
    # every token id the tokenizer can produce fits the embedding matrix
    assert len(tok) <= model.config.vocab_size
    assert model.config.eos_token_id == tok.eos_token_id


def test_loaded_tokenizer_matches_trained_bpe(tiny_dir: Path) -> None:
    """AutoTokenizer rebuilds Qwen2's pre-tokeniser: the trained tokenizer.json must agree with it."""
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    raw = Tokenizer.from_file(str(tiny_dir / "tokenizer.json"))
    tok = AutoTokenizer.from_pretrained(tiny_dir)
    text = "The user rated 12345 movies.\n  Two  spaces <|user|>hi<|end|> sci-fi, classic! é"
    assert raw.encode(text).ids == tok(text)["input_ids"]
    assert tok.decode(tok(text)["input_ids"]) == text


def test_chat_template_ends_generation_prompt_with_role_token(tiny_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_dir)
    msgs = [{"role": "system", "content": "s"}, {"role": "user", "content": "Which tag?"}]
    prompt_ids = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True, return_dict=True)[
        "input_ids"
    ]
    assert prompt_ids[-1] == tok.convert_tokens_to_ids(ASSISTANT_TOKEN)
    full = tok.apply_chat_template(
        msgs + [{"role": "assistant", "content": "<answer>sci-fi</answer>"}],
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    # the prompt tokenises to a prefix of prompt + completion (no merge across the boundary)
    assert full["input_ids"][: len(prompt_ids)] == prompt_ids
    assert full["input_ids"][-1] == tok.eos_token_id
    mask = full["assistant_masks"]
    assert sum(mask) == len(full["input_ids"]) - len(prompt_ids)


def test_generates_tokens(tiny_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    prompts = ["short", "a somewhat longer user question"]
    texts = [
        tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
        for p in prompts
    ]
    enc = tok(texts, return_tensors="pt", padding=True)
    out = model.generate(**enc, max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[0] == 2 and out.shape[1] > enc["input_ids"].shape[1]


def test_deterministic_by_seed(tmp_path: Path) -> None:
    def digest(d: Path) -> str:
        return hashlib.sha256(
            (d / "model.safetensors").read_bytes() + (d / "tokenizer.json").read_bytes()
        ).hexdigest()

    kw = dict(corpus=["the user likes sci-fi"] * 5, vocab_size=300, hidden_size=32, num_layers=1)
    a = build_tiny_model(tmp_path / "a", seed=3, **kw)
    b = build_tiny_model(tmp_path / "b", seed=3, **kw)
    c = build_tiny_model(tmp_path / "c", seed=4, **kw)
    assert digest(a) == digest(b)
    assert digest(a) != digest(c)


def test_rejects_bad_sizes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="multiple of 4"):
        build_tiny_model(tmp_path, hidden_size=30)
    with pytest.raises(ValueError, match="vocab_size"):
        build_tiny_model(tmp_path, vocab_size=100)
