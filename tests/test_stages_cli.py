"""The data stage scripts end to end, and their behaviour on bad input (exit code, message,
no partial output, nothing the user had is lost)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mmls.core.paths import tile_name
from tests.rasters import ORIGIN, PIXEL_M, write_composite, write_inventory

ROOT = Path(__file__).resolve().parents[1]
DATA_STAGES = ["align_mask", "binarize", "geo_holdout", "tile", "block_split"]
W, H = 1100, 700  # 8 x 5 patch grid in the base region with terminal origins


def run(stage: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "stages" / f"{stage}.py")],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def project(tmp_path) -> Path:
    write_composite(tmp_path / "composite.tif", W, H, nodata_box=(0, 40, 0, 40))
    rng = np.random.default_rng(0)
    classes = np.zeros((H + 30, W + 40), np.uint8)
    for _ in range(400):  # landslide blobs all over the scene
        r, c = rng.integers(0, H + 20), rng.integers(0, W + 30)
        classes[r : r + 25, c : c + 35] = 1
    classes[-5:, :] = 255
    write_inventory(tmp_path / "inventory.tif", classes, shift_px=(10, 7))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["scene"] = {"composite": "composite.tif", "inventory": "inventory.tif"}
    params["holdout"]["boundary_x"] = ORIGIN[0] + 800 * PIXEL_M
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path


def set_param(project: Path, section: str, key: str, value) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params[section][key] = value
    (project / "params.yaml").write_text(yaml.safe_dump(params))


def test_data_chain_runs_end_to_end(project):
    for stage in DATA_STAGES:
        result = run(stage, project)
        assert result.returncode == 0, (stage, result.stderr)
    splits = pd.read_csv(project / "data/splits.csv")
    index = pd.read_csv(project / "data/tiles/index.csv")
    assert len(splits) == len(index) > 0
    assert set(splits["split"]) == {"train", "val", "test", "isolated_test"}
    for rec in splits.itertuples():
        assert (
            project / "data/tiles" / rec.region / "images" / tile_name(rec.col, rec.row)
        ).exists()
    assert (project / "metrics/table1.json").exists()
    assert not list(project.rglob("*.tmp")), "temporary files left behind"


def test_composite_without_crs(project):
    write_composite(project / "composite.tif", W, H, crs=None)
    result = run("align_mask", project)
    assert result.returncode == 2
    assert "composite.tif" in result.stderr and "no CRS" in result.stderr
    assert not (project / "data/aligned/inventory.tif").exists()


def test_wrong_band_count(project):
    write_composite(project / "composite.tif", W, H, count=5)
    result = run("align_mask", project)
    assert result.returncode == 2 and "5 band" in result.stderr
    assert not (project / "data/aligned").exists() or not any((project / "data/aligned").iterdir())


@pytest.mark.parametrize("content", [b"", b"\x00garbage" * 64])
def test_corrupt_or_empty_inventory(project, content):
    (project / "inventory.tif").write_bytes(content)
    result = run("align_mask", project)
    assert result.returncode == 2 and "inventory.tif" in result.stderr
    assert not (project / "data/aligned/inventory.tif").exists()


def test_boundary_outside_the_raster(project):
    for stage in DATA_STAGES[:2]:
        assert run(stage, project).returncode == 0
    set_param(project, "holdout", "boundary_x", ORIGIN[0] - 1000.0)
    result = run("geo_holdout", project)
    assert result.returncode == 2 and "boundary_x" in result.stderr and "outside" in result.stderr
    assert not (project / "data/holdout/regions.json").exists()


def test_no_patch_left_keeps_previous_tiles(project):
    for stage in DATA_STAGES[:4]:
        assert run(stage, project).returncode == 0
    before = sorted(p.relative_to(project) for p in (project / "data/tiles").rglob("*"))
    set_param(project, "tile", "min_fg_ratio", 1.0)
    result = run("tile", project)
    assert result.returncode == 2 and "no patch left" in result.stderr
    after = sorted(p.relative_to(project) for p in (project / "data/tiles").rglob("*"))
    assert before == after and len(before) > 3
    assert not list((project / "data").glob(".tiles*")), "temporary directory left behind"


def test_split_with_no_tiles(project):
    for stage in DATA_STAGES[:4]:
        assert run(stage, project).returncode == 0
    set_param(project, "split", "bins", 400)  # more strata than groups is fine ...
    assert run("block_split", project).returncode == 0
    set_param(project, "split", "fractions", {"train": 0.999, "val": 0.0005, "test": 0.0005})
    result = run("block_split", project)  # ... but a split left empty is an error
    assert result.returncode == 2 and "received no patch" in result.stderr
