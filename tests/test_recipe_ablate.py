"""`tagpr-train ablate`: the summary's statistics on run directories laid out as the recipe writes them."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tagpr_eval.stats import paired_bootstrap, relative_bootstrap, seed_ci, stratified_bootstrap
from tagpr_trainers.recipe.ablate import ARMS, _link_arm, question_scores, summarise
from tagpr_trainers.recipe.stages.eval import draw_name, draw_seed


def _eval_run(root: Path, name: str, correct: list[bool]) -> Path:
    d = root / "eval" / name
    d.mkdir(parents=True)
    with (d / "samples.jsonl").open("w") as f:
        for i, ok in enumerate(correct):
            f.write(json.dumps({"id": f"{i:04d}", "answer": "comedy" if ok else "drama ", "gold": "comedy"}) + "\n")
    return d


def _seed_dir(root: Path, accs: dict[str, float], n: int, rng: random.Random) -> None:
    runs = {}
    for model, acc in accs.items():
        if model.startswith("arm-"):
            continue
        runs[model] = str(_eval_run(root, model, [rng.random() < acc for _ in range(n)]))
    (root / "eval" / "comparison.json").write_text(json.dumps({"rows": [], "runs": runs}))
    for arm, acc in accs.items():
        if arm.startswith("arm-"):
            a = root / arm
            r = _eval_run(a, "rl2", [rng.random() < acc for _ in range(n)])
            (a / "eval" / "comparison.json").write_text(json.dumps({"rows": [], "runs": {"rl2": str(r)}}))


def test_question_scores_match_strictly_after_stripping(tmp_path: Path) -> None:
    d = _eval_run(tmp_path, "m", [True, False, True])
    assert question_scores(d) == {"0000": 1.0, "0001": 0.0, "0002": 1.0}


def test_summary_reports_every_model_and_claim_with_intervals(tmp_path: Path) -> None:
    rng = random.Random(0)
    accs = {"baseline": 0.34, "direct": 0.3, "sft": 0.6, "rl1": 0.62, "rl2": 0.7, "arm-no-prmu": 0.66,
            "arm-no-tag": 0.69}
    for s in range(3):
        _seed_dir(tmp_path / f"seed{s}", accs, 400, rng)
    table = summarise(tmp_path)
    assert table["seeds"] == ["seed0", "seed1", "seed2"]
    assert list(table["accuracy"]) == ["baseline", "direct", "sft", "rl1", "rl2", "rl2 no-prmu", "rl2 no-tag"]
    for m, acc in accs.items():
        key = f"rl2 {m[4:]}" if m.startswith("arm-") else m
        a = table["accuracy"][key]
        assert len(a["per_seed"]) == 3 and abs(a["mean"] - acc) < 0.05 and a["ci95"] > 0
    c = table["claims"]["rl2 − sft"]
    assert 0.05 < c["mean"] < 0.15 and all(r["low"] > 0 for r in c["per_seed"])  # a real gain: CI excludes 0
    rel = table["claims"]["rl2 vs direct (relative)"]
    assert 1.0 < rel["mean"] < 1.7  # 0.7 / 0.3 - 1 = +133%
    assert "rl2 no-prmu − rl2" in table["claims"] and "rl2 no-tag − rl2" in table["claims"]
    # pooled over the seeds' questions: the same point estimate as the mean across seeds (equal
    # question counts), and an interval narrower than the 3-seed Student-t one
    assert c["pooled"]["n"] == 1200 and c["pooled"]["delta"] == pytest.approx(c["mean"])
    assert 0 < c["pooled"]["low"] < c["pooled"]["delta"] < c["pooled"]["high"]
    assert c["pooled"]["high"] - c["pooled"]["low"] < 2 * c["ci95_across_seeds"]
    pooled_acc = table["accuracy"]["rl2"]["pooled"]
    assert pooled_acc["low"] < 0.7 < pooled_acc["high"] and pooled_acc["n"] == 1200
    md = (tmp_path / "ablation.md").read_text()
    assert "| RL stage 2, no PRMU (γ=0) |" in md and "±" in md and "%" in md
    assert "| claim | mean across seeds | pooled [95% CI] | per seed [95% CI] |" in md
    from PIL import Image

    with Image.open(tmp_path / "accuracy_per_stage.png") as im:  # the plot docs/recipe.md shows
        assert im.format == "PNG" and im.size[0] > 600
    assert table["plot"] == str(tmp_path / "accuracy_per_stage.png")
    assert json.loads((tmp_path / "ablation.json").read_text())["seeds"] == table["seeds"]
    assert "chain_audit" not in table  # no config.yaml says these are listing chains


def test_summary_without_runs_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="tagpr-train ablate"):
        summarise(tmp_path)


def test_arm_links_the_shared_stages(tmp_path: Path) -> None:
    main = tmp_path / "seed0"
    for d in ("data", "sft", "rl1"):
        (main / d).mkdir(parents=True)
    (main / "stages").mkdir()
    for m in ("data", "sft", "rl1"):
        (main / "stages" / f"{m}.json").write_text("{}")
    (main / "stages" / "rl2.json").write_text("{}")
    arm = main / "arm-no-tag"
    _link_arm(main, arm)
    assert (arm / "sft").resolve() == (main / "sft").resolve() and (arm / "sft").is_symlink()
    assert (arm / "stages" / "rl1.json").is_file() and not (arm / "stages" / "rl2.json").exists()
    assert set(ARMS) == {"no-prmu", "no-tag", "no-recall", "no-tags"}
    (main / "direct").mkdir()
    no_tags = main / "arm-no-tags"
    _link_arm(main, no_tags, from_direct=True)  # RL from the direct-answer model
    assert (no_tags / "sft").resolve() == (main / "direct").resolve()
    assert not (no_tags / "rl1").exists() and not (no_tags / "stages" / "rl1.json").exists()
    # a refiltered stage-2 pool is the main run's for an arm that changes stage 2 alone, never for no-tags
    (main / "rl2").mkdir()
    (main / "rl2" / "prompts.jsonl").write_text('{"id": "7"}\n')
    _link_arm(main, main / "arm-no-prmu", stage2_only=True)
    assert (main / "arm-no-prmu" / "rl2" / "prompts.jsonl").read_text() == '{"id": "7"}\n'
    assert not (main / "arm-no-prmu" / "rl2").is_symlink()  # the arm's stage 2 writes its own model there
    assert not (arm / "rl2").exists() and not (no_tags / "rl2").exists()
    _link_arm(main, no_tags, from_direct=True, stage2_only=True)
    assert not (no_tags / "rl2").exists()


def test_stats_helpers() -> None:
    assert seed_ci([0.5]).n == 1 and str(seed_ci([0.5])) == "0.500"
    same = paired_bootstrap([1, 0, 1, 0], [1, 0, 1, 0], n_boot=500)
    assert same.delta == 0 and not same.excludes_zero
    assert relative_bootstrap([0, 0], [1, 1]).delta != relative_bootstrap([0, 0], [1, 1]).delta  # nan: base is 0
    with pytest.raises(ValueError, match="one length"):
        paired_bootstrap([1], [1, 0])


def test_stratified_bootstrap_resamples_within_each_seed() -> None:
    # two seeds: one where b gains on every question, one where nothing changes
    d = stratified_bootstrap([([0.0] * 50, [1.0] * 50), ([1.0, 0.0] * 25, [1.0, 0.0] * 25)], n_boot=2000)
    # a resample keeps 50 questions of each seed, so the pooled gain is exactly 0.5 every time
    assert d.n == 100 and d.delta == 0.5 and d.low == d.high == 0.5
    noisy = stratified_bootstrap([([0, 1, 0, 1] * 25, [1, 1, 0, 0] * 25)], n_boot=2000)
    plain = paired_bootstrap([0, 1, 0, 1] * 25, [1, 1, 0, 0] * 25, n_boot=2000)
    assert noisy.delta == plain.delta == 0 and noisy.low == plain.low and noisy.high == plain.high  # one group
    with pytest.raises(ValueError, match="group 1"):
        stratified_bootstrap([([1], [1]), ([1, 0], [1])])



def test_summary_audits_the_listing_chains_of_each_seed(tmp_path: Path) -> None:
    """On synthetic LaMP-2 with the listing chain (the seed's config.yaml says so) the summary adds
    the step audit of SFT and RL stage 2, mean across seeds with each seed's rate; other runs get none."""
    import yaml

    prompt = ('the tag for the movie: "A pilot flies the rocket to the mars." is "sci-fi" , and the tag for the '
              'movie: "A grandmother bakes for the thanksgiving." is "comedy" . Which tag does this movie relate to '
              'among the following tags? tags: [sci-fi, comedy] description: An alien lands near the moonbase.')

    def chain(tag: str) -> str:
        return (f'<recall-history>The user\'s history items: space -> "{tag}"; family -> "comedy".</recall-history>'
                f'<analyze-query>The query movie is about space.</analyze-query>'
                f'<extract-preference>The user\'s habit for space: "{tag}".</extract-preference><answer>{tag}</answer>')

    for s, copied in enumerate((1.0, 0.5)):  # seed 1's SFT copies the first tag wrong half the time
        sd = tmp_path / f"seed{s}"
        runs = {}
        for model in ("sft", "rl2"):
            d = sd / "eval" / model
            d.mkdir(parents=True)
            with (d / "samples.jsonl").open("w") as f:
                for i in range(4):
                    tag = "sci-fi" if (model == "rl2" or i < 4 * copied) else "comedy"
                    f.write(json.dumps({"id": str(i), "task": "LaMP-2", "prompt": prompt, "raw_output": chain(tag),
                                        "answer": tag, "gold": "sci-fi"}) + "\n")
            runs[model] = str(d)
        (sd / "eval" / "comparison.json").write_text(json.dumps({"rows": [], "runs": runs}))
        (sd / "config.yaml").write_text(yaml.safe_dump({"data": {
            "source": "synthetic", "tasks": ["LaMP-2"], "teacher": {"kind": "template", "chain": "listing"}}}))
    table = summarise(tmp_path)
    audit = table["chain_audit"]
    assert set(audit) == {"sft", "rl2"} and set(audit["sft"]) == {"seed0", "seed1"}
    assert [audit["sft"][s]["tags_copied"] for s in ("seed0", "seed1")] == [1.0, 0.5]
    assert audit["rl2"]["seed1"]["accuracy"] == 1.0 and audit["sft"]["seed1"]["accuracy"] == 0.5
    md = (tmp_path / "ablation.md").read_text()
    assert "| tags copied in order | 0.750 (1.000 / 0.500) | 1.000 (1.000 / 1.000) |" in md
    # a run of another chain style is not audited (its chains would read as all wrong)
    (tmp_path / "seed1" / "config.yaml").write_text(yaml.safe_dump({"data": {
        "source": "synthetic", "tasks": ["LaMP-2"], "teacher": {"kind": "template", "chain": "prose"}}}))
    assert set(summarise(tmp_path)["chain_audit"]["sft"]) == {"seed0"}
    # nor is one whose prompts show no LaMP-2 item (the tagged prompt style, k = 0): nothing to read
    (tmp_path / "seed1" / "config.yaml").write_text(yaml.safe_dump({"data": {
        "source": "synthetic", "tasks": ["LaMP-2"], "teacher": {"kind": "template", "chain": "listing"}}}))
    rows = [json.loads(x) for x in (tmp_path / "seed1" / "eval" / "sft" / "samples.jsonl").read_text().splitlines()]
    (tmp_path / "seed1" / "eval" / "sft" / "samples.jsonl").write_text(
        "".join(json.dumps({**r, "prompt": "description: An alien lands."}) + "\n" for r in rows))
    audit = summarise(tmp_path)["chain_audit"]
    assert set(audit["sft"]) == {"seed0"} and set(audit["rl2"]) == {"seed0", "seed1"}


def test_summary_says_which_machine_each_seed_trained_on(tmp_path: Path) -> None:
    # a tiny model's SFT lands elsewhere on another CPU (docs/recipe.md, "The onset is fragile"):
    # the stage marker records the machine, and ablation.md says what the table was computed on
    from tagpr_eval.results import machine_info
    from tagpr_trainers.recipe.checkpoints import mark_done, read_marker

    rng = random.Random(1)
    for s in range(2):
        _seed_dir(tmp_path / f"seed{s}", {"sft": 0.6, "rl2": 0.6}, 50, rng)
    mark_done(tmp_path / "seed0", "sft", {"steps": 1})
    here = machine_info()
    assert read_marker(tmp_path / "seed0", "sft")["machine"] == here
    table = summarise(tmp_path)
    assert table["machines"] == {"seed0": here}  # seed1 has no marker: nothing claimed for it
    md = (tmp_path / "ablation.md").read_text()
    assert f"Computed on: {here['cpu']} (" in md and "for seed0." in md


def test_summary_shows_how_far_each_rl_stage_moved(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # the evidence for "RL did not move it" (docs/recipe.md, "What RL does to it") comes out of the
    # command itself: each seed's GRPO log, first quarter -> last quarter of the steps
    rng = random.Random(2)
    for s in range(2):
        sd = tmp_path / f"seed{s}"
        _seed_dir(sd, {"sft": 0.6, "rl1": 0.6, "rl2": 0.6}, 50, rng)
        for which, kl in (("rl1", 0.01), ("rl2", 0.002)):
            (sd / which).mkdir()
            hist = [{"step": i, "reward": 0.5, "kl": kl * i * (s + 1), "frac_reward_zero_std": 0.5 - 0.05 * i,
                     "entropy": 0.05, "loss": 0.0} for i in range(1, 9)]
            hist.append({"step": 8, "train_runtime": 10.0, "train_loss": 0.0})  # TRL's closing entry
            (sd / which / "log_history.json").write_text(json.dumps(hist))
    table = summarise(tmp_path)
    dyn = table["rl_dynamics"]
    assert set(dyn) == {"rl1", "rl2"} and set(dyn["rl1"]) == {"seed0", "seed1"}
    assert dyn["rl1"]["seed1"]["kl"] == {"first": pytest.approx(0.03), "last": pytest.approx(0.15), "steps": 8}
    assert dyn["rl2"]["seed0"]["frac_reward_zero_std"]["last"] == pytest.approx(0.125)
    md = (tmp_path / "ablation.md").read_text()
    assert "| on the training rollouts | RL stage 1 | RL stage 2 (full) |" in md
    assert "| KL to the reference model | 0.0225 → 0.1125 (0.0150 → 0.0750 / 0.0300 → 0.1500) |" in md
    assert json.loads((tmp_path / "ablation.json").read_text())["rl_dynamics"]["rl2"]["seed1"]["entropy"]["last"] == 0.05
    # a log that cannot be read leaves that seed's stage out and says so; the rest still summarises
    (tmp_path / "seed1" / "rl2" / "log_history.json").write_text("{not json")
    with caplog.at_level("WARNING", logger="tagpr_trainers.recipe"):
        dyn = summarise(tmp_path)["rl_dynamics"]
    assert set(dyn["rl2"]) == {"seed0"} and set(dyn["rl1"]) == {"seed0", "seed1"}
    assert "seed1/rl2/log_history.json: unreadable trainer log" in caplog.text
    # runs without GRPO logs (RL not run yet) get no table
    for s in range(2):
        for which in ("rl1", "rl2"):
            (tmp_path / f"seed{s}" / which / "log_history.json").unlink()
    assert "rl_dynamics" not in summarise(tmp_path)
    assert "How far RL moved" not in (tmp_path / "ablation.md").read_text()


def test_trainer_logs_are_read_one_way_and_a_broken_one_costs_only_its_stage(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # the eval stage's plots and the ablation summary read the stages' logs through one reader: a
    # broken log leaves its stage out with a warning instead of failing the whole eval stage
    from tagpr_trainers.recipe.stages.common import read_log_history
    from tagpr_trainers.recipe.stages.eval import plot_curves

    for stage in ("sft", "rl1", "rl2"):
        (tmp_path / stage).mkdir()
    (tmp_path / "sft" / "log_history.json").write_text(json.dumps([{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.0}]))
    (tmp_path / "rl1" / "log_history.json").write_text(json.dumps([{"step": 1, "reward": 0.5, "kl": 0.0}, "junk"]))
    (tmp_path / "rl2" / "log_history.json").write_text('{"not": "a list"}')
    assert read_log_history(tmp_path, "rl1") == [{"step": 1, "reward": 0.5, "kl": 0.0}]
    assert read_log_history(tmp_path, "missing") is None
    with caplog.at_level("WARNING", logger="tagpr_trainers.recipe"):
        assert read_log_history(tmp_path, "rl2") is None
        files = plot_curves(tmp_path, tmp_path / "plots")
    assert "rl2/log_history.json: not a trainer log" in caplog.text
    assert set(files) == {"reward_curves", "sft_loss"} and all(Path(f).stat().st_size > 0 for f in files.values())


def test_other_rl_runs_are_averaged_per_question(tmp_path: Path) -> None:
    """``--rl-seeds``: each seed's other RL runs (``rl-seedN/``) beside its own; the claims average
    each question's RL scores over the runs, and the per-run accuracies are listed."""
    rng = random.Random(1)
    accs = {"sft": 0.6, "rl1": 0.62, "rl2": 0.64}
    for s in range(2):
        sd = tmp_path / f"seed{s}"
        _seed_dir(sd, accs, 300, rng)
        for r, acc in ((1001, 0.7), (2002, 0.5)):
            rr = sd / f"rl-seed{r}"
            runs = {m: str(_eval_run(rr, m, [rng.random() < acc for _ in range(300)])) for m in ("rl1", "rl2")}
            (rr / "eval" / "comparison.json").write_text(json.dumps({"rows": [], "runs": runs}))
    table = summarise(tmp_path)
    per = table["rl_runs"]["per_seed"]
    assert list(per) == ["seed0", "seed1"] and list(per["seed0"]) == ["main", "rl-seed1001", "rl-seed2002"]
    # the averaged claim by hand: each question's RL stage 2 score, mean of its three runs, minus SFT
    groups = []
    for s in range(2):
        sd = tmp_path / f"seed{s}"
        sft = question_scores(sd / "eval" / "sft")
        runs = [question_scores(sd / "eval" / "rl2")] + [question_scores(sd / f"rl-seed{r}" / "eval" / "rl2")
                                                        for r in (1001, 2002)]
        ids = sorted(sft)
        groups.append(([sft[i] for i in ids], [sum(x[i] for x in runs) / 3 for i in ids]))
    want = stratified_bootstrap(groups)
    got = table["rl_runs"]["averaged_claims"]["rl2 − sft"]
    assert (got["delta"], got["low"], got["high"], got["n"]) == pytest.approx((want.delta, want.low, want.high, 600))
    assert per["seed1"]["rl-seed1001"]["rl2"] == pytest.approx(
        sum(question_scores(tmp_path / "seed1" / "rl-seed1001" / "eval" / "rl2").values()) / 300)
    md = (tmp_path / "ablation.md").read_text()
    assert "| seed | main | rl-seed1001 | rl-seed2002 |" in md and "| rl2 − sft | " in md
    # without other RL runs there is no such section
    import shutil

    for s in range(2):
        for r in (1001, 2002):
            shutil.rmtree(tmp_path / f"seed{s}" / f"rl-seed{r}")
    assert "rl_runs" not in summarise(tmp_path) and "rl-seed" not in (tmp_path / "ablation.md").read_text()


def test_an_rl_rerun_links_everything_up_to_rl(tmp_path: Path) -> None:
    main = tmp_path / "seed0"
    for d in ("data", "base", "direct", "sft", "prmu", "rl1"):
        (main / d).mkdir(parents=True)
    (main / "stages").mkdir()
    for m in ("data", "sft", "prmu", "rl1"):
        (main / "stages" / f"{m}.json").write_text("{}")
    rerun = main / "rl-seed1001"
    _link_arm(main, rerun, rl_rerun=True)
    assert all((rerun / d).is_symlink() for d in ("data", "base", "direct", "sft", "prmu"))
    assert not (rerun / "rl1").exists() and not (rerun / "stages" / "rl1.json").exists()  # both RL stages its own
    assert {p.name for p in (rerun / "stages").iterdir()} == {"data.json", "sft.json", "prmu.json"}


def test_rl_seeds_that_repeat_a_run_are_refused(tmp_path: Path) -> None:
    from tagpr_trainers.recipe.ablate import run_ablation
    from tagpr_trainers.recipe.config import RecipeConfigError

    with pytest.raises(RecipeConfigError, match="given twice"):
        run_ablation("tiny-cpu", [], [0], tmp_path, rl_seeds=[5, 5])
    # a seed's own RL seed is refused before anything trains (not after the seeds before it)
    with pytest.raises(RecipeConfigError, match="2 is seed 2's own RL seed"):
        run_ablation("tiny-cpu", [], [1, 2], tmp_path, rl_seeds=[2])
    with pytest.raises(RecipeConfigError, match="7 is seed 1's own RL seed"):
        run_ablation("tiny-cpu", ["rl.seed=7"], [1], tmp_path, rl_seeds=[7])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.integration
def test_ablate_reruns_rl_from_the_same_sft_model(tmp_path: Path) -> None:
    """A real (shrunk) ``ablate --rl-seeds 7``: the other RL run links the main run's data, SFT and
    PRMU, trains both RL stages with ``rl.seed=7``, and the summary lists it."""
    from tagpr_trainers.recipe.ablate import run_ablation
    from tagpr_trainers.recipe.config import RecipeConfigError

    shrink = ["data.synthetic.train_users=20", "data.synthetic.eval_users=4", "sft.epochs=1",
              "model.tiny.pretrain.shuffles=1", "prmu.train.epochs=1", "rl.stage1.max_steps=1",
              "rl.stage2.max_steps=1", "rl.stage1.batch_size=16", "rl.stage2.batch_size=16", "eval.limit=8",
              "run.device=cpu"]
    table = run_ablation("tiny-cpu", shrink, [0], tmp_path, arms=[], progress=False, rl_seeds=[7])
    main, rerun = tmp_path / "seed0", tmp_path / "seed0" / "rl-seed7"
    assert all((rerun / d).is_symlink() for d in ("data", "sft", "prmu"))
    assert (rerun / "rl2" / "model").is_dir() and not (rerun / "rl1").is_symlink()
    inputs = json.loads((rerun / "stages" / "rl1.json").read_text())["inputs"]
    assert inputs["rl.seed"] == 7 and "rl.seed" not in json.loads((main / "stages" / "rl1.json").read_text())["inputs"]
    assert (rerun / "stages" / "sft.json").read_text() == (main / "stages" / "sft.json").read_text()  # not retrained
    runs = table["rl_runs"]["per_seed"]["seed0"]
    assert list(runs) == ["main", "rl-seed7"] and set(runs["rl-seed7"]) == {"rl1", "rl2"}
    assert "rl2 − sft" in table["rl_runs"]["averaged_claims"]
    with pytest.raises(RecipeConfigError, match="seed 0's own RL seed"):
        run_ablation("tiny-cpu", shrink, [0], tmp_path, arms=[], progress=False, rl_seeds=[0])


def _draw_dir(root: Path, accs: dict[str, float], n: int, rng: random.Random, draw: str = "synthetic-seed7") -> None:
    """The eval stage's second draw beside the dev users: ``eval/comparison-<draw>.json`` naming
    the runs under ``eval/<draw>/`` (arms likewise)."""
    runs = {m: str(_eval_run(root / "eval" / draw, m, [rng.random() < a for _ in range(n)]))
            for m, a in accs.items() if not m.startswith("arm-")}
    (root / "eval" / f"comparison-{draw}.json").write_text(json.dumps({"rows": [], "runs": runs}))
    for arm, a in accs.items():
        if arm.startswith("arm-"):
            r = _eval_run(root / arm / "eval" / draw, "rl2", [rng.random() < a for _ in range(n)])
            (root / arm / "eval" / f"comparison-{draw}.json").write_text(json.dumps({"rows": [], "runs": {"rl2": str(r)}}))


def test_the_claims_are_also_reported_on_the_second_draw(tmp_path: Path) -> None:
    """Issue 8's held-out check: every claim on the other synthetic draw (``eval.synthetic_seeds``)
    too, computed from that draw's answers alone; with ``--rl-seeds`` runs, their average there too."""
    rng = random.Random(2)
    dev = {"baseline": 0.34, "direct": 0.3, "sft": 0.6, "rl1": 0.62, "rl2": 0.64, "arm-no-prmu": 0.63}
    other = {"baseline": 0.3, "direct": 0.2, "sft": 0.5, "rl1": 0.6, "rl2": 0.7, "arm-no-prmu": 0.55}
    for s in range(2):
        sd = tmp_path / f"seed{s}"
        _seed_dir(sd, dev, 300, rng)
        _draw_dir(sd, other, 500, rng)
    table = summarise(tmp_path)
    d = table["draws"]["synthetic-seed7"]
    assert d["seeds"] == ["seed0", "seed1"] and table["accuracy"]["rl2"]["pooled"]["n"] == 600
    assert list(d["accuracy"]) == ["baseline", "direct", "sft", "rl1", "rl2", "rl2 no-prmu"]
    # by hand from the draw's own samples: RL stage 2 − SFT pooled over the seeds, and a per-seed relative claim
    groups = []
    for s in range(2):
        runs = json.loads((tmp_path / f"seed{s}" / "eval" / "comparison-synthetic-seed7.json").read_text())["runs"]
        sft, rl2 = question_scores(runs["sft"]), question_scores(runs["rl2"])
        groups.append(([sft[i] for i in sorted(sft)], [rl2[i] for i in sorted(sft)]))
    want = stratified_bootstrap(groups)
    got = d["claims"]["rl2 − sft"]["pooled"]
    assert (got["delta"], got["low"], got["high"], got["n"]) == pytest.approx((want.delta, want.low, want.high, 1000))
    assert 0.1 < got["delta"] < 0.3 and got["delta"] != pytest.approx(table["claims"]["rl2 − sft"]["pooled"]["delta"])
    runs = json.loads((tmp_path / "seed1" / "eval" / "comparison-synthetic-seed7.json").read_text())["runs"]
    rel = relative_bootstrap(*[[question_scores(runs[m])[f"{i:04d}"] for i in range(500)] for m in ("direct", "rl2")],
                             seed=0)
    assert d["claims"]["rl2 vs direct (relative)"]["per_seed"][1]["delta"] == pytest.approx(rel.delta)
    assert "rl2 no-prmu − rl2" in d["claims"] and "rl_runs_averaged_claims" not in d
    md = (tmp_path / "ablation.md").read_text()
    assert "another draw, `synthetic-seed7`" in md and "--seed 7" in md
    assert md.count("| claim | mean across seeds | pooled [95% CI] | per seed [95% CI] |") == 2
    # other RL runs evaluated on the draw: their average gets a column of its own
    for s in range(2):
        rr = tmp_path / f"seed{s}" / "rl-seed1001"
        runs = {m: str(_eval_run(rr, m, [rng.random() < 0.6 for _ in range(300)])) for m in ("rl1", "rl2")}
        (rr / "eval" / "comparison.json").write_text(json.dumps({"rows": [], "runs": runs}))
        _draw_dir(rr, {"rl1": 0.4, "rl2": 0.4}, 500, rng)
    table = summarise(tmp_path)
    avg = table["draws"]["synthetic-seed7"]["rl_runs_averaged_claims"]["rl2 − sft"]
    # by hand from the draw's files: each question's RL stage 2 the mean of its two runs, minus SFT
    groups = []
    for s in range(2):
        sd = tmp_path / f"seed{s}"
        main_runs = json.loads((sd / "eval" / "comparison-synthetic-seed7.json").read_text())["runs"]
        other_runs = json.loads((sd / "rl-seed1001" / "eval" / "comparison-synthetic-seed7.json").read_text())["runs"]
        sft = question_scores(main_runs["sft"])
        rl2 = [question_scores(main_runs["rl2"]), question_scores(other_runs["rl2"])]
        groups.append(([sft[i] for i in sorted(sft)], [(rl2[0][i] + rl2[1][i]) / 2 for i in sorted(sft)]))
    want = stratified_bootstrap(groups)
    assert (avg["delta"], avg["low"], avg["high"], avg["n"]) == pytest.approx((want.delta, want.low, want.high, 1000))
    assert "| claim | averaged over the RL runs [95% CI] | on `synthetic-seed7` |" in (tmp_path / "ablation.md").read_text()
    # without a second draw the summary has no such section
    for p in tmp_path.glob("seed*/**/comparison-synthetic-seed7.json"):
        p.unlink()
    assert "draws" not in summarise(tmp_path) and "another draw" not in (tmp_path / "ablation.md").read_text()


def test_draws_are_read_in_seed_order_and_other_comparison_files_are_not_draws(tmp_path: Path) -> None:
    """The eval stage names a draw ``synthetic-seedN`` (``draw_name``); the summary lists them by
    seed (11 after 7, not before as text would sort; a negative seed too) and ignores another
    ``comparison-*.json``."""
    rng = random.Random(3)
    accs = {"baseline": 0.3, "direct": 0.3, "sft": 0.5, "rl1": 0.55, "rl2": 0.6}
    sd = tmp_path / "seed0"
    _seed_dir(sd, accs, 50, rng)
    for seed in (11, 7, -2):
        _draw_dir(sd, accs, 40, rng, draw=draw_name(seed))
    (sd / "eval" / "comparison-my-notes.json").write_text(json.dumps({"rows": [], "runs": {}}))
    table = summarise(tmp_path)
    assert list(table["draws"]) == ["synthetic-seed-2", "synthetic-seed7", "synthetic-seed11"]
    md = (tmp_path / "ablation.md").read_text()
    assert md.index("--seed -2`") < md.index("--seed 7`") < md.index("--seed 11`") and "my-notes" not in md
    with pytest.raises(ValueError, match="not a synthetic draw's name"):
        draw_seed("comparison-my-notes")
