"""The data chain on the real MMLSv1-west scene ($MMLS_REAL_SCENE, see its README)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from mmls.core.paths import tile_name
from mmls.data.bands import BAND_NAMES
from mmls.data.splitting import assign_splits
from mmls.geo.align import align_inventory, binarize_mask
from mmls.geo.holdout import split_regions
from mmls.geo.raster import check_composite
from mmls.geo.tiling import tile_regions

pytestmark = pytest.mark.real_scene

BOUNDARY_X = -4332375.801864497  # grid column 32 (README)
BOUNDARY_GRID_COL = 32


def run_chain(scene, inventory_name, out):
    grid = check_composite(scene / "composite.tif", BAND_NAMES)
    align_inventory(grid, scene / inventory_name, out / "aligned.tif")
    binarize_mask(grid, out / "aligned.tif", out / "mask.tif")
    holdout = split_regions(grid, BOUNDARY_X, "east")
    index, stats = tile_regions(
        scene / "composite.tif",
        out / "mask.tif",
        holdout.windows,
        out / "tiles",
        size=128,
        band_names=BAND_NAMES,
    )
    return index, stats


@pytest.mark.parametrize("inventory_name", ["inventory.tif", "landslides.gpkg"])
def test_chain_reproduces_reference_tiles_bit_for_bit(real_scene, tmp_path, inventory_name):
    index, stats = run_chain(real_scene, inventory_name, tmp_path)
    assert stats["base"].kept == 171
    assert stats["isolated"].kept == 135
    reference = np.load(real_scene / "reference_tiles.npz")
    names = sorted({k.rsplit("_", 1)[0] for k in reference.files})
    assert len(names) == 12
    for name in names:
        col, row = (int(part[1:]) for part in name.split("_"))
        region, region_col = (
            ("base", col) if col < BOUNDARY_GRID_COL else ("isolated", col - BOUNDARY_GRID_COL)
        )
        stem = tile_name(region_col, row)
        with rasterio.open(tmp_path / "tiles" / region / "images" / stem) as ds:
            image = ds.read()
        with rasterio.open(tmp_path / "tiles" / region / "masks" / stem) as ds:
            mask = ds.read(1)
        ref_image, ref_mask = reference[f"{name}_image"], reference[f"{name}_mask"]
        assert image.dtype == ref_image.dtype and mask.dtype == ref_mask.dtype
        assert image.tobytes() == ref_image.tobytes(), f"{name} image differs"
        assert mask.tobytes() == ref_mask.tobytes(), f"{name} mask differs"


def test_real_scene_split_is_leakage_free(real_scene, tmp_path):
    index, _ = run_chain(real_scene, "inventory.tif", tmp_path)
    splits = assign_splits(
        index, size=128, fractions={"train": 0.7, "val": 0.1, "test": 0.2}, bins=5, seed=42
    )
    counts = splits["split"].value_counts().to_dict()
    assert counts["isolated_test"] == 135
    assert counts["train"] + counts["val"] + counts["test"] == 171
    base = splits[splits["region"] == "base"]
    assert (base.groupby(["block_col", "block_row"])["split"].nunique() == 1).all()
    # roughly the target fractions (block granularity: blocks hold 1-4 patches)
    assert 0.55 < counts["train"] / 171 < 0.85 and counts["val"] > 0 and counts["test"] > 0
