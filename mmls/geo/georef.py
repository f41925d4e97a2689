"""Where released tiles sit: one grid per region, checked from the tiles' own georeferencing.

A released tile (col, row) of a region's 128-px grid (MMLSv2 Sec. 2.3) has its top-left corner
at ``origin + (col * S - dx, -(row * S - dy)) * pixel`` where ``dx = dy = 0`` for regular tiles
and, for the terminal origin of the last column / row, ``0 < d < S``: the tile is shifted back
so that it ends at the region's edge, overlapping its neighbour by ``d`` pixels. So every tile
of a region must agree on one grid origin (tile corner minus col/row x tile size x pixel size)
up to such a shift; a tile that fits neither is an error naming the file.

:func:`tile_offsets` returns each tile's pixel offset ``(x_off, y_off) = (col*S - dx,
row*S - dy)`` on the region's grid, which the leakage audit and the spatial grouping use (the
offsets make overlapping terminal tiles visible). Releases without georeferencing (MMLSv1) get
``x_off = col * S, y_off = row * S`` (:func:`plain_offsets`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from affine import Affine
from rasterio.crs import CRS

from mmls.core.errors import InputError

#: Offsets must be whole pixels to within this fraction of a pixel.
PIXEL_TOLERANCE = 1e-6


@dataclass(frozen=True)
class TileGeo:
    """What a tile file says about its position."""

    path: Path
    col: int
    row: int
    crs: CRS | None
    transform: Affine


@dataclass(frozen=True)
class RegionGrid:
    """A region's grid: CRS, pixel size and the corner of tile (0, 0)."""

    crs: CRS | None
    pixel_x: float
    pixel_y: float  # negative for north-up
    origin_x: float
    origin_y: float


def _whole(value: float, path: Path, what: str) -> int:
    nearest = round(value)
    if abs(value - nearest) > PIXEL_TOLERANCE:
        raise InputError(path, f"{what} is {value:.6f} px, not a whole number of pixels")
    return int(nearest)


def region_grid(tiles: Sequence[TileGeo], size: int) -> RegionGrid:
    """The grid of a region's tiles: their common CRS and pixel size, and the origin most
    tiles agree on (regular tiles outnumber the terminal ones)."""
    first = tiles[0]
    for t in tiles:
        if t.crs != first.crs:
            raise InputError(t.path, f"CRS {t.crs} differs from {first.path}'s {first.crs}")
        a, e = t.transform.a, t.transform.e
        if t.transform.b or t.transform.d or a <= 0 or e >= 0:
            raise InputError(t.path, f"rotated or flipped transform {tuple(t.transform)[:6]}")
        if (a, e) != (first.transform.a, first.transform.e):
            raise InputError(t.path, f"pixel size {(a, e)} differs from {first.path}'s")
    px, py = first.transform.a, first.transform.e

    def key(t: TileGeo) -> tuple[float, float]:
        return (
            round(t.transform.c - t.col * size * px, 6),
            round(t.transform.f - t.row * size * py, 6),
        )

    mode, _ = Counter(key(t) for t in tiles).most_common(1)[0]
    regular = [t for t in tiles if key(t) == mode]
    # exact values from the regular tiles nearest the origin (least float error)
    west = min(regular, key=lambda t: (t.col, t.row))
    north = min(regular, key=lambda t: (t.row, t.col))
    ox = west.transform.c - west.col * size * px
    oy = north.transform.f - north.row * size * py
    return RegionGrid(first.crs, px, py, ox, oy)


def tile_offsets(tiles: Sequence[TileGeo], size: int) -> tuple[RegionGrid, list[tuple[int, int]]]:
    """The region grid and each tile's pixel offset (x_off, y_off) on it (module docstring).

    Only the region's last column (largest ``col``) and last row may be shifted back, by less
    than ``size`` and by one shift per column / row: the terminal origins of Sec. 2.3."""
    grid = region_grid(tiles, size)
    last_col, last_row = max(t.col for t in tiles), max(t.row for t in tiles)
    offsets = []
    shifts: dict[str, tuple[int, Path]] = {}
    for t in tiles:
        x_off = _whole((t.transform.c - grid.origin_x) / grid.pixel_x, t.path, "the x offset")
        y_off = _whole((t.transform.f - grid.origin_y) / grid.pixel_y, t.path, "the y offset")
        dx, dy = t.col * size - x_off, t.row * size - y_off
        for axis, d, terminal in (("x", dx, t.col == last_col), ("y", dy, t.row == last_row)):
            if d == 0:
                continue
            if not (terminal and 0 < d < size):
                raise InputError(
                    t.path,
                    f"col {t.col}, row {t.row} does not sit on its region's grid (origin "
                    f"{grid.origin_x}, {grid.origin_y}): {dx}, {dy} px back from its grid cell, "
                    f"neither a regular tile (0) nor a terminal one (last column {last_col} / "
                    f"row {last_row}, less than {size} back)",
                )
            first = shifts.setdefault(axis, (d, t.path))
            if first[0] != d:
                raise InputError(
                    t.path,
                    f"terminal shift {d} px in {axis} differs from {first[0]} px of {first[1]}",
                )
        offsets.append((x_off, y_off))
    return grid, offsets


def plain_offsets(cols: Sequence[int], rows: Sequence[int], size: int) -> list[tuple[int, int]]:
    """Offsets of an ungeoreferenced release: its own zero-overlap grid."""
    return [(c * size, r * size) for c, r in zip(cols, rows, strict=True)]
