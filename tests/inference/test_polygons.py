"""Landslide polygons: in the composite's CRS, rasterising back to the mask they came from, with
areas from pixel counts; areas need a projected CRS."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from rasterio.crs import CRS
from rasterio.features import rasterize
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from mmls.core.errors import InputError
from mmls.geo.raster import Grid
from mmls.inference.components import ObjectTracker
from mmls.inference.polygons import POLYGONS_LAYER, write_polygons
from tests.rasters import MARS_EQC, PIXEL_M, composite_transform


def blobs() -> np.ndarray:
    mask = np.zeros((30, 40), bool)
    mask[2:9, 3:12] = True
    mask[4:6, 6:9] = False  # a hole
    mask[15:28, 20:24] = True
    mask[20:23, 24:38] = True
    mask[0, 39] = True  # one pixel in a corner
    return mask


@pytest.mark.parametrize("with_truth", [False, True])
def test_polygons_rasterize_back_to_the_mask_in_the_crs(tmp_path, with_truth: bool) -> None:
    mask = blobs()
    region = Window(7, 11, mask.shape[1], mask.shape[0])
    grid = Grid(MARS_EQC, composite_transform(), 60, 50)
    tracker = ObjectTracker(mask.shape[1])
    prob = np.where(mask, 0.75, 0.0)
    prob[2, 3] = 0.9
    truth = np.zeros_like(mask)
    truth[15:18, 20:22] = True
    tracker.feed(mask[:13], prob[:13], truth[:13] if with_truth else None)
    tracker.feed(mask[13:], prob[13:], truth[13:] if with_truth else None)
    components, _ = tracker.finish()
    to_crs = window_transform(region, grid.transform)
    gdf = write_polygons(tmp_path / "p.gpkg", components, to_crs, grid)
    back = gpd.read_file(tmp_path / "p.gpkg", layer=POLYGONS_LAYER)
    assert len(back) == len(gdf) == 3 and back.crs == MARS_EQC
    burnt = rasterize(
        [(g, 1) for g in back.geometry], out_shape=(50, 60), transform=grid.transform, fill=0
    )
    expected = np.zeros((50, 60), np.uint8)
    expected[11 : 11 + 30, 7 : 7 + 40] = mask
    np.testing.assert_array_equal(burnt, expected)
    np.testing.assert_allclose(back.area, back["area_m2"], rtol=1e-9)
    np.testing.assert_array_equal(back["area_m2"], back["n_pixels"] * PIXEL_M**2)
    assert sorted(back["max_prob"]) == [0.75, 0.75, 0.9]
    np.testing.assert_allclose(
        back["mean_prob"] * back["n_pixels"], [c.prob_sum for c in components]
    )
    if with_truth:
        assert sorted(back["matched"]) == [False, False, True]
    else:
        assert "matched" not in back.columns


def test_areas_need_a_projected_crs(tmp_path) -> None:
    mask = blobs()
    tracker = ObjectTracker(mask.shape[1])
    tracker.feed(mask)
    components, _ = tracker.finish()
    grid = Grid(CRS.from_epsg(4326), composite_transform(), 40, 30)
    with pytest.raises(InputError, match="projected CRS"):
        write_polygons(tmp_path / "p.gpkg", components, grid.transform, grid)
    assert not (tmp_path / "p.gpkg").exists()
