"""The one tag parser: a single linear scan that turns a completion into spans and errors.

Every tag reward is a predicate over :class:`TagParse`, and :func:`batch_parses` memoises the
parses on the :class:`~tagpr_rewards.base.Batch`, so each completion is scanned once per schema
however many tag rewards run.

Tokens. One compiled regex finds ``<name>`` and ``</name>`` where ``name`` matches
``[A-Za-z][A-Za-z0-9_-]*`` (no attributes, no spaces, case-sensitive). A token whose name is a
schema tag (or the wrapper) is structure; any other such token (``<foo>``, ``</b>``) is an
``unknown_tag`` error, or plain text when the schema says ``unknown_tags: text``. Everything
else is text: ``a < b``, ``<3``, ``<<``, ``< answer>``, ``<answer x=1>``, ``<br/>``.

Structure. Step tags and the answer tag do not nest. With a wrapper, every step tag sits
directly inside the single wrapper and the answer comes after it, outside it.

Error codes (``TagError.code``):

==================  ===========================================================================
unknown_tag         ``<foo>`` / ``</foo>`` with a name that is not in the schema
unclosed            an opened tag is never closed
unexpected_close    a closing tag that closes nothing open
nested              a tag opened inside another step/answer tag, a close that interleaves
                    (``<a><b></a></b>``), the answer inside the wrapper, or a nested wrapper
duplicate_answer    a second answer tag
duplicate_wrapper   a second wrapper
missing_answer      no answer tag at all
text_after_answer   anything but whitespace after the answer's closing tag
text_outside        non-whitespace text outside every tag (only when the schema forbids it)
empty_step          a step or answer tag whose content is only whitespace
missing_wrapper     the schema has a wrapper and a step tag is not inside it (or no wrapper)
not_text            the completion was not a string (it is parsed as ``""``)
==================  ===========================================================================

>>> from tagpr_rewards.tags import load_schema
>>> p = parse_tags("<think>hmm</think><answer> 42 </answer>", load_schema("think-answer"))
>>> p.valid, p.tag_sequence, p.answer
(True, ['think', 'answer'], '42')
>>> [e.code for e in parse_tags("<think>x<answer>1</answer>", "think-answer").errors]
['nested', 'unclosed']
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from tagpr_rewards.base import Batch, to_text
from tagpr_rewards.tags.schema import TagSchema, load_schema

#: ``<name>`` or ``</name>``; group 1 is "/" for closing tags, group 2 the name
TAG_TOKEN_RE = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9_-]*)>")
_NON_WS = re.compile(r"\S")

#: at most this many errors are stored per parse (adversarial inputs can have millions)
MAX_ERRORS = 64

ERROR_CODES = (
    "unknown_tag",
    "unclosed",
    "unexpected_close",
    "nested",
    "duplicate_answer",
    "duplicate_wrapper",
    "missing_answer",
    "text_after_answer",
    "text_outside",
    "empty_step",
    "missing_wrapper",
    "not_text",
)


class TagSpan(NamedTuple):
    """One closed tag: ``text[start:end]`` is ``<tag>content</tag>``."""

    tag: str
    start: int
    end: int
    content: str


class TagError(NamedTuple):
    """A structural error at character ``position`` (``-1``: not tied to a position)."""

    code: str
    message: str
    position: int


class TagParse:
    """The parse of one completion.

    Attributes:
        spans: closed schema tags (wrapper included) in order of their opening.
        errors: structural errors in order of discovery (at most ``MAX_ERRORS``).
        tag_sequence: tags of the closed spans in order, wrapper excluded, answer included
            (the sequence the schema's ``order`` describes).
        answer: stripped content of the first closed answer tag (``None`` when there is none).
        n_tokens: number of schema tag tokens seen (opening and closing).
        valid: no structural error.
    """

    __slots__ = ("_spans", "_parts", "errors", "tag_sequence", "answer", "n_tokens")

    def __init__(
        self,
        spans: list[TagSpan] | None = None,
        errors: list[TagError] | None = None,
        tag_sequence: list[str] | None = None,
        answer: str | None = None,
        n_tokens: int = 0,
        _parts: list[str] | None = None,
    ) -> None:
        # spans are built lazily from the split parts on the fast path (most rewards only
        # read tag_sequence / answer / errors)
        self._spans = spans if spans is not None or _parts is not None else []
        self._parts = _parts
        self.errors: list[TagError] = [] if errors is None else errors
        self.tag_sequence: list[str] = [] if tag_sequence is None else tag_sequence
        self.answer = answer
        self.n_tokens = n_tokens

    @property
    def spans(self) -> list[TagSpan]:
        if self._spans is None:
            parts = self._parts or []
            spans = []
            pos = 0
            # parts: [gap, slash, name, content, slash, name, gap, ...]
            for k in range(0, len(parts) - 1, 6):
                start = pos + len(parts[k])
                tag, content = parts[k + 2], parts[k + 3]
                end = start + len(tag) * 2 + len(content) + 5  # <tag>content</tag>
                spans.append(TagSpan(tag, start, end, content))
                pos = end
            self._spans = spans
            self._parts = None
        return self._spans

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TagParse):
            return NotImplemented
        return (self.spans, self.errors, self.tag_sequence, self.answer, self.n_tokens) == (
            other.spans, other.errors, other.tag_sequence, other.answer, other.n_tokens)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (f"TagParse(valid={self.valid}, tag_sequence={self.tag_sequence!r}, answer={self.answer!r}, "
                f"errors={self.error_codes!r})")

    def __getstate__(self) -> dict[str, Any]:
        return {"spans": self.spans, "errors": self.errors, "tag_sequence": self.tag_sequence,
                "answer": self.answer, "n_tokens": self.n_tokens}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    @property
    def valid(self) -> bool:
        """True when the parse has no structural error."""
        return not self.errors

    @property
    def error_codes(self) -> list[str]:
        return [e.code for e in self.errors]

    @property
    def first_error(self) -> str:
        """``"code: message"`` of the first error, ``""`` when valid."""
        return f"{self.errors[0].code}: {self.errors[0].message}" if self.errors else ""

    def steps(self, schema: TagSchema) -> list[TagSpan]:
        """Spans of step tags (neither the wrapper nor the answer)."""
        skip = (schema.wrapper, schema.answer_tag)
        return [s for s in self.spans if s.tag not in skip]

    def counts(self) -> dict[str, int]:
        """How often each tag of :attr:`tag_sequence` occurs."""
        out: dict[str, int] = {}
        for t in self.tag_sequence:
            out[t] = out.get(t, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (for per-sample logs): sequence, answer, validity, errors."""
        return {
            "valid": self.valid,
            "tag_sequence": list(self.tag_sequence),
            "answer": self.answer,
            "errors": [{"code": e.code, "message": e.message, "position": e.position} for e in self.errors],
        }


def parse_tags(text: Any, schema: TagSchema | str) -> TagParse:
    """Parse ``text`` against ``schema`` in one linear scan. Never raises on any ``text``.

    Args:
        text: the completion (non-strings are converted like :func:`tagpr_rewards.base.to_text`
            and get a ``not_text`` error when they are not text at all).
        schema: a :class:`TagSchema` or a name/path accepted by :func:`load_schema`.

    >>> p = parse_tags("<recall-history>liked sci-fi</recall-history><answer>sci-fi</answer>",
    ...                "personalization-9")
    >>> p.valid, p.tag_sequence
    (True, ['recall-history', 'answer'])
    >>> parse_tags("a < b and <3 <answer>x</answer>", "personalization-9").valid
    True
    """
    if not isinstance(schema, TagSchema):
        schema = load_schema(schema)
    if isinstance(text, str) and not schema.wrapper:
        fast = _parse_flat(text, schema)
        if fast is not None:
            return fast
    return _parse_scan(text, schema)


def _parse_flat(text: str, schema: TagSchema) -> TagParse | None:
    """Fast path for flat chains: ``<a>..</a> <b>..</b> ... <answer>..</answer>``, possibly
    cut off after a last opening tag (a truncated generation: ``... <answer>sci-``).

    Splitting in C and checking the shape with list operations avoids the per-token match
    objects and the stack. Returns ``None`` unless every tag token is a known tag and the
    tokens alternate ``<t>`` / ``</t>`` (then :func:`_parse_scan` runs). Valid chains are
    recognised without a Python loop; flat chains with errors (missing or repeated answer,
    text after the answer, empty steps, stray text, a trailing unclosed tag) get one loop over
    the tag pairs. Both give exactly the parse :func:`_parse_scan` gives (tested property).
    """
    parts = TAG_TOKEN_RE.split(text)
    # parts: [gap0, slash, name, content, slash, name, gap1, ...]: 6 entries per tag pair
    n_pairs, rem = divmod(len(parts) - 1, 6)
    known = schema._known
    trailing: str | None = None
    if rem:
        if rem != 3 or parts[-3] or parts[-2] not in known:
            return None
        trailing = parts[-2]
        parts = parts[:-3]  # ends with the gap before the trailing opening tag
    elif not n_pairs:
        return None
    names = parts[2::3]
    tags = names[0::2]
    if tags != names[1::2] or any(parts[1::6]) or parts[4::6].count("/") != n_pairs:
        return None
    if not known.issuperset(tags):
        return None
    answer_tag = schema.answer_tag
    contents = parts[3::6]
    if (trailing is None and tags[-1] == answer_tag and tags.count(answer_tag) == 1
            and all(map(str.strip, contents)) and not parts[-1].strip()
            and (schema.allow_text_outside or not "".join(parts[0::6]).strip())):
        return TagParse(None, [], tags, contents[-1].strip(), 2 * n_pairs, parts)
    return _flat_with_errors(parts, tags, contents, trailing, schema)


def _flat_with_errors(parts: list[str], tags: list[str], contents: list[str], trailing: str | None,
                      schema: TagSchema) -> TagParse:
    # Mirrors _parse_scan for a flat token stream (same errors, same order, same messages).
    answer_tag = schema.answer_tag
    check_outside = not schema.allow_text_outside
    non_ws = _NON_WS.search
    errors: list[TagError] = []

    def err(code: str, message: str, position: int) -> None:
        if len(errors) < MAX_ERRORS:
            errors.append(TagError(code, message, position))

    pos = 0
    answer: str | None = None
    answer_opened = 0
    answer_closed_at = -1
    after_answer_reported = False
    outside_reported = False
    n = len(tags)
    for k in range(n + (trailing is not None)):
        # the opening token of pair k (or the trailing unclosed tag when k == n)
        tag: str = tags[k] if k < n else trailing  # type: ignore[assignment]
        gap = parts[6 * k]
        start = pos + len(gap)
        if gap and (check_outside or answer_closed_at >= 0):
            mt = non_ws(gap)
            if mt is not None:
                if answer_closed_at >= 0:
                    if not after_answer_reported:
                        err("text_after_answer", "text after the answer", pos + mt.start())
                        after_answer_reported = True
                elif not outside_reported:
                    err("text_outside", "text outside tags", pos + mt.start())
                    outside_reported = True
        if answer_closed_at >= 0 and not after_answer_reported and tag != answer_tag:
            err("text_after_answer", f"<{tag}> after the answer", start)
            after_answer_reported = True
        if tag == answer_tag:
            answer_opened += 1
            if answer_opened == 2:
                err("duplicate_answer", f"second <{tag}>", start)
        if k == n:
            err("unclosed", f"<{tag}> is never closed", start)
            break
        content = contents[k]
        end = start + 2 * len(tag) + 5 + len(content)
        if not content or content.isspace():
            err("empty_step", f"<{tag}> is empty", start)
        if tag == answer_tag and answer is None:
            answer = content.strip()
            answer_closed_at = end
        pos = end
    tail = parts[-1]
    if trailing is None and tail and (check_outside or answer_closed_at >= 0):
        mt = non_ws(tail)
        if mt is not None:
            if answer_closed_at >= 0:
                if not after_answer_reported:
                    err("text_after_answer", "text after the answer", pos + mt.start())
            elif not outside_reported:
                err("text_outside", "text outside tags", pos + mt.start())
    if not answer_opened:
        err("missing_answer", f"no <{answer_tag}> tag", -1)
    # spans are built lazily from the parts
    return TagParse(None, errors, tags, answer, 2 * n + (trailing is not None), parts)


def _parse_scan(text: Any, schema: TagSchema) -> TagParse:
    """The full single-pass scan with a stack (every input, every error)."""
    out = TagParse()
    errors = out.errors
    if not isinstance(text, str):
        try:
            text, problem = to_text(text)
        except Exception:  # noqa: BLE001 - exotic objects: treat as empty
            text, problem = "", f"completion is not text ({type(text).__name__})"
        if problem:
            errors.append(TagError("not_text", problem, -1))

    def err(code: str, message: str, position: int) -> None:
        if len(errors) < MAX_ERRORS:
            errors.append(TagError(code, message, position))

    known = schema._known  # tag names, answer included, wrapper excluded
    answer_tag = schema.answer_tag
    wrapper = schema.wrapper
    unknown_is_error = schema.unknown_tags == "error"
    check_outside = not schema.allow_text_outside
    non_ws = _NON_WS.search

    # stack of (tag, open_start, open_end)
    stack: list[tuple[str, int, int]] = []
    spans = out._spans
    assert spans is not None
    content_depth = 0  # open step/answer tags (the wrapper does not count)
    last_end = 0  # end of the last structural token
    answer_opened = 0
    wrapper_seen = 0
    answer_closed_at = -1  # end of the first top-level answer's closing tag
    after_answer_reported = False
    outside_reported = False
    missing_wrapper_reported = False
    need_sort = False
    n_tokens = 0
    answer: str | None = None

    for m in TAG_TOKEN_RE.finditer(text):
        slash, name = m.groups()
        is_wrapper = name == wrapper
        if not is_wrapper and name not in known:
            if unknown_is_error:
                err("unknown_tag", f"<{slash}{name}> is not a tag of schema {schema.name!r}", m.start())
            continue
        n_tokens += 1
        start, tok_end = m.span()
        # the text between the previous structural token and this one
        if (check_outside or answer_closed_at >= 0) and not content_depth and start > last_end:
            mt = non_ws(text, last_end, start)
            if mt is not None:
                if answer_closed_at >= 0:
                    if not after_answer_reported:
                        err("text_after_answer", "text after the answer", mt.start())
                        after_answer_reported = True
                elif not outside_reported:
                    err("text_outside", "text outside tags", mt.start())
                    outside_reported = True
        if answer_closed_at >= 0 and not after_answer_reported and name != answer_tag:
            err("text_after_answer", f"<{slash}{name}> after the answer", start)
            after_answer_reported = True
        last_end = tok_end

        if not slash:  # opening tag
            if is_wrapper:
                if stack:
                    err("nested", f"<{name}> opened inside <{stack[-1][0]}>", start)
                elif wrapper_seen:
                    err("duplicate_wrapper", f"second <{name}>", start)
                wrapper_seen += 1
            else:
                if content_depth:
                    err("nested", f"<{name}> opened inside <{stack[-1][0]}>", start)
                if name == answer_tag:
                    answer_opened += 1
                    if answer_opened == 2:
                        err("duplicate_answer", f"second <{name}>", start)
                    if wrapper and stack and stack[-1][0] == wrapper and not content_depth:
                        err("nested", f"<{name}> inside <{wrapper}>; the answer comes after it", start)
                elif wrapper and not missing_wrapper_reported and not (
                    stack and stack[-1][0] == wrapper
                ):
                    err("missing_wrapper", f"<{name}> is not inside <{wrapper}>", start)
                    missing_wrapper_reported = True
                content_depth += 1
            stack.append((name, start, tok_end))
            continue

        # closing tag
        if stack and stack[-1][0] == name:
            top = stack.pop()
        else:
            idx = -1
            for j in range(len(stack) - 1, -1, -1):
                if stack[j][0] == name:
                    idx = j
                    break
            if idx < 0:
                err("unexpected_close", f"</{name}> closes nothing open", start)
                continue
            err("nested", f"</{name}> closes across <{stack[-1][0]}> (interleaved tags)", start)
            for t, _, _ in stack[idx + 1:]:
                if t != wrapper:
                    content_depth -= 1
            del stack[idx + 1:]
            top = stack.pop()
            need_sort = True
        content = text[top[2]:start]
        spans.append(TagSpan(name, top[1], tok_end, content))
        if stack:
            need_sort = True
        if not is_wrapper:
            content_depth -= 1
            if not content or content.isspace():
                err("empty_step", f"<{name}> is empty", top[1])
            if name == answer_tag and answer is None:
                answer = content.strip()
                if not stack:  # top level (an answer inside the wrapper is already an error)
                    answer_closed_at = tok_end

    # trailing text
    end = len(text)
    if (check_outside or answer_closed_at >= 0) and not content_depth and end > last_end:
        mt = non_ws(text, last_end, end)
        if mt is not None:
            if answer_closed_at >= 0:
                if not after_answer_reported:
                    err("text_after_answer", "text after the answer", mt.start())
            elif not outside_reported:
                err("text_outside", "text outside tags", mt.start())
    for t, s, _ in stack:
        err("unclosed", f"<{t}> is never closed", s)
    if not answer_opened:
        err("missing_answer", f"no <{answer_tag}> tag", -1)
    if wrapper and not wrapper_seen and not missing_wrapper_reported:
        err("missing_wrapper", f"no <{wrapper}> tag", -1)

    if need_sort:
        spans.sort(key=_span_start)
    out.tag_sequence = [sp.tag for sp in spans if sp.tag != wrapper] if wrapper else [sp.tag for sp in spans]
    out.answer = answer
    out.n_tokens = n_tokens
    return out


def _span_start(s: TagSpan) -> int:
    return s.start


def batch_parses(batch: Batch, schema: TagSchema | str) -> list[TagParse]:
    """Parses of every completion of ``batch``, computed once per batch and schema.

    >>> from tagpr_rewards.base import Batch
    >>> b = Batch.from_inputs(["<think>a</think><answer>b</answer>"])
    >>> batch_parses(b, "think-answer") is batch_parses(b, "think-answer")
    True
    """
    if not isinstance(schema, TagSchema):
        schema = load_schema(schema)
    sch = schema
    return batch.memo(  # type: ignore[no-any-return]
        ("parse", sch.name_key), lambda: [parse_tags(t, sch) for t in batch.completions]
    )
