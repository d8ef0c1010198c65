"""The one tag parser: a single linear scan that turns a completion into spans and errors.

Every tag reward is a predicate over :class:`TagParse`, and :func:`batch_parses` memoises the
parses on the :class:`~tagpr_rewards.base.Batch`, so each completion is scanned once per schema
however many tag rewards run. Parse cost is linear in length, tag count and nesting depth.

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
too_deep            more than ``MAX_DEPTH`` (64) tags open at once: the scan stops there and the
                    rest of the completion is not parsed (the parse stays linear in length and
                    depth; such a completion is invalid anyway)
==================  ===========================================================================

Speed. A valid completion in the schema's order is recognised by one compiled expression per
schema (:class:`FastMatcher`) without a Python loop; the full scan runs only for the rest (to
say what is wrong) and for spans of wrapped chains.

>>> from tagpr_rewards.tags import load_schema
>>> p = parse_tags("<think>hmm</think><answer> 42 </answer>", load_schema("think-answer"))
>>> p.valid, p.tag_sequence, p.answer
(True, ['think', 'answer'], '42')
>>> [e.code for e in parse_tags("<think>x<answer>1</answer>", "think-answer").errors]
['nested', 'unclosed']
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple

from tagpr_rewards.base import Batch, to_text
from tagpr_rewards.tags.order import render
from tagpr_rewards.tags.schema import TagSchema, load_schema

#: ``<name>`` or ``</name>``; group 1 is "/" for closing tags, group 2 the name
TAG_TOKEN_RE = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9_-]*)>")
_NON_WS = re.compile(r"\S")

#: at most this many errors are stored per parse (adversarial inputs can have millions)
MAX_ERRORS = 64

#: at most this many tags may be open at once; the scan stops at a deeper opening tag with a
#: ``too_deep`` error (keeps the parse linear: no span's content is copied more than this often)
MAX_DEPTH = 64

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
    "too_deep",
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
        order_accepted: ``True`` when the fast path already decided the tag sequence is in the
            schema's order, ``None`` when nobody decided yet (not part of equality).
    """

    __slots__ = ("_spans", "_seq", "_n_tokens", "_text", "_matcher", "errors", "answer", "order_accepted")

    def __init__(
        self,
        spans: list[TagSpan] | None = None,
        errors: list[TagError] | None = None,
        tag_sequence: list[str] | None = None,
        answer: str | None = None,
        n_tokens: int = 0,
    ) -> None:
        self._spans: list[TagSpan] | None = [] if spans is None else spans
        self._seq: list[str] | None = [] if tag_sequence is None else tag_sequence
        self._text: str | None = None
        self._matcher: FastMatcher | None = None
        self._n_tokens = n_tokens
        self.errors: list[TagError] = [] if errors is None else errors
        self.answer = answer
        self.order_accepted: bool | None = None

    # the fast path fills _text/_matcher and leaves spans and the tag sequence to be read from
    # the text on first use (format and order need neither)

    @property
    def spans(self) -> list[TagSpan]:
        if self._spans is None:
            assert self._matcher is not None and self._text is not None
            self._spans = self._matcher.spans(self._text)
        return self._spans

    @property
    def tag_sequence(self) -> list[str]:
        if self._seq is None:
            assert self._matcher is not None and self._text is not None
            self._seq = self._matcher.tags(self._text)
        return self._seq

    @tag_sequence.setter
    def tag_sequence(self, value: list[str]) -> None:
        self._seq = value

    @property
    def n_tokens(self) -> int:
        if self._n_tokens < 0:  # fast path: every tag is a pair (plus the wrapper's pair)
            self._n_tokens = 2 * len(self.tag_sequence) + (2 if self._matcher and self._matcher.wrapped else 0)
        return self._n_tokens

    @n_tokens.setter
    def n_tokens(self, value: int) -> None:
        self._n_tokens = value

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
                "answer": self.answer, "n_tokens": self.n_tokens, "order_accepted": self.order_accepted}

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        order_accepted = state.pop("order_accepted", None)
        self.__init__(**state)  # type: ignore[misc]
        self.order_accepted = order_accepted

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
    """Parse ``text`` against ``schema`` in linear time. Never raises on any ``text``.

    A completion that is valid *and* in the schema's order is recognised by the schema's one
    compiled expression (:func:`fast_matcher`); everything else gets the full single-pass scan,
    which reports every error. Both give the same parse (tested property).

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
    if type(text) is str:
        fast = fast_matcher(schema).parse(text)
        if fast is not None:
            return fast
    return _parse_scan(text, schema)


# --------------------------------------------------------------------------------------------
# the fast path: one compiled expression per schema
# --------------------------------------------------------------------------------------------

_NAME = r"[A-Za-z][A-Za-z0-9_-]*"
_OPEN_RE = re.compile(rf"<({_NAME})>")


class FastMatcher:
    """The schema's fast path: one compiled regular expression that fully matches exactly the
    completions the full scan finds valid *and* (when the order is deterministic) in order.

    The expression is the schema's order expression with every tag ``t`` replaced by
    ``<t>content</t>`` (content: at least one non-whitespace character, no tag token) followed
    by the text allowed between tags; the answer tag is followed by whitespace and the end.
    Its quantifiers are possessive (no backtracking) when the order's automaton is
    deterministic; otherwise (or without an order) the expression checks the structure only and
    the order is left to the automaton (``order_in_regex`` is False). A second, stricter
    compilation of the same expression (no ``<`` at all outside tag tokens: the common case,
    twice as fast) is tried first; the general one decides when it fails.

    :meth:`parse` returns the :class:`TagParse` of a matching completion (answer captured by
    the expression; tag sequence and spans read from the text on first use) and ``None`` for
    everything else, which the full scan then parses.

    >>> m = fast_matcher(load_schema("think-answer"))
    >>> m.order_in_regex, m.parse("<think>a</think><answer>b</answer>").valid
    (True, True)
    >>> m.parse("<answer>b</answer><think>a</think>") is None   # left to the full scan
    True
    """

    def __init__(self, schema: TagSchema) -> None:
        self.schema = schema
        known = sorted(schema._known)
        structural = known + ([schema.wrapper] if schema.wrapper else [])
        if schema.unknown_tags == "error":  # every tag token is structure (or an error)
            tail = rf"/?{_NAME}>"
            opens = _OPEN_RE
        else:  # only schema tokens are structure
            alt = "|".join(re.escape(t) for t in sorted(structural, key=len, reverse=True))
            tail = rf"/?(?:{alt})>"
            opens = re.compile(rf"<({alt})>")
        aut = schema.automaton
        self.order_in_regex = aut is None or aut.deterministic
        self.wrapped = bool(schema.wrapper)
        general = self._compile(rf"[^<]*+(?:<(?!{tail})[^<]*+)*+", rf"(?=\s*+(?:[^\s<]|<(?!{tail})))")
        strict = self._compile(r"[^<]*+", r"(?=\s*+[^\s<])")
        self.regex = general
        gm, sm = general.fullmatch, strict.fullmatch
        findall = opens.findall
        wrapped = self.wrapped
        order_ok = True if self.order_in_regex else None
        new = TagParse.__new__
        a = general.groupindex["a"]
        assert strict.groupindex["a"] == a

        def parse(text: str) -> TagParse | None:
            m = sm(text) or gm(text)
            if m is None:
                return None
            p = new(TagParse)
            p._spans = p._seq = None
            p._n_tokens = -1
            p._text = text
            p._matcher = self
            p.errors = []
            p.answer = m.group(a).strip()
            p.order_accepted = order_ok
            return p

        def tags(text: str) -> list[str]:
            names = findall(text)
            return names[1:] if wrapped else names  # the wrapper opens first

        self.parse = parse
        self.tags = tags
        # spans of a valid flat chain: one finditer over the tag pairs
        pairs = "|".join(re.escape(t) for t in sorted(known, key=len, reverse=True))
        self._pair_re = re.compile(rf"<({pairs})>([^<]*+(?:<(?!{tail})[^<]*+)*+)</\1>")

    def _compile(self, text: str, non_empty: str) -> re.Pattern[str]:
        """The expression with ``text`` as the pattern of tag content (and of the text between
        tags where the schema allows it) and ``non_empty`` as the non-blank-content check."""
        schema = self.schema
        gap = text if schema.allow_text_outside else r"\s*+"
        answer, w = schema.answer_tag, schema.wrapper
        ans = re.escape(answer)
        answer_pat = (rf"</{re.escape(w)}>{gap}" if w else "") + rf"<{ans}>{non_empty}(?P<a>{text})</{ans}>\s*+\Z"

        def sym(t: str) -> str:
            if t == answer:
                return answer_pat
            e = re.escape(t)
            return rf"<{e}>{non_empty}{text}</{e}>{gap}"

        if schema.automaton is not None and self.order_in_regex:
            body = render(schema.order_ast, sym, possessive=True)
        else:  # structure only: any steps, then the answer
            steps = "|".join(re.escape(t) for t in sorted(schema.step_tags, key=len, reverse=True))
            body = (rf"(?:<(?P<s>{steps})>{non_empty}{text}</(?P=s)>{gap})*+" if steps else "") + answer_pat
        head = rf"{gap}<{re.escape(w)}>{gap}" if w else gap
        return re.compile(head + body)

    #: the parse of ``text`` when it matches (valid, and in order when the expression decides
    #: the order), else ``None`` (set per instance: a closure over the compiled expressions)
    parse: Callable[[str], TagParse | None]
    #: the tag sequence of a matching ``text``
    tags: Callable[[str], list[str]]

    def spans(self, text: str) -> list[TagSpan]:
        """The spans of a matching ``text``."""
        if self.wrapped:
            return _parse_scan(text, self.schema).spans
        return [TagSpan(m.group(1), m.start(), m.end(), m.group(2)) for m in self._pair_re.finditer(text)]

    def matches(self, texts: list[str]) -> list[bool]:
        """For a whole batch: which completions the expression accepts.

        >>> fast_matcher(load_schema("r2p-3")).matches(["<answer>x</answer>", "<x>"])
        [False, False]
        """
        parse = self.parse
        return [type(t) is str and parse(t) is not None for t in texts]


_MATCHERS: dict[str, FastMatcher] = {}


def fast_matcher(schema: TagSchema) -> FastMatcher:
    """The (cached) :class:`FastMatcher` of ``schema``."""
    m = _MATCHERS.get(schema.name_key)
    if m is None:
        if len(_MATCHERS) > 256:  # schemas from many files: keep the cache bounded
            _MATCHERS.clear()
        m = _MATCHERS[schema.name_key] = FastMatcher(schema)
    return m


# --------------------------------------------------------------------------------------------
# the full scan
# --------------------------------------------------------------------------------------------


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
    open_count: dict[str, int] = {}  # how often each name is on the stack
    stopped = False

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
            if len(stack) >= MAX_DEPTH:
                if len(errors) >= MAX_ERRORS:
                    del errors[MAX_ERRORS - 1:]
                errors.append(TagError(
                    "too_deep", f"more than {MAX_DEPTH} tags open at once at <{name}>; the rest of the "
                    f"completion ({len(text) - start} chars) is not parsed", start))
                stopped = True
                break
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
            open_count[name] = open_count.get(name, 0) + 1
            continue

        # closing tag
        if stack and stack[-1][0] == name:
            top = stack.pop()
        elif not open_count.get(name):
            err("unexpected_close", f"</{name}> closes nothing open", start)
            continue
        else:
            idx = len(stack) - 1
            while stack[idx][0] != name:
                idx -= 1
            err("nested", f"</{name}> closes across <{stack[-1][0]}> (interleaved tags)", start)
            for t, _, _ in stack[idx + 1:]:
                open_count[t] -= 1
                if t != wrapper:
                    content_depth -= 1
            del stack[idx + 1:]
            top = stack.pop()
            need_sort = True
        open_count[name] -= 1
        content = text[top[2]:start]
        spans.append(TagSpan(name, top[1], tok_end, content))
        if stack:
            need_sort = True
        if not is_wrapper:
            content_depth -= 1
            if non_ws(text, top[2], start) is None:  # stops at the first non-space character
                err("empty_step", f"<{name}> is empty", top[1])
            if name == answer_tag and answer is None:
                answer = content.strip()
                if not stack:  # top level (an answer inside the wrapper is already an error)
                    answer_closed_at = tok_end

    # trailing text
    end = len(text)
    if not stopped and (check_outside or answer_closed_at >= 0) and not content_depth and end > last_end:
        mt = non_ws(text, last_end, end)
        if mt is not None:
            if answer_closed_at >= 0:
                if not after_answer_reported:
                    err("text_after_answer", "text after the answer", mt.start())
            elif not outside_reported:
                err("text_outside", "text outside tags", mt.start())
    for t, s, _ in stack:
        err("unclosed", f"<{t}> is never closed", s)
    if not answer_opened and not stopped:
        err("missing_answer", f"no <{answer_tag}> tag", -1)
    if wrapper and not wrapper_seen and not missing_wrapper_reported and not stopped:
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

    def compute() -> list[TagParse]:
        return [parse_tags(t, sch) for t in batch.completions]

    return batch.memo(("parse", sch.name_key), compute)  # type: ignore[no-any-return]
