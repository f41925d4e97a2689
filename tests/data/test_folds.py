"""Spatial block cross-validation: folds, inner validation, variants, ensembles, the CV table."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmls.core import paths
from mmls.core.errors import InputError
from mmls.core.io import write_json
from mmls.data.folds import (
    CVConfig,
    assign_folds,
    fold_rows,
    inner_validation,
    pool,
    random_folds,
)
from mmls.data.splitting import overlap_groups
from mmls.evaluation.held_out_counts import copy_held_out_counts, cv_counts_file
from mmls.evaluation.variants import variant_recipe, variant_run, variant_seeds
from mmls.inference.ensemble import MeanProbability
from mmls.metrics.bootstrap import StatisticsConfig
from mmls.metrics.confusion import Confusion, metrics_record, patch_counts
from mmls.metrics.patch_files import patch_table, write_patch_table
from mmls.report.tables import build_cv_tables, pooled_tables, read_replicates
from tests.configs import REAL_PARAMS, config

S = 16


def patches(cols: int, rows: int, seed: int, terminal: bool = True) -> pd.DataFrame:
    """A labelled grid (last column a terminal origin) with groups as the store has them."""
    rng = np.random.default_rng(seed)
    recs = []
    for c in range(cols):
        x = c * S if not (terminal and c == cols - 1) else (cols - 1) * S - 5
        for r in range(rows):
            recs.append(
                {
                    "region": "base",
                    "col": c,
                    "row": r,
                    "x_off": x,
                    "y_off": r * S,
                    "block_col": c // 2,
                    "block_row": r // 2,
                    "fg_ratio": rng.random(),
                    "split": "train" if rng.random() < 0.8 else "val",
                    "labelled": True,
                }
            )
    table = pd.DataFrame(recs)
    table["group"] = overlap_groups(table, S)
    return table


@settings(max_examples=25, deadline=None)
@given(
    cols=st.integers(4, 12), rows=st.integers(2, 8), k=st.integers(2, 5), seed=st.integers(0, 99)
)
def test_folds_partition_groups_and_keep_overlaps_together(cols, rows, k, seed) -> None:
    table = patches(cols, rows, seed)
    if table["group"].nunique() < k:
        with pytest.raises(InputError):
            assign_folds(table, k, 3, seed)
        return
    folds = assign_folds(table, k, 3, seed)
    assert len(folds) == len(table) and set(folds["fold"]) <= set(range(k))
    assert (folds.groupby("group")["fold"].nunique() == 1).all()  # a group is never split
    sizes = folds.groupby("fold")["group"].nunique()
    assert len(sizes) == k and sizes.max() - sizes.min() <= 3  # 3 strata, within one each
    assert folds.equals(assign_folds(table, k, 3, seed))  # deterministic
    merged = table.merge(folds)
    for f in range(k):
        inner = inner_validation(merged, f, 0.2, 3, seed)
        assert not (inner & (merged["fold"] == f).to_numpy()).any()
        in_groups = set(merged.loc[inner, "group"])
        assert merged.loc[merged["group"].isin(in_groups)].index.isin(np.flatnonzero(inner)).all()


def test_fold_rows_are_disjoint_and_cover_the_pool() -> None:
    table = patches(10, 6, 3)
    table.loc[table.index[:4], ["split", "labelled"]] = ["test", False]  # unlabelled: not pooled
    cfg = config("cv", CVConfig)
    pooled = pool(table, cfg.splits)
    folds = assign_folds(pooled, cfg.k, cfg.bins, cfg.seed)
    seen = []
    for f in range(cfg.k):
        r = fold_rows(table, folds, f, cfg)
        assert not set(r.train) & set(r.val) and not set(r.train) & set(r.held_out)
        assert not set(r.val) & set(r.held_out) and len(r.val) > 0
        assert set(r.train) | set(r.val) | set(r.held_out) == set(pooled["store_row"])
        seen += list(r.held_out)
    assert sorted(seen) == sorted(pooled["store_row"])  # every pooled patch held out once


def test_variants_apply_their_overrides_on_the_model_entry() -> None:
    params = {
        **REAL_PARAMS,
        "cv": {
            **REAL_PARAMS["cv"],
            "variants": {
                **REAL_PARAMS["cv"]["variants"],
                "x": {
                    "model": "unet_paper",
                    "architecture": {"encoder_name": "resnet18"},
                    "train": {"epochs": 3},
                    "recipe": {"loss": "ce_dice"},
                },
            },
        },
    }
    run = variant_run(params, "x", REAL_PARAMS["seeds"][0])
    assert run.model_cfg["encoder_name"] == "resnet18" and run.model_cfg["arch"] == "Unet"
    assert run.cfg.epochs == 3 and run.cfg.batch_size == 128  # unet_paper's own override kept
    assert run.recipe.loss == "ce_dice"
    tta = variant_recipe(REAL_PARAMS, "unet_tta")
    assert tta.tta and tta.loss == variant_recipe(REAL_PARAMS, "unet").loss
    with pytest.raises(InputError, match="cv.variants"):
        variant_run(REAL_PARAMS, "nope", REAL_PARAMS["seeds"][0])
    with pytest.raises(InputError, match="params.yaml:cv.rescored.bad.of"):
        config("cv", CVConfig, rescored={"bad": {"of": "nope", "tta": True, "threshold": 0.5}})


def test_replicates_add_their_seeds_to_the_variants_they_list() -> None:
    reps = {"variants": ["unet"], "seeds": [7, 8]}
    cfg = config("cv", CVConfig, replicates=reps)
    assert cfg.seeds_of("unet", [42]) == [42, 7, 8]
    assert cfg.seeds_of("unet_dice", [42]) == [42]
    params = {**REAL_PARAMS, "seeds": [42], "cv": {**REAL_PARAMS["cv"], "replicates": reps}}
    assert variant_seeds(params, "unet") == [42, 7, 8]
    assert variant_run(params, "unet", 8).seed == 8
    with pytest.raises(InputError, match=r"params.yaml:seeds: does not list seed 8 .*'unet_dice'"):
        variant_run(params, "unet_dice", 8)
    with pytest.raises(InputError, match=r"params.yaml:cv.replicates.seeds: repeats \[7\]"):
        variant_seeds({**params, "seeds": [7]}, "unet")


def test_each_cv_row_names_the_checkpoints_it_scores() -> None:
    """A rescoring scores its variant's checkpoints one by one; an ensemble averages every seed
    of its variant and needs two of them (``seeds`` or ``cv.replicates``)."""
    cv = config(
        "cv",
        CVConfig,
        rescored={"unet_tta": {"of": "unet", "tta": True, "threshold": 0.5}},
        ensembles={"unet_seeds": {"of": "unet", "tta": False, "threshold": 0.5}},
        replicates={"variants": ["unet"], "seeds": [43]},
        best=None,
    )
    assert cv.trained_variant("unet") == "unet"
    assert cv.trained_variant("unet_tta") == "unet"
    with pytest.raises(InputError, match=r"params.yaml:cv: has no variants or rescored .*seeds"):
        cv.trained_variant("unet_seeds")
    assert cv.ensemble_seeds("unet_seeds", [42]) == [42, 43]
    alone = cv.model_copy(update={"replicates": cv.replicates.model_copy(update={"variants": []})})
    with pytest.raises(InputError, match=r"cv.ensembles.unet_seeds: needs >= 2 seeds of 'unet'"):
        alone.ensemble_seeds("unet_seeds", [42])
    assert alone.ensemble_seeds("unet_seeds", [1, 2]) == [1, 2]


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"k": 1}, "cv.k"),
        ({"folds": [0, 5]}, "cv.folds"),
        ({"bins": 0}, "cv.bins"),
        ({"inner_val_fraction": 0.5}, "cv.inner_val_fraction"),
        ({"rescored": {"t": {"of": "unet", "tta": False, "threshold": 1.5}}}, "cv.rescored.t."),
        ({"replicates": {"variants": ["nope"], "seeds": [1]}}, "cv.replicates.variants"),
        ({"replicates": {"variants": ["unet"], "seeds": [1, 1]}}, "cv.replicates.seeds"),
        ({"replicates": {"variants": ["unet"], "seeds": []}}, "cv.replicates.seeds"),
        ({"replicates": {"variants": []}}, "cv.replicates.seeds"),
    ],
)
def test_bad_cv_params_name_the_key(override, key) -> None:
    with pytest.raises(InputError, match=f"params.yaml:{key}"):
        config("cv", CVConfig, **override)


def test_mean_probability_ensemble_averages_probabilities() -> None:
    a, b = torch.nn.Conv2d(3, 2, 1), torch.nn.Conv2d(3, 2, 1)
    x = torch.randn(2, 3, 4, 4)
    mean = (torch.softmax(a(x), 1) + torch.softmax(b(x), 1)) / 2
    out = MeanProbability([a, b])(x)
    assert torch.allclose(torch.softmax(out, 1), mean, atol=1e-6)
    assert torch.equal(out.argmax(1), mean.argmax(1))


def _write_fold(
    name: str, fold: int, seed: int | None, truth: np.ndarray, flip: float, rows: pd.DataFrame, rng
) -> None:
    pred = np.where(rng.random(truth.shape) < flip, 1 - truth, truth).astype(np.uint8)
    counts = patch_counts(pred, truth)
    rec = metrics_record(Confusion.of(counts), len(rows), 0.01, "cpu", 0.1)
    rec["n_train"] = 100 + fold
    if seed is None:
        write_json(paths.cv_ensemble_metrics(name, fold), rec)
        out = paths.cv_ensemble_predictions_dir(name, fold)
    else:
        write_json(paths.cv_metrics(name, fold, seed), rec)
        out = paths.cv_predictions_dir(name, fold, seed)
    write_patch_table(out / f"{paths.HELD_OUT}{paths.PATCHES_SUFFIX}", patch_table(rows, counts))


def test_cv_table_folds_pooled_ci_and_paired_difference(tmp_path: Path) -> None:
    table = patches(12, 8, 1, terminal=False)
    folds = assign_folds(table, 3, 2, 0)
    rng = np.random.default_rng(0)
    truth = {i: (rng.random((S, S)) < 0.4).astype(np.uint8) for i in table.index}
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        for f in range(3):
            rows = table[(folds["fold"] == f).to_numpy()]
            t = np.stack([truth[i] for i in rows.index])
            for seed in (1, 2):
                _write_fold("base", f, seed, t, 0.30, rows, rng)
                _write_fold("good", f, seed, t, 0.05, rows, rng)
            _write_fold("one", f, 1, t, 0.05, rows, rng)
            _write_fold("ens", f, None, t, 0.04, rows, rng)
        for name in ("base", "good", "one", "ens"):  # the cv_counts stages: predictions to git
            copy_held_out_counts(name)
        shutil.rmtree(paths.PREDICTIONS)  # the table reads git alone
        cfg = config("statistics", StatisticsConfig, n_resamples=300)
        two = [1, 2]
        seeds_of = {"base": two, "good": two, "one": [1], "missing": two}
        out = build_cv_tables(
            seeds_of, {"ens": two}, [0, 1, 2], "base", cfg, table, protocols={"good": "random"}
        )
        like = build_cv_tables(
            seeds_of,
            {"ens": two},
            [0, 1, 2],
            "base",
            cfg,
            table,
            best={"mean": "good", "ensemble": "ens"},
        )
        with pytest.raises(InputError, match=r"seed3.json: missing: fold 0 of good lacks a seed"):
            build_cv_tables({"good": [1, 2, 3]}, {}, [0, 1, 2], "good", cfg, table)
    finally:
        os.chdir(cwd)
    assert set(out) == {"base", "good", "one", "ens"}  # "missing" has no results: no row
    assert out["one"]["n_seeds"] == 1 and out["one"]["beats_baseline"]  # 1 seed vs 2
    good = out["good"]
    assert good["n_folds"] == 3 and good["n_seeds"] == 2 and good["miou_fold_sd"] is not None
    assert good["miou_ci_lo"] <= good["miou"] <= good["miou_ci_hi"]
    assert good["miou_minus_base_ci_lo"] > 0 and good["beats_baseline"]
    ens = out["ens"]  # one result per fold, averaging the checkpoints of seeds 1 and 2
    assert (ens["n_seeds"], ens["seeds"]) == (1, "1+2") and ens["beats_baseline"]
    assert good["seeds"] == "1,2" and out["one"]["seeds"] == "1"
    assert "miou_minus_base" not in out["base"]
    assert (out["base"]["protocol"], good["protocol"]) == ("blocks", "random")  # unnamed: blocks
    assert good["protocol_definition"].startswith("patch-level random k-fold")
    assert [good[f"n_train_fold{f}"] for f in range(3)] == [100, 101, 102]
    # like with like: single recipes against the best mean, ensembles against the best ensemble
    assert like["base"]["best"] == "good" and not like["base"]["beats_best"]
    assert like["base"]["miou_minus_good_ci_hi"] < 0 and "miou_minus_ens" not in like["one"]
    assert "best" not in like["ens"]  # the best ensemble itself
    assert "miou_minus_good" not in like["good"] and like["one"]["best"] == "good"


def test_a_random_row_pairs_with_a_blocks_row_though_it_splits_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = patches(11, 8, 0)  # odd: the terminal column's groups span two 2 x 2 blocks
    blocks = assign_folds(table, 3, 2, 0)["fold"].to_numpy()
    random = random_folds(table, 3, 2, 0)
    first_col = table.groupby("group")["block_col"].transform("min")
    per_fold = table.assign(fold=random).groupby(["group", "fold"])["block_col"].transform("min")
    # a random fold holds some of a group's patches but not the one in the group's first block
    assert (per_fold != first_col).any()
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(1)
    truth = {i: (rng.random((S, S)) < 0.4).astype(np.uint8) for i in table.index}
    for f in range(3):
        for name, fold_of in (("blk", blocks), ("rnd", random)):
            rows = table[fold_of == f]
            t = np.stack([truth[i] for i in rows.index])
            _write_fold(name, f, 1, t, 0.1, rows, rng)
    for name in ("blk", "rnd"):
        copy_held_out_counts(name)
    shutil.rmtree(paths.PREDICTIONS)
    cfg = config("statistics", StatisticsConfig, n_resamples=200)
    out = build_cv_tables(
        {"blk": [1], "rnd": [1]}, {}, [0, 1, 2], "blk", cfg, table, protocols={"rnd": "random"}
    )
    pooled = {
        name: pooled_tables(
            [
                read_replicates(
                    [paths.cv_metrics(name, f, 1)],
                    [cv_counts_file(name, f, 1)],
                    [1],
                    table,
                )
                for f in range(3)
            ],
            table,
        )[0].sort_values(["col", "row"])[["col", "row", "block_col", "block_row"]]
        for name in ("blk", "rnd")
    }
    # every patch sits in the same (merged) block in both rows, so the bootstrap pairs them
    assert pooled["blk"].reset_index(drop=True).equals(pooled["rnd"].reset_index(drop=True))
    assert out["rnd"]["protocol"] == "random" and out["rnd"]["n_patches"] == len(table)
    lo, hi = out["rnd"]["miou_minus_blk_ci_lo"], out["rnd"]["miou_minus_blk_ci_hi"]
    assert lo <= out["rnd"]["miou_minus_blk"] <= hi
