"""The raster route on released tiles: rebuild the scene, then align .. tile must regenerate
every labelled released tile bit for bit (synthetic releases here; the real MMLSv2 train + val
tiles with $MMLS_RELEASE)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine

from mmls.core.errors import InputError
from mmls.core.paths import tile_paths
from mmls.data.bands import BAND_NAMES
from mmls.data.ingest import ingest_release
from mmls.data.releases import IngestConfig
from mmls.geo.align import align_inventory, binarize_mask
from mmls.geo.holdout import split_regions
from mmls.geo.raster import check_composite
from mmls.geo.rebuild import INVENTORY_NODATA, compare_tiles, rebuild_scene
from mmls.geo.tiling import tile_regions
from tests.configs import config
from tests.releases import ORIGIN, scene_tiles, write_raster, write_release

S = 32


def ingested(root: Path, out: Path, size: int = S) -> pd.DataFrame:
    cfg = config(
        "ingest", IngestConfig, layout="mmlsv2-challenge", root=str(root), folders={}, regions={}
    )
    table, _ = ingest_release(cfg, out, bands=BAND_NAMES, size=size)
    return table


def raster_route(scene: Path, out: Path, size: int) -> tuple[pd.DataFrame, dict]:
    """align_mask .. tile with the paper's boundary on the scene's west edge (isolated: west)."""
    grid = check_composite(scene / "composite.tif", BAND_NAMES)
    align_inventory(grid, scene / "inventory.tif", out / "aligned.tif")
    binarize_mask(grid, out / "aligned.tif", out / "mask.tif")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        holdout = split_regions(grid, ORIGIN[0], "west", gap_px=0)
        index, stats = tile_regions(
            scene / "composite.tif",
            out / "mask.tif",
            holdout.windows,
            out / "tiles_out",
            size=size,
            band_names=BAND_NAMES,
            unmapped_path=out / "aligned.tif",
        )
    assert any("isolated region is empty" in str(w.message) for w in caught)
    return index, stats


@pytest.fixture
def release(tmp_path: Path) -> Path:
    """Rows 1-2 of a 5 x 3 grid (row 0 never released), a terminal last column, one
    unlabelled tile and one grid cell without any tile."""
    tiles = scene_tiles(5, 3, S, seed=5, width=5 * S - 8)
    tiles = {k: v for k, v in tiles.items() if k[1] > 0 and k != (2, 2)}
    split_of = {k: ("test" if k == (4, 1) else "train") for k in tiles}
    write_release(tmp_path / "rel", tiles, split_of, unlabelled=["test"])
    return tmp_path / "rel"


def test_scene_places_tiles_from_the_grid_origin_and_marks_unmapped(release, tmp_path) -> None:
    table = ingested(release, tmp_path / "tiles")
    grid = rebuild_scene(
        table,
        tmp_path / "tiles",
        tmp_path / "composite.tif",
        tmp_path / "inventory.tif",
        bands=BAND_NAMES,
        size=S,
    )
    assert (grid.width, grid.height) == (5 * S - 8, 3 * S)  # from tile (0, 0)'s corner
    assert (grid.transform.c, grid.transform.f) == ORIGIN
    with (
        rasterio.open(tmp_path / "composite.tif") as c,
        rasterio.open(tmp_path / "inventory.tif") as i,
    ):
        composite, inventory = c.read(), i.read(1)
        assert np.isnan(c.nodata) and i.nodata == INVENTORY_NODATA
    assert np.isnan(composite[:, :S]).all() and (inventory[:S] == INVENTORY_NODATA).all()  # row 0
    x, y = 4 * S - 8, S  # the unlabelled terminal tile (4, 1): imagery, no inventory
    assert not np.isnan(composite[:, y : y + S, x : x + S]).any()
    assert (inventory[y : y + S, x : x + S][:, 8:] == INVENTORY_NODATA).all()


def test_overlapping_tiles_that_disagree_are_an_error_naming_both(release, tmp_path) -> None:
    image_path = release / "train" / "images" / "col00004_row00002.tif"
    with rasterio.open(image_path) as ds:
        image, transform, crs = ds.read(), ds.transform, ds.crs
    image[:, :, 0] += 1.0  # the 8 columns it shares with (3, 2)
    write_raster(image_path, image, transform, crs)
    table = ingested(release, tmp_path / "tiles")
    with pytest.raises(InputError) as err:
        rebuild_scene(
            table,
            tmp_path / "tiles",
            tmp_path / "c.tif",
            tmp_path / "i.tif",
            bands=BAND_NAMES,
            size=S,
        )
    assert {"col00004_row00002", "col00003_row00002"} <= {
        Path(p).stem for p in (err.value.source, err.value.problem.split()[1])
    }
    assert not (tmp_path / "c.tif").exists() and not (tmp_path / "i.tif").exists()


def test_raster_route_regenerates_every_labelled_tile(release, tmp_path) -> None:
    table = ingested(release, tmp_path / "tiles")
    scene = tmp_path / "scene"
    scene.mkdir()
    rebuild_scene(
        table,
        tmp_path / "tiles",
        scene / "composite.tif",
        scene / "inventory.tif",
        bands=BAND_NAMES,
        size=S,
    )
    index, stats = raster_route(scene, tmp_path, S)
    assert stats["isolated"].candidates == 0
    check = compare_tiles(table, tmp_path / "tiles", index, tmp_path / "tiles_out")
    assert check["n_released_labelled"] == int(table["labelled"].sum())
    assert check["n_identical"] == check["n_released_labelled"]
    assert check["n_missing"] == check["n_extra"] == 0 and check["differing"] == []

    # one tile moved by half a pixel, one with a changed pixel: exactly those two differ (the
    # others stay identical, whatever their order)
    first, second = index.iloc[0], index.iloc[-1]
    moved, _ = tile_paths(tmp_path / "tiles_out", first["region"], first["col"], first["row"])
    with rasterio.open(moved, "r+") as ds:
        ds.transform = ds.transform * Affine.translation(0.5, 0)
    changed, _ = tile_paths(tmp_path / "tiles_out", second["region"], second["col"], second["row"])
    with rasterio.open(changed, "r+") as ds:
        data = ds.read()
        data[0, 0, 0] += 1
        ds.write(data)
    check = compare_tiles(table, tmp_path / "tiles", index, tmp_path / "tiles_out")
    assert check["n_identical"] == check["n_released_labelled"] - 2
    assert check["max_transform_diff_px"] == 0.5
    assert len(check["differing"]) == 2


# ------------------------------------------------------------------- the real MMLSv2 release
@pytest.mark.real_release
def test_real_release_raster_route_regenerates_all_531_tiles(mmlsv2_release, tmp_path) -> None:
    table = ingested(mmlsv2_release, tmp_path / "released", size=128)
    scene = tmp_path / "scene"
    scene.mkdir()
    grid = rebuild_scene(
        table,
        tmp_path / "released",
        scene / "composite.tif",
        scene / "inventory.tif",
        bands=BAND_NAMES,
        size=128,
    )
    assert (grid.width, grid.height) == (10744, 3596)  # col 83, row 28: terminal origins
    index, stats = raster_route(scene, tmp_path, 128)
    assert stats["base"].kept == 531
    check = compare_tiles(table, tmp_path / "released", index, tmp_path / "tiles_out")
    assert check["n_identical"] == check["n_released_labelled"] == 531
    assert check["max_transform_diff_px"] == 0.0
