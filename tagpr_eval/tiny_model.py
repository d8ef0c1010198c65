"""A tiny offline causal LM (byte-level BPE + random-init Qwen2) for tests and the ``tiny-cpu`` recipe.

No model hub is needed: :func:`build_tiny_model` trains a byte-level BPE tokenizer with
``tokenizers`` on a small corpus, wraps it in a fast ``Qwen2Tokenizer`` (a ``PreTrainedTokenizerFast``) with special role tokens
and a chat template, random-initialises a small ``Qwen2ForCausalLM`` and ``save_pretrained()``s
both, so ``AutoTokenizer.from_pretrained(out_dir)`` and ``AutoModelForCausalLM.from_pretrained(out_dir)``
work offline.

Why role tokens: the generation prompt ends with the special token ``<|assistant|>``. With a
plain-text boundary such as ``"A: "``, byte-level BPE merges across the prompt/completion boundary
differently in training and at generation time, and a trained model then starts its answer
mid-template (observed: 27-50% tag-format validity instead of 100%). A special token never merges.

Example (about a second on CPU):

>>> import tempfile
>>> from transformers import AutoTokenizer
>>> d = build_tiny_model(tempfile.mkdtemp(), vocab_size=400, hidden_size=32, num_layers=2)
>>> tok = AutoTokenizer.from_pretrained(d)
>>> tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
'<|user|>hi<|end|><|assistant|>'
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "ASSISTANT_TOKEN",
    "CHAT_TEMPLATE",
    "END_TOKEN",
    "PAD_TOKEN",
    "SPECIAL_TOKENS",
    "SYSTEM_TOKEN",
    "USER_TOKEN",
    "build_tiny_model",
    "default_corpus",
]

SYSTEM_TOKEN = "<|system|>"
USER_TOKEN = "<|user|>"
ASSISTANT_TOKEN = "<|assistant|>"
#: Ends every message; it is also the EOS token, so generation stops after the assistant turn.
END_TOKEN = "<|end|>"
PAD_TOKEN = "<|pad|>"
SPECIAL_TOKENS = [PAD_TOKEN, END_TOKEN, SYSTEM_TOKEN, USER_TOKEN, ASSISTANT_TOKEN]

#: ``<|role|>content<|end|>`` per message; the generation prompt ends with ``<|assistant|>`` so the
#: prompt/completion boundary is a special token (see module docstring). The ``{% generation %}``
#: markers let TRL's ``assistant_only_loss`` find the assistant tokens.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|assistant|>' }}{% generation %}{{ message['content'] }}{{ '<|end|>' }}{% endgeneration %}"
    "{% else %}"
    "{{ '<|' + message['role'] + '|>' }}{{ message['content'] }}{{ '<|end|>' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)

# Words the synthetic LaMP data and the prompts use; used when neither the synthetic generator
# nor the tag schemas are importable (the corpus then still covers the common vocabulary).
_FALLBACK_WORDS = (
    "the a an of to and in is for on with as by that this it from at be are was user profile history "
    "query question answer movie film tag tags description rating review score product text title "
    "news article tweet paraphrase email subject abstract paper citation reference which one of the "
    "following write generate predict choose only without further explanation given "
    "sci-fi based on a book comedy action twist ending dystopia dark comedy classic "
    "social commentary fantasy psychology romance thought-provoking violence true story "
    "1 2 3 4 5 stars great good bad terrible excellent boring loved hated space love war crime "
    "family friend detective robot dragon ship planet city night heart secret murder "
    "the user prefers likes usually tends to rate highly lowly strict lenient because so therefore "
    "step reason evidence preference pattern infer inferred decision final conclude "
    "<think> </think> <answer> </answer> <analysis> </analysis> <profile> </profile>"
)


def _schema_text() -> list[str]:
    """Tag names and descriptions of every shipped schema (empty when tagpr_rewards.tags is absent)."""
    try:
        from tagpr_rewards.tags import list_schemas, load_schema
    except ImportError:
        return []
    lines: list[str] = []
    for name in list_schemas():
        try:
            schema = load_schema(name)
        except Exception:  # a broken schema must not break tokenizer building
            continue
        for tag, desc in schema.tags:  # (tag, one-line meaning) pairs
            lines.append(f"<{tag}>{desc}</{tag}>")
        lines.append(f"<{schema.answer_tag}>classic</{schema.answer_tag}>")
        if schema.wrapper:
            lines.append(f"<{schema.wrapper}></{schema.wrapper}>")
    return lines


def _synthetic_text(seed: int) -> list[str]:
    """A few synthetic LaMP-2/LaMP-3 samples rendered as text (empty when the generator is absent)."""
    try:
        from tagpr_eval.data.synthetic import generate_task
    except ImportError:
        return []
    lines: list[str] = []
    for task in ("LaMP-2", "LaMP-3"):
        try:
            synth = generate_task(
                task, n_users=6, questions_per_user=3, profile_size=8, seed=seed, split="train"
            )
        except Exception:
            continue
        for sample in synth.data.samples:
            lines.append(str(sample.input))
            if sample.output is not None:
                lines.append(str(sample.output))
            for item in sample.profile:
                lines.append(" ".join(f"{k}: {v}" for k, v in item.items() if k != "id"))
    return lines


def default_corpus(seed: int = 0) -> list[str]:
    """The built-in tokenizer corpus: synthetic LaMP text, tag names/descriptions and common words.

    >>> corpus = default_corpus()
    >>> len(corpus) > 10 and all(isinstance(line, str) for line in corpus)
    True
    """
    rng = random.Random(seed)
    words = _FALLBACK_WORDS.split()
    lines = [_FALLBACK_WORDS]
    for _ in range(200):
        lines.append(" ".join(rng.choice(words) for _ in range(12)))
    lines.extend(_schema_text() * 10)  # repeated so tag names become single tokens
    lines.extend(_synthetic_text(seed))
    return lines


def build_tiny_model(
    out_dir: str | Path,
    corpus: Iterable[str] | None = None,
    vocab_size: int = 600,
    hidden_size: int = 128,
    num_layers: int = 4,
    seed: int = 0,
    max_position_embeddings: int = 2048,
) -> Path:
    """Train a byte-level BPE tokenizer, random-init a tiny Qwen2 and save both to ``out_dir``.

    The tokenizer is a fast (``tokenizers``-backed) ``Qwen2Tokenizer`` with special tokens
    ``<|pad|>`` (pad), ``<|end|>`` (EOS, closes every message), ``<|system|>``, ``<|user|>`` and
    ``<|assistant|>``, and :data:`CHAT_TEMPLATE`.

    Args:
        out_dir: directory to write (created); ``from_pretrained(out_dir)`` loads the result.
        corpus: tokenizer training text; default :func:`default_corpus`.
        vocab_size: BPE vocabulary size including the 256 byte symbols and the special tokens.
        hidden_size: model width (4 attention heads, 2 key/value heads; ``hidden_size`` % 4 == 0).
        num_layers: number of decoder layers.
        seed: seeds the corpus sampling and the weight initialisation; same seed, same files.
        max_position_embeddings: longest sequence the model accepts.

    Returns:
        ``Path(out_dir)``.

    >>> import tempfile
    >>> from transformers import AutoModelForCausalLM
    >>> d = build_tiny_model(tempfile.mkdtemp(), corpus=["hello world"] * 3, vocab_size=300,
    ...                      hidden_size=32, num_layers=1)
    >>> AutoModelForCausalLM.from_pretrained(d).config.model_type
    'qwen2'
    """
    import torch
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import Qwen2Config, Qwen2ForCausalLM
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX, Qwen2Tokenizer

    if hidden_size % 4:
        raise ValueError(f"hidden_size must be a multiple of 4 (4 attention heads), got {hidden_size}")
    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must be at least {256 + len(SPECIAL_TOKENS)} (bytes + special tokens)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = list(default_corpus(seed) if corpus is None else corpus)

    # Train with exactly the normaliser and pre-tokeniser that transformers' Qwen2Tokenizer rebuilds
    # on load (AutoTokenizer picks it from the model type), so what we train is what users load.
    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    state = json.loads(bpe.to_str())
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in state["model"]["merges"]]

    tok = Qwen2Tokenizer(
        vocab=state["model"]["vocab"],
        merges=merges,  # type: ignore[arg-type]  # tokenizers' BPE takes (a, b) pairs
        unk_token=None,  # type: ignore[arg-type]  # byte-level BPE never needs one; Qwen2's default would add a token
        eos_token=END_TOKEN,
        pad_token=PAD_TOKEN,
        extra_special_tokens=[SYSTEM_TOKEN, USER_TOKEN, ASSISTANT_TOKEN],
        padding_side="left",  # decoder-only generation pads on the left
        model_max_length=max_position_embeddings,
        clean_up_tokenization_spaces=False,
    )
    tok.chat_template = CHAT_TEMPLATE

    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        use_cache=True,
    )
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.bos_token_id = None
    model.save_pretrained(out)
    tok.save_pretrained(out)
    (out / "tiny_model.json").write_text(
        json.dumps(
            {"vocab_size": vocab_size, "hidden_size": hidden_size, "num_layers": num_layers, "seed": seed},
            indent=2,
        )
    )
    return out
