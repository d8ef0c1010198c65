"""Benchmarks of the evaluation harness (pytest-benchmark; peers and ours on the same inputs).

(a) ``eval-score``: scoring 100,000 LaMP-4-style predictions from official-format files.
    * ours: :func:`tagpr_eval.scoring.score_files` (what ``tagpr-eval score`` runs), exact mean
      and the seeded bootstrap option;
    * peer: the official scorer's arithmetic: Hugging Face ``evaluate``'s ``rouge`` defaults
      (``rouge_score.RougeScorer`` with rouge1/rouge2/rougeL/rougeLsum, no stemmer,
      ``score_multi`` per sample with the reference wrapped in a list as LaMP does, and
      ``BootstrapAggregator``), on the same files. ``evaluate.load("rouge")`` itself needs the
      hub, so the peer calls rouge_score the way that module does.
    Checked in the same run: our exact mean equals the mean of rouge_score's per-sample
    F-measures, and our bootstrap equals BootstrapAggregator after ``np.random.seed(seed)``.
(b) ``eval-hf``: hf backend batched generation vs a one-prompt-at-a-time ``model.generate``
    loop on the same tiny model and prompts (greedy; outputs checked identical).

Run: ``python -m pytest benchmarks/bench_eval.py -q -p no:cacheprovider --benchmark-columns=min,mean,rounds``
(``BENCH_EVAL_N=20000`` for a quicker (a)). Figures: docs/benchmarks/eval.md.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import pytest

N = int(os.environ.get("BENCH_EVAL_N", "100000"))
SEED = 1234
BOOT = 1000

_VOCAB = ("the a of to in for on with new why how city court police market study says after over "
          "election storm school water health data report plan deal team win loses rise fall first "
          "women children climate vote bill tax energy company shares record year week amid U.S. "
          "Trump's 2024 COVID-19 café naïve über").split()


def _headline(rng: random.Random) -> str:
    words = [rng.choice(_VOCAB) for _ in range(rng.randint(4, 14))]
    s = " ".join(words)
    return s[0].upper() + s[1:] + rng.choice(["", "", ":", "?", " — live"])


@pytest.fixture(scope="module")
def score_files_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    rng = random.Random(SEED)
    d = tmp_path_factory.mktemp("score")
    golds = [{"id": f"{i:06d}", "output": _headline(rng)} for i in range(N)]
    preds = []
    for g in golds:
        words = g["output"].split()
        keep = [w for w in words if rng.random() < 0.5] + [rng.choice(_VOCAB) for _ in range(rng.randint(0, 5))]
        rng.shuffle(keep)
        preds.append({"id": g["id"], "output": " ".join(keep)})
    gp, pp = d / "golds.json", d / "preds.json"
    gp.write_text(json.dumps({"task": "LaMP_4", "golds": golds}))
    pp.write_text(json.dumps({"task": "LaMP_4", "golds": preds}))
    return gp, pp


def _official_rouge(golds_path: Path, preds_path: Path, use_aggregator: bool) -> dict[str, float]:
    """LaMP eval_task.py's ROUGE: HF evaluate's rouge module defaults, written out with rouge_score."""
    from rouge_score import rouge_scorer, scoring

    golds = json.loads(golds_path.read_text())["golds"]
    preds = {p["id"]: p["output"] for p in json.loads(preds_path.read_text())["golds"]}
    refs = [[g["output"].strip()] for g in golds]  # postprocess_text_generation: strip, wrap in a list
    hyps = [preds[g["id"]].strip() for g in golds]
    types = ["rouge1", "rouge2", "rougeL", "rougeLsum"]
    scorer = rouge_scorer.RougeScorer(rouge_types=types, use_stemmer=False)
    if use_aggregator:
        agg = scoring.BootstrapAggregator()
        for ref, hyp in zip(refs, hyps):
            agg.add_scores(scorer.score_multi(ref, hyp))
        res = agg.aggregate()
        return {"rouge-1": float(res["rouge1"].mid.fmeasure), "rouge-L": float(res["rougeL"].mid.fmeasure)}
    r1 = rl = 0.0
    scores = [scorer.score_multi(ref, hyp) for ref, hyp in zip(refs, hyps)]
    r1 = sum(s["rouge1"].fmeasure for s in scores) / len(scores)
    rl = sum(s["rougeL"].fmeasure for s in scores) / len(scores)
    return {"rouge-1": r1, "rouge-L": rl}


def _official_rouge_per_sample(golds_path: Path, preds_path: Path) -> tuple[list[float], list[float]]:
    from rouge_score import rouge_scorer

    golds = json.loads(golds_path.read_text())["golds"]
    preds = {p["id"]: p["output"] for p in json.loads(preds_path.read_text())["golds"]}
    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=False)
    s = [scorer.score_multi([g["output"].strip()], preds[g["id"]].strip()) for g in golds]
    return [x["rouge1"].fmeasure for x in s], [x["rougeL"].fmeasure for x in s]


RESULTS: dict[str, Any] = {}


def test_score_official_bootstrap(benchmark: Any, score_files_pair: tuple[Path, Path]) -> None:
    import numpy as np

    benchmark.group = f"eval-score ({N:,} LaMP-4 predictions, bootstrap)"

    def run() -> dict[str, float]:
        np.random.seed(SEED)
        return _official_rouge(*score_files_pair, use_aggregator=True)

    RESULTS["official_boot"] = benchmark.pedantic(run, rounds=1, iterations=1)


def test_score_ours_bootstrap(benchmark: Any, score_files_pair: tuple[Path, Path]) -> None:
    from tagpr_eval.scoring import score_files

    benchmark.group = f"eval-score ({N:,} LaMP-4 predictions, bootstrap)"
    res = benchmark.pedantic(lambda: score_files(*score_files_pair, bootstrap=BOOT, seed=SEED).result,
                             rounds=3, iterations=1)
    RESULTS["ours_boot"] = res
    if "official_boot" in RESULTS:
        off = RESULTS["official_boot"]
        diff = max(abs(res[k] - off[k]) for k in res)
        print(f"\nbootstrap (seed {SEED}): ours {res} official {off} max |diff| {diff:.2e}")
        # same resamples; the means differ only in float summation order (~1e-16)
        assert diff < 1e-12, (res, off)


def test_score_official_mean(benchmark: Any, score_files_pair: tuple[Path, Path]) -> None:
    benchmark.group = f"eval-score ({N:,} LaMP-4 predictions, exact mean)"
    RESULTS["official_mean"] = benchmark.pedantic(lambda: _official_rouge(*score_files_pair, use_aggregator=False),
                                                  rounds=1, iterations=1)


def test_score_ours_mean(benchmark: Any, score_files_pair: tuple[Path, Path]) -> None:
    from tagpr_eval.scoring import score_files

    benchmark.group = f"eval-score ({N:,} LaMP-4 predictions, exact mean)"
    res = benchmark.pedantic(lambda: score_files(*score_files_pair).result, rounds=3, iterations=1)
    r1, rl = _official_rouge_per_sample(*score_files_pair)
    # same per-sample values, summed in the same order as math.fsum-free Python sum
    assert res["rouge-1"] == pytest.approx(sum(r1) / len(r1), abs=1e-12)
    assert res["rouge-L"] == pytest.approx(sum(rl) / len(rl), abs=1e-12)
    RESULTS["ours_mean"] = res
    if "official_mean" in RESULTS:
        diff = max(abs(res[k] - RESULTS["official_mean"][k]) for k in res)
        print(f"\nmean: ours {res} official {RESULTS['official_mean']} max |diff| {diff:.2e}")


# ---------------------------------------------------------------- (b) hf generation throughput

N_PROMPTS = int(os.environ.get("BENCH_EVAL_PROMPTS", "64"))
MAX_NEW = 32
BATCH = 32


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tagpr_eval.backends import get_backend
    from tagpr_eval.tiny_model import build_tiny_model

    path = build_tiny_model(tmp_path_factory.mktemp("tiny"))
    backend = get_backend("hf", pretrained=str(path), dtype="float32",
                          device=os.environ.get("BENCH_EVAL_DEVICE", "auto"))
    from tagpr_eval.data import load_task
    from tagpr_eval.prompts import build_prompt

    data = load_task("synthetic", "LaMP-2")
    prompts = [build_prompt("LaMP-2", s, list(s.profile[:2]), style="tagged", schema="personalization-9")
               for s in data.samples[:N_PROMPTS]]
    return backend, prompts


def _one_at_a_time(backend: Any, prompts: list[Any]) -> list[str]:
    """The peer: a plain loop, one tokenizer call and one model.generate per prompt."""
    import torch

    tok, model = backend.tokenizer, backend.model
    outs = []
    for p in prompts:
        text = backend.render(p)
        enc = tok(text, return_tensors="pt", add_special_tokens=False).to(backend.device)
        with torch.inference_mode():
            o = model.generate(**enc, max_new_tokens=MAX_NEW, do_sample=False, pad_token_id=tok.pad_token_id,
                               temperature=None, top_p=None, top_k=None)
        outs.append(tok.decode(o[0, enc["input_ids"].shape[1]:], skip_special_tokens=True))
    return outs


def test_hf_one_at_a_time(benchmark: Any, tiny: Any) -> None:
    backend, prompts = tiny
    benchmark.group = f"eval-hf ({N_PROMPTS} prompts x {MAX_NEW} new tokens, {backend.device})"
    RESULTS["hf_single"] = benchmark.pedantic(lambda: _one_at_a_time(backend, prompts), rounds=2, iterations=1)


def test_hf_batched(benchmark: Any, tiny: Any) -> None:
    from tagpr_eval.backends import GenerationConfig

    backend, prompts = tiny
    benchmark.group = f"eval-hf ({N_PROMPTS} prompts x {MAX_NEW} new tokens, {backend.device})"
    gen = GenerationConfig(max_new_tokens=MAX_NEW)

    def run() -> list[str]:
        out: list[str] = []
        for i in range(0, len(prompts), BATCH):
            out += backend.generate(prompts[i:i + BATCH], gen)
        return out

    res = benchmark.pedantic(run, rounds=3, iterations=1)
    if "hf_single" in RESULTS:
        same = sum(a == b for a, b in zip(res, RESULTS["hf_single"]))
        print(f"\nhf batched vs single: {same}/{len(res)} identical outputs")
