"""The tables stage: Tables 2-4 with mean and sd over seeds, block(-and-seed) bootstrap CIs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmls.core import paths
from mmls.core.errors import InputError
from mmls.metrics.bootstrap import StatisticsConfig
from mmls.report.tables import build_tables
from tests.configs import config
from tests.projects import BAND_SETS, MODELS, SEEDS, make_project


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    make_project(root)
    return root


def tables(seeds=SEEDS, **cfg):
    stats = config("statistics", StatisticsConfig, **{"n_resamples": 300, **cfg})
    groups = pd.read_csv(paths.STORE / "patches.csv")
    return build_tables(MODELS, BAND_SETS, seeds, ["test", "isolated_test"], stats, groups)


@pytest.fixture
def inside(project: Path):
    cwd = Path.cwd()
    os.chdir(project)
    yield project
    os.chdir(cwd)


def test_rows_are_means_over_seeds_with_sd_and_ci(inside: Path) -> None:
    t = tables()
    row = t.rows[paths.table_dir("test")]["unet"]
    per_seed = [
        json.loads((paths.eval_metrics_dir("unet", s) / "test.json").read_text())["miou"]
        for s in SEEDS
    ]
    assert row["miou"] == pytest.approx(np.mean(per_seed))
    assert row["miou_sd"] == pytest.approx(np.std(per_seed, ddof=1)) and row["n_seeds"] == 2
    assert row["miou_ci_lo"] <= row["miou"] <= row["miou_ci_hi"]
    assert row["seed_variance"].startswith("measured: 2 seeds")
    assert set(t.rows) == {
        paths.table_dir("test"),
        paths.table_dir("isolated_test"),
        paths.TABLE4,
    }
    assert set(t.rows[paths.TABLE4]) == set(BAND_SETS)


def test_one_seed_says_seed_variance_is_not_measured(inside: Path) -> None:
    row = tables(seeds=SEEDS[:1]).rows[paths.table_dir("test")]["unet"]
    record = json.loads((paths.eval_metrics_dir("unet", SEEDS[0]) / "test.json").read_text())
    assert row["miou"] == record["miou"] and row["miou_sd"] is None
    assert row["seed_variance"].startswith("not measured")


def test_differences_are_paired_and_clear_for_clearly_different_models(inside: Path) -> None:
    stats = tables().statistics
    (d,) = stats["model_differences"]["test"]
    assert (d["a"], d["b"]) == ("unet", "pspnet") and d["miou"]["hi"] < 0  # PSPNet flips more
    assert d["miou"]["n_seeds"] == 2
    (band,) = stats["band_set_differences"]
    assert band["miou"]["lo"] > 0  # all bands (2 % flips) beat RGB (30 %)
    assert set(stats["test_minus_isolated"]) == set(MODELS)


def test_counts_that_do_not_add_up_are_an_error_naming_the_file(inside: Path) -> None:
    path = paths.eval_metrics_dir("pspnet", SEEDS[1]) / "test.json"
    record = json.loads(path.read_text())
    try:
        path.write_text(json.dumps({**record, "tp": record["tp"] + 1}))
        with pytest.raises(InputError, match="do not add up"):
            tables()
    finally:
        path.write_text(json.dumps(record))
