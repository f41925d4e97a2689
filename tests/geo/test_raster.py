"""Composite validation: a truncated GeoTIFF fails where it is first opened."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from mmls.core.errors import InputError
from mmls.data.bands import BAND_NAMES
from mmls.geo.raster import check_composite
from tests.rasters import MARS_EQC, composite_transform


def _tiled_composite(path, sparse: bool = False, describe: bool = False) -> None:
    """A tiled 7-band composite; setting band descriptions afterwards makes GDAL rewrite the
    TIFF directory at the file's end (else it stays at the start, before the blocks)."""
    data = np.random.default_rng(0).random((7, 512, 512), dtype=np.float32)
    if sparse:
        data[:, :256, :256] = -9999.0  # a block GDAL never writes with SPARSE_OK
    profile = dict(
        driver="GTiff",
        width=512,
        height=512,
        count=7,
        dtype="float32",
        tiled=True,
        blockxsize=256,
        blockysize=256,
        compress="deflate",
        crs=MARS_EQC,
        transform=composite_transform(),
        nodata=-9999.0,
        sparse_ok=sparse,
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for i, name in enumerate(BAND_NAMES if describe else (), start=1):
            dst.set_band_description(i, name)


def test_a_truncated_composite_fails_at_the_first_stage_that_opens_it(tmp_path) -> None:
    path = tmp_path / "composite.tif"
    _tiled_composite(path)
    check_composite(path, BAND_NAMES)
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)
    with pytest.raises(
        InputError,
        match=r"composite\.tif: truncated: the block of band 1 at "
        r"cols 256\.\.512, rows 0\.\.256 ends at byte",
    ):
        check_composite(path, BAND_NAMES)


def test_sparse_blocks_are_not_taken_for_truncation(tmp_path) -> None:
    _tiled_composite(tmp_path / "sparse.tif", sparse=True)
    check_composite(tmp_path / "sparse.tif", BAND_NAMES)
