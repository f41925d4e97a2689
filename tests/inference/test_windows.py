"""Windows of a whole-scene map: origins cover every pixel without padding, the region comes
from regions.json, and a window row's halo reaches exactly the rows above that overlap it."""

from __future__ import annotations

import numpy as np
import pytest
from rasterio.windows import Window

from mmls.core.errors import InputError
from mmls.geo.raster import Grid
from mmls.geo.tiling import grid_origins
from mmls.inference.windows import RowPlan, region_window, window_origins
from tests.inference.scene_helpers import SIZE
from tests.rasters import MARS_EQC, composite_transform


@pytest.mark.parametrize("extent", [127, 128, 129, 200, 256, 300, 1000])
def test_window_origins(extent: int) -> None:
    assert window_origins(extent, SIZE, 0) == grid_origins(extent, SIZE)
    for overlap in (0, 1, 32, 64, 127):
        xs = window_origins(extent, SIZE, overlap)
        if extent < SIZE:
            assert xs == []
            continue
        assert xs[0] == 0 and xs[-1] == extent - SIZE  # covers both edges, no padding
        steps = np.diff(xs)
        assert (steps > 0).all() and (steps <= SIZE - overlap).all()


def test_region_window_reads_regions_json_and_rejects_what_is_not_on_the_grid() -> None:
    grid = Grid(MARS_EQC, composite_transform(), 400, 300)
    doc = {
        "regions": {
            "isolated": {"col_off": 200, "row_off": 10, "width": 200, "height": 290},
            "base": {"col_off": 250, "row_off": 0, "width": 200, "height": 300},
        }
    }
    assert region_window(None, "all", grid) == Window(0, 0, 400, 300)
    assert region_window(doc, "isolated", grid) == Window(200, 10, 200, 290)
    with pytest.raises(InputError, match="lies outside the grid"):
        region_window(doc, "base", grid)
    with pytest.raises(InputError, match="has no region"):
        region_window(None, "isolated", grid)


@pytest.mark.parametrize("overlap", [0, 32, 64, 100])
def test_halo_is_the_first_window_row_reaching_into_row_a(overlap: int) -> None:
    plan = RowPlan.of(Window(5, 7, 300, 700), SIZE, overlap)
    assert plan.ys == tuple(window_origins(700, SIZE, overlap))
    for a in range(len(plan.ys)):
        h = plan.halo(a)
        assert all(plan.ys[i] + SIZE > plan.ys[a] for i in range(h, a))
        assert h == 0 or plan.ys[h - 1] + SIZE <= plan.ys[a]
