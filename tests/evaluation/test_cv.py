"""Scoring on the CV's held-out folds (mmls/evaluation/cv.py): a variant's checkpoint, a rescoring
of it, a seed ensemble of it, with the outputs where mmls/paths.py puts them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from mmls.core import paths
from mmls.core.errors import InputError
from mmls.core.io import read_json
from mmls.data.folds import CVConfig, assign_folds, fold_rows, pool
from mmls.data.store import Store, load_store
from mmls.evaluation.cv import score_checkpoint, score_ensemble, score_reuse
from mmls.evaluation.variants import variant_run
from mmls.nn.tracking import METRICS_FILE
from mmls.nn.training import fit
from tests.configs import REAL_PARAMS
from tests.stores import write_synthetic_store

SAME = {"of": "v", "tta": False, "threshold": 0.5}
CV = {
    **REAL_PARAMS["cv"],
    "baseline": "v",
    "k": 2,
    "folds": [0, 1],
    "bins": 1,
    "inner_val_fraction": 0.25,
    "variants": {"v": {"model": "tiny"}},
    "rescored": {"v_again": SAME, "v_tta": {**SAME, "tta": True}},
    "ensembles": {"v_pair": SAME},
    "replicates": {"variants": [], "seeds": []},
    "best": None,  # the real pipeline's best recipes are not among these rows
}
PARAMS: dict[str, Any] = {
    **REAL_PARAMS,
    "seeds": [1, 2],
    "models": {"tiny": {"arch": "Unet", "encoder_name": "resnet18", "encoder_weights": None}},
    "train": {**REAL_PARAMS["train"], "epochs": 1, "batch_size": 4, "threads": 1},
    "eval": {**REAL_PARAMS["eval"], "threads": 1, "latency_warmup": 0, "latency_repeats": 1},
    "cv": CV,
}
SCORES = ("miou", "iou_fg", "tp", "fp", "fn", "tn", "n_images")


@pytest.fixture(scope="module")
def cv_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder: a 32-px store, its folds, and fold 0's checkpoint of variant ``v``
    trained once (seed 1) and copied to seed 2 (identical members)."""
    root = tmp_path_factory.mktemp("cv")
    write_synthetic_store(root / paths.STORE, {"train": 10, "val": 4}, size=32, seed=1)
    store = load_store(root / paths.STORE)
    assign_folds(pool(store.patches, CV["splits"]), 2, 1, 0).to_csv(
        root / paths.FOLDS_CSV, index=False
    )
    rows = fold_rows(store.patches, pd.read_csv(root / paths.FOLDS_CSV), 0, CVConfig(**CV))
    ckpt, log = root / paths.cv_dir("v", 0, 1), root / paths.cv_log_dir("v", 0, 1)
    fit(
        variant_run(PARAMS, "v", 1),
        store,
        rows.train,
        rows.val,
        ckpt / "best.pt",
        log,
        root / "r.pt",
    )
    shutil.copytree(ckpt, root / paths.cv_dir("v", 0, 2))
    shutil.copytree(log, root / paths.cv_log_dir("v", 0, 2))
    return root


@pytest.fixture()
def store(cv_project: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.chdir(cv_project)
    return load_store(paths.STORE)


def held_out_masks(name: str, seed: int | None) -> np.ndarray:
    folder = (
        paths.cv_predictions_dir(name, 0, seed)
        if seed
        else paths.cv_ensemble_predictions_dir(name, 0)
    )
    with np.load(folder / f"{paths.HELD_OUT}{paths.MASKS_SUFFIX}") as masks:
        return np.stack([masks[k] for k in sorted(masks.files)])


def test_a_rescoring_with_its_variants_decisions_reproduces_its_scores(store: Store) -> None:
    own = score_checkpoint(PARAMS, store, "v", 0, 1)
    again = score_checkpoint(PARAMS, store, "v_again", 0, 1)
    tta = score_checkpoint(PARAMS, store, "v_tta", 0, 1)
    assert own["n_images"] > 0 and own["tp"] + own["fn"] > 0
    assert {k: again[k] for k in SCORES} == {k: own[k] for k in SCORES}
    assert np.array_equal(held_out_masks("v_again", 1), held_out_masks("v", 1))
    assert tta["tta"] is True and tta["n_images"] == own["n_images"]
    hours = read_json(paths.cv_log_dir("v", 0, 1) / METRICS_FILE)["train_time_h"]
    assert own["train_time_h"] == again["train_time_h"] == pytest.approx(hours)
    assert read_json(paths.cv_metrics("v_again", 0, 1))["miou"] == own["miou"]


def test_an_ensemble_of_identical_members_scores_as_one_and_costs_both(store: Store) -> None:
    one = score_checkpoint(PARAMS, store, "v", 0, 1)
    pair = score_ensemble(PARAMS, store, "v_pair", 0)
    assert {k: pair[k] for k in SCORES} == {k: one[k] for k in SCORES}
    assert np.array_equal(held_out_masks("v_pair", None), held_out_masks("v", 1))
    assert pair["train_time_h"] == pytest.approx(2 * one["train_time_h"])
    assert paths.cv_ensemble_metrics("v_pair", 0).is_file()


def test_an_ensemble_needs_two_seeds(store: Store) -> None:
    with pytest.raises(InputError, match=r"params.yaml:cv.ensembles.v_pair: needs >= 2 seeds"):
        score_ensemble({**PARAMS, "seeds": [1]}, store, "v_pair", 0)


def test_a_reuse_scores_every_fold_and_seed_of_its_entry(store: Store) -> None:
    one_fold = {**PARAMS, "cv": {**CV, "folds": [0]}}
    rescored = dict(score_reuse(one_fold, store, "v_again"))
    assert list(rescored) == ["fold 0 seed 1", "fold 0 seed 2"]
    assert rescored["fold 0 seed 1"]["miou"] == rescored["fold 0 seed 2"]["miou"]  # same weights
    ensembled = dict(score_reuse(one_fold, store, "v_pair"))
    assert list(ensembled) == ["fold 0"]
    assert ensembled["fold 0"]["miou"] == rescored["fold 0 seed 1"]["miou"]
    with pytest.raises(InputError, match=r"params.yaml:cv: has no rescored or ensembles entry 'v'"):
        list(score_reuse(one_fold, store, "v"))


def test_an_ensemble_takes_its_second_seed_from_the_replicates(store: Store) -> None:
    """seeds [1] for every variant, seed 2 for ``v`` alone: the ensemble and the rescorings
    use both, like with seeds [1, 2]."""
    replicated = {
        **PARAMS,
        "seeds": [1],
        "cv": {**CV, "folds": [0], "replicates": {"variants": ["v"], "seeds": [2]}},
    }
    assert list(dict(score_reuse(replicated, store, "v_again"))) == [
        "fold 0 seed 1",
        "fold 0 seed 2",
    ]
    pair = score_ensemble(replicated, store, "v_pair", 0)
    assert pair["train_time_h"] == pytest.approx(
        2 * score_checkpoint(PARAMS, store, "v", 0, 1)["train_time_h"]
    )
    alone = {**replicated, "cv": {**replicated["cv"], "replicates": {"variants": [], "seeds": []}}}
    needs_two = r"cv.ensembles.v_pair: needs >= 2 seeds of 'v'.*cv.replicates.variants"
    with pytest.raises(InputError, match=needs_two):
        score_ensemble(alone, store, "v_pair", 0)


def test_the_reuse_stage_scores_an_ensemble(cv_project: Path, tmp_path: Path) -> None:
    """stages/cv_rescore.py (the command of cv_rescore@ and cv_ensemble@) on an ensemble entry,
    run like DVC runs it: a project folder with its params.yaml."""
    project = tmp_path / "project"
    shutil.copytree(cv_project, project)
    one_fold = {**PARAMS, "cv": {**CV, "folds": [0]}}
    (project / "params.yaml").write_text(yaml.safe_dump(one_fold))
    script = Path(__file__).resolve().parents[2] / "stages" / "cv_rescore.py"
    done = subprocess.run(
        [sys.executable, str(script), "--name", "v_pair"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "cv reuse v_pair fold 0: miou=" in done.stdout
    assert (project / paths.cv_ensemble_metrics("v_pair", 0)).is_file()
