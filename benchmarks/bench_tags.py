"""Tag-structure check throughput: ours vs TRL's ``trl.rewards.think_format_reward``.

Run:
    pytest benchmarks/bench_tags.py -o python_files='bench_*.py' --benchmark-only \
        --benchmark-group-by=group --benchmark-columns=min,median,mean,rounds

Inputs: 1,000 completions of about 1.5 KB, generated deterministically (seed 0): tagged
personalization chains of 5-9 steps (English-like sentences about a user's history, a query,
the inferred preference) ending in an answer. Contenders per group, on the same number of
completions of the same size, all in TRL's conversational format
(``[[{"role": "assistant", "content": ...}], ...]``):

* ``trl-think-format``: ``think_format_reward(completions)`` -- one regex per completion
  (``^<think>(?!.*<think>)(.*?)</think>.*$``), the whole chain wrapped in ``<think>``.
* ``ours-p9-full-check``: build the :class:`~tagpr_rewards.base.Batch` once, then
  ``tag_format`` + ``tag_order`` + ``tag_coverage`` of ``personalization-9`` (one parse per
  completion, shared through the batch memo) on the chains.
* ``ours-think-answer-full-check``: the same three rewards with the ``think-answer`` schema on
  the *identical* inputs TRL gets (``<think>...</think><answer>...</answer>``).

Groups: ``valid`` (every chain well formed) and ``mixed`` (a third corrupted: truncated
generations, a step left unclosed, the answer first, no answer, text after the answer; for TRL:
truncated, ``</think>`` missing, a second ``<think>``, text before ``<think>``), because RL batches
early in training are often malformed. Figures: docs/benchmarks/tags.md.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from trl.rewards import think_format_reward

from tagpr_rewards.base import Batch
from tagpr_rewards.tags import TagCoverageReward, TagFormatReward, TagOrderReward, load_schema

N = 1000
TARGET_CHARS = 1500

_WORDS = ("user history profile item rated liked movie film story space robot romance comedy drama "
          "tagged previously several often rarely genre tone style query title describes similar "
          "different therefore likely prefers sci-fi classic action thriller because the a of to and "
          "in with for on this that their they which most").split()

CHAINS = [
    ["understand-task", "recall-history", "analyze-query", "infer-preference", "verify", "answer"],
    ["understand-task", "recall-history", "extract-preference", "compare-items", "infer-preference", "answer"],
    ["understand-task", "analyze-query", "recall-history", "infer-preference", "resolve-conflict", "verify",
     "answer"],
    ["understand-task", "recall-history", "extract-preference", "analyze-query", "compare-items", "infer-preference",
     "analyze-query", "infer-preference", "verify", "answer"],
    ["understand-task", "recall-history", "infer-preference", "answer"],
]


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(8, 16))).capitalize() + "."


def _steps(rng: random.Random) -> tuple[list[str], list[str], str]:
    tags = list(rng.choice(CHAINS))
    answer = rng.choice(["sci-fi", "comedy", "classic", "action", "romance", "4", "2"])
    contents = []
    steps = len(tags) - 1
    for _ in range(steps):
        parts: list[str] = []
        while sum(map(len, parts)) < (TARGET_CHARS - 60) / steps - 40:
            parts.append(_sentence(rng))
        contents.append(" ".join(parts))
    return tags, contents, answer


def _corrupt(rng: random.Random, text: str, tags: list[str]) -> str:
    kind = rng.randrange(5)
    if kind == 4:  # truncated generation (max_new_tokens reached)
        return text[: rng.randrange(len(text) // 2, len(text) - 30)]
    if kind == 0:  # unclosed step
        t = rng.choice(tags[:-1])
        return text.replace(f"</{t}>", "", 1)
    if kind == 1:  # answer first
        body = text.split("<answer>")[0]
        return text[len(body):] + "\n" + body
    if kind == 2:  # missing answer
        return text.split("<answer>")[0]
    return text + "\nAs explained above."  # text after the answer


def make_inputs(n: int = N, seed: int = 0, corrupt: float = 0.0) -> tuple[list[Any], list[Any]]:
    """``(p9_chains, think_answer_texts)`` in conversational format, each about 1.5 KB."""
    rng = random.Random(seed)
    p9, ta = [], []
    for _ in range(n):
        tags, contents, answer = _steps(rng)
        text = "\n".join(f"<{t}>{c}</{t}>" for t, c in zip(tags, contents)) + f"\n<answer>{answer}</answer>"
        think = "<think>" + "\n".join(contents) + f"</think>\n<answer>{answer}</answer>"
        if rng.random() < corrupt:
            text = _corrupt(rng, text, tags)
            think = rng.choice([think.replace("</think>", ""), "<think>" + think, "Sure. " + think,
                                think[: rng.randrange(len(think) // 2, len(think) - 30)]])
        p9.append([{"role": "assistant", "content": text}])
        ta.append([{"role": "assistant", "content": think}])
    return p9, ta


INPUTS = {"valid": make_inputs(corrupt=0.0), "mixed": make_inputs(corrupt=1 / 3, seed=1)}


def full_check(schema_name: str):  # noqa: ANN201
    schema = load_schema(schema_name)
    rewards = [TagFormatReward(schema), TagOrderReward(schema), TagCoverageReward(schema)]

    def run(completions: list[Any]) -> list[list[float | None]]:
        batch = Batch.from_inputs(completions)
        return [r.score(batch).scores for r in rewards]

    return run


def test_inputs_are_comparable() -> None:
    for p9, ta in INPUTS.values():
        mean_p9 = sum(len(c[0]["content"]) for c in p9) / len(p9)
        mean_ta = sum(len(c[0]["content"]) for c in ta) / len(ta)
        assert 1200 < mean_p9 < 1800 and 1200 < mean_ta < 1800
    p9, ta = INPUTS["valid"]
    assert think_format_reward(ta) == [1.0] * N
    for name, data in (("personalization-9", p9), ("think-answer", ta)):
        fmt, order, cov = full_check(name)(data)
        assert fmt == order == cov == [1.0] * N


@pytest.mark.parametrize("group", ["valid", "mixed"])
def test_trl_think_format(benchmark: Any, group: str) -> None:
    benchmark.group = f"tags-{group}"
    benchmark(think_format_reward, INPUTS[group][1])


@pytest.mark.parametrize("group", ["valid", "mixed"])
def test_ours_p9_full_check(benchmark: Any, group: str) -> None:
    benchmark.group = f"tags-{group}"
    benchmark(full_check("personalization-9"), INPUTS[group][0])


@pytest.mark.parametrize("group", ["valid", "mixed"])
def test_ours_think_answer_full_check(benchmark: Any, group: str) -> None:
    benchmark.group = f"tags-{group}"
    benchmark(full_check("think-answer"), INPUTS[group][1])


def interleaved(rounds: int = 40) -> list[tuple[str, str, float, float]]:
    """Time the contenders in alternation (A, B, C, A, B, C, ...), which keeps a busy machine's
    load drift out of the ratios; returns ``(group, contender, min_ms, median_ms)``."""
    import statistics
    import time

    rows = []
    for group, (p9, ta) in INPUTS.items():
        contenders = {
            "trl-think-format": (think_format_reward, ta),
            "ours-p9-full-check": (full_check("personalization-9"), p9),
            "ours-think-answer-full-check": (full_check("think-answer"), ta),
        }
        times: dict[str, list[float]] = {k: [] for k in contenders}
        for _ in range(rounds):
            for name, (fn, data) in contenders.items():
                t0 = time.perf_counter()
                fn(data)
                times[name].append((time.perf_counter() - t0) * 1e3)
        for name, ts in times.items():
            rows.append((group, name, min(ts), statistics.median(ts)))
    return rows


if __name__ == "__main__":  # python benchmarks/bench_tags.py
    base: dict[str, float] = {}
    print(f"{'group':6} {'contender':30} {'min ms':>8} {'median ms':>10} {'speed-up vs TRL (median)':>26}")
    for group, name, lo, med in interleaved():
        if name.startswith("trl"):
            base[group] = med
        print(f"{group:6} {name:30} {lo:8.2f} {med:10.2f} {base[group] / med:25.2f}x")
