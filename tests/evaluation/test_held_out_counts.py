"""The git copy of each CV row's held-out per-patch counts (mmls/evaluation/held_out_counts.py):
what the paired CIs of the CV table read when the predictions are not in the DVC cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmls.core import paths
from mmls.core.errors import InputError
from mmls.evaluation.held_out_counts import (
    copy_held_out_counts,
    cv_counts_file,
    cv_ensemble_counts_file,
)
from mmls.metrics.patch_files import patch_table, read_patch_table, write_patch_table

HELD_OUT = f"{paths.HELD_OUT}{paths.PATCHES_SUFFIX}"
RUNS = [(0, 42), (0, 43), (1, 42), (1, 43)]


def _write_table(folder: Path, offset: int) -> Path:
    patches = pd.DataFrame(
        {
            "region": "r",
            "col": [0, 1, 2],
            "row": [offset] * 3,
            "block_col": [0, 0, 1],
            "block_row": [0, 0, 0],
        }
    )
    counts = np.arange(12).reshape(3, 4) + offset
    path = folder / HELD_OUT
    path.parent.mkdir(parents=True, exist_ok=True)
    write_patch_table(path, patch_table(patches, counts))
    return path


@pytest.fixture()
def scored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[tuple[int, int], Path]:
    """A variant ``v`` scored on two folds x two seeds (predictions only: the cache's side)."""
    monkeypatch.chdir(tmp_path)
    return {(f, s): _write_table(paths.cv_predictions_dir("v", f, s), 10 * f + s) for f, s in RUNS}


def test_counts_copy_the_predictions_byte_for_byte_beside_the_metrics(scored) -> None:
    written = copy_held_out_counts("v")
    assert written == sorted(cv_counts_file("v", f, s) for f, s in RUNS)
    assert cv_counts_file("v", 1, 43) == Path("metrics/cv_counts/v/fold1/seed43.patches.csv")
    for (f, s), source in scored.items():
        assert cv_counts_file("v", f, s).read_bytes() == source.read_bytes()
    ensemble = _write_table(paths.cv_ensemble_predictions_dir("e", 0), 7)
    assert copy_held_out_counts("e") == [cv_ensemble_counts_file("e", 0)]
    assert read_patch_table(cv_ensemble_counts_file("e", 0)).equals(read_patch_table(ensemble))


def test_a_rerun_replaces_the_row_as_a_whole(scored) -> None:
    copy_held_out_counts("v")
    scored[(1, 43)].unlink()  # the row lost a seed: its counts must not linger in git
    copy_held_out_counts("v")
    assert not cv_counts_file("v", 1, 43).exists() and cv_counts_file("v", 1, 42).is_file()


def test_a_corrupt_table_is_refused_and_the_committed_counts_stay(scored) -> None:
    copy_held_out_counts("v")
    before = {p: p.read_bytes() for p in Path("metrics/cv_counts").rglob("*.csv")}
    _write_table(scored[(0, 42)].parent, 99)  # a valid change, copied before the corrupt table
    table = pd.read_csv(scored[(0, 43)])
    table.loc[0, "fp"] = -1
    table.to_csv(scored[(0, 43)], index=False)
    with pytest.raises(InputError, match=r"fold0/seed43/heldout.patches.csv.*negative"):
        copy_held_out_counts("v")
    assert {p: p.read_bytes() for p in Path("metrics/cv_counts").rglob("*.csv")} == before


def test_only_the_folds_scored_runs_are_copied(scored) -> None:
    killed = paths.cv_predictions_dir("v", 0, 42).with_name(".seed42.123.tmp")  # atomic_dir's
    _write_table(killed, 5)
    _write_table(paths.cv_predictions_dir("v", 0, 42).with_name("notes"), 6)
    assert copy_held_out_counts("v") == sorted(cv_counts_file("v", f, s) for f, s in RUNS)
    assert sorted(p.name for p in Path("metrics/cv_counts/v/fold0").iterdir()) == [
        "seed42.patches.csv",
        "seed43.patches.csv",
    ]


def test_a_row_never_scored_names_its_predictions_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=r"predictions/cv/nothing.*score the row first"):
        copy_held_out_counts("nothing")
    assert not Path("metrics/cv_counts/nothing").exists()
