"""TRL adapter: tagpr rewards as GRPOTrainer reward functions (unit tests + real TRL trainers)."""

from __future__ import annotations

import json
import logging
import math
import pickle
from typing import Any

import pytest

from tagpr_rewards.base import Batch, Reward, RewardOutput
from tagpr_rewards.combinators import WeightedSum
from tagpr_rewards.presets import stage2
from tagpr_trainers.trl_adapter import (
    CompositeRewardFunc,
    RewardColumnsError,
    as_reward_func,
    as_reward_funcs,
    check_dataset,
    required_columns,
    reward_weights,
)

SCHEMA = "personalization-9"
GOOD = (
    "<understand-task>Pick one tag.</understand-task>"
    "<recall-history>The user tagged space films sci-fi.</recall-history>"
    "<infer-preference>This is a space film, so sci-fi.</infer-preference>"
    "<answer>sci-fi</answer>"
)
BAD = "sci-fi"


class CountingReward(Reward):
    """Counts how often the composite is scored (class-level list so pickled copies share nothing)."""

    name = "count"

    def __init__(self, log: list[int]) -> None:
        self.log = log

    def score(self, batch: Batch) -> RewardOutput:
        self.log.append(len(batch))
        return RewardOutput([float(len(c)) for c in batch.completions])


class UserOnly(Reward):
    """1 when a user id is given, None ("not applicable") otherwise."""

    name = "user_only"

    def score(self, batch: Batch) -> RewardOutput:
        users = batch.user_ids or [None] * len(batch)
        return RewardOutput([None if u is None else 1.0 for u in users])


class Exploding(Reward):
    name = "exploding"

    def score(self, batch: Batch) -> RewardOutput:
        raise RuntimeError("boom")


class WrongLength(Reward):
    name = "wrong_length"

    def score(self, batch: Batch) -> RewardOutput:
        return RewardOutput([1.0] * (len(batch) + 1))


def trl_kwargs(completions: list[Any], **columns: Any) -> dict[str, Any]:
    """The keyword arguments GRPOTrainer._calculate_rewards passes (TRL 1.16)."""
    n = len(completions)
    kw: dict[str, Any] = {
        "prompts": columns.pop("prompts", ["Which tag?"] * n),
        "completions": completions,
        "completion_ids": [[1, 2, 3]] * n,
        "trainer_state": columns.pop("trainer_state", None),
        "log_extra": columns.pop("log_extra", lambda column, values: None),
        "log_metric": columns.pop("log_metric", lambda name, value: None),
    }
    kw.update(columns)
    return kw


def stage2_columns(n: int) -> dict[str, list[Any]]:
    return {
        "reference": ["sci-fi"] * n,
        "user_id": ["u1"] * n,
        "profile": [json.dumps([{"id": "1", "tag": "sci-fi", "description": "a space film"}])] * n,
        "task": ["LaMP-2"] * n,
        "query": ["Which tag? description: a space film"] * n,
        "id": [str(i) for i in range(n)],
    }


# ---------------------------------------------------------------------------------- unit tests


def test_one_func_per_child_with_weights_rebuilds_the_total() -> None:
    composite = stage2("LaMP-2", schema=SCHEMA, alpha=1.0, beta=0.5)
    funcs = as_reward_funcs(composite)
    assert [f.__name__ for f in funcs] == ["base", "tag"]
    assert reward_weights(funcs) == [1.0, 0.5]
    completions = [GOOD, BAD, GOOD.replace("sci-fi</answer>", "comedy</answer>")]
    kw = trl_kwargs(completions, **stage2_columns(3))
    per_func = [f(**kw) for f in funcs]
    expected = composite(completions, references=kw["reference"], user_ids=kw["user_id"],
                         profile=kw["profile"], task=kw["task"], query=kw["query"]).scores
    for i in range(3):
        # TRL: nansum(w_i * r_i)
        total = sum(w * r for w, r in zip(reward_weights(funcs), (p[i] for p in per_func)) if r is not None)
        assert total == pytest.approx(expected[i])
    assert per_func[0][0] == 1.0  # valid format, right answer
    assert per_func[0][1] == 0.0  # invalid format: gated
    assert per_func[0][2] == 0.0  # valid format, wrong answer


def test_conversational_and_plain_completions_score_the_same() -> None:
    funcs = as_reward_funcs(stage2("LaMP-2", schema=SCHEMA))
    plain = trl_kwargs([GOOD, BAD], **stage2_columns(2))
    chat = trl_kwargs([[{"role": "assistant", "content": GOOD}], [{"role": "assistant", "content": BAD}]],
                      **stage2_columns(2))
    chat["prompts"] = [[{"role": "user", "content": "Which tag?"}]] * 2
    assert [f(**plain) for f in funcs] == [f(**chat) for f in funcs]


def test_columns_are_read_under_configurable_names() -> None:
    funcs = as_reward_funcs(stage2("LaMP-2", schema=SCHEMA), columns={"reference": "gold", "user_id": "uid"})
    cols = stage2_columns(2)
    cols["gold"] = cols.pop("reference")
    cols["uid"] = cols.pop("user_id")
    kw = trl_kwargs([GOOD, GOOD.replace("sci-fi</answer>", "comedy</answer>")], **cols)
    assert funcs[0](**kw) == [1.0, 0.0]


def test_none_where_a_reward_does_not_apply() -> None:
    funcs = as_reward_funcs(WeightedSum({"user_only": UserOnly(), "count": CountingReward([])}))
    kw = trl_kwargs(["a", "bb"], user_id=["u1", None])
    assert funcs[0](**kw) == [1.0, None]
    assert funcs[1](**kw) == [1.0, 2.0]


def test_composite_is_scored_once_per_step_and_nothing_is_carried_over() -> None:
    calls: list[int] = []
    composite = WeightedSum({"count": CountingReward(calls), "user_only": UserOnly()})
    funcs = as_reward_funcs(composite)
    state = type("State", (), {"global_step": 0})()
    kw = trl_kwargs(["a", "bb"], user_id=["u", "u"], trainer_state=state)
    assert [f(**kw) for f in funcs] == [[1.0, 2.0], [1.0, 1.0]]
    assert calls == [2]  # one scoring for both functions
    runner = funcs[0].runner
    assert runner._out is None  # every sibling read it: the cached output is dropped
    # next step, same texts: scored again (the key includes the step), never served stale
    state.global_step = 1
    assert [f(**kw) for f in funcs] == [[1.0, 2.0], [1.0, 1.0]]
    assert calls == [2, 2]
    # a different batch in the same step is scored on its own
    kw2 = trl_kwargs(["ccc"], user_id=["u"], trainer_state=state)
    assert funcs[0](**kw2) == [3.0]
    assert calls == [2, 2, 1]
    # the same function twice on one batch recomputes (a repeated reader is a new batch)
    assert funcs[0](**kw2) == [3.0]
    assert calls == [2, 2, 1, 1]


def test_never_raises_flags_the_samples_and_logs_one_error(caplog: pytest.LogCaptureFixture) -> None:
    metrics: dict[str, float] = {}
    for reward in (Exploding(), WrongLength()):
        funcs = as_reward_funcs(reward, fallback=-1.0)
        extra: dict[str, list[Any]] = {}
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="tagpr_trainers.trl_adapter"):
            for _ in range(3):  # three steps with the same cause: one ERROR
                out = funcs[0](**trl_kwargs(["a", "b"], log_metric=lambda k, v: metrics.__setitem__(k, v),
                                            log_extra=lambda c, v, e=extra: e.setdefault(c, []).extend(v)))
        assert out == [-1.0, -1.0]
        errors = [r for r in caplog.records if reward.name in r.getMessage() and r.levelno == logging.ERROR]
        assert len(errors) == 1
        assert extra["tagpr/error"] == [1.0] * 6
        one = as_reward_func(reward)
        assert one(**trl_kwargs(["a", "b"])) == [0.0, 0.0]
    assert metrics == {"rewards/exploding/errors": 1.0, "rewards/wrong_length/errors": 1.0}
    # odd completions get defined scores, not exceptions
    funcs = as_reward_funcs(stage2("LaMP-2", schema=SCHEMA))
    kw = trl_kwargs([None, 17, "", "x" * 300_000], **stage2_columns(4))
    for f in funcs:
        vals = f(**kw)
        assert len(vals) == 4 and all(v is None or math.isfinite(v) for v in vals)


def test_missing_gold_column_is_an_error_naming_what_was_seen_and_the_fix() -> None:
    cols = stage2_columns(2)
    cols["solution"] = cols.pop("reference")
    kw = trl_kwargs([GOOD, BAD], **cols)
    for funcs in (as_reward_funcs(stage2("LaMP-2", schema=SCHEMA)), [as_reward_func(stage2("LaMP-2", schema=SCHEMA))]):
        with pytest.raises(RewardColumnsError) as err:
            funcs[0](**kw)
        msg = str(err.value)
        assert "no column 'reference'" in msg and "'solution'" in msg and "columns={'reference': 'solution'}" in msg
        # before training: the same check on the dataset's column names
        with pytest.raises(RewardColumnsError, match="columns=\\{'reference': 'solution'\\}"):
            check_dataset(funcs, ["prompt", *cols])
    # the mapping the message proposes fixes it
    fixed = as_reward_funcs(stage2("LaMP-2", schema=SCHEMA), columns={"reference": "solution"})
    check_dataset(fixed, ["prompt", *cols])
    assert fixed[0](**kw) == [1.0, 0.0]
    # what the stage-2 preset needs without PRMU: the gold answer for the task reward
    need = required_columns(stage2("LaMP-2", schema=SCHEMA))
    assert need == {"reference": ["base/task"]}


def test_no_dataset_columns_at_all_points_at_remove_unused_columns() -> None:
    f = as_reward_func(stage2("LaMP-2", schema=SCHEMA))
    with pytest.raises(RewardColumnsError, match="remove_unused_columns=False"):
        f(prompts=["p"], completions=[GOOD])


def test_mixed_task_rows_are_scored_with_their_own_metric() -> None:
    from tagpr_rewards.presets import stage1

    f = as_reward_func(stage1("LaMP-2", schema=SCHEMA))
    rating = GOOD.replace("sci-fi</answer>", "4</answer>")
    cols = stage2_columns(2)
    cols["reference"] = ["sci-fi", "5"]
    cols["task"] = ["LaMP-2", "LaMP-3"]
    assert f(**trl_kwargs([GOOD, rating], **cols)) == [1.0, 0.75]


def test_siblings_share_one_batch_conversion(monkeypatch: pytest.MonkeyPatch) -> None:
    from tagpr_trainers import trl_adapter

    built: list[int] = []
    real = trl_adapter._CompositeRunner.batch

    def counting(self: Any, kwargs: Any) -> Batch:
        built.append(1)
        return real(self, kwargs)

    monkeypatch.setattr(trl_adapter._CompositeRunner, "batch", counting)
    funcs = as_reward_funcs(stage2("LaMP-2", schema=SCHEMA), log_only=["base/task", "tag/tag_order"])
    state = type("State", (), {"global_step": 3})()
    kw = trl_kwargs([GOOD, BAD] * 4, **stage2_columns(8), trainer_state=state)
    outs = [f(**kw) for f in funcs]
    assert len(built) == 1 and len(outs) == 4
    # the same texts in new list objects (a new call) are converted again: never served stale
    kw2 = {k: (list(v) if isinstance(v, list) else v) for k, v in kw.items()}
    kw2["completions"] = [BAD, GOOD] * 4
    assert funcs[0](**kw2)[0] == 0.0 and len(built) == 2


def test_zero_reward_variance_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    from tagpr_rewards.presets import stage1

    f = as_reward_func(stage1("LaMP-2", schema=SCHEMA))
    with caplog.at_level(logging.WARNING, logger="tagpr_trainers.trl_adapter"):
        for _ in range(2):
            assert f(**trl_kwargs(["no tags here", "still none"], **stage2_columns(2))) == [0.0, 0.0]
    warned = [r for r in caplog.records if "zero reward variance" in r.getMessage()]
    assert len(warned) == 1 and "format_credit" in warned[0].getMessage()
    caplog.clear()
    g = as_reward_func(stage1("LaMP-2", schema=SCHEMA))
    with caplog.at_level(logging.WARNING, logger="tagpr_trainers.trl_adapter"):
        g(**trl_kwargs([GOOD, BAD], **stage2_columns(2)))
    assert not [r for r in caplog.records if "zero reward variance" in r.getMessage()]


def test_reward_funcs_pickle_with_their_names_and_shared_runner() -> None:
    funcs = as_reward_funcs(stage2("LaMP-2", schema=SCHEMA), log_only=["tag/tag_order", "base/task"])
    kw = trl_kwargs([GOOD, BAD], **stage2_columns(2))
    before = [f(**kw) for f in funcs]
    copies = pickle.loads(pickle.dumps(funcs))
    assert [f.__name__ for f in copies] == ["base", "tag", "tag/tag_order", "base/task"]
    assert reward_weights(copies) == [1.0, 0.5, 0.0, 0.0]
    assert copies[0].runner is copies[1].runner
    assert [f(**kw) for f in copies] == before
    one = pickle.loads(pickle.dumps(as_reward_func(stage2("LaMP-2", schema=SCHEMA))))
    assert isinstance(one, CompositeRewardFunc) and one.__name__ == "stage2"


def test_single_composite_logs_components_and_reasons() -> None:
    metrics: dict[str, list[float]] = {}
    extra: dict[str, list[Any]] = {}
    f = as_reward_func(stage2("LaMP-2", schema=SCHEMA, alpha=1.0, beta=0.5))
    kw = trl_kwargs([GOOD, BAD], **stage2_columns(2),
                    log_metric=lambda k, v: metrics.setdefault(k, []).append(v),
                    log_extra=lambda c, vals: extra.setdefault(c, []).extend(vals))
    scores = f(**kw)
    assert f.__name__ == "stage2"
    assert metrics["rewards/base/mean"] == [0.5]  # 1 for GOOD, 0 (gated) for BAD
    assert {"rewards/tag/mean", "rewards/base/task/mean", "rewards/tag/tag_order/mean"} <= set(metrics)
    assert scores[0] == pytest.approx(1.0 + 0.5 * metrics_value(f, kw, "tag", 0))
    assert extra["stage2/reason"][1].startswith("base: gated")


def metrics_value(f: CompositeRewardFunc, kw: dict[str, Any], comp: str, i: int) -> float:
    out = f.runner.score(kw)
    v = out.components[comp][i]
    assert v is not None
    return v


# ---------------------------------------------------------------------------- integration tests


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tagpr_eval.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny"), vocab_size=400, hidden_size=32, num_layers=2)


@pytest.fixture(scope="module")
def synthetic_task() -> Any:
    from tagpr_eval.data.synthetic import generate_task

    return generate_task("LaMP-2", n_users=6, questions_per_user=2, profile_size=4, seed=0, split="train")


@pytest.fixture(scope="module")
def prmu_checkpoint(tmp_path_factory: pytest.TempPathFactory, synthetic_task: Any) -> Any:
    """A tiny PRMU trained for 2 epochs on synthetic LaMP-2 (real encoder, offline)."""
    from tagpr_rewards.prmu import PRMUConfig, TrainConfig, train_prmu

    recs = [{"id": s.id, "input": s.input, "profile": s.profile, "user_id": s.user_id, "output": s.output}
            for s in synthetic_task.data.samples]
    out = tmp_path_factory.mktemp("prmu")
    train_prmu(recs, PRMUConfig(hidden=16, pooling="mean"),
               TrainConfig(epochs=2, heldout_fraction=0.0, candidates=2), out_dir=out, task="LaMP-2",
               progress=False)
    return out


def rl_dataset(synthetic_task: Any, n: int = 8) -> Any:
    from datasets import Dataset

    rows = []
    for s in synthetic_task.data.samples[:n]:
        rows.append({
            "prompt": [{"role": "user", "content": "Tag this movie: " + s.input.split("description:")[-1][:80]}],
            "reference": s.output,
            "user_id": s.user_id,
            "profile": json.dumps(s.profile),
            "task": "LaMP-2",
            "query": s.input,
            "id": s.id,
        })
    return Dataset.from_list(rows)


def run_grpo(model_dir: Any, dataset: Any, funcs: list[Any], out_dir: Any, weights: Any = "funcs",
             max_steps: int = 2) -> tuple[Any, bool]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    args = GRPOConfig(
        output_dir=str(out_dir), per_device_train_batch_size=4, num_generations=4, max_completion_length=16,
        max_steps=max_steps, logging_steps=1, learning_rate=1e-2, bf16=False, use_cpu=True, use_vllm=False,
        report_to=[], remove_unused_columns=False, save_strategy="no",
        reward_weights=reward_weights(funcs) if weights == "funcs" else weights,
        seed=0, dataloader_num_workers=0,
    )
    trainer = GRPOTrainer(model=model, processing_class=tok, reward_funcs=funcs, args=args, train_dataset=dataset)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    trainer.train()
    changed = any(not torch.equal(before[k], v.detach()) for k, v in model.named_parameters())
    return trainer, changed


@pytest.mark.integration
def test_grpo_trainer_with_stage2_and_prmu_logs_every_component(
    tiny_model_dir: Any, synthetic_task: Any, prmu_checkpoint: Any, tmp_path: Any
) -> None:
    from tagpr_rewards.prmu import PRMUReward

    composite = stage2("LaMP-2", schema=SCHEMA, prmu=PRMUReward(prmu_checkpoint))
    funcs = as_reward_funcs(composite, log_only=["base/task", "tag/tag_order", "prmu/interaction"])
    trainer, changed = run_grpo(tiny_model_dir, rl_dataset(synthetic_task), funcs, tmp_path)
    logs = [h for h in trainer.state.log_history if "reward" in h]
    assert len(logs) == 2
    for name in ("base", "tag", "prmu", "base/task", "tag/tag_order", "prmu/interaction"):
        assert all(math.isfinite(h[f"rewards/{name}/mean"]) for h in logs), name
    # the PRMU term varies within groups, so GRPO gets non-zero advantages and updates the policy
    assert any(h["rewards/prmu/std"] > 0 for h in logs)
    assert changed


@pytest.mark.integration
def test_grpo_trainer_with_one_composite_reports_components_via_log_metric(
    tiny_model_dir: Any, synthetic_task: Any, prmu_checkpoint: Any, tmp_path: Any
) -> None:
    from tagpr_rewards.prmu import PRMUReward

    f = as_reward_func(stage2("LaMP-2", schema=SCHEMA, prmu=PRMUReward(prmu_checkpoint)))
    trainer, changed = run_grpo(tiny_model_dir, rl_dataset(synthetic_task), [f], tmp_path)
    logs = [h for h in trainer.state.log_history if "reward" in h]
    assert len(logs) == 2
    for key in ("rewards/stage2/mean", "rewards/base/mean", "rewards/tag/mean", "rewards/prmu/mean",
                "rewards/prmu/interaction/mean", "rewards/base/task/mean", "rewards/tag/overlong/mean"):
        assert all(key in h for h in logs), key
    # TRL's total is the composite's total: base + 0.5 tag + 0.5 prmu (our default weights)
    h = logs[0]
    assert h["rewards/stage2/mean"] == pytest.approx(
        h["rewards/base/mean"] + 0.5 * h["rewards/tag/mean"] + 0.5 * h["rewards/prmu/mean"], abs=1e-5)
    assert changed


@pytest.mark.integration
def test_forgotten_reward_weights_are_reported_on_the_first_step(
    tiny_model_dir: Any, synthetic_task: Any, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    funcs = as_reward_funcs(stage2("LaMP-2", schema=SCHEMA))  # weights 1.0, 0.5
    with caplog.at_level(logging.ERROR, logger="tagpr_trainers.trl_adapter"), \
            pytest.warns(RuntimeWarning, match=r"reward_weights \[1.0, 1.0\].*\[1.0, 0.5\]"):
        run_grpo(tiny_model_dir, rl_dataset(synthetic_task), funcs, tmp_path, weights=None, max_steps=1)
    assert [r for r in caplog.records if "GRPOConfig(reward_weights=reward_weights(funcs))" in r.getMessage()]
    # with the weights passed there is nothing to report
    caplog.clear()
    funcs = as_reward_funcs(stage2("LaMP-2", schema=SCHEMA))
    with caplog.at_level(logging.ERROR, logger="tagpr_trainers.trl_adapter"):
        run_grpo(tiny_model_dir, rl_dataset(synthetic_task), funcs, tmp_path / "ok", max_steps=1)
    assert not [r for r in caplog.records if "reward_weights" in r.getMessage()]


@pytest.mark.integration
def test_grpo_from_a_model_that_writes_no_tags_learns_with_format_credit(
    tiny_model_dir: Any, synthetic_task: Any, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """No SFT: the untrained tiny model writes no tags. stage1 alone gives it zero reward variance
    (and says so); stage1 with format_credit gives it a signal and the policy moves."""
    from tagpr_rewards.presets import stage1

    plain = as_reward_func(stage1("LaMP-2", schema=SCHEMA))
    with caplog.at_level(logging.WARNING, logger="tagpr_trainers.trl_adapter"):
        trainer, changed = run_grpo(tiny_model_dir, rl_dataset(synthetic_task), [plain], tmp_path / "plain",
                                    weights=None)
    logs = [h for h in trainer.state.log_history if "reward" in h]
    assert all(h["reward_std"] == 0 for h in logs) and not changed
    assert len([r for r in caplog.records if "zero reward variance" in r.getMessage()]) == 1

    shaped = as_reward_func(stage1("LaMP-2", schema=SCHEMA, format_credit=0.5))
    trainer, changed = run_grpo(tiny_model_dir, rl_dataset(synthetic_task), [shaped], tmp_path / "shaped",
                                weights=None)
    logs = [h for h in trainer.state.log_history if "reward" in h]
    assert all(h["rewards/base/mean"] == 0 for h in logs)  # still no valid chain: the signal is the credit
    assert any(h["reward_std"] > 0 for h in logs)
    assert changed


@pytest.mark.integration
def test_sft_trainer_on_tagged_chains(tiny_model_dir: Any, tmp_path: Any) -> None:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from tagpr_rewards.tags import load_schema, parse_tags

    schema = load_schema(SCHEMA)
    tags = ["sci-fi", "comedy", "romance", "classic", "action", "fantasy"]
    rows = []
    for i, tag in enumerate(tags * 2):
        chain = (f"<understand-task>Pick one tag.</understand-task>"
                 f"<recall-history>The user tagged similar films {tag}.</recall-history>"
                 f"<infer-preference>So this user would say {tag}.</infer-preference>"
                 f"<answer>{tag}</answer>")
        assert parse_tags(chain, schema).valid
        rows.append({"messages": [{"role": "user", "content": f"Which tag fits movie {i}?"},
                                  {"role": "assistant", "content": chain}]})
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    args = SFTConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=12, logging_steps=1,
                     learning_rate=5e-3, bf16=False, use_cpu=True, report_to=[], save_strategy="no",
                     assistant_only_loss=True, max_length=128, seed=0, dataloader_num_workers=0)
    trainer = SFTTrainer(model=model, processing_class=tok, args=args, train_dataset=Dataset.from_list(rows))
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 12
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3  # it learns the chains
    assert any(not torch.equal(before[k], v.detach()) for k, v in model.named_parameters())
