"""The scene as a whole: determinism, the summary's cell stats, and the stage that writes it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from mmls.data.synthetic.scene import SyntheticScene, generate_scene, grid_cell_stats
from tests.configs import ROOT
from tests.data.synthetic.tiny import TINY, tiny

# ----------------------------------------------------------------------------- determinism


def test_same_seed_same_arrays(scene: SyntheticScene) -> None:
    again = generate_scene(TINY)
    np.testing.assert_array_equal(again.bands, scene.bands)
    np.testing.assert_array_equal(again.truth, scene.truth)
    np.testing.assert_array_equal(again.inventory, scene.inventory)


def test_different_seed_differs(scene: SyntheticScene) -> None:
    other = generate_scene(tiny(seed=TINY.seed + 1))
    assert not np.array_equal(other.bands, scene.bands)
    assert not np.array_equal(other.truth, scene.truth)


# -------------------------------------------------------------------------- summary, stage


def test_grid_cell_stats() -> None:
    truth = np.zeros((300, 260), np.uint8)
    nodata = np.zeros_like(truth, dtype=bool)
    truth[0:64, 0:128] = 1  # cell (0, 0): ratio 0.5
    truth[130, 130] = 1  # cell (1, 1): one pixel
    truth[0, 200] = 1  # cell (0, 1) ...
    nodata[5, 250] = True  # ... holds nodata: not kept
    truth[290, 10] = 1  # partial last row: not a full cell
    st = grid_cell_stats(truth, nodata)
    assert st["cells"] == 4 and st["kept"] == 2 and st["with_nodata"] == 1
    assert st["mean_fg_ratio"] == pytest.approx((0.5 + 1 / 128**2) / 2)


def _run_stage(tmp_path: Path, synthetic: dict) -> subprocess.CompletedProcess[str]:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"synthetic": synthetic}))
    return subprocess.run(
        [sys.executable, str(ROOT / "stages" / "synthetic_scene.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_stage_writes_both_files(tmp_path: Path, written: tuple[Path, Path]) -> None:
    res = _run_stage(tmp_path, TINY.model_dump())
    assert res.returncode == 0, res.stderr
    assert "synthetic_scene:" in res.stdout
    out = tmp_path / "data" / "synthetic"
    assert (out / "composite.tif").read_bytes() == written[0].read_bytes()
    assert (out / "inventory.tif").read_bytes() == written[1].read_bytes()


def test_stage_bad_params_clear_error(tmp_path: Path) -> None:
    res = _run_stage(tmp_path, {**TINY.model_dump(), "nodata_fraction": 2.0})
    assert res.returncode == 2
    assert "params.yaml:synthetic.nodata_fraction" in res.stderr
    assert not (tmp_path / "data" / "synthetic" / "composite.tif").exists()
