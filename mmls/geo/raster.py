"""Raster grids, composite validation and windowed GeoTIFF writing.

A :class:`Grid` is what MMLSv2 Sec. 2.2 requires two rasters to share before any split or patch
extraction: CRS, affine transform, width and height.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Interleaving
from rasterio.windows import Window

from mmls.core.config import Section
from mmls.core.errors import InputError
from mmls.core.io import PathLike, open_raster


class SceneConfig(Section):
    """The ``scene`` params section: the two raw inputs of the raster route (Sec. 2.1-2.2)."""

    composite: str  # the multi-band composite GeoTIFF (band order: the `bands` param)
    inventory: str | None  # landslide inventory: a class raster or polygons (GeoPackage, ...);
    # null: a scene without inventory (a new region), mapped by `predict` but never scored


@dataclass(frozen=True)
class Grid:
    """The pixel grid of a raster: CRS, affine transform, width and height."""

    crs: CRS | None
    transform: Affine
    width: int
    height: int

    @classmethod
    def of(cls, dataset: rasterio.io.DatasetReader) -> Grid:
        return cls(dataset.crs, dataset.transform, dataset.width, dataset.height)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in CRS units."""
        return rasterio.transform.array_bounds(self.height, self.width, self.transform)[:4]

    def differences(self, other: Grid) -> list[str]:
        """Human-readable list of what differs between two grids (empty when identical)."""
        problems = []
        if self.crs != other.crs:
            problems.append(f"CRS {other.crs} != {self.crs}")
        if self.transform != other.transform:
            problems.append(
                f"transform {tuple(other.transform)[:6]} != {tuple(self.transform)[:6]}"
            )
        if (self.width, self.height) != (other.width, other.height):
            problems.append(f"size {other.width}x{other.height} != {self.width}x{self.height}")
        return problems


def check_same_grid(reference: Grid, reference_path: PathLike, other_path: PathLike) -> None:
    """Sanity check of Sec. 2.2: ``other_path`` must lie exactly on ``reference``'s grid."""
    with open_raster(other_path) as ds:
        other = Grid.of(ds)
    problems = reference.differences(other)
    if problems:
        raise InputError(other_path, f"not on the grid of {reference_path}: " + "; ".join(problems))


def check_north_up(grid: Grid, path: PathLike) -> None:
    t = grid.transform
    if t.b != 0 or t.d != 0 or t.a <= 0 or t.e >= 0:
        raise InputError(path, f"rotated or flipped geotransform {tuple(t)[:6]} is not supported")


def check_composite(path: PathLike, band_names: Sequence[str]) -> Grid:
    """Validate the 7-band composite: readable, georeferenced, band count/names as configured."""
    with open_raster(path) as ds:
        grid = Grid.of(ds)
        if ds.crs is None:
            raise InputError(path, "composite has no CRS (georeferencing is required)")
        if ds.count != len(band_names):
            raise InputError(
                path,
                f"composite has {ds.count} band(s) but params `bands` names {len(band_names)}: "
                f"{list(band_names)}",
            )
        descriptions = list(ds.descriptions)
        if all(descriptions) and descriptions != list(band_names):
            raise InputError(
                path,
                f"band descriptions {descriptions} do not match params `bands` {list(band_names)}",
            )
        if ds.width == 0 or ds.height == 0:
            raise InputError(path, "composite is empty (0 pixels)")
        check_complete(ds, path)
    check_north_up(grid, path)
    return grid


def check_complete(ds: rasterio.DatasetReader, path: PathLike) -> None:
    """A GeoTIFF whose blocks all lie within the file: a truncated file (an interrupted copy or
    download) fails here, at the first stage that opens it, not stages later in the middle of a
    windowed read. Reads only the TIFF's block offsets, not the pixels (a corrupt block inside
    the file is found by the read that meets it, which names the file and window). Sparse
    blocks (never written: nodata) have no offset and are fine."""
    if ds.driver != "GTiff":
        return
    file_size = Path(ds.name).stat().st_size
    bands = [1] if ds.interleaving == Interleaving.pixel else list(range(1, ds.count + 1))
    for band in bands:
        for (i, j), window in ds.block_windows(band):
            offset = ds.get_tag_item(f"BLOCK_OFFSET_{j}_{i}", "TIFF", bidx=band)
            size = ds.get_tag_item(f"BLOCK_SIZE_{j}_{i}", "TIFF", bidx=band)
            if offset and size and int(offset) + int(size) > file_size:
                raise InputError(
                    path,
                    f"truncated: the block of band {band} at cols {window.col_off}.."
                    f"{window.col_off + window.width}, rows {window.row_off}.."
                    f"{window.row_off + window.height} ends at byte {int(offset) + int(size)}, "
                    f"beyond the file's {file_size} bytes",
                )


def iter_windows(width: int, height: int, window_px: int) -> Iterator[Window]:
    """Row-major windows of at most ``window_px`` x ``window_px`` covering a width x height grid."""
    if window_px <= 0:
        raise ValueError("window_px must be positive")
    for row_off in range(0, height, window_px):
        for col_off in range(0, width, window_px):
            yield Window(
                col_off, row_off, min(window_px, width - col_off), min(window_px, height - row_off)
            )


def geotiff_profile(
    grid: Grid, count: int, dtype: str, nodata: float | None = None, blocksize: int = 256
) -> dict[str, Any]:
    """Profile of a tiled, DEFLATE-compressed GeoTIFF on ``grid`` (deterministic bytes)."""
    tiled = grid.width >= blocksize and grid.height >= blocksize
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": count,
        "dtype": dtype,
        "crs": grid.crs,
        "transform": grid.transform,
        "nodata": nodata,
        "compress": "deflate",
        "predictor": 3 if np.dtype(dtype).kind == "f" else 2,
    }
    if tiled:
        profile.update(tiled=True, blockxsize=blocksize, blockysize=blocksize)
    return profile


def overlap_fraction(grid: Grid, other_bounds: tuple[float, float, float, float]) -> float:
    """Share of ``grid``'s area covered by the box ``other_bounds`` (same CRS)."""
    left, bottom, right, top = grid.bounds
    o_left, o_bottom, o_right, o_top = other_bounds
    dx = min(right, o_right) - max(left, o_left)
    dy = min(top, o_top) - max(bottom, o_bottom)
    if dx <= 0 or dy <= 0:
        return 0.0
    return (dx * dy) / ((right - left) * (top - bottom))
