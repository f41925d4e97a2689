"""Composite validation: a truncated GeoTIFF fails where it is first opened."""

from __future__ import annotations

import pytest

from mmls.core.errors import InputError
from mmls.data.bands import BAND_NAMES
from mmls.geo.raster import check_composite
from tests.rasters import write_tiled_composite


def test_a_truncated_composite_fails_at_the_first_stage_that_opens_it(tmp_path) -> None:
    path = tmp_path / "composite.tif"
    write_tiled_composite(path)
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
    write_tiled_composite(tmp_path / "sparse.tif", sparse=True)
    check_composite(tmp_path / "sparse.tif", BAND_NAMES)
