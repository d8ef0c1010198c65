"""The tiny base's LM pretraining on the training users' profiles (``model.tiny.pretrain``, ours)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tagpr_trainers.recipe.stages.base_pretrain import pretrain_corpus, pretrain_lm, profile_corpus

PROFILE = [{"description": f"Item number {i} happens.", "tag": t}
           for i, t in enumerate(["sci-fi", "comedy", "sci-fi", "romance", "classic"])]


def _descriptions(text: str) -> list[str]:
    return [part.split('"')[1] for part in text.split("the tag for the movie: ")[1:]]


def test_each_user_is_read_once_and_every_pass_holds_every_item_in_a_new_order() -> None:
    rows = [{"id": "1", "user_id": "u1", "profile": PROFILE},
            {"id": "2", "user_id": "u1", "profile": PROFILE[:1]},  # the same user again: not re-read
            {"id": "3", "user_id": "u2", "profile": PROFILE[:2]},
            {"id": "4", "user_id": None, "profile": PROFILE[2:]},  # no user id: its own user
            {"id": "5", "user_id": "u3", "profile": []}]  # nothing to read
    texts = profile_corpus("LaMP-2", rows, shuffles=6, seed=1)
    assert len(texts) == 6 * 3
    u1 = [t for t in texts if len(_descriptions(t)) == 5]
    assert len(u1) == 6
    for t in u1:
        assert sorted(_descriptions(t)) == sorted(p["description"] for p in PROFILE)
        # the official LaMP-2 item template, items joined as the LaMP prompt joins them
        assert 'the tag for the movie: "Item number 3 happens." is "romance" ' in t and t.endswith(" . ")
    assert len({tuple(_descriptions(t)) for t in u1}) > 1  # the order changes between passes
    assert profile_corpus("LaMP-2", rows, shuffles=6, seed=1) == texts  # deterministic per seed
    assert profile_corpus("LaMP-2", rows, shuffles=6, seed=2) != texts


def test_other_tasks_use_their_own_official_item_template() -> None:
    rows = [{"user_id": "u", "profile": [{"text": "Great food.", "score": "5"}]}]
    assert profile_corpus("LaMP-3", rows, shuffles=1) == ['5 is the score for "Great food." . ']
    with pytest.raises(ValueError, match=r"LaMP-1.*model\.tiny\.pretrain\.shuffles: 0"):
        profile_corpus("LaMP-1", [{"user_id": "u", "profile": [{"title": "T", "abstract": "A"}]}], shuffles=1)


def test_the_corpus_reads_the_training_split_only(tmp_path: Path) -> None:
    from tagpr_eval.data.synthetic import write_synthetic

    # as the data stage writes them: the train and dev users in two draws
    common = dict(seed=0, questions_per_user=2, profile_size=6)
    write_synthetic(tmp_path, ["LaMP-2"], splits=["train"], n_users=5, **common)
    write_synthetic(tmp_path, ["LaMP-2"], splits=["dev"], n_users=3, **common)
    train = json.loads((tmp_path / "LaMP-2" / "train_questions.json").read_text())
    dev = json.loads((tmp_path / "LaMP-2" / "dev_questions.json").read_text())
    texts = pretrain_corpus(tmp_path, ["LaMP-2"], "train", shuffles=2, seed=0)
    train_profiles = {frozenset(p["description"] for p in q["profile"]) for q in train}
    dev_items = {p["description"] for q in dev for p in q["profile"]} - {p["description"] for q in train
                                                                          for p in q["profile"]}
    assert dev_items and len(texts) == 2 * len({q["user_id"] for q in train})
    for t in texts:
        assert frozenset(_descriptions(t)) in train_profiles
        assert not any(d in t for d in dev_items)


def _tiny(tmp_path: Path, corpus: list[str]) -> Path:
    from tagpr_eval.tiny_model import build_tiny_model

    out = tmp_path / "base"
    build_tiny_model(out, corpus=corpus, vocab_size=300, hidden_size=32, num_layers=1, seed=0,
                     max_position_embeddings=128)
    return out


def _digest(model_dir: Path) -> str:
    return hashlib.sha256((model_dir / "model.safetensors").read_bytes()).hexdigest()


def test_pretraining_lowers_the_loss_saves_in_place_and_is_deterministic(tmp_path: Path) -> None:
    texts = profile_corpus("LaMP-2", [{"user_id": f"u{u}", "profile": PROFILE} for u in range(4)], shuffles=12)
    a, b = _tiny(tmp_path / "a", texts), _tiny(tmp_path / "b", texts)
    before = _digest(a)
    out = pretrain_lm(a, texts, learning_rate=1e-2, block_size=32, batch_size=4, seed=0)
    assert out["steps"] >= 10 and out["tokens"] == out["steps"] * 4 * 32
    assert out["loss_last"] < 0.5 * out["loss_first"], out  # the templated corpus is easy to learn
    assert json.loads((a / "pretrain.json").read_text()) == out
    assert _digest(a) != before
    pretrain_lm(b, texts, learning_rate=1e-2, block_size=32, batch_size=4, seed=0)
    assert _digest(b) == _digest(a)  # same corpus, seed and threads: the same weights

    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(str(a))  # still a loadable model directory
    # a dry run takes one step of the same schedule
    one = pretrain_lm(_tiny(tmp_path / "c", texts), texts, learning_rate=1e-2, block_size=32, batch_size=4, max_steps=1)
    assert one["steps"] == 1 and one["loss_first"] == one["loss_last"] == out["loss_first"]


def test_a_corpus_too_small_for_one_batch_names_the_keys_to_change(tmp_path: Path) -> None:
    texts = profile_corpus("LaMP-2", [{"user_id": "u", "profile": PROFILE[:1]}], shuffles=1)
    base = _tiny(tmp_path, texts * 10)
    with pytest.raises(ValueError, match=r"model\.tiny\.pretrain: .*block_size or batch_size.*shuffles"):
        pretrain_lm(base, texts, learning_rate=1e-3, block_size=512, batch_size=8)


def test_the_config_checks_its_pretrain_values() -> None:
    from tagpr_trainers.recipe.config import RecipeConfigError, load_recipe_config

    assert load_recipe_config("tiny-cpu", ["model.tiny.pretrain.shuffles=0"]).model.tiny.pretrain.shuffles == 0
    with pytest.raises(RecipeConfigError, match=r"model\.tiny\.pretrain\.shuffles must be >= 0"):
        load_recipe_config("tiny-cpu", ["model.tiny.pretrain.shuffles=-1"])
    with pytest.raises(RecipeConfigError, match=r"LaMP-1's official prompt weaves.*drop LaMP-1"):
        load_recipe_config("tiny-cpu", ["model.tiny.pretrain.shuffles=2", "data.tasks=[LaMP-2, LaMP-1]"])
    with pytest.raises(RecipeConfigError, match="did you mean"):
        load_recipe_config("tiny-cpu", ["model.tiny.pretrain.shuffle=2"])
