"""The tagged-chain data pipeline: teachers, taggers, filtering, written SFT/RL data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tagpr_rewards.tags import load_schema, parse_tags
from tagpr_trainers.data_pipeline import (
    EmbeddingTagger,
    LLMTagger,
    LLMTeacher,
    TeacherJob,
    TeacherTagger,
    TemplateTeacher,
    render_chain,
)
from tagpr_trainers.data_pipeline.build import build_tagged_data, prepare_samples
from tagpr_trainers.data_pipeline.tagger import constrained_decode, lead_key, pool_rows
from tagpr_trainers.data_pipeline.teacher import parse_llm_chain


@pytest.fixture(scope="module")
def lamp2():  # type: ignore[no-untyped-def]
    from tagpr_eval.data.synthetic import generate_task

    return generate_task("LaMP-2", n_users=20, questions_per_user=6, profile_size=24, seed=0, split="train")


def _jobs(st, task: str = "LaMP-2", schema: str = "personalization-9"):  # type: ignore[no-untyped-def]
    prepared = prepare_samples(task, st.data.samples, schema, "bm25", 4)
    return [TeacherJob(task, p.sample, p.items) for p in prepared]


def test_template_teacher_is_good_but_imperfect(lamp2) -> None:  # type: ignore[no-untyped-def]
    chains = TemplateTeacher(lamp2.users).write(_jobs(lamp2))
    gold = {s.id: s.output for s in lamp2.data.samples}
    acc = sum(c.answer == gold[c.sample_id] for c in chains) / len(chains)
    # clearly better than the profile-majority heuristic (~0.3), clearly below the oracle (~0.95)
    assert 0.5 < acc < 0.9, acc


def test_template_teacher_lamp3() -> None:
    from tagpr_eval.data.synthetic import generate_task

    st = generate_task("LaMP-3", n_users=10, questions_per_user=4, profile_size=16, seed=1, split="train")
    chains = TemplateTeacher(st.users).write(_jobs(st, "LaMP-3"))
    assert all(c.answer in {"1", "2", "3", "4", "5"} for c in chains)
    exact = sum(c.answer == s.output for c, s in zip(chains, st.data.samples)) / len(chains)
    assert 0.2 < exact < 0.95


def test_template_teacher_rejects_other_tasks(lamp2) -> None:  # type: ignore[no-untyped-def]
    job = TeacherJob("LaMP-4", lamp2.data.samples[0], [])
    with pytest.raises(ValueError, match="data.teacher.kind=llm"):
        TemplateTeacher({}).write([job])


def test_teacher_tagger_renders_valid_chains(lamp2) -> None:  # type: ignore[no-untyped-def]
    schema = load_schema("personalization-9")
    chains = TeacherTagger().tag(TemplateTeacher(lamp2.users).write(_jobs(lamp2)[:20]), schema)
    for c in chains:
        parse = parse_tags(render_chain(c, schema), schema)
        assert parse.valid, parse.errors
        assert parse.answer == c.answer


def test_constrained_decode_respects_order() -> None:
    schema = load_schema("personalization-9")
    names = [t for t, _ in schema.tags if t != schema.answer_tag]
    # the per-step argmax would be verify, verify: not an accepted order before the answer
    scores = [[1.0 if n == "verify" else 0.5 if n == "recall-history" else 0.0 for n in names],
              [1.0 if n == "verify" else 0.5 if n == "infer-preference" else 0.0 for n in names]]
    seq = constrained_decode(scores, names, schema)
    assert seq is not None and schema.accepts([*seq, schema.answer_tag])
    assert seq == ["recall-history", "infer-preference"]


@pytest.mark.integration
def test_embedding_tagger_agrees_with_teacher_and_stays_valid(lamp2) -> None:  # type: ignore[no-untyped-def]
    schema = load_schema("personalization-9")
    chains = TemplateTeacher(lamp2.users).write(_jobs(lamp2)[:40])
    EmbeddingTagger("minilm").tag(chains, schema)
    steps = [s for c in chains for s in c.steps]
    agreement = sum(s.tag == s.hint for s in steps) / len(steps)
    assert agreement > 0.7, agreement
    assert all(parse_tags(render_chain(c, schema), schema).valid for c in chains)
    # unconstrained decoding may produce orders the schema rejects; constrained never does
    free = TemplateTeacher(lamp2.users).write(_jobs(lamp2)[:40])
    EmbeddingTagger("minilm", constrained=False).tag(free, schema)
    assert all(s.tag is not None for c in free for s in c.steps)


def test_lead_key_ignores_what_a_step_quotes() -> None:
    a = lead_key('The user\'s history items: space -> "sci-fi"; romance -> "romance".')
    b = lead_key('The user\'s history items: heist -> "action".')
    assert a == b == "the user's history items:"
    assert lead_key('The user\'s habit for space: "sci-fi".') != a
    assert lead_key("", 4) == ""


def test_pool_rows_averages_within_a_key_only() -> None:
    rows = [[0.42, 0.40], [0.38, 0.41], [0.10, 0.90]]
    pooled = pool_rows([("LaMP-2", "k"), ("LaMP-2", "k"), ("LaMP-3", "k")], rows)
    assert pooled[0] == pooled[1] == pytest.approx([0.40, 0.405])
    assert pooled[2] == [0.10, 0.90]           # another task's steps stay apart
    with pytest.raises(ValueError):
        pool_rows(["a"], rows)                 # one key per row


def test_embedding_tagger_rejects_unknown_pool() -> None:
    with pytest.raises(ValueError, match="pool must be 'lead' or None"):
        EmbeddingTagger("minilm", pool="kind")


@pytest.mark.integration
def test_pooled_embedding_tagger_gives_one_kind_of_step_one_tag(lamp2) -> None:  # type: ignore[no-untyped-def]
    """The listing step's label must not follow the items it lists: per step, MiniLM files it
    under recall-history or extract-preference nearly evenly (docs/recipe.md), and a model
    trained on both opens it with one tag and closes it with the other."""
    schema = load_schema("personalization-9")
    chains = TemplateTeacher(lamp2.users).write(_jobs(lamp2)[:80])
    EmbeddingTagger("minilm").tag(chains, schema)
    by_kind: dict[str, set[str | None]] = {}
    for c in chains:
        for s in c.steps:
            by_kind.setdefault(lead_key(s.text), set()).add(s.tag)
    assert all(len(tags) == 1 for tags in by_kind.values()), by_kind
    assert by_kind["the user's history items:"] == {"recall-history"}
    assert all(s.tag == s.hint for c in chains for s in c.steps)
    assert all(parse_tags(render_chain(c, schema), schema).valid for c in chains)
    # per step, the same chains' listing steps get more than one label
    alone = TemplateTeacher(lamp2.users).write(_jobs(lamp2)[:80])
    EmbeddingTagger("minilm", pool=None).tag(alone, schema)
    assert len({c.steps[1].tag for c in alone}) > 1


def test_parse_llm_chain_variants() -> None:
    text = "1. The user likes space.\n- They tag it sci-fi.\nFinal answer: \"sci-fi\"\nextra"
    assert parse_llm_chain(text) == (["The user likes space.", "They tag it sci-fi."], "sci-fi")
    assert parse_llm_chain("") == ([], None)


def test_llm_teacher_and_tagger_through_dummy_backend(lamp2) -> None:  # type: ignore[no-untyped-def]
    schema = load_schema("personalization-9")
    jobs = _jobs(lamp2)[:3]
    chains = LLMTeacher("dummy").write(jobs)
    assert [c.answer for c in chains] == ["", "", ""]  # the dummy model writes no answer line
    prompt = LLMTeacher.prompt(jobs[0])[0]["content"]
    assert "Answer:" in prompt and "Step:" in prompt
    tagged = LLMTagger("dummy").tag(chains, schema)
    names = {t for t, _ in schema.tags}
    assert all(s.tag in names for c in tagged for s in c.steps)


def test_llm_tagger_parse_snaps_unknown_names() -> None:
    names = ["recall-history", "infer-preference", "verify"]
    assert LLMTagger.parse("1: recall history\n2: <verify>\n", 3, names) == [
        "recall-history", "verify", "recall-history"]


def test_build_filters_and_writes_sft_rows(tmp_path: Path, lamp2) -> None:  # type: ignore[no-untyped-def]
    rep = build_tagged_data({"LaMP-2": lamp2.data.samples}, TemplateTeacher(lamp2.users), TeacherTagger(), tmp_path,
                            schema="personalization-9", threshold=1.0, rl_fraction=0.25, k=4)
    t = rep["tasks"]["LaMP-2"]
    assert t["kept"] + sum(t["dropped"].values()) == t["total"]
    assert t["dropped"]["below_threshold"] > 0 and t["kept"] > 0
    assert t["tagger_teacher_agreement"] == 1.0
    assert sum(rep["tag_distribution"].values()) == sum(t["tag_distribution"].values())
    sft = [json.loads(line) for line in (tmp_path / "sft.jsonl").read_text().splitlines()]
    rl = [json.loads(line) for line in (tmp_path / "rl.jsonl").read_text().splitlines()]
    assert len(sft) == t["kept"] and len(rl) == t["rl_prompts"] > 0
    schema = load_schema("personalization-9")
    for row in sft:
        completion = row["completion"][0]["content"]
        parse = parse_tags(completion, schema)
        assert parse.valid and parse.answer == row["reference"]  # threshold 1.0: only right answers kept
        assert row["prompt"][-1]["role"] == "user"
    # RL users are disjoint from the SFT users; RL rows carry the reward columns
    assert not {r["user_id"] for r in rl} & {r["user_id"] for r in sft}
    assert {"prompt", "reference", "user_id", "profile", "task", "id", "query"} <= set(rl[0])
    assert isinstance(json.loads(rl[0]["profile"]), list)
    assert (tmp_path / "report.md").read_text().startswith("# Tagged-chain data")


def test_build_threshold_zero_keeps_every_valid_chain(tmp_path: Path, lamp2) -> None:  # type: ignore[no-untyped-def]
    rep = build_tagged_data({"LaMP-2": lamp2.data.samples[:24]}, TemplateTeacher(lamp2.users), TeacherTagger(),
                            tmp_path, threshold=0.0, rl_fraction=0.0, prompt_style="lamp")
    assert rep["kept"] == 24 and rep["rl_prompts"] == 0


def test_listing_chain_restates_the_prompt_items_in_order(lamp2) -> None:  # type: ignore[no-untyped-def]
    """The listing chain (our default for small models) writes each retrieved item's tag exactly
    as the prompt shows it, in prompt order, so every tag the model must write is in its context."""
    jobs = _jobs(lamp2)[:30]
    chains = TemplateTeacher(lamp2.users, chain="listing").write(jobs)
    for job, chain in zip(jobs, chains):
        listing = next(s.text for s in chain.steps if s.hint == "recall-history")
        assert [part.split(" -> ")[1].strip('".') for part in listing.split(": ", 1)[1].split("; ")] == \
            [it["tag"] for it in job.items]
        assert chain.answer in [it["tag"] for it in job.items]
    prose = TemplateTeacher(lamp2.users, chain="prose").write(jobs)
    assert [c.answer for c in prose] == [c.answer for c in chains]  # same reasoning, other wording
    with pytest.raises(ValueError, match="chain style"):
        TemplateTeacher(lamp2.users, chain="poem")


def test_direct_answer_arm_rows(tmp_path: Path, lamp2) -> None:  # type: ignore[no-untyped-def]
    """data/direct.jsonl: the SFT users' samples with the same prompts and the gold answer only."""
    rep = build_tagged_data({"LaMP-2": lamp2.data.samples}, TemplateTeacher(lamp2.users), TeacherTagger(), tmp_path,
                            schema="personalization-9", rl_fraction=0.25, k=4, prompt_style="lamp")
    direct = [json.loads(x) for x in (tmp_path / "direct.jsonl").read_text().splitlines()]
    sft = [json.loads(x) for x in (tmp_path / "sft.jsonl").read_text().splitlines()]
    rl_users = {json.loads(x)["user_id"] for x in (tmp_path / "rl.jsonl").read_text().splitlines()}
    assert rep["direct"] == len(direct) == rep["tasks"]["LaMP-2"]["total"]  # every SFT-user sample, kept or not
    assert not rl_users & {r["user_id"] for r in direct}
    by_id = {r["id"]: r for r in direct}
    for r in sft:
        assert by_id[r["id"]]["prompt"] == r["prompt"]
    assert all(r["completion"][0]["content"] == f"<answer>{r['reference']}</answer>" for r in direct)
