"""Rebuild a scene from georeferenced released tiles: the raster route on real MMLSv2.

Every tile is placed at its own position (its region grid and pixel offset, :mod:`mmls.geo.georef`)
in one composite GeoTIFF (project band order, float32, nodata NaN: released values are raw, a
DEM of -9999 m is not impossible) and one inventory GeoTIFF (uint8: 1 landslide and 0 background
where a mask was released, 255 = nodata where none was). Where tiles overlap (terminal origins,
Sec. 2.3) they must agree pixel for pixel, image and mask; otherwise the rebuild stops with an
error naming both files. Pixels no tile covers are nodata in both rasters.

The scene is written in strips one tile high (the outputs' block height is the tile size), each
holding only the tiles that intersect it, so memory is bounded by a row of tiles (and GDAL's
block cache, capped at :data:`GDAL_CACHE_MB`), not by the scene. Regions on different grids
must be offset by whole pixels from each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
from affine import Affine
from rasterio.windows import Window

from mmls.core.errors import InputError
from mmls.core.io import PathLike, atomic_path, open_raster, read_raster
from mmls.core.paths import tile_paths
from mmls.geo.georef import TileGeo, tile_offsets
from mmls.geo.raster import Grid, geotiff_profile

GDAL_CACHE_MB = 64
INVENTORY_NODATA = 255
COMPOSITE_NODATA = float("nan")


@dataclass(frozen=True)
class Placed:
    """One tile at its scene position."""

    image: Path
    mask: Path | None
    x: int  # column of its top-left pixel in the scene
    y: int


def scene_grid(tiles: pd.DataFrame, tiles_dir: PathLike, size: int) -> tuple[Grid, list[Placed]]:
    """The scene grid and every tile's place. The scene starts at the regions' grid origins
    (the corner of tile (0, 0), found from the tiles' own georeferencing), not at the first
    tile, so that tiling the scene numbers its patches as the release does."""
    geos, origins = [], {}
    for region in sorted(tiles["region"].unique()):
        rows = tiles[tiles["region"] == region]
        region_geos = []
        for rec in rows.itertuples(index=False):
            image, _ = tile_paths(tiles_dir, rec.region, rec.col, rec.row)
            with open_raster(image) as src:
                if src.crs is None:
                    raise InputError(image, "has no CRS: a scene needs georeferenced tiles")
                region_geos.append(TileGeo(image, rec.col, rec.row, src.crs, src.transform))
        origins[region], _ = tile_offsets(region_geos, size)
        geos.extend(region_geos)
    grids = list(origins.values())
    first = grids[0]
    for g in grids[1:]:
        if g.crs != first.crs or (g.pixel_x, g.pixel_y) != (first.pixel_x, first.pixel_y):
            raise InputError(tiles_dir, "the regions' tiles differ in CRS or pixel size")
    left = min(g.origin_x for g in grids)
    top = max(g.origin_y for g in grids)
    placed = []
    for geo, rec in zip(geos, tiles.sort_values("region", kind="stable").itertuples(), strict=True):
        grid = origins[rec.region]
        x = (grid.origin_x - left) / first.pixel_x + rec.x_off
        y = (grid.origin_y - top) / first.pixel_y + rec.y_off
        if abs(x - round(x)) > 1e-6 or abs(y - round(y)) > 1e-6:
            raise InputError(
                geo.path, "its region's grid is not offset from the others by whole pixels"
            )
        mask = tile_paths(tiles_dir, rec.region, rec.col, rec.row)[1] if rec.labelled else None
        placed.append(Placed(geo.path, mask, round(x), round(y)))
    width = max(p.x for p in placed) + size
    height = max(p.y for p in placed) + size
    transform = Affine(first.pixel_x, 0.0, left, 0.0, first.pixel_y, top)
    return Grid(first.crs, transform, width, height), placed


def scene_offsets(tiles: pd.DataFrame, tiles_dir: PathLike, size: int) -> pd.DataFrame:
    """``tiles`` with ``x_off, y_off`` moved from each region's grid to the scene frame of
    :func:`scene_grid` (one frame for all regions), as the leakage audit needs them."""
    _, placed = scene_grid(tiles, tiles_dir, size)
    out = tiles.sort_values("region", kind="stable").copy()
    out["x_off"] = [p.x for p in placed]
    out["y_off"] = [p.y for p in placed]
    return out.loc[tiles.index]


def _place(
    buf: np.ndarray,
    owner: np.ndarray,
    data: np.ndarray,
    rows: slice,
    cols: slice,
    idx: int,
    names: Sequence[Path],
) -> None:
    """Write ``data`` into ``buf[..., rows, cols]``; where another tile was there, they must
    agree (NaN-aware), else an error naming both files."""
    region = buf[..., rows, cols]
    taken = owner[rows, cols] >= 0
    if taken.any():
        old, new = region[..., taken], data[..., taken]
        same = old == new
        if buf.dtype.kind == "f":
            same |= np.isnan(old) & np.isnan(new)
        per_pixel = same.all(axis=0) if same.ndim == 2 else same
        if not per_pixel.all():
            other = names[int(owner[rows, cols][taken][np.argmin(per_pixel)])]
            raise InputError(names[idx], f"overlaps {other} with different values")
    region[...] = data
    owner[rows, cols] = idx


def rebuild_scene(
    tiles: pd.DataFrame,
    tiles_dir: PathLike,
    composite_out: PathLike,
    inventory_out: PathLike,
    *,
    bands: Sequence[str],
    size: int,
) -> Grid:
    """Write the composite and inventory of ``tiles`` (splits rows with ``labelled``)."""
    grid, placed = scene_grid(tiles, tiles_dir, size)
    images = [p.image for p in placed]
    masks = [p.mask or p.image for p in placed]
    comp_profile = geotiff_profile(grid, len(bands), "float32", COMPOSITE_NODATA, blocksize=size)
    inv_profile = geotiff_profile(grid, 1, "uint8", nodata=INVENTORY_NODATA, blocksize=size)
    with (
        rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB),
        atomic_path(composite_out) as comp_tmp,
        atomic_path(inventory_out) as inv_tmp,
        rasterio.open(comp_tmp, "w", **comp_profile) as comp,
        rasterio.open(inv_tmp, "w", **inv_profile) as inv,
    ):
        for i, name in enumerate(bands, start=1):
            comp.set_band_description(i, name)
        for y0 in range(0, grid.height, size):
            h = min(size, grid.height - y0)
            image_buf = np.full((len(bands), h, grid.width), np.nan, np.float32)
            mask_buf = np.full((h, grid.width), INVENTORY_NODATA, np.uint8)
            image_owner = np.full((h, grid.width), -1, np.int32)
            mask_owner = np.full((h, grid.width), -1, np.int32)
            for idx, p in enumerate(placed):
                lo, hi = max(p.y, y0), min(p.y + size, y0 + h)
                if lo >= hi:
                    continue
                tile_rows = Window(0, lo - p.y, size, hi - lo)
                rows, cols = slice(lo - y0, hi - y0), slice(p.x, p.x + size)
                with open_raster(p.image) as src:
                    data = read_raster(src, window=tile_rows, out_dtype="float32")
                _place(image_buf, image_owner, data, rows, cols, idx, images)
                if p.mask is not None:
                    with open_raster(p.mask) as src:
                        m = read_raster(src, 1, window=tile_rows)
                    _place(mask_buf, mask_owner, m, rows, cols, idx, masks)
            window = Window(0, y0, grid.width, h)
            comp.write(image_buf, window=window)
            inv.write(mask_buf, 1, window=window)
    return grid


def compare_tiles(
    released: pd.DataFrame,
    released_dir: PathLike,
    regenerated: pd.DataFrame,
    regenerated_dir: PathLike,
) -> dict[str, int | float | list[str]]:
    """How many labelled released tiles the raster route regenerated: same (region, col, row),
    image and mask pixels bit for bit, same CRS, transform within 1e-6 px. ``differing`` names
    the tiles (``region/col/row``) found in both that are not identical."""
    keys = ["region", "col", "row"]
    want = released[released["labelled"].astype(bool)][keys]
    got = regenerated[keys]
    both = want.merge(got, on=keys)
    identical, max_dt, differing = 0, 0.0, []
    for rec in both.itertuples(index=False):
        same, tile_dt = True, 0.0
        for a_path, b_path in zip(
            tile_paths(released_dir, rec.region, rec.col, rec.row),
            tile_paths(regenerated_dir, rec.region, rec.col, rec.row),
            strict=True,
        ):
            with open_raster(a_path) as a, open_raster(b_path) as b:
                same &= read_raster(a).tobytes() == read_raster(b).tobytes() and a.crs == b.crs
                dt = max(abs(x - y) for x, y in zip(a.transform[:6], b.transform[:6], strict=True))
                tile_dt = max(tile_dt, dt / abs(a.transform.a))
        max_dt = max(max_dt, tile_dt)
        if same and tile_dt <= 1e-6:
            identical += 1
        else:
            differing.append(f"{rec.region}/col{rec.col}/row{rec.row}")
    return {
        "n_released_labelled": len(want),
        "n_regenerated": len(got),
        "n_both": len(both),
        "n_identical": identical,
        "n_missing": len(want) - len(both),
        "n_extra": len(got) - len(both),
        "max_transform_diff_px": max_dt,
        "differing": differing,
    }
