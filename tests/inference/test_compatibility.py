"""Refusals before mapping: bands, CRS, pixel size, value convention, all nodata."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.windows import Window

from mmls.core.errors import InputError
from mmls.data.bands import BAND_NAMES
from mmls.inference.compatibility import (
    Allowances,
    band_order,
    check_scene,
    pixel_size_m,
    pixel_size_problem,
    refuse,
    value_problems,
)
from tests.bundles import RAW_DEM, tiny_bundle
from tests.rasters import write_composite

W = H = 96


def _scene(path, **kw):
    write_composite(path, W, H, **kw)
    return path


def test_bands_are_matched_by_name_and_reordered(tmp_path) -> None:
    reordered = tuple(reversed(BAND_NAMES))
    path = _scene(tmp_path / "s.tif", descriptions=reordered)
    with rasterio.open(path) as src:
        assert band_order(src, path, BAND_NAMES, None) == [7, 6, 5, 4, 3, 2, 1]
        assert band_order(src, path, ["dem"], None) == [4]


def test_without_descriptions_a_band_map_is_required(tmp_path) -> None:
    path = _scene(tmp_path / "s.tif", descriptions=None)
    with rasterio.open(path) as src:
        with pytest.raises(InputError, match=r"s\.tif: its 7 bands have no descriptions: give"):
            band_order(src, path, BAND_NAMES, None)
        with pytest.raises(InputError, match="the band map names 3 bands, the file has 7"):
            band_order(src, path, BAND_NAMES, ["red", "green", "blue"])
        with pytest.raises(InputError, match=r"name\(s\) \['nir'\] that are not bands"):
            band_order(src, path, BAND_NAMES, ["nir", *BAND_NAMES[1:]])
        with pytest.raises(InputError, match=r"has no band \['red'\]"):
            band_order(src, path, BAND_NAMES, ["-", *BAND_NAMES[1:]])
        assert band_order(src, path, ["dem", "red"], list(BAND_NAMES)) == [4, 1]


def test_pixel_size_in_metres_for_projected_and_geographic_crs(tmp_path) -> None:
    path = _scene(tmp_path / "m.tif")
    with rasterio.open(path) as src:
        assert pixel_size_m(src) == pytest.approx(100.0)
    mars_deg = CRS.from_proj4("+proj=longlat +R=3396190 +no_defs")
    profile = dict(
        driver="GTiff",
        width=10,
        height=10,
        count=1,
        dtype="float32",
        crs=mars_deg,
        transform=rasterio.transform.from_origin(0.0, 61.0, 0.01, 0.01),
    )
    with rasterio.open(tmp_path / "d.tif", "w", **profile) as dst:
        dst.write(np.zeros((1, 10, 10), np.float32))
    with rasterio.open(tmp_path / "d.tif") as src:  # centred at 60.95 deg N: x shrinks by cos
        metre_per_deg = np.pi / 180 * 3396190
        expected = np.sqrt(0.01 * metre_per_deg * np.cos(np.radians(60.95)) * 0.01 * metre_per_deg)
        assert pixel_size_m(src) == pytest.approx(expected)


def test_a_pixel_size_more_than_1_5x_off_is_refused_with_its_factor() -> None:
    bundle = tiny_bundle(pixel_size_m=232.0)
    assert pixel_size_problem(300.0, 232.0) is None
    with pytest.raises(
        InputError,
        match=r"s\.tif: pixel size 100 m is 2\.32x finer than the "
        r"model's 232 m \(more than 1\.5x\): use a model trained near 100 m",
    ):
        refuse("s.tif", 100.0, bundle, [], Allowances())
    notes = refuse("s.tif", 6.0, bundle, [], Allowances(pixel_size=True))
    assert notes == [
        "overridden: pixel size 6 m is 38.67x finer than the model's 232 m (more than 1.5x)"
    ]


def test_pixel_size_and_values_are_refused_together_in_one_line() -> None:
    bundle = tiny_bundle(pixel_size_m=232.0)
    with pytest.raises(InputError) as err:
        refuse("s.tif", 100.0, bundle, ["band dem: values lie in [0, 1]"], Allowances())
    assert "2.32x finer" in str(err.value) and "band dem: values lie in [0, 1]" in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="band dem") as err:  # one allowed, the other not
        refuse("s.tif", 100.0, bundle, ["band dem: x"], Allowances(pixel_size=True))
    assert "finer" not in str(err.value)


def test_values_scaled_to_0_1_against_a_raw_model_name_the_band() -> None:
    raw = tiny_bundle().convention.quantiles | {"dem": RAW_DEM}
    bundle = tiny_bundle(
        normalization={
            "mean": [0.5] * 3 + [-1400.0] + [0.5] * 3,
            "std": [0.29] * 3 + [1500.0] + [0.29] * 3,
            "nodata": None,
        }
    )
    bundle.convention.quantiles.update(raw)
    scene = np.array([[0.01, 0.5, 0.99]] * 7)
    assert value_problems(scene, bundle) == [
        "band dem: values lie in [0, 1] but the model was trained on raw metres "
        "(p1..p99 -4200..2600)"
    ]
    raw_scene = scene.copy()
    raw_scene[0] = [10.0, 120.0, 250.0]  # 8-bit red against a model trained on [0, 1]
    assert (
        "band red: values reach 10..250 but the model was trained on values scaled to [0, 1]"
        in (value_problems(raw_scene, bundle))
    )
    km = scene.copy()
    km[3] = [-4.2, -1.5, 2.6]  # the DEM in km: 1000x too small a spread
    assert "another unit or scaling" in value_problems(km, bundle)[0]


def test_check_scene_refuses_no_crs_and_all_nodata(tmp_path) -> None:
    bundle = tiny_bundle()
    full = Window(0, 0, W, H)
    no_crs = _scene(tmp_path / "nocrs.tif", crs=None)
    with rasterio.open(no_crs) as src, pytest.raises(InputError, match=r"nocrs\.tif: has no CRS"):
        check_scene(src, no_crs, bundle, full, None, Allowances())
    empty = _scene(tmp_path / "empty.tif", nodata_box=(0, H, 0, W))
    with rasterio.open(empty) as src, pytest.raises(InputError, match="the scene is all nodata"):
        check_scene(src, empty, bundle, full, None, Allowances())
    ok = _scene(tmp_path / "ok.tif")
    with rasterio.open(ok) as src:
        info = check_scene(src, ok, bundle, full, None, Allowances())
    assert info["file_bands"] == list(range(1, 8)) and info["overrides"] == []
