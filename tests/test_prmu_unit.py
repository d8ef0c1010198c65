"""Fast PRMU tests: configs, pairs, text plumbing, payload parsing, light imports (no model)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tagpr_rewards.prmu.config import PRMUConfig, TrainConfig
from tagpr_rewards.prmu.pairs import (
    PAIR_TYPES,
    build_pairs,
    shuffle_profiles,
    split_users,
    task_metric,
)
from tagpr_rewards.prmu.server import parse_payload
from tagpr_rewards.prmu.texts import answer_text, parse_profile, profile_hash, query_content

TAGS = ["comedy", "action", "romance", "sci-fi", "classic"]


def records(n_users: int = 6, q: int = 3) -> list[dict]:
    out = []
    for u in range(n_users):
        prof = [{"id": f"{u}-{j}", "description": f"movie {j} about topic {j % 3}", "tag": TAGS[(u + j) % 5]}
                for j in range(4)]
        for i in range(q):
            out.append({"id": f"{u}{i:02d}", "input": f"Which tag? description: film on topic {i % 3}",
                        "profile": prof, "user_id": f"user{u}", "output": TAGS[(u + i) % 5]})
    return out


def test_light_imports_do_not_load_torch() -> None:
    code = ("import sys, tagpr_rewards, tagpr_rewards.prmu, tagpr_rewards.prmu.reward, "
            "tagpr_rewards.prmu.pairs, tagpr_rewards.prmu.cli, tagpr_rewards.prmu.server_cli; "
            "print('torch' in sys.modules, 'sentence_transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_config_rejects_unknown_and_bad_values() -> None:
    with pytest.raises(ValueError, match="did you mean 'pooling'"):
        PRMUConfig.from_dict({"poling": "mean"})
    with pytest.raises(ValueError, match="pooling must be one of"):
        PRMUConfig(pooling="max")
    with pytest.raises(ValueError, match="unknown TrainConfig key"):
        TrainConfig.from_dict({"epoch": 3})
    assert PRMUConfig.from_dict(PRMUConfig(hidden=8).to_dict()) == PRMUConfig(hidden=8)


def test_pairs_are_deterministic_and_typed() -> None:
    a = build_pairs(records(), seed=3)
    b = build_pairs(records(), seed=3)
    c = build_pairs(records(), seed=4)
    assert a.pairs == b.pairs
    assert a.pairs != c.pairs
    assert set(a.counts()) == set(PAIR_TYPES)


def test_user_swap_changes_only_the_user() -> None:
    ps = build_pairs(records(), types=["user_swap"], seed=0, swaps_per_sample=3)
    assert len(ps.pairs) == 6 * 3 * 3
    for p in ps.pairs:
        assert p.chosen.query == p.rejected.query and p.chosen.response == p.rejected.response
        assert p.chosen.user_id == p.user_id != p.rejected.user_id
        # the rejected side carries the other user's history
        assert ps.profiles[p.rejected.profile] != ps.profiles[p.chosen.profile]


def test_same_answer_filter_removes_ambiguous_swaps() -> None:
    ps = build_pairs(records(), types=["user_swap"], seed=0, same_answer=lambda other, r: True)
    assert ps.pairs == []


def test_degraded_pairs_and_length_matching() -> None:
    ps = build_pairs(records(), types=["degraded", "length_matched", "profile_copy", "other_user_gold"], seed=1)
    for p in ps.pairs:
        assert p.chosen.response != p.rejected.response
        assert p.chosen.user_id == p.rejected.user_id
    lm = ps.of_type("length_matched").pairs
    gold_len = {len(t) for t in TAGS}
    assert all(len(p.rejected.response) in gold_len for p in lm)
    # free-text task: length-matched corruption keeps the word count
    text = [dict(r, output=f"a long headline number {i} about things", id=str(i)) for i, r in enumerate(records())]
    for p in build_pairs(text, types=["length_matched"], seed=0, task="LaMP-4").pairs:
        assert len(p.rejected.response.split()) == len(p.chosen.response.split())


def test_metric_ranked_pairs_follow_the_metric() -> None:
    cands = {r["id"]: [r["output"], "nonsense", TAGS[0]] for r in records()}
    ps = build_pairs(records(), types=["metric_ranked"], candidates=cands, seed=0)
    assert ps.pairs
    for p in ps.pairs:
        assert task_metric(p.chosen.response, _gold(p.sample_id), "label") > \
            task_metric(p.rejected.response, _gold(p.sample_id), "label")


def _gold(sid: str) -> str:
    return {r["id"]: r["output"] for r in records()}[sid]


def test_split_and_shuffle_controls() -> None:
    tr, ho = split_users(records(), 0.34, seed=0)
    assert {r["user_id"] for r in tr}.isdisjoint({r["user_id"] for r in ho})
    assert len(tr) + len(ho) == 18
    sh = shuffle_profiles(records(), seed=0)
    orig = {r["user_id"]: r["profile"] for r in records()}
    assert all(r["profile"] != orig[r["user_id"]] for r in sh)


def test_bad_records_name_the_id() -> None:
    with pytest.raises(ValueError, match="record 'x1'"):
        build_pairs([{"id": "x1", "input": "q", "profile": []}])


def test_text_helpers() -> None:
    assert query_content("Instruction ... description: A heist movie.") == "A heist movie."
    assert parse_profile(json.dumps([{"id": "1"}]))[0] == [{"id": "1"}]
    assert parse_profile(None) == ([], "no profile")
    assert parse_profile(42)[1].startswith("profile is a int")
    assert profile_hash([{"a": 1}]) != profile_hash([{"a": 2}])
    assert answer_text("<think>x</think><answer>comedy</answer>") == "comedy"


def test_openrlhf_payload_parsing() -> None:
    items = parse_payload({"query": ["<|user|>q<|assistant|>sci-fi<|im_end|>"], "prompts": ["<|user|>q<|assistant|>"],
                           "labels": [json.dumps({"user_id": "u1", "reference": "sci-fi", "profile": []})]}, 8)
    assert items[0].completion == "sci-fi"
    assert items[0].meta["user_id"] == "u1"
    assert parse_payload({"query": ["a"], "prompts": ["a"], "labels": ["gold"]}, 8)[0].meta == {"reference": "gold"}
    with pytest.raises(ValueError, match="'prompts' must be a list of 2"):
        parse_payload({"query": ["a", "b"], "prompts": ["a"], "labels": [None, None]}, 8)
    with pytest.raises(OverflowError):
        parse_payload({"query": ["a"] * 9}, 8)
    # a long prompt cut from the left by OpenRLHF still leaves only the response
    prompt = "<|user|>" + "history item. " * 40 + "Which tag?<|end|><|assistant|>"
    query = prompt[-60:] + "<answer>sci-fi</answer><|end|>"
    assert parse_payload({"query": [query], "prompts": [prompt], "labels": [None]}, 8)[0].completion \
        == "<answer>sci-fi</answer>"


def test_orphan_temp_files_of_a_killed_write_are_cleaned_on_the_next_write(tmp_path) -> None:
    import signal
    import subprocess
    import sys

    from tagpr_rewards.files import atomic_path, atomic_write_text, clean_orphans

    target = tmp_path / "results.json"
    # a real writer killed mid-write leaves its temporary file behind
    code = ("import sys, time\nfrom tagpr_rewards.files import atomic_write\n"
            "def slow(f):\n    f.write('{\"half\": '); f.flush(); print('writing', flush=True); time.sleep(60)\n"
            f"atomic_write({str(target)!r}, slow)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    orphans = list(tmp_path.glob(".results.json.*.tmp"))
    assert len(orphans) == 1 and not target.exists()
    # a write in progress in a live process (here: ours) is not an orphan
    with atomic_path(tmp_path / "other.bin") as live:
        assert clean_orphans(tmp_path / "other.bin") == [] and live.exists()
        live.write_bytes(b"x")
    atomic_write_text(target, "{}\n")
    assert target.read_text() == "{}\n"
    assert list(tmp_path.glob(".*.tmp")) == []
