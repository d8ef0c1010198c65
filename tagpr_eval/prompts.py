"""Prompts: the LaMP authors' per-item + aggregate templates, and our tagged-reasoning chat prompt.

``style="lamp"`` reproduces the official PPEP/AIP prompts (the LaMP paper and code), including the LaMP code's
token budget: the whole prompt gets ``max_length`` tokens (512 in the LaMP code); the input
takes at most 60% of it, and the rest is shared among the k items — each item gets
``(budget - 1 - 2·(k-1)) // k`` tokens minus its template's own length, and what an item does
not use carries over to the next. Only the long field of each item is truncated (LaMP-1 the
title, LaMP-2 the description, LaMP-3/4/6/7 the text, LaMP-5 the abstract). When items cannot
fit, the input's share shrinks in steps of 10%; when nothing fits, the prompt is the bare input.

Tokens: **whitespace-separated words by default** (``tokenizer=None``); a text that fits is
kept verbatim, a truncated one is its first n words joined by single spaces. The LaMP code
counted the model's tokenizer (FlanT5 SentencePiece, with the end-of-sequence token): pass any
Hugging Face tokenizer as ``tokenizer=`` to count and truncate exactly like it.

``style="tagged"`` (ours) returns chat messages ``[{"role": "system", ...}, {"role": "user", ...}]``
that ask for the schema's tagged reasoning steps and the answer tag; backends apply the
model's chat template.

>>> from tagpr_eval.data import LampSample
>>> s = LampSample("1", "Which tag does this movie relate to? description: A pilot lands.", [])
>>> build_prompt("LaMP-2", s, [{"description": "A rocket flies.", "tag": "sci-fi"}])
'the tag for the movie: "A rocket flies." is "sci-fi" . Which tag does this movie relate to? description: A pilot lands.'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["TokenCounter", "answer_format", "build_prompt", "lamp_prompt", "render_item", "tagged_messages"]

Item = Mapping[str, Any]


class TokenCounter:
    """Counts and truncates text in tokens: whitespace words, or a Hugging Face tokenizer.

    >>> w = TokenCounter()
    >>> w.count("a  b c"), w.truncate("a  b c", 2), w.truncate("a  b c", 5)
    (3, 'a b', 'a  b c')
    """

    def __init__(self, tokenizer: Any = None) -> None:
        self.tokenizer = tokenizer

    def count(self, text: str) -> int:
        if self.tokenizer is None:
            return len(text.split())
        return len(self.tokenizer(text)["input_ids"])

    def truncate(self, text: str, n: int) -> str:
        """The text cut to ``n`` tokens (``n < 0`` raises ``OverflowError``, like the LaMP code's retry)."""
        if n < 0:
            raise OverflowError(n)
        if self.tokenizer is None:
            words = text.split()
            return text if len(words) <= n else " ".join(words[:n])
        ids = self.tokenizer(text, max_length=n, truncation=True)["input_ids"] if n > 0 else []
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))

    def used(self, text: str, n: int) -> tuple[str, int]:
        """(truncated text, tokens it takes), as the LaMP code counts them."""
        if self.tokenizer is None:
            t = self.truncate(text, n)
            return t, len(t.split())
        if n < 0:
            raise OverflowError(n)
        ids = self.tokenizer(text, max_length=n, truncation=True)["input_ids"] if n > 0 else []
        return str(self.tokenizer.decode(ids, skip_special_tokens=True)), len(ids)


def _spec_of(task: str) -> Any:
    from tagpr_rewards.metrics.lamp import get_task

    return get_task(task)


def _canonical(task: str) -> str:
    return str(_spec_of(task).name)


# The official per-item templates (the prompt wording is this module's; which field is
# truncated is the task's ``long_field``): (item template with {text} for the truncated
# field, template used to measure the fixed part).
def _spec(task: str) -> tuple[str, Callable[[Item, str], str], Callable[[Item], str]]:
    field = str(_spec_of(task).long_field)
    if task == "LaMP-2":
        return (field, lambda p, t: f'the tag for the movie: "{t}" is "{p["tag"]}" ',
                lambda p: f'the tag for the movie: " " is "{p["tag"]}" ')
    if task == "LaMP-2N":
        return (field, lambda p, t: f'the category for the article: "{t}" is "{p["category"]}" ',
                lambda p: f'the category for the article: " " is "{p["category"]}" ')
    if task == "LaMP-3":
        return (field, lambda p, t: f'{p["score"]} is the score for "{t}" ',
                lambda p: f'{p["score"]} is the score for " " ')
    if task in ("LaMP-4", "LaMP-6"):
        return (field, lambda p, t: f'"{p["title"]}" is the title for "{t}" ',
                lambda p: f'"{p["title"]}" is the title for " " ')
    if task == "LaMP-5":
        # the LaMP code measures the fixed part without "for" (kept: it decides the budget)
        return (field, lambda p, t: f'"{p["title"]}" is a title for "{t}" ',
                lambda p: f'"{p["title"]}" is a title " " ')
    if task == "LaMP-7":
        return (field, lambda p, t: f'"{t}" ', lambda p: '"" ')
    raise KeyError(f"no LaMP prompt template for task {task!r}")


def _lamp_items(task: str, inp: str, items: Sequence[Item], budget: int, tc: TokenCounter) -> str:
    k = len(items)
    if k == 0:
        raise ZeroDivisionError("no items")  # the LaMP code divides by k: the bare input results
    if task == "LaMP-1":
        per = (budget - 2 * (k - 1)) // k
        saved = 0
        titles = []
        for p in items:
            t, used = tc.used(str(p["title"]), per + saved - 2)
            saved += per - used - 2
            titles.append(f'"{t}"')
        i = inp.find("title")
        if i < 0:
            return inp
        return inp[: i + 5] + ", and " + ", and ".join(titles) + inp[i + 5:]
    field, fmt, fixed = _spec(task)
    reserve = 1 + 2 * (k - 1)
    if task == "LaMP-5":
        reserve += tc.count("Following the given patterns")
    elif task == "LaMP-7":
        reserve += tc.count("are written by user. Following the given patterns")
    per = (budget - reserve) // k
    saved = 0
    parts = []
    for p in items:
        need = tc.count(fixed(p))
        t, used = tc.used(str(p[field]), per + saved - need)
        saved += per - used - need
        parts.append(fmt(p, t))
    joined = ", and ".join(parts)
    if task == "LaMP-5":
        return f"{joined}. Following the given patterns {inp}"
    if task == "LaMP-7":
        return f"{joined} are written by a person. Following the given patterns {inp}"
    return f"{joined}. {inp}"


def lamp_prompt(task: str, inp: str, items: Sequence[Item], max_length: int = 512, tokenizer: Any = None) -> str:
    """The official LaMP prompt for ``inp`` with the retrieved ``items`` (best first).

    >>> lamp_prompt("LaMP-7", "Paraphrase the following tweet: hi", [{"text": "yo"}, {"text": "sup"}])
    '"yo" , and "sup"  are written by a person. Following the given patterns Paraphrase the following tweet: hi'
    >>> lamp_prompt("LaMP-1", 'the title "P", which? [1]: "A" [2]: "B"', [{"title": "T1"}, {"title": "T2"}])
    'the title, and "T1", and "T2" "P", which? [1]: "A" [2]: "B"'
    >>> lamp_prompt("LaMP-3", "review: ok", [])
    'review: ok'
    """
    name = _canonical(task)
    tc = TokenCounter(tokenizer)
    n_inp = tc.count(inp)
    factor = 0.6
    while factor >= 0:
        budget = max_length - min(n_inp, int(factor * max_length))
        try:
            return _lamp_items(name, inp, items, budget, tc)
        except (OverflowError, ZeroDivisionError):
            factor -= 0.1
    return inp


# ---------------------------------------------------------------------------------------------
# tagged (ours)

def answer_format(task: str) -> str:
    """One line saying what the answer must look like for ``task``.

    >>> answer_format("LaMP-3")
    'a single rating: 1, 2, 3, 4 or 5'
    """
    spec = _spec_of(task)
    if spec.name == "LaMP-1":
        return "exactly [1] or [2]"
    if spec.kind == "classification":
        return "exactly one tag from this list: " + ", ".join(spec.labels or ())
    if spec.kind == "rating":
        return "a single rating: 1, 2, 3, 4 or 5"
    return f"only the {spec.output_name or 'text'}, with no explanation"


def render_item(task: str, item: Item, index: int, long_text: str | None = None) -> str:
    """One profile item as a line of the tagged prompt: ``[i] (date) field: value | field: value``.

    >>> render_item("LaMP-2", {"description": "A pilot lands.", "tag": "sci-fi", "date": 2001}, 1)
    '[1] (2001) description: A pilot lands. | tag: sci-fi'
    """
    spec = _spec_of(task)
    parts = []
    for f in spec.display_fields:
        v = long_text if (f == spec.long_field and long_text is not None) else item.get(f, "")
        parts.append(f"{f}: {' '.join(str(v).split())}")
    date = f"({item['date']}) " if item.get("date") is not None else ""
    return f"[{index}] {date}" + " | ".join(parts)


def tagged_messages(task: str, inp: str, items: Sequence[Item], schema: Any = "personalization-9",
                    max_length: int = 512, tokenizer: Any = None,
                    max_item_words: int | None = None) -> list[dict[str, str]]:
    """Our tagged-reasoning chat prompt: system (tags, order, answer tag) + user (history, question).

    Long item fields share the same budget as in the LaMP prompt (``max_length`` minus the
    input's share, split among the items with carry-over); ``max_item_words`` caps each item
    further.

    >>> m = tagged_messages("LaMP-3", "review: fine", [{"text": "great", "score": "5"}], schema="think-answer")
    >>> [x["role"] for x in m], "<answer>" in m[0]["content"], "[1] text: great | score: 5" in m[1]["content"]
    (['system', 'user'], True, True)
    """
    from tagpr_rewards.tags import load_schema

    name = _canonical(task)
    sch = load_schema(schema)
    tc = TokenCounter(tokenizer)
    lines = [
        "You are a personalization assistant. Before answering, reason about this user step by step, "
        "using their history. Write each reasoning step inside one of the tags below, as <tag>...</tag>, "
        f"and put only the final answer inside <{sch.answer_tag}>...</{sch.answer_tag}>.",
        "",
        "Tags:",
    ]
    lines += [f"<{t}>: {meaning}" for t, meaning in sch.tags]
    if sch.required:
        lines.append("Required tags: " + ", ".join(sch.required) + ".")
    if sch.order:
        lines.append("Allowed order of the tags (a regular expression over tag names): " + " ".join(sch.order.split()))
    if sch.wrapper:
        lines.append(f"Wrap all reasoning steps in <{sch.wrapper}>...</{sch.wrapper}>; the answer tag comes after it.")
    if not sch.allow_text_outside:
        lines.append("Write nothing outside the tags.")
    lines.append(f"The answer must be {answer_format(name)}.")
    system = "\n".join(lines)

    # shared budget for the long field of each item
    long_f = _spec_of(name).long_field
    k = len(items)
    texts: list[str | None] = [None] * k
    if k:
        budget = max_length - min(tc.count(inp), int(0.6 * max_length))
        per = max(budget // k, 0)
        saved = 0
        for i, it in enumerate(items):
            cap = per + saved
            if max_item_words is not None:
                cap = min(cap, max_item_words)
            t, used = tc.used(str(it.get(long_f, "")), max(cap, 0))
            saved = max(per + saved - used, 0)
            texts[i] = t
    if items:
        hist = "The user's history (most relevant first):\n" + "\n".join(
            render_item(name, it, i + 1, texts[i]) for i, it in enumerate(items))
    else:
        hist = "The user's history: (none available)"
    user = f"{hist}\n\nQuestion:\n{inp}\n\nAnswer with {answer_format(name)}, inside <{sch.answer_tag}>...</{sch.answer_tag}>."
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def build_prompt(task: str, sample: Any, items: Sequence[Item], style: str = "lamp", schema: Any = None,
                 max_length: int = 512, tokenizer: Any = None,
                 max_item_words: int | None = None) -> str | list[dict[str, str]]:
    """The prompt for one question: ``style="lamp"`` → official LaMP string; ``"tagged"`` → chat
    messages asking for the schema's tagged reasoning (schema default ``personalization-9``).

    ``sample``: a :class:`~tagpr_eval.data.LampSample`, a dict with ``input``, or the input text;
    ``items``: the retrieved profile items, best first.

    >>> build_prompt("LaMP-4", "Generate a headline for the following article: x", [], style="tagged")[1]["role"]
    'user'
    """
    inp = sample if isinstance(sample, str) else (sample["input"] if isinstance(sample, Mapping) else sample.input)
    if style == "lamp":
        return lamp_prompt(task, inp, items, max_length=max_length, tokenizer=tokenizer)
    if style == "tagged":
        return tagged_messages(task, inp, items, schema=schema or "personalization-9", max_length=max_length,
                               tokenizer=tokenizer, max_item_words=max_item_words)
    from tagpr_rewards.registry import unknown_name_error

    raise unknown_name_error("prompt style", style, ["lamp", "tagged"])
