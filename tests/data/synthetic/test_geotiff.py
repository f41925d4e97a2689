"""The written GeoTIFFs: byte-identical, the composite's format and values, the inventory's grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.warp import Resampling, reproject

from mmls.data.bands import BAND_NAMES
from mmls.data.synthetic.config import NODATA
from mmls.data.synthetic.geotiff import write_scene
from mmls.data.synthetic.scene import SyntheticScene, generate_scene
from tests.data.synthetic.tiny import TINY


def test_same_seed_byte_identical_files(tmp_path: Path, written: tuple[Path, Path]) -> None:
    comp, inv = tmp_path / "c.tif", tmp_path / "i.tif"
    write_scene(generate_scene(TINY), comp, inv)
    assert comp.read_bytes() == written[0].read_bytes()
    assert inv.read_bytes() == written[1].read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.tif", "i.tif"]  # no temp files left


# --------------------------------------------------------------------------- the composite


def test_composite_format(written: tuple[Path, Path]) -> None:
    with rasterio.open(written[0]) as ds:
        assert ds.count == 7
        assert ds.dtypes == ("float32",) * 7
        assert ds.descriptions == BAND_NAMES
        assert ds.nodata == NODATA
        assert ds.crs == rasterio.crs.CRS.from_user_input(TINY.crs)
        assert ds.transform == TINY.transform
        assert (ds.width, ds.height) == (TINY.width, TINY.height)
        assert ds.block_shapes[0] == (256, 256)
        assert ds.tags(ns="IMAGE_STRUCTURE")["COMPRESSION"] == "DEFLATE"
        assert ds.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "3"
        assert "TIFFTAG_DATETIME" not in ds.tags()


def test_values_and_nodata(scene: SyntheticScene, written: tuple[Path, Path]) -> None:
    with rasterio.open(written[0]) as ds:
        bands = ds.read()
    np.testing.assert_array_equal(bands, scene.bands)
    nd = bands == NODATA
    assert (nd == nd[0]).all(), "nodata must hit every band at the same pixels"
    np.testing.assert_array_equal(nd[0], scene.nodata)
    valid = bands[:, ~nd[0]]
    assert valid.min() >= 0.0 and valid.max() <= 1.0
    assert abs(scene.nodata.mean() - TINY.nodata_fraction) < 0.005
    assert scene.truth[scene.nodata].sum() == 0
    for i, name in enumerate(BAND_NAMES):
        assert valid[i].std() > 0.01, f"{name} is nearly constant"


# --------------------------------------------------------------------------- the inventory


def test_inventory_grid_and_alignment(scene: SyntheticScene, written: tuple[Path, Path]) -> None:
    dx, dy = TINY.inventory_shift_px
    pad = TINY.inventory_pad_px
    with rasterio.open(written[1]) as inv_ds, rasterio.open(written[0]) as comp:
        inv = inv_ds.read(1)
        assert inv_ds.dtypes == ("uint8",) and inv_ds.nodata == 255
        assert inv_ds.crs == comp.crs
        assert inv_ds.res == comp.res
        assert inv_ds.transform != comp.transform
        assert inv_ds.transform.c == comp.transform.c - dx * TINY.pixel_size_m
        assert inv_ds.transform.f == comp.transform.f + dy * TINY.pixel_size_m
        assert (inv_ds.width, inv_ds.height) == (comp.width + dx + pad, comp.height + dy + pad)
        assert inv_ds.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "2"
        # nearest-neighbour alignment with GDAL, as the align stage does
        aligned = np.full((comp.height, comp.width), 255, np.uint8)
        reproject(
            inv,
            aligned,
            src_transform=inv_ds.transform,
            src_crs=inv_ds.crs,
            dst_transform=comp.transform,
            dst_crs=comp.crs,
            resampling=Resampling.nearest,
        )
    assert set(np.unique(inv)) == {0, 1, 255}
    h, w = scene.truth.shape
    window = inv[dy : dy + h, dx : dx + w]  # the shift is a whole number of pixels
    np.testing.assert_array_equal((window == 1).astype(np.uint8), scene.truth)
    np.testing.assert_array_equal((aligned == 1).astype(np.uint8), scene.truth)
    outside = np.ones(inv.shape, bool)
    outside[dy : dy + h, dx : dx + w] = False
    assert (inv[outside] == 255).all()
    assert (window[scene.nodata] == 255).all()
    unmapped = (window == 255) & ~scene.nodata
    assert unmapped.sum() == TINY.unmapped_patch_px**2
