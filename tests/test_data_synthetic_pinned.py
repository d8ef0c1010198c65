"""The synthetic data is pinned byte for byte: its difficulty ladder is fixed by the issues and
the lead's data pipeline and every measured figure depend on it.

A change to the generator (a refactor, a reordered random draw, a new vocabulary word) changes
these hashes. If a change is *meant* to change the data, re-measure the difficulty ladder
(docs/data.md, "Synthetic data") and update the hashes in the same commit, saying why.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from tagpr_eval.data.synthetic import (
    SYNTHETIC_TASKS,
    explain,
    generate_task,
    heuristic_scores,
    write_synthetic,
)

#: (seed, generate_task kwargs) pinned; seed 0 with the defaults is what `tagpr-train` uses.
SETTINGS: dict[int, dict[str, Any]] = {
    0: {},
    7: {"n_users": 12, "questions_per_user": 3, "profile_size": 9, "label_noise": 0.2, "gold_noise": 0.1},
}

#: sha256 over (relative path, bytes) of every file ``write_synthetic`` writes for one task
#: (train, dev and test splits: questions, outputs and users files).
FILE_HASHES: dict[tuple[int, str], str] = {
    (0, 'LaMP-1'): '7fee8a49c04de8bad3b68e1407aba661c069f80e441e6e2795402c32f14c9429',
    (0, 'LaMP-2'): '78dff2988447145107b3ecf0d8a920a557260db72066ab027d05b12a9448841b',
    (0, 'LaMP-3'): '037c0f4bbe1ac7f8d5e11bbe291f102a5378bd548ffa4b1f0d5f00c8b3c78972',
    (0, 'LaMP-4'): 'c01cab28eb3a8fc28d2b0474fe6277be67f3e865f76723568edb8bb83d374955',
    (0, 'LaMP-5'): '249658ac190b7ac5bd29e2ec4247f655a5c19d0655f67967e3a8674c9d902478',
    (0, 'LaMP-6'): '9f92b297c762e872a8a89f14f16d5e1cef25b2be0ff7ff531a1bb06e766f3d76',
    (0, 'LaMP-7'): 'fa5b5a83124671765bc4e5bfd94298329d993d2a01ba1a2b772a65ce6d334bae',
    (7, 'LaMP-1'): 'd7ff07f45c0887e1d5cb7c1b09d484e964d6b5724283803ead8a151104fd795c',
    (7, 'LaMP-2'): '8c44c98735d4aeded7dd75839fa231dc10690395418be99feef4374a225f284a',
    (7, 'LaMP-3'): '371c53dba099465a6fe8f6884d4cfc5c68dbfdca9f8caf23fdce8a43d1985cd0',
    (7, 'LaMP-4'): '614e69297aafa880edf8edde6bf67c1c5377db98df37c9ace478ae9237882bae',
    (7, 'LaMP-5'): '5f2f5313f2e1416abb4cd7b47c20bf37cd1657efdb4ffb75a2a5e3ff15e45f04',
    (7, 'LaMP-6'): '6890d5d6c09cafb6513bcae80a7a1f2a771610028c9c139f8ae45a8fe5556749',
    (7, 'LaMP-7'): '0cb73075b2918bcfd1516cdf14529bb678985ee6867c9d180ca332fea883313e',
}

#: sha256 of the explain() records and heuristic_scores() of the dev split.
EXPLAIN_HASHES: dict[tuple[int, str], str] = {
    (0, 'LaMP-1'): '0d17e7dafb18358bac9a44a3a6a67a7dbacc317665c827187f0e75c0793d6a90',
    (0, 'LaMP-2'): '8282234eeeedf512269ca4f2e1afe010d35540979ad57d7fcca11f881dcbb765',
    (0, 'LaMP-3'): 'f331af212b66d93fd0540d2f3cc4d3b529c8687f9c2c9f032090141a0e52c0c8',
    (0, 'LaMP-4'): 'fab5e863cb82b73b7eba63b5f2c850ec0e51c962c0c697025fe01a50ffde6445',
    (0, 'LaMP-5'): 'da8ba56e90b9fdc578b4f7ba3530db3214e2783966495b9f63fb9f4cd3f3a5d3',
    (0, 'LaMP-6'): 'db5b1da69cbc4921a5c29c51563b8b244130fc183e602129b9352b2bc8d2ca7f',
    (0, 'LaMP-7'): 'b10333af872bdd4aad2d834f8972e9a28282441b5754971265731506b52dada5',
    (7, 'LaMP-1'): '544c3d48e3122672afa16f3dcdc4d7c7a42fc0d04f2546178ba4cd931504eddf',
    (7, 'LaMP-2'): '7ca7d1c3aec5fefa8e58405b7c7d2d47e09e4ab2874f922ae71d604af632d08d',
    (7, 'LaMP-3'): '49463562c4b5a0b8df7e389a4c7125ac83789d839579bb86f818f3fc3980287f',
    (7, 'LaMP-4'): '46551ed397911a69b59634050b2a10d4b87396b5c703fe8bc5103127167b5c11',
    (7, 'LaMP-5'): 'b73355872dd0083a5f72566021fb1e9eb9727d2aa0cccb34b74335cb74ebb75f',
    (7, 'LaMP-6'): 'b0a797288ce7e05baa3d0a7dd03dd9aa71a5d03abe39dd1dd1e26e27ac74cdbf',
    (7, 'LaMP-7'): '4359319fa03a40387a29638d1777730e35cc7b0e3c3de4e846747d3f6e32f204',
}


def _files_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.json")):
        h.update(str(p.relative_to(root)).encode("utf-8"))
        h.update(b"\0")
        h.update(p.read_bytes())
    return h.hexdigest()


def _explain_hash(seed: int, task: str) -> str:
    st = generate_task(task, seed=seed, split="dev", **SETTINGS[seed])
    recs = [asdict(explain(st.users[s.user_id or ""], s)) for s in st.data.samples]
    blob: dict[str, Any] = {"explain": recs}
    if task in ("LaMP-1", "LaMP-2"):
        blob["heuristics"] = heuristic_scores(st)
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode("utf-8")).hexdigest()


@pytest.mark.parametrize("seed", sorted(SETTINGS))
@pytest.mark.parametrize("task", SYNTHETIC_TASKS)
def test_written_files_are_byte_identical(task: str, seed: int, tmp_path: Path) -> None:
    write_synthetic(tmp_path, [task], seed=seed, splits=("train", "dev", "test"), **SETTINGS[seed])
    assert _files_hash(tmp_path) == FILE_HASHES[(seed, task)]


@pytest.mark.parametrize("seed", sorted(SETTINGS))
@pytest.mark.parametrize("task", SYNTHETIC_TASKS)
def test_explanations_and_heuristics_are_unchanged(task: str, seed: int) -> None:
    assert _explain_hash(seed, task) == EXPLAIN_HASHES[(seed, task)]
