"""One command for every benchmark figure: ``python -m benchmarks [SUITE ...]``.

Each row times a peer and ours **interleaved in one process** (peer, ours, peer, ours, ...),
pinned to one core (``os.sched_setaffinity``; torch limited to one thread), in blocks of
rounds until both contenders' min and median move less than 2% from one block to the next
(or a round cap is hit). It checks that both compute the same values before timing, records
the machine, the load average, how much of the pinned core other processes took during the
row, and the package versions, stores everything in ``docs/benchmarks/results.json`` (rows of
suites not run this time are kept) and rewrites the summary table of ``docs/benchmarks.md``
between its marker comments.

Suites: ``tags``, ``rouge``, ``retrieval``, ``eval``, ``hf``, ``prmu``, ``recipe`` (default: all).

    python -m benchmarks                    # everything (tens of minutes on 2 cores)
    python -m benchmarks tags rouge         # a subset; the other rows keep their last figures
    python -m benchmarks tags --max-rounds 6 --no-write    # a quick look, nothing written

A row is *quiet* when other processes used less than ``--quiet-share`` (default 10%) of the
pinned core while it ran. The pytest-benchmark suites (``bench_*.py``) stay; this runner reuses
their workload builders.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "benchmarks" / "results.json"
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench:begin (written by python -m benchmarks) -->", "<!-- bench:end -->"
PACKAGES = ("trl", "rouge-score", "rouge-score-rs", "rank-bm25", "bm25s", "torch", "transformers",
            "sentence-transformers", "numpy")


@dataclass
class Row:
    """One comparison: ``ratio = peer time / ours time`` (``>1``: ours faster).

    ``cost`` rows report ``ours / peer`` instead (ours does more than the peer, e.g. PRMU over a
    bare encoder pass), and a ``target`` is then an upper bound.
    """

    key: str
    what: str
    peer_name: str
    peer: Callable[[], Any]
    ours: Callable[[], Any]
    target: float | None = None
    cost: bool = False
    check: Callable[[Any, Any], str] | None = None  # -> a short "values" note; raises on mismatch
    max_rounds: int | None = None
    page: str = ""


@dataclass
class Result:
    key: str
    what: str
    peer_name: str
    peer_min_ms: float
    peer_median_ms: float
    ours_min_ms: float
    ours_median_ms: float
    ratio_min: float
    ratio_median: float
    cpu_ratio_median: float
    rounds: int
    stable: bool
    target: float | None
    cost: bool
    met: bool | None
    values: str
    other_share: float
    load_before: list[float]
    load_after: list[float]
    quiet: bool
    when: str
    page: str
    suite: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------- machine


def _cpu_times(core: int) -> int:
    """Busy jiffies of ``core`` (user + nice + system + irq + softirq + steal)."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{core} "):
                v = [int(x) for x in line.split()[1:]]
                return v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
    return 0


def _loadavg() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:  # pragma: no cover - not Linux
        return [float("nan")] * 3


def machine() -> dict[str, Any]:
    """The machine and packages of a benchmark run (CPU read by :func:`tagpr_eval.results.machine_info`,
    the one reader of ``/proc/cpuinfo``)."""
    from tagpr_eval.results import machine_info, package_versions

    m = machine_info()
    versions = {p: v for p, v in package_versions(tuple(PACKAGES)).items() if p in PACKAGES}
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=False).stdout.strip()
    except OSError:  # pragma: no cover
        commit = ""
    return {"cpu": m["cpu"], "isa": m["isa"], "cores": m["logical_cpus"], "python": platform.python_version(),
            "platform": m["platform"], "packages": versions, "commit": commit}


# ---------------------------------------------------------------------------------- timing


def _time(fn: Callable[[], Any]) -> tuple[float, float]:
    t0, c0 = time.perf_counter(), time.thread_time()
    fn()
    return (time.perf_counter() - t0) * 1e3, (time.thread_time() - c0) * 1e3


def run_row(row: Row, core: int, min_rounds: int, max_rounds: int, block: int, quiet_share: float,
            suite: str) -> Result:
    """Time ``row`` interleaved until stable; see the module docstring."""
    a, b = row.peer(), row.ours()  # warm-up, and the values check
    values = row.check(a, b) if row.check else ""
    cap = min(max_rounds, row.max_rounds or max_rounds)
    walls: dict[str, list[float]] = {"peer": [], "ours": []}
    cpus: dict[str, list[float]] = {"peer": [], "ours": []}
    load_before = _loadavg()
    busy0, own0, wall0 = _cpu_times(core), time.process_time(), time.monotonic()
    prev: tuple[float, ...] | None = None
    stable = False
    rounds = 0
    while rounds < cap:
        for _ in range(min(block, cap - rounds)):
            for name, fn in (("peer", row.peer), ("ours", row.ours)):
                w, c = _time(fn)
                walls[name].append(w)
                cpus[name].append(c)
            rounds += 1
        if rounds < min(min_rounds, cap):
            continue
        now = tuple(f(walls[k]) for k in ("peer", "ours") for f in (min, statistics.median))
        if prev is not None and all(abs(x - y) <= 0.02 * y for x, y in zip(now, prev)):
            stable = True
            break
        prev = now
    elapsed = max(1e-9, time.monotonic() - wall0)
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    busy = (_cpu_times(core) - busy0) / tick
    own = time.process_time() - own0
    other_share = max(0.0, min(1.0, (busy - own) / elapsed))
    pm, pmed = min(walls["peer"]), statistics.median(walls["peer"])
    om, omed = min(walls["ours"]), statistics.median(walls["ours"])
    if row.cost:
        r_min, r_med = om / pm, omed / pmed
        cpu_r = statistics.median(cpus["ours"]) / statistics.median(cpus["peer"])
    else:
        r_min, r_med = pm / om, pmed / omed
        cpu_r = statistics.median(cpus["peer"]) / statistics.median(cpus["ours"])
    met = None
    if row.target is not None:
        met = (max(r_min, r_med) <= row.target) if row.cost else (min(r_min, r_med) >= row.target)
    return Result(row.key, row.what, row.peer_name, pm, pmed, om, omed, r_min, r_med, cpu_r, rounds, stable,
                  row.target, row.cost, met, values, other_share, load_before, _loadavg(),
                  other_share < quiet_share, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), row.page, suite)


def _same(a: Any, b: Any) -> str:
    if a != b:
        raise AssertionError("peer and ours disagree")
    return "identical"


# ---------------------------------------------------------------------------------- suites


def suite_tags() -> list[Row]:
    from benchmarks import bench_tags as bt
    from tagpr_rewards.tags.parser import TAG_TOKEN_RE

    rows = []
    for group, target in (("valid", 3.0), ("mixed", 1.5)):
        p9, ta = bt.INPUTS[group]
        label = "valid chains" if group == "valid" else "mixed batch (a third corrupted)"
        rows.append(Row(f"tags-p9-{group}", f"9-tag full check (format + order + coverage), 1,000 × 1.5 KB {label}",
                        "TRL `think_format_reward`", lambda ta=ta: bt.think_format_reward(ta),
                        lambda f=bt.full_check("personalization-9"), p9=p9: f(p9), target, page="benchmarks/tags.md"))
        rows.append(Row(f"tags-ta-{group}", f"`think-answer` full check on TRL's identical inputs, {label}",
                        "TRL `think_format_reward`", lambda ta=ta: bt.think_format_reward(ta),
                        lambda f=bt.full_check("think-answer"), ta=ta: f(ta), None, page="benchmarks/tags.md"))
    old = bt.TARGET_CHARS
    bt.TARGET_CHARS = 1000
    try:
        p9_1k, _ = bt.make_inputs(seed=2)
    finally:
        bt.TARGET_CHARS = old
    texts = [c[0]["content"] for c in p9_1k]

    def bare() -> int:
        fi = TAG_TOKEN_RE.finditer
        return sum(len(list(fi(t))) for t in texts)

    rows.append(Row("tags-vs-scan-1k", "9-tag full check vs a bare `re.finditer` tag scan, 1,000 × 1 KB valid chains",
                    "`TAG_TOKEN_RE.finditer` over each chain", bare,
                    lambda f=bt.full_check("personalization-9"): f(p9_1k), 0.5, page="benchmarks/tags.md"))
    return rows


def suite_rouge() -> list[Row]:
    from benchmarks import bench_rouge as br
    from tagpr_rewards.metrics import rouge_per_sample

    def python_kernel() -> list[tuple[float, float]]:
        r1, rl = rouge_per_sample(br.PREDS, br.REFS, backend="python")
        return list(zip(r1, rl))

    return [
        Row("rouge-default", "ROUGE-1 + ROUGE-L, 2,000 LaMP-length pairs, default backend", "`rouge_score`",
            br._rouge_score, br._ours_batch, 20.0, check=_same, page="benchmarks/metrics.md"),
        Row("rouge-python", "same, pure-Python kernel (`backend=\"python\"`)", "`rouge_score`", br._rouge_score,
            python_kernel, None, check=_same, page="benchmarks/metrics.md"),
    ]


def suite_retrieval() -> list[Row]:
    from benchmarks import bench_retrieval as bre

    rows = []
    for corpus, label in (("lamp2-synthetic", "LaMP-2 synthetic"), ("lamp4-length", "LaMP-4-length items")):
        cases = bre._cases(corpus)
        rows.append(Row(f"bm25-{corpus}", f"BM25 index + top-4, 1,000 profiles × 200 items ({label})", "`rank_bm25`",
                        lambda c=cases: bre.run_rank_bm25(c), lambda c=cases, f=bre.run_ours("okapi"): f(c),
                        None, check=_same, max_rounds=3, page="benchmarks/retrieval.md"))
    return rows


def suite_eval() -> list[Row]:
    import random

    from benchmarks import bench_eval as be
    from tagpr_eval.scoring import score_files

    rng = random.Random(be.SEED)
    d = Path(tempfile.mkdtemp(prefix="bench_eval_"))
    golds = [{"id": f"{i:06d}", "output": be._headline(rng)} for i in range(be.N)]
    preds = []
    for g in golds:
        words = g["output"].split()
        keep = [w for w in words if rng.random() < 0.5] + [rng.choice(be._VOCAB) for _ in range(rng.randint(0, 5))]
        rng.shuffle(keep)
        preds.append({"id": g["id"], "output": " ".join(keep)})
    gp, pp = d / "golds.json", d / "preds.json"
    gp.write_text(json.dumps({"task": "LaMP_4", "golds": golds}))
    pp.write_text(json.dumps({"task": "LaMP_4", "golds": preds}))

    def check(a: dict[str, float], b: dict[str, float]) -> str:
        diff = max(abs(a[k] - b[k]) for k in a)
        if diff > 1e-9:
            raise AssertionError(f"means differ by {diff}")
        return f"max diff {diff:.1e}"

    return [Row("eval-score-mean", f"`tagpr-eval score`, {be.N:,} LaMP-4 predictions, exact mean",
                "official arithmetic (`rouge_score`)", lambda: be._official_rouge(gp, pp, use_aggregator=False),
                lambda: {k: v for k, v in score_files(gp, pp).result.items() if k in ("rouge-1", "rouge-L")},
                10.0, check=check, max_rounds=3, page="benchmarks/eval.md")]


def suite_hf() -> list[Row]:
    import torch

    from benchmarks import bench_eval as be
    from tagpr_eval.backends import GenerationConfig, get_backend
    from tagpr_eval.data import load_task
    from tagpr_eval.prompts import build_prompt
    from tagpr_eval.tiny_model import build_tiny_model

    torch.set_num_threads(1)
    path = build_tiny_model(tempfile.mkdtemp(prefix="bench_tiny_"))
    backend = get_backend("hf", pretrained=str(path), dtype="float32", device="cpu")
    data = load_task("synthetic", "LaMP-2")
    prompts = [build_prompt("LaMP-2", s, list(s.profile[:2]), style="tagged", schema="personalization-9")
               for s in data.samples[:24]]
    gen = GenerationConfig(max_new_tokens=be.MAX_NEW)
    return [Row("hf-cpu", f"`hf` backend (sorted sub-batches) vs one prompt at a time, tiny model, CPU, "
                f"24 prompts × {be.MAX_NEW} tokens", "a `model.generate` loop",
                lambda: be._one_at_a_time(backend, prompts), lambda: backend.generate(prompts, gen), 1.0,
                check=_same, max_rounds=2, page="benchmarks/eval.md")]


def suite_prmu() -> list[Row]:
    from benchmarks import bench_prmu as bp

    s = bp.make_setup()  # model loaded, user cache warm
    enc = s["encoder"]
    model = s["reward"].model

    def uncached() -> Any:
        model.clear_cache()
        return bp._call(s)

    label = f"PRMUReward per GRPO batch ({bp.P} prompts × G = {bp.G}, {bp.ITEMS} profile items)"
    return [Row("prmu-cached", f"{label}, cached users", "bare encoder pass", lambda: enc.encode(s["comps"]),
                lambda: bp._call(s), 1.3, cost=True, max_rounds=10, page="benchmarks/prmu.md"),
            Row("prmu-uncached", f"{label}, new users", "bare encoder pass", lambda: enc.encode(s["comps"]),
                uncached, None, cost=True, max_rounds=10, page="benchmarks/prmu.md")]


def suite_recipe() -> list[Row]:
    import torch

    from benchmarks import bench_recipe as bt

    torch.set_num_threads(1)
    sft, grpo = bt.make_sft_setup(), bt.make_grpo_setup()

    def close(a: float, b: float) -> str:
        rel = abs(a - b) / max(abs(a), 1e-12)
        if rel > 1e-5:
            raise AssertionError(f"peer {a} and ours {b} differ by {rel:.1e}")
        return f"rel diff {rel:.1e}"

    return [Row("sft-loss", f"SFT loss, forward + backward, tiny-cpu's model, {bt.SFT_BATCH} × ~440 tokens "
                "(~105 labelled)", "TRL `SFTTrainer` (fused LM head)",
                lambda: bt.sft_step(sft["peer"], sft["batch"]), lambda: bt.sft_step(sft["ours"], sft["batch"]),
                1.0, check=close, max_rounds=30, page="recipe.md"),
            Row("grpo-logps", f"GRPO log-probs + entropy, forward + backward, {bt.GRPO_BATCH} × ~460 tokens "
                "(~105 completion)", "TRL `add_fused_lm_head`",
                lambda: bt.grpo_step(grpo["peer"], grpo["batch"]), lambda: bt.grpo_step(grpo["ours"], grpo["batch"]),
                1.0, check=close, max_rounds=10, page="recipe.md")]


SUITES: dict[str, Callable[[], list[Row]]] = {
    "tags": suite_tags, "rouge": suite_rouge, "retrieval": suite_retrieval, "eval": suite_eval, "hf": suite_hf,
    "prmu": suite_prmu, "recipe": suite_recipe,
}


# ---------------------------------------------------------------------------------- output


def _fmt_ms(ms: float) -> str:
    return f"{ms / 1e3:.2f} s" if ms >= 1000 else f"{ms:.1f} ms" if ms >= 10 else f"{ms:.2f} ms"


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| what | peer | min / median | ours min / median | ratio min / median (CPU time) | target | "
             "met | machine while it ran | values | when |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        kind = "cost" if r["cost"] else "×"
        tgt = "—" if r["target"] is None else (f"≤ {r['target']}×" if r["cost"] else f"≥ {r['target']}×")
        met = "—" if r["met"] is None else ("yes" if r["met"] else "**no**")
        quiet = "quiet" if r["quiet"] else "**loaded**"
        load = "/".join(f"{x:.1f}" for x in r["load_before"])
        what = f"[{r['what']}]({r['page']})" if r["page"] else r["what"]
        stable = "" if r["stable"] else ", not stable"
        lines.append(
            f"| {what} | {r['peer_name']} | {_fmt_ms(r['peer_min_ms'])} / {_fmt_ms(r['peer_median_ms'])} | "
            f"{_fmt_ms(r['ours_min_ms'])} / {_fmt_ms(r['ours_median_ms'])} | "
            f"{kind} **{r['ratio_min']:.2f}** / {r['ratio_median']:.2f} ({r['cpu_ratio_median']:.2f}) | {tgt} | {met} | "
            f"{quiet}: others took {100 * r['other_share']:.0f}% of the core, load {load}; "
            f"{r['rounds']} rounds{stable} | {r['values'] or '—'} | {r['when']} |")
    return "\n".join(lines)


def write_doc(store: dict[str, Any], doc: Path = DOC) -> None:
    results = [r for s in store["suites"].values() for r in s["rows"]]
    # one line per distinct machine/commit/versions, naming the suites that ran there (suites rerun
    # at another commit get their own line)
    machines: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for name, suite in store["suites"].items():
        key = json.dumps(suite["machine"], sort_keys=True)
        machines.setdefault(key, (suite["machine"], []))[1].append(name)
    head = []
    for m, names in machines.values():
        pk = ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v)
        where = f" (suites {', '.join(names)})" if len(machines) > 1 else ""
        isa = f" ({', '.join(m['isa'])})" if m.get("isa") else ""  # records before the ISA was read have none
        head.append(f"Machine{where}: {m['cpu']}{isa}, {m['cores']} cores, Python {m['python']}, commit {m['commit']}; "
                    f"{pk}.")
    block = "\n".join([BEGIN, "", *head, "",
                       "Ratios are peer time / our time (> 1: ours faster); *cost* rows are our time / peer "
                       "time. The third figure is the ratio of median CPU time of the timing thread, which "
                       "load on the machine disturbs less than wall time.", "", table(results), "", END])
    text = doc.read_text(encoding="utf-8")
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    from tagpr_rewards.files import atomic_write_text

    atomic_write_text(doc, text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    ap.add_argument("suites", nargs="*", help=f"suites to run (default: all): {', '.join(SUITES)}")
    ap.add_argument("--core", type=int, default=0, help="the core to pin to (default 0)")
    ap.add_argument("--min-rounds", type=int, default=10, help="rounds before the stability check (default 10)")
    ap.add_argument("--max-rounds", type=int, default=60, help="round cap per row (default 60)")
    ap.add_argument("--block", type=int, default=5, help="rounds per stability block (default 5)")
    ap.add_argument("--quiet-share", type=float, default=0.10,
                    help="a row is quiet when others used less than this share of the core (default 0.10)")
    ap.add_argument("--results", type=Path, default=RESULTS, help=f"results file (default {RESULTS.relative_to(ROOT)})")
    ap.add_argument("--doc", type=Path, default=DOC, help="the page whose summary table is rewritten")
    ap.add_argument("--no-write", action="store_true", help="print only; write neither results nor docs")
    args = ap.parse_args(argv)
    names = args.suites or list(SUITES)
    bad = [n for n in names if n not in SUITES]
    if bad:
        ap.error(f"unknown suite(s) {', '.join(bad)}; choose from {', '.join(SUITES)}")
    # pinned while it measures; the caller's cores come back after (called in-process, as the
    # tests do, a leaked pin left every later test on one core)
    before = os.sched_getaffinity(0) if hasattr(os, "sched_setaffinity") else None
    if before is not None:
        os.sched_setaffinity(0, {args.core})
    try:
        return _run(args, names)
    finally:
        if before is not None:
            os.sched_setaffinity(0, before)


def _run(args: argparse.Namespace, names: list[str]) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    store: dict[str, Any] = {"suites": {}}
    if args.results.exists():
        store = json.loads(args.results.read_text(encoding="utf-8"))
    mach = machine()
    for name in names:
        print(f"== {name}", flush=True)
        rows = SUITES[name]()
        out = []
        for row in rows:
            res = run_row(row, args.core, args.min_rounds, args.max_rounds, args.block, args.quiet_share, name)
            out.append(asdict(res))
            print(f"  {row.key:22} peer {_fmt_ms(res.peer_median_ms):>9}  ours {_fmt_ms(res.ours_median_ms):>9}  "
                  f"ratio {res.ratio_min:.2f}/{res.ratio_median:.2f} (cpu {res.cpu_ratio_median:.2f})  "
                  f"{'met' if res.met else 'MISSED' if res.met is False else ''}  others {100 * res.other_share:.0f}%"
                  f"  load {res.load_before[0]:.1f}  {res.rounds} rounds", flush=True)
        store["suites"][name] = {"machine": mach, "rows": out}
        if not args.no_write:  # after every suite: an interrupted run keeps what it measured
            from tagpr_rewards.files import atomic_write_json

            atomic_write_json(args.results, store)
            write_doc(store, args.doc)
            print(f"wrote {args.results} and {args.doc}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
