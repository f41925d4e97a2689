"""align_mask and binarize (Sec. 2.2) on tiny rasters made here."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from shapely.geometry import Polygon, box

from mmls.core.errors import InputError
from mmls.data.bands import BAND_NAMES
from mmls.geo.align import (
    InvalidGeometryWarning,
    PartialCoverageWarning,
    align_inventory,
    binarize_mask,
)
from mmls.geo.raster import Grid, check_composite
from tests.rasters import MARS_EQC, ORIGIN, PIXEL_M, write_composite, write_inventory

W, H = 70, 50


@pytest.fixture
def composite(tmp_path):
    path = tmp_path / "composite.tif"
    write_composite(path, W, H)
    return path, check_composite(path, BAND_NAMES)


def shifted_classes(seed=1, shift=(5, 3), pad=9):
    """Classes on a grid shifted (dx, dy) left/up and `pad` px larger; returns (big, truth)."""
    dx, dy = shift
    rng = np.random.default_rng(seed)
    big = rng.choice(np.array([0, 1, 2, 255], dtype=np.uint8), size=(H + dy + pad, W + dx + pad))
    return big, big[dy : dy + H, dx : dx + W]


def read(path):
    with rasterio.open(path) as ds:
        return ds.read(1), Grid.of(ds)


@pytest.mark.parametrize("window_px", [7, 1024])
def test_raster_inventory_on_shifted_larger_grid_is_aligned_exactly(tmp_path, composite, window_px):
    comp_path, grid = composite
    big, truth = shifted_classes()
    write_inventory(tmp_path / "inv.tif", big, shift_px=(5, 3))
    report = align_inventory(grid, tmp_path / "inv.tif", tmp_path / "out.tif", window_px=window_px)
    aligned, out_grid = read(tmp_path / "out.tif")
    assert out_grid == grid
    np.testing.assert_array_equal(aligned, truth)
    assert report.kind == "raster" and report.covered_fraction == 1.0


def test_binarize_maps_only_the_landslide_class_to_one(tmp_path, composite):
    _, grid = composite
    big, truth = shifted_classes()
    write_inventory(tmp_path / "inv.tif", big, shift_px=(5, 3))
    align_inventory(grid, tmp_path / "inv.tif", tmp_path / "aligned.tif")
    fg, total = binarize_mask(grid, tmp_path / "aligned.tif", tmp_path / "mask.tif", window_px=16)
    mask, _ = read(tmp_path / "mask.tif")
    assert mask.dtype == np.uint8
    np.testing.assert_array_equal(mask, (truth == 1).astype(np.uint8))
    assert fg == int((truth == 1).sum()) and total == W * H
    # another class value is another target
    binarize_mask(grid, tmp_path / "aligned.tif", tmp_path / "mask2.tif", landslide_class=2)
    np.testing.assert_array_equal(read(tmp_path / "mask2.tif")[0], (truth == 2).astype(np.uint8))


def test_partial_coverage_warns_with_fraction_and_leaves_background(tmp_path, composite):
    _, grid = composite
    half = np.ones((H, W // 2), dtype=np.uint8)  # covers the western half only
    write_inventory(tmp_path / "inv.tif", half)
    with pytest.warns(PartialCoverageWarning, match="50.0%"):
        report = align_inventory(grid, tmp_path / "inv.tif", tmp_path / "aligned.tif")
    assert report.covered_fraction == pytest.approx(0.5)
    binarize_mask(grid, tmp_path / "aligned.tif", tmp_path / "mask.tif")
    mask, _ = read(tmp_path / "mask.tif")
    assert mask[:, : W // 2].all() and not mask[:, W // 2 :].any()


def pixel_box(c0, r0, c1, r1):
    """Box covering pixel columns c0..c1-1 and rows r0..r1-1 of the composite, in EQC metres."""
    x0, y0 = ORIGIN
    return box(x0 + c0 * PIXEL_M, y0 - r1 * PIXEL_M, x0 + c1 * PIXEL_M, y0 - r0 * PIXEL_M)


@pytest.mark.parametrize("suffix", [".gpkg", ".shp", ".fgb"])
def test_vector_inventory_is_rasterized_on_the_grid(tmp_path, composite, suffix):
    _, grid = composite
    gdf = gpd.GeoDataFrame(
        {"class": ["landslide", "landslide", "crater"]},
        geometry=[pixel_box(2, 3, 12, 9), pixel_box(40, 20, 45, 48), pixel_box(20, 20, 30, 30)],
        crs=MARS_EQC,
    )
    gdf.to_file(tmp_path / f"inv{suffix}")
    align_inventory(
        grid,
        tmp_path / f"inv{suffix}",
        tmp_path / "out.tif",
        window_px=16,
        class_column="class",
        class_value="landslide",
    )
    out, out_grid = read(tmp_path / "out.tif")
    expected = np.zeros((H, W), dtype=np.uint8)
    expected[3:9, 2:12] = 1
    expected[20:48, 40:45] = 1
    assert out_grid == grid
    np.testing.assert_array_equal(out, expected)


def test_vector_inventory_in_another_crs_is_reprojected(tmp_path, composite):
    _, grid = composite
    geographic = CRS.from_proj4("+proj=longlat +R=3396190 +no_defs")
    gdf = gpd.GeoDataFrame(geometry=[pixel_box(10, 10, 30, 25)], crs=MARS_EQC).to_crs(geographic)
    gdf.to_file(tmp_path / "inv.gpkg")
    align_inventory(grid, tmp_path / "inv.gpkg", tmp_path / "out.tif")
    out, _ = read(tmp_path / "out.tif")
    expected = np.zeros((H, W), dtype=np.uint8)
    expected[10:25, 10:30] = 1
    np.testing.assert_array_equal(out, expected)


def test_inventory_not_overlapping_is_an_error_naming_the_file(tmp_path, composite):
    _, grid = composite
    far = (ORIGIN[0] + 1e7, ORIGIN[1])
    write_inventory(tmp_path / "far.tif", np.ones((10, 10)), origin=far)
    with pytest.raises(InputError, match=r"far\.tif.*does not overlap"):
        align_inventory(grid, tmp_path / "far.tif", tmp_path / "out.tif")
    assert not (tmp_path / "out.tif").exists()
    gpd.GeoDataFrame(
        geometry=[box(far[0], far[1] - 500, far[0] + 500, far[1])], crs=MARS_EQC
    ).to_file(tmp_path / "far.gpkg")
    with pytest.raises(InputError, match=r"far\.gpkg.*no inventory feature overlaps"):
        align_inventory(grid, tmp_path / "far.gpkg", tmp_path / "out.tif")
    assert not (tmp_path / "out.tif").exists()


def test_bad_composites_are_errors_naming_the_file(tmp_path):
    write_composite(tmp_path / "nocrs.tif", 20, 20, crs=None)
    with pytest.raises(InputError, match=r"nocrs\.tif.*no CRS"):
        check_composite(tmp_path / "nocrs.tif", BAND_NAMES)
    write_composite(tmp_path / "six.tif", 20, 20, count=6)
    with pytest.raises(InputError, match=r"six\.tif.*6 band"):
        check_composite(tmp_path / "six.tif", BAND_NAMES)
    write_composite(tmp_path / "order.tif", 20, 20, descriptions=tuple(reversed(BAND_NAMES)))
    with pytest.raises(InputError, match=r"order\.tif.*descriptions"):
        check_composite(tmp_path / "order.tif", BAND_NAMES)
    (tmp_path / "empty.tif").write_bytes(b"")
    with pytest.raises(InputError, match=r"empty\.tif.*empty"):
        check_composite(tmp_path / "empty.tif", BAND_NAMES)
    (tmp_path / "junk.tif").write_bytes(b"this is not a GeoTIFF" * 50)
    with pytest.raises(InputError, match=r"junk\.tif.*not a readable raster"):
        check_composite(tmp_path / "junk.tif", BAND_NAMES)
    with pytest.raises(InputError, match=r"missing\.tif.*not found"):
        check_composite(tmp_path / "missing.tif", BAND_NAMES)


def test_bad_inventories_are_errors_naming_the_file(tmp_path, composite):
    _, grid = composite
    (tmp_path / "junk.gpkg").write_bytes(b"garbage" * 100)
    with pytest.raises(InputError, match=r"junk\.gpkg.*not a readable vector"):
        align_inventory(grid, tmp_path / "junk.gpkg", tmp_path / "out.tif")
    gpd.GeoDataFrame(geometry=[], crs=MARS_EQC).to_file(tmp_path / "none.gpkg")
    with pytest.raises(InputError, match=r"none\.gpkg.*no features"):
        align_inventory(grid, tmp_path / "none.gpkg", tmp_path / "out.tif")
    write_inventory(tmp_path / "nocrs.tif", np.ones((H, W)), crs=None)
    with pytest.raises(InputError, match=r"nocrs\.tif.*no CRS"):
        align_inventory(grid, tmp_path / "nocrs.tif", tmp_path / "out.tif")
    assert not (tmp_path / "out.tif").exists()


def test_full_coverage_does_not_warn(tmp_path, composite):
    _, grid = composite
    big, _ = shifted_classes()
    write_inventory(tmp_path / "inv.tif", big, shift_px=(5, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        align_inventory(grid, tmp_path / "inv.tif", tmp_path / "out.tif")


def test_vector_inventory_in_an_earth_crs_is_a_clear_error(tmp_path, composite):
    _, grid = composite
    # GeoJSON cannot hold a Mars CRS: GDAL reads it back as EPSG:4326 (Earth)
    gpd.GeoDataFrame(geometry=[pixel_box(1, 1, 5, 5)], crs=MARS_EQC).to_file(tmp_path / "m.geojson")
    with pytest.raises(InputError, match=r"m\.geojson.*cannot reproject"):
        align_inventory(grid, tmp_path / "m.geojson", tmp_path / "out.tif")
    assert not (tmp_path / "out.tif").exists()


def test_self_intersecting_polygons_are_repaired_with_a_counted_warning(tmp_path, composite):
    _, grid = composite
    x0, y0 = ORIGIN[0], ORIGIN[1]
    # a bow-tie over pixels 10..30 (cols) x 10..30 (rows): its outline crosses itself
    bow_tie = Polygon(
        [
            (x0 + 10 * PIXEL_M, y0 - 10 * PIXEL_M),
            (x0 + 30 * PIXEL_M, y0 - 30 * PIXEL_M),
            (x0 + 30 * PIXEL_M, y0 - 10 * PIXEL_M),
            (x0 + 10 * PIXEL_M, y0 - 30 * PIXEL_M),
        ]
    )
    gdf = gpd.GeoDataFrame(geometry=[bow_tie, pixel_box(50, 5, 60, 15)], crs=MARS_EQC)
    assert not gdf.is_valid.all()
    gdf.to_file(tmp_path / "inv.gpkg")
    with pytest.warns(InvalidGeometryWarning, match=r"inv\.gpkg: 1 invalid polygon\(s\) repaired"):
        align_inventory(grid, tmp_path / "inv.gpkg", tmp_path / "out.tif", window_px=16)
    out, _ = read(tmp_path / "out.tif")
    # both lobes of the bow-tie are burnt (triangles left and right of its crossing at 20, 20,
    # ~100 px each), the box as before
    assert out[18:22, 12:18].all() and out[18:22, 22:28].all()
    assert out[5:15, 50:60].all()
    assert 180 <= int(out[10:30, 10:30].sum()) <= 240
