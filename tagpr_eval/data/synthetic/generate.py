"""The synthetic generator: users, profiles, questions and golds for any task, through the
task's family (:mod:`tagpr_eval.data.synthetic.families`), and writing them in the LaMP layout."""

from __future__ import annotations

import os
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tagpr_eval.data.lamp_files import LampSample, LampTaskData, write_json_atomic, write_task
from tagpr_eval.data.synthetic.core import Family, SyntheticTask, SyntheticUser, _date
from tagpr_eval.data.synthetic.families import family_of
from tagpr_eval.data.synthetic.oracle import oracle_answer
from tagpr_rewards.metrics.lamp import get_task

__all__ = ["generate_task", "write_synthetic"]

#: shared catalog entries per topic (movies, reviews, ...; ×8 content pieces for LaMP-4..7)
_PER_TOPIC = 25


def _split_code(split: str) -> str:
    return {"train": "1", "dev": "0", "test": "2"}.get(split, "3")


def generate_task(
    task: str,
    n_users: int = 100,
    questions_per_user: int = 4,
    profile_size: int = 20,
    seed: int = 0,
    split: str = "dev",
    label_noise: float = 0.1,
    gold_noise: float = 0.05,
) -> SyntheticTask:
    """Generate one synthetic LaMP task (deterministic by ``seed``, ``task`` and ``split``).

    Args:
        task: LaMP-1..LaMP-7 (any spelling ``get_task`` accepts).
        n_users: users (disjoint across splits: user ids start with the split's letter).
        questions_per_user: questions per user; the user's questions share one profile.
        profile_size: profile items per user (not every topic is covered).
        seed: random seed.
        split: ``train``, ``dev`` or ``test`` (all get golds: the data is ours).
        label_noise: probability that a profile item's label (LaMP-2 tag, LaMP-1 topic,
            LaMP-3 rating, LaMP-4..7 style element) deviates from the user's rule.
        gold_noise: the same for the gold outputs (the oracle stays noise-free).

    Question ids are strings with a leading split digit (``"0…"`` for dev, so leading zeros
    are exercised). Every question carries ``user_id``.

    >>> a = generate_task("LaMP-2", n_users=5, seed=3)
    >>> b = generate_task("LaMP-2", n_users=5, seed=3)
    >>> [s.input for s in a.data] == [s.input for s in b.data], a.data.samples[0].id
    (True, '0000000')
    """
    name = get_task(task).name
    family = family_of(name)
    if n_users < 1 or questions_per_user < 1 or profile_size < 1:
        raise ValueError("n_users, questions_per_user and profile_size must be >= 1")
    rng = random.Random(f"tagpr-synthetic:{seed}:{name}:{split}")
    catalog = family.catalog(name, rng, _PER_TOPIC)
    users: dict[str, SyntheticUser] = {}
    samples: list[LampSample] = []
    code = _split_code(split)
    for u in range(n_users):
        uid = f"u{split[:1]}{u:04d}"
        user = family.make_user(name, rng, uid)
        users[uid] = user
        profile = _make_profile(family, name, rng, user, catalog, profile_size, label_noise, f"{code}{u:04d}")
        for q in range(questions_per_user):
            qid = f"{code}{u:04d}{q:02d}"
            inp = family.make_input(name, rng, user, catalog)
            s = LampSample(id=qid, input=inp, profile=[dict(it) for it in profile], user_id=uid)
            s.output = _noisy_gold(family, name, rng, user, s, gold_noise)
            samples.append(s)
    data = LampTaskData(task=name, split=split, samples=samples,
                        meta={"synthetic": True, "seed": seed})
    settings = dict(task=name, n_users=n_users, questions_per_user=questions_per_user, profile_size=profile_size,
                    seed=seed, split=split, label_noise=label_noise, gold_noise=gold_noise)
    return SyntheticTask(data=data, users=users, settings=settings)


def _make_profile(family: Family, task: str, rng: random.Random, user: SyntheticUser, cat: Any, n: int,
                  noise: float, prefix: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for j in range(n):
        item: dict[str, Any] = {"id": f"{prefix}{j:03d}"}
        family.fill_item(task, rng, user, cat, item, noise)
        item["date"] = _date(rng, task, j)
        items.append(item)
    return items


def _noisy_gold(family: Family, task: str, rng: random.Random, user: SyntheticUser, s: LampSample, p: float) -> str:
    ans = oracle_answer(user, s)
    if rng.random() >= p:
        return ans
    return family.noisy_answer(task, rng, user, s, ans)


def write_synthetic(
    out_dir: str | os.PathLike[str],
    tasks: Iterable[str] = ("LaMP-2",),
    seed: int = 0,
    splits: Iterable[str] = ("train", "dev"),
    **kwargs: Any,
) -> dict[str, dict[str, Path]]:
    """Generate and write synthetic tasks in the official layout ``out_dir/LaMP-k/{split}_*.json``.

    ``kwargs`` go to :func:`generate_task`. Also writes ``out_dir/LaMP-k/{split}_users.json``
    with the latent preferences (not part of LaMP; for teachers and analysis).

    >>> import tempfile
    >>> paths = write_synthetic(tempfile.mkdtemp(), ["LaMP-2"], splits=["dev"], n_users=3)
    >>> sorted(paths["LaMP-2/dev"])
    ['outputs', 'questions', 'users']
    """
    from dataclasses import asdict

    written: dict[str, dict[str, Path]] = {}
    for t in tasks:
        for split in splits:
            st = generate_task(t, seed=seed, split=split, **kwargs)
            paths = write_task(st.data, out_dir)
            paths["users"] = write_json_atomic(
                Path(out_dir) / st.data.task / f"{split}_users.json",
                {"settings": st.settings, "users": [asdict(u) for u in st.users.values()]},
            )
            written[f"{st.data.task}/{split}"] = paths
    return written
