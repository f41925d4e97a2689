"""Where the windows of a whole-scene map lie: the region, the window origins, rows of windows.

Square windows of ``size`` px (the training tile size) at a stride of ``size - overlap_px``
along each axis, plus a terminal window flush with the far edge (:func:`window_origins`, the
overlapping analogue of :func:`mmls.geo.tiling.grid_origins`): nothing is padded beyond the
raster, and every pixel of the region is covered. The region is one window of ``regions.json``
or the whole composite (:func:`region_window`); its windows are processed one row of windows
at a time (:class:`RowPlan`), see :mod:`mmls.inference.blending`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rasterio.windows import Window

from mmls.core.errors import InputError
from mmls.core.paths import REGIONS_JSON
from mmls.geo.raster import Grid

#: The values of ``predict.region``: a window of ``regions.json``, or the whole composite.
REGIONS = ("isolated", "base", "all")


def region_window(regions_doc: Mapping[str, Any] | None, region: str, grid: Grid) -> Window:
    """Pixel window of ``region`` (``all`` = the whole composite) from ``regions.json``."""
    if region == "all":
        return Window(0, 0, grid.width, grid.height)
    if regions_doc is None or region not in (regions_doc.get("regions") or {}):
        raise InputError(REGIONS_JSON, f"has no region {region!r}")
    r = regions_doc["regions"][region]
    w = Window(int(r["col_off"]), int(r["row_off"]), int(r["width"]), int(r["height"]))
    if (
        w.col_off < 0
        or w.row_off < 0
        or w.col_off + w.width > grid.width
        or w.row_off + w.height > grid.height
    ):
        raise InputError(REGIONS_JSON, f"region {region!r} lies outside the grid")
    return w


def window_origins(extent: int, size: int, overlap: int = 0) -> list[int]:
    """Window origins along one axis: 0, stride, 2 stride, ... plus a terminal ``extent - size``.

    ``stride = size - overlap``. The terminal origin is added only when the regular ones do not
    reach the far edge. Empty when ``extent < size`` (no padding). With ``overlap = 0`` this is
    :func:`mmls.geo.tiling.grid_origins`.
    """
    if size <= 0 or not 0 <= overlap < size:
        raise ValueError(f"need size > 0 and 0 <= overlap < size, got {size}, {overlap}")
    if extent < size:
        return []
    origins = list(range(0, extent - size + 1, size - overlap))
    if origins[-1] + size < extent:
        origins.append(extent - size)
    return origins


@dataclass(frozen=True)
class RowPlan:
    """The windows of a region: origins along x and y, window size, blending weights."""

    col_off: int
    row_off: int
    width: int
    height: int
    xs: tuple[int, ...]
    ys: tuple[int, ...]
    size: int
    overlap: int

    @classmethod
    def of(cls, region: Window, size: int, overlap: int) -> RowPlan:
        """The ``size``-px windows over ``region`` (in composite pixels), ``overlap`` px apart."""
        w, h = int(region.width), int(region.height)
        xs, ys = window_origins(w, size, overlap), window_origins(h, size, overlap)
        return cls(
            int(region.col_off), int(region.row_off), w, h, tuple(xs), tuple(ys), size, overlap
        )

    def halo(self, a: int) -> int:
        """The first window row whose windows reach the first pixel row of window row ``a``:
        recomputing from there reproduces exactly what row ``a`` inherits from above."""
        h = a
        while h > 0 and self.ys[h - 1] + self.size > self.ys[a]:
            h -= 1
        return h
