"""What an RL stage learnt: greedy accuracy on the RL prompts it trained on, and on those it did not.

Accuracy on unseen users says *how much* RL helped; this says *what kind of* learning it was. A
run's RL prompts (``data/rl.jsonl``) are split by what RL did with them: the prompts the prompt
filter kept (``rl1/prompts.jsonl``: both stages drew their batches from these) and those it left
out, the latter by the SFT model's own greedy verdict (right: RL could only lose them; wrong: RL
never saw them, so any it now gets right it learnt from other prompts). Each model answers every
prompt greedily, as the eval stage answers, and stage 1's reward gives the verdict (its
``rl.prompt_filter.component``, the one the filter judged with). A stage that raises the prompts
it trained on far more than the dev users' accuracy fitted those prompts rather than learning a
skill that carries to new ones (docs/recipe.md, "What RL learns").

``python -m tagpr_trainers.recipe.rl_fit RUN_DIR`` writes ``RUN_DIR/eval/rl_prompt_fit.{json,md}``
(ours; a diagnosis, not part of ``tagpr-train all``).

>>> t = fit_table(["a", "b", "c", "d"], {"a", "b"},
...               {"sft": [1.0, 0.0, 1.0, 0.0], "rl2": [1.0, 1.0, 1.0, 0.0]})
>>> [(g["group"], g["n"], g["accuracy"]["rl2"] - g["accuracy"]["sft"]) for g in t["groups"]]
[('trained on', 2, 0.5), ('left out, SFT right', 1, 0.0), ('left out, SFT wrong', 1, 0.0), ('every RL prompt', 4, 0.25)]
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["fit_table", "main", "prompt_fit"]

logger = logging.getLogger("tagpr_trainers.recipe")

#: the models a fit table compares, in stage order
MODELS = ("sft", "rl1", "rl2")


def fit_table(ids: Sequence[str], trained: set[str], verdicts: Mapping[str, Sequence[float]]) -> dict[str, Any]:
    """Each model's accuracy (mean verdict) on the prompts ``trained`` names and on the others;
    the others split by the ``sft`` model's verdict when it is among ``verdicts``."""
    def group(name: str, keep: list[bool]) -> dict[str, Any]:
        n = sum(keep)
        acc = {m: round(sum(v for v, k in zip(vs, keep) if k) / n, 4) if n else None for m, vs in verdicts.items()}
        return {"group": name, "n": n, "accuracy": acc}

    inside = [i in trained for i in ids]
    groups = [group("trained on", inside)]
    if "sft" in verdicts:
        sft = verdicts["sft"]
        groups += [group("left out, SFT right", [not k and s >= 1.0 for k, s in zip(inside, sft)]),
                   group("left out, SFT wrong", [not k and s < 1.0 for k, s in zip(inside, sft)])]
    else:
        groups.append(group("left out", [not k for k in inside]))
    groups.append(group("every RL prompt", [True] * len(ids)))
    return {"prompts": len(ids), "trained": sum(inside), "models": list(verdicts), "groups": groups}


def prompt_fit(run_dir: str | Path, models: Sequence[str] = MODELS) -> dict[str, Any]:
    """The fit table of a finished run directory's models (greedy verdicts on every RL prompt)."""
    from tagpr_rewards.files import read_jsonl
    from tagpr_trainers.recipe.config import load_recipe_config
    from tagpr_trainers.recipe.context import RunContext
    from tagpr_trainers.recipe.stages.common import load_policy
    from tagpr_trainers.recipe.stages.rl import _rows, build_reward
    from tagpr_trainers.recipe.stages.rl_filter import sample_verdicts

    run = Path(run_dir)
    cfg_path = run / "config.yaml"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{cfg_path}: not a tagpr-train run directory (no config.yaml); give the --output "
                                "of a finished `tagpr-train all` run")
    ctx = RunContext(load_recipe_config(cfg_path, [f"run.output_dir={run}"]), progress=False)
    rows = _rows(ctx)
    kept_path = ctx.path("rl1_prompts")
    if kept_path.is_file():
        trained = {str(r["id"]) for r in read_jsonl(kept_path)}
    else:  # no prompt filter: RL drew from every prompt
        trained = {str(r["id"]) for r in rows}
    missing = [m for m in models if not ctx.path(f"{m}_model").is_dir()]
    if missing:  # before minutes of generation
        raise FileNotFoundError(f"{ctx.path(missing[0] + '_model')}: no {', '.join(missing)} model in {run}; finish "
                                f"the run (`tagpr-train all --output {run}`) or leave {', '.join(missing)} out of "
                                "--models")
    reward = build_reward(ctx, "rl1")
    verdicts: dict[str, list[float]] = {}
    for m in models:
        model, tok = load_policy(str(ctx.path(f"{m}_model")), ctx, training=False)
        model.to(ctx.device).eval()
        logger.info("rl_fit: %s answers %d RL prompts greedily", m, len(rows))
        groups = sample_verdicts(model, tok, rows, reward, samples=1, temperature=0.0,
                                 max_new_tokens=ctx.cfg.rl.stage1.max_completion_length,
                                 component=ctx.cfg.rl.prompt_filter.component,
                                 batch_size=ctx.cfg.rl.prompt_filter.batch_size)
        verdicts[m] = [0.0 if g[0] is None else float(g[0]) for g in groups]
    table = fit_table([str(r["id"]) for r in rows], trained, verdicts)
    table["component"] = ctx.cfg.rl.prompt_filter.component
    return table


def markdown(table: Mapping[str, Any]) -> str:
    """The fit table as markdown (a column per model, then the last model − the first)."""
    models = list(table["models"])
    head = ["RL prompts", "n", *models] + ([f"{models[-1]} − {models[0]}"] if len(models) > 1 else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for g in table["groups"]:
        acc = g["accuracy"]
        cells = ["–" if acc[m] is None else f"{acc[m]:.3f}" for m in models]
        if len(models) > 1:
            a, b = acc[models[0]], acc[models[-1]]
            cells.append("–" if a is None or b is None else f"{b - a:+.3f}")
        lines.append(f"| {g['group']} | {g['n']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + (f"\n\ngreedy answers, verdict: stage 1's `{table.get('component', 'base/task')}`; "
                               f"trained on = the prompts the RL stages drew from ({table['trained']} of "
                               f"{table['prompts']})\n")


def main(argv: Sequence[str] | None = None) -> int:
    from tagpr_trainers.recipe.checkpoints import atomic_write_json, atomic_write_text

    p = argparse.ArgumentParser(prog="python -m tagpr_trainers.recipe.rl_fit",
                                description="greedy accuracy of a run's models on the RL prompts they trained on "
                                            "and on those they did not (writes RUN_DIR/eval/rl_prompt_fit.{json,md})")
    p.add_argument("run_dir", help="a finished tagpr-train run directory")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    table = prompt_fit(args.run_dir, args.models)
    out = Path(args.run_dir) / "eval"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "rl_prompt_fit.json", table)
    text = markdown(table)
    atomic_write_text(out / "rl_prompt_fit.md", text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
