"""How far simple heuristics get on the synthetic data (the difficulty ladder of docs/data.md)."""

from __future__ import annotations

from collections import Counter

from tagpr_eval.data.synthetic.citations import _l1_quoted
from tagpr_eval.data.synthetic.core import SyntheticTask
from tagpr_eval.data.synthetic.movies import _l2_topic_of
from tagpr_eval.data.synthetic.oracle import oracle_answer, sample_topic

__all__ = ["heuristic_scores"]


def heuristic_scores(st: SyntheticTask) -> dict[str, float]:
    """Accuracy of simple heuristics and the oracle against the golds (LaMP-1, LaMP-2).

    ``majority`` (the profile's most common label), ``nearest`` (the label of the profile item
    with the highest word overlap with the query), ``topic_vote`` (majority label among profile
    items of the query's topic, else the profile majority — what a careful reader of the
    profile can do; LaMP-2 only) and ``oracle``.
    """
    from tagpr_eval.retrieval import get_retriever, profile_document, retrieval_query

    task = st.data.task
    bm25 = get_retriever("bm25")
    hits: Counter[str] = Counter()
    n = 0
    for s in st.data.samples:
        gold = s.output
        user = st.users[s.user_id or ""]
        if task == "LaMP-2":
            labels = [it["tag"] for it in s.profile]
        elif task == "LaMP-1":
            labels = []
        else:
            raise ValueError("heuristic_scores covers LaMP-1 and LaMP-2")
        n += 1
        hits["oracle"] += oracle_answer(user, s) == gold
        docs = [profile_document(task, it) for it in s.profile]
        top = bm25.top_k(retrieval_query(task, s.input), docs, 1)
        if task == "LaMP-2":
            maj = Counter(labels).most_common(1)[0][0]
            hits["majority"] += maj == gold
            hits["nearest"] += labels[top[0]] == gold
            topic = sample_topic(s, task)
            same = [it["tag"] for it in s.profile if _l2_topic_of(it["description"]) == topic]
            vote = Counter(same).most_common(1)[0][0] if same else maj
            hits["topic_vote"] += vote == gold
        else:  # LaMP-1: pick the candidate sharing more words with the nearest profile item / title
            refs = _l1_quoted(s.input)[1:3]
            near = docs[top[0]].lower().split()
            ov = [len(set(r.lower().split()) & set(near)) for r in refs]
            hits["nearest"] += ("[1]" if ov[0] >= ov[1] else "[2]") == gold
            title = set(_l1_quoted(s.input)[0].lower().split())
            ovt = [len(set(r.lower().split()) & title) for r in refs]
            hits["title_overlap"] += ("[1]" if ovt[0] >= ovt[1] else "[2]") == gold
            hits["majority"] += gold == "[1]"
    return {k: v / max(n, 1) for k, v in sorted(hits.items())}
