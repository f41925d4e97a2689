"""Patch grid (Sec. 2.3), holdout regions and tile extraction."""

from __future__ import annotations

import math

import numpy as np
import pytest
import rasterio
from hypothesis import given
from hypothesis import strategies as st
from rasterio.windows import Window

from mmls.core.errors import InputError
from mmls.core.paths import tile_name
from mmls.data.bands import BAND_NAMES
from mmls.geo.holdout import split_regions
from mmls.geo.raster import check_composite
from mmls.geo.tiling import _plan_jobs, grid_origins, region_patches, tile_regions
from tests.rasters import ORIGIN, PIXEL_M, write_composite, write_inventory


@given(extent=st.integers(1, 2000), size=st.integers(1, 300))
def test_origins_cover_the_axis_without_padding(extent, size):
    origins = grid_origins(extent, size)
    if extent < size:
        assert origins == []
        return
    assert len(origins) == math.ceil(extent / size)
    assert origins[0] == 0 and origins[-1] == extent - size  # last patch ends at the edge
    assert all(0 <= o <= extent - size for o in origins)
    steps = np.diff(origins)
    assert (steps[:-1] == size).all() if len(steps) > 1 else True
    assert len(steps) == 0 or 0 < steps[-1] <= size
    covered = np.zeros(extent, bool)
    for o in origins:
        covered[o : o + size] = True
    assert covered.all()


def test_origins_known_answers():
    assert grid_origins(256, 128) == [0, 128]
    assert grid_origins(300, 128) == [0, 128, 172]  # terminal origin 300 - 128
    assert grid_origins(127, 128) == []


def test_region_patch_indices_and_offsets():
    patches = region_patches("isolated", Window(1000, 0, 300, 128), 128)
    assert [(p.col, p.row, p.x_off, p.y_off) for p in patches] == [
        (0, 0, 1000, 0),
        (1, 0, 1128, 0),
        (2, 0, 1172, 0),
    ]


def test_jobs_are_rows_of_patches_and_every_region_gets_its_folders(tmp_path):
    windows = {"isolated": Window(300, 0, 200, 100), "base": Window(0, 0, 300, 260)}
    jobs = _plan_jobs(windows, tmp_path, 128)
    assert [(region, [p.col for p in ps], {p.row for p in ps}) for region, ps in jobs] == [
        ("base", [0, 1, 2], {0}),
        ("base", [0, 1, 2], {1}),
        ("base", [0, 1, 2], {2}),
    ]  # the isolated window is shorter than a patch: no job, but its folders exist
    for region in windows:
        assert (tmp_path / region / "images").is_dir() and (tmp_path / region / "masks").is_dir()


def test_holdout_regions_and_errors():
    from mmls.geo.raster import Grid
    from tests.rasters import MARS_EQC, composite_transform

    grid = Grid(MARS_EQC, composite_transform(), 1000, 400)
    h = split_regions(grid, ORIGIN[0] + 300 * PIXEL_M, "east")
    assert h.windows["base"] == Window(0, 0, 300, 400)
    assert h.windows["isolated"] == Window(300, 0, 700, 400)
    h = split_regions(grid, ORIGIN[0] + 300 * PIXEL_M, "west")
    assert h.windows["isolated"] == Window(0, 0, 300, 400)
    with pytest.warns(UserWarning, match="snapped to column 300"):
        assert split_regions(grid, ORIGIN[0] + 300.2 * PIXEL_M, "east").boundary_col == 300
    for outside in (ORIGIN[0] - 1.0, ORIGIN[0] + 1000 * PIXEL_M + 5):
        with pytest.raises(InputError, match="boundary_x.*outside"):
            split_regions(grid, outside, "east")
    # On the west edge with the isolated side west: an empty isolated region, a warning
    with pytest.warns(UserWarning, match="isolated region is empty"):
        h = split_regions(grid, ORIGIN[0], "west")
    assert h.windows["isolated"].width == 0 and h.windows["base"] == Window(0, 0, 1000, 400)
    with pytest.raises(InputError, match="base"):  # ... but the base region may not be empty
        split_regions(grid, ORIGIN[0], "east")
    h = split_regions(grid, ORIGIN[0] + 300 * PIXEL_M, "east", gap_px=128)
    assert h.windows["base"] == Window(0, 0, 172, 400)
    assert h.windows["isolated"] == Window(300, 0, 700, 400)
    h = split_regions(grid, ORIGIN[0] + 300 * PIXEL_M, "west", gap_px=128)
    assert h.windows["base"] == Window(428, 0, 572, 400)
    assert h.windows["isolated"] == Window(0, 0, 300, 400)
    with pytest.raises(InputError, match="gap 300 px leave the base region"):
        split_regions(grid, ORIGIN[0] + 300 * PIXEL_M, "east", gap_px=300)
    with pytest.raises(InputError, match="isolated_side"):
        split_regions(grid, ORIGIN[0] + 300 * PIXEL_M, "north")


def test_tiles_are_georeferenced_filtered_copies(tmp_path):
    w, h = 300, 260
    data = write_composite(tmp_path / "comp.tif", w, h, nodata_box=(0, 10, 0, 10))
    mask = np.zeros((h, w), np.uint8)
    mask[200:210, 250:260] = 1  # only in the last row of patches, terminal column
    mask[130:140, 0:5] = 1
    write_inventory(tmp_path / "mask.tif", mask, nodata=None)
    check_composite(tmp_path / "comp.tif", BAND_NAMES)
    windows = {"base": Window(0, 0, w, h)}
    index, stats = tile_regions(
        tmp_path / "comp.tif",
        tmp_path / "mask.tif",
        windows,
        tmp_path / "tiles",
        size=128,
        band_names=BAND_NAMES,
    )
    # 3 x 3 candidates; (0,0) has nodata; kept: those with landslide pixels
    assert stats["base"].candidates == 9 and stats["base"].dropped_nodata == 1
    kept = set(zip(index["col"], index["row"], strict=True))
    assert kept == {(0, 1), (0, 2), (1, 1), (1, 2), (2, 1), (2, 2)}  # rows/cols overlap at edges
    for rec in index.itertuples():
        with rasterio.open(tmp_path / "tiles/base/images" / tile_name(rec.col, rec.row)) as ds:
            img = ds.read()
            assert ds.descriptions == BAND_NAMES and ds.crs is not None
            assert ds.transform.c == ORIGIN[0] + rec.x_off * PIXEL_M
            assert ds.transform.f == ORIGIN[1] - rec.y_off * PIXEL_M
        np.testing.assert_array_equal(
            img, data[:, rec.y_off : rec.y_off + 128, rec.x_off : rec.x_off + 128]
        )
        with rasterio.open(tmp_path / "tiles/base/masks" / tile_name(rec.col, rec.row)) as ds:
            m = ds.read(1)
        assert m.dtype == np.uint8 and rec.fg_pixels == int(m.sum()) > 0
        assert rec.fg_ratio == rec.fg_pixels / 128**2
    # exactly the patches whose window holds a landslide pixel were kept
    expected = {
        (c, r)
        for r, y in enumerate(grid_origins(h, 128))
        for c, x in enumerate(grid_origins(w, 128))
        if mask[y : y + 128, x : x + 128].any() and (c, r) != (0, 0)
    }
    assert kept == expected


def test_min_fg_ratio_threshold_and_empty_result_is_an_error(tmp_path):
    write_composite(tmp_path / "comp.tif", 256, 128)
    mask = np.zeros((128, 256), np.uint8)
    mask[:10, :10] = 1  # 100 px in patch 0, none in patch 1
    write_inventory(tmp_path / "mask.tif", mask, nodata=None)
    windows = {"base": Window(0, 0, 256, 128)}
    index, _ = tile_regions(
        tmp_path / "comp.tif",
        tmp_path / "mask.tif",
        windows,
        tmp_path / "t1",
        size=128,
        band_names=BAND_NAMES,
    )
    assert list(index["col"]) == [0]
    with pytest.raises(InputError, match="no patch left"):
        tile_regions(
            tmp_path / "comp.tif",
            tmp_path / "mask.tif",
            windows,
            tmp_path / "t2",
            size=128,
            min_fg_ratio=0.01,
            band_names=BAND_NAMES,
        )


def test_mask_on_another_grid_is_refused_before_extraction(tmp_path):
    write_composite(tmp_path / "comp.tif", 256, 128)
    write_inventory(tmp_path / "mask.tif", np.ones((128, 256)), shift_px=(1, 0), nodata=None)
    with pytest.raises(InputError, match=r"mask\.tif.*not on the grid"):
        tile_regions(
            tmp_path / "comp.tif",
            tmp_path / "mask.tif",
            {"base": Window(0, 0, 256, 128)},
            tmp_path / "t",
            size=128,
            band_names=BAND_NAMES,
        )


def test_parallel_tiling_writes_the_same_bytes(tmp_path):
    w, h = 520, 300
    write_composite(tmp_path / "comp.tif", w, h, nodata_box=(0, 20, 0, 20))
    mask = (np.random.default_rng(3).random((h, w)) < 0.01).astype(np.uint8)
    write_inventory(tmp_path / "mask.tif", mask, nodata=None)
    windows = {"base": Window(0, 0, 300, h), "isolated": Window(300, 0, w - 300, h)}
    kwargs = {"size": 128, "band_names": BAND_NAMES}
    serial, s1 = tile_regions(
        tmp_path / "comp.tif", tmp_path / "mask.tif", windows, tmp_path / "t1", workers=1, **kwargs
    )
    parallel, s2 = tile_regions(
        tmp_path / "comp.tif", tmp_path / "mask.tif", windows, tmp_path / "t2", workers=2, **kwargs
    )
    assert s1 == s2
    assert serial.equals(parallel) and len(serial) > 4
    files1 = sorted(p.relative_to(tmp_path / "t1") for p in (tmp_path / "t1").rglob("*.tif"))
    files2 = sorted(p.relative_to(tmp_path / "t2") for p in (tmp_path / "t2").rglob("*.tif"))
    assert files1 == files2
    for rel in files1:
        assert (tmp_path / "t1" / rel).read_bytes() == (tmp_path / "t2" / rel).read_bytes()


def test_a_band_without_any_valid_value_is_named_as_the_cause(tmp_path):
    data = write_composite(tmp_path / "comp.tif", 256, 128)
    data[5] = np.nan  # thermal_inertia: NaN everywhere
    with rasterio.open(tmp_path / "comp.tif", "r+") as dst:
        dst.write(data)
    mask = np.ones((128, 256), np.uint8)
    write_inventory(tmp_path / "mask.tif", mask, nodata=None)
    with pytest.raises(
        InputError,
        match=r"no patch left.*the cause: region 'base': band\(s\) "
        r"\['thermal_inertia'\] hold no valid value",
    ):
        tile_regions(
            tmp_path / "comp.tif",
            tmp_path / "mask.tif",
            {"base": Window(0, 0, 256, 128)},
            tmp_path / "t",
            size=128,
            band_names=BAND_NAMES,
        )
