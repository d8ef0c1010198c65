"""The listing-chain audit: which step of the template teacher's listing chain a model gets wrong."""

from __future__ import annotations

import pytest

from tagpr_trainers.data_pipeline.listing_audit import audit_listing, audit_table, listing_vote

SPACE = "A pilot flies the rocket to the mars."
FAMILY = "A grandmother bakes for the thanksgiving."
QUERY = "An alien lands near the moonbase."  # a space movie


def _prompt(items: list[tuple[str, str]], query: str = QUERY) -> str:
    shown = " , and ".join(f'the tag for the movie: "{d}" is "{t}" ' for d, t in items)
    return (f"{shown}. Which tag does this movie relate to among the following tags? Just answer with "
            f"the tag name without further explanation. tags: [sci-fi, comedy, classic] description: {query}")


def _chain(listed: str, topic: str, habit: str, answer: str) -> str:
    return (f"<understand-task>The task asks for one tag from the list for this movie.</understand-task>\n"
            f"<recall-history>The user's history items: {listed}.</recall-history>\n"
            f"<analyze-query>The query movie is about {topic}.</analyze-query>\n"
            f"<extract-preference>The user's habit for {topic}: {habit}.</extract-preference>\n"
            f"<infer-preference>So this user would want \"{answer}\".</infer-preference>\n<answer>{answer}</answer>")


def _row(listed: str, topic: str, habit: str, answer: str, gold: str = "sci-fi",
         items: list[tuple[str, str]] | None = None) -> dict:  # type: ignore[type-arg]
    items = items or [(SPACE, "sci-fi"), (FAMILY, "comedy"), (FAMILY, "comedy")]
    return {"task": "LaMP-2", "prompt": _prompt(items), "raw_output": _chain(listed, topic, habit, answer),
            "answer": answer, "gold": gold}


def test_a_faithful_chain_passes_every_step() -> None:
    a = audit_listing([_row('space -> "sci-fi"; family -> "comedy"; family -> "comedy"', "space", '"sci-fi"', "sci-fi")])
    assert a["n"] == 1 and a["skipped"] == 0
    for key in ("accuracy", "rule_accuracy", "agrees_with_rule", "tags_copied", "topics_named", "item_topics_named",
                "query_topic_named", "habit_follows_listing", "answer_follows_listing", "own_listing_accuracy"):
        assert a[key] == 1.0, key


def test_each_failure_is_charged_to_its_own_step() -> None:
    # a mis-copied tag: topics right, tags wrong; the answer still follows the (wrong) listing
    a = audit_listing([_row('space -> "classic"; family -> "comedy"; family -> "comedy"', "space", '"classic"',
                            "classic")])
    assert (a["tags_copied"], a["topics_named"], a["query_topic_named"]) == (0.0, 1.0, 1.0)
    assert (a["answer_follows_listing"], a["own_listing_accuracy"], a["accuracy"], a["rule_accuracy"]) == \
        (1.0, 0.0, 0.0, 1.0)
    # a mislabelled item topic: one of three items named wrong
    b = audit_listing([_row('crime -> "sci-fi"; family -> "comedy"; family -> "comedy"', "space", "none", "comedy")])
    assert b["tags_copied"] == 1.0 and b["topics_named"] == 0.0 and b["item_topics_named"] == pytest.approx(2 / 3)
    # no listed item is about the named topic: "none" is the faithful habit, the vote falls back to all
    assert b["habit_follows_listing"] == 1.0 and b["answer_follows_listing"] == 1.0
    # the wrong query topic; a habit that quotes a prior instead of the listing
    c = audit_listing([_row('space -> "sci-fi"; family -> "comedy"; family -> "comedy"', "family",
                            '"comedy", "comedy", "comedy"', "comedy")])
    assert c["query_topic_named"] == 0.0 and c["habit_follows_listing"] == 0.0
    assert c["agrees_with_rule"] == 0.0 and c["answer_follows_listing"] == 1.0


def test_rows_it_cannot_audit_are_counted_not_guessed() -> None:
    rows = [{"task": "LaMP-3", "prompt": "review", "raw_output": "", "answer": "3", "gold": "3"},
            {"task": "LaMP-2", "prompt": [{"role": "user", "content": "tagged"}], "raw_output": "", "answer": "x",
             "gold": "x"},
            {"task": "LaMP-2", "prompt": "description: no items (k = 0)", "raw_output": "", "answer": "x", "gold": "x"}]
    a = audit_listing(rows)
    assert a["n"] == 0 and a["skipped"] == 3 and a["accuracy"] is None
    assert "questions audited | 0" in audit_table({"m": a})


def test_the_teachers_own_chains_pass_the_audit() -> None:
    """The audit reads the chains in the teacher's wording: rendered teacher chains (prompts built
    like the eval harness's) pass every step, and the rule's accuracy is the teacher's."""
    from tagpr_eval.data.synthetic import generate_task
    from tagpr_eval.prompts import build_prompt
    from tagpr_rewards.tags import load_schema
    from tagpr_trainers.data_pipeline import TeacherJob, TeacherTagger, TemplateTeacher, render_chain

    st = generate_task("LaMP-2", n_users=6, questions_per_user=5, profile_size=12, seed=3)
    schema = load_schema("personalization-9")
    jobs = [TeacherJob("LaMP-2", s, list(s.profile[:4])) for s in st.data.samples]
    chains = TeacherTagger().tag(TemplateTeacher(st.users).write(jobs), schema)
    rows = [{"task": "LaMP-2", "prompt": build_prompt("LaMP-2", j.sample, j.items, style="lamp"),
             "raw_output": render_chain(c, schema), "answer": c.answer, "gold": str(j.sample.output)}
            for j, c in zip(jobs, chains)]
    a = audit_listing(rows)
    assert a["n"] == len(rows) == 30
    for key in ("agrees_with_rule", "tags_copied", "topics_named", "query_topic_named", "habit_follows_listing",
                "answer_follows_listing"):
        assert a[key] == 1.0, key
    assert a["accuracy"] == a["rule_accuracy"] == a["own_listing_accuracy"]
    assert sum(r["answer"] == r["gold"] for r in rows) / len(rows) == a["accuracy"]


def test_the_vote_breaks_ties_by_listing_order() -> None:
    assert listing_vote([("a", "x"), ("a", "y")], "a") == "x"
    assert listing_vote([], "a") is None
