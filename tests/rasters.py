"""Tiny rasters made inside tests (no shared data needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS

from mmls.data.bands import BAND_NAMES

MARS_EQC = CRS.from_proj4(
    "+proj=eqc +lat_ts=0 +lat_0=0 +lon_0=0 +x_0=0 +y_0=0 +R=3396190 +units=m +no_defs"
)
PIXEL_M = 100.0
ORIGIN = (-4_000_000.0, -300_000.0)


def composite_transform() -> Affine:
    return Affine(PIXEL_M, 0.0, ORIGIN[0], 0.0, -PIXEL_M, ORIGIN[1])


def write_composite(
    path: Path,
    width: int,
    height: int,
    *,
    seed: int = 0,
    nodata_box: tuple[int, int, int, int] | None = None,
    count: int = len(BAND_NAMES),
    crs: CRS | None = MARS_EQC,
    descriptions: tuple[str, ...] | None = BAND_NAMES,
) -> np.ndarray:
    """A random float32 composite; ``nodata_box`` = (row0, row1, col0, col1) set to -9999."""
    rng = np.random.default_rng(seed)
    data = rng.random((count, height, width), dtype=np.float32)
    if nodata_box is not None:
        r0, r1, c0, c1 = nodata_box
        data[:, r0:r1, c0:c1] = -9999.0
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=width,
        height=height,
        count=count,
        dtype="float32",
        crs=crs,
        transform=composite_transform(),
        nodata=-9999.0,
    ) as dst:
        dst.write(data)
        if descriptions is not None:
            for i, name in enumerate(descriptions[:count], start=1):
                dst.set_band_description(i, name)
    return data


def write_inventory(
    path: Path,
    classes: np.ndarray,
    *,
    shift_px: tuple[int, int] = (0, 0),
    crs: CRS | None = MARS_EQC,
    nodata: int | None = 255,
    origin: tuple[float, float] = ORIGIN,
) -> None:
    """A uint8 class raster whose top-left corner is ``shift_px`` (dx, dy) left/up of ``origin``."""
    dx, dy = shift_px
    transform = Affine(
        PIXEL_M, 0.0, origin[0] - dx * PIXEL_M, 0.0, -PIXEL_M, origin[1] + dy * PIXEL_M
    )
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=classes.shape[1],
        height=classes.shape[0],
        count=1,
        dtype="uint8",
        crs=crs,
        transform=transform,
        nodata=nodata,
    ) as dst:
        dst.write(classes.astype(np.uint8), 1)


def write_tiled_composite(
    path: Path, count: int = len(BAND_NAMES), *, sparse: bool = False, describe: bool = False
) -> None:
    """A 512 x 512 composite in 256-px DEFLATE blocks (what a truncation cuts into).

    ``sparse``: its top-left block is all nodata and, with GDAL's SPARSE_OK, never written.
    ``describe``: band descriptions set after the pixels, which makes GDAL rewrite the TIFF
    directory at the file's end (without, it stays at the start, before the blocks)."""
    data = np.random.default_rng(0).random((count, 512, 512), dtype=np.float32)
    if sparse:
        data[:, :256, :256] = -9999.0
    profile = dict(
        driver="GTiff",
        width=512,
        height=512,
        count=count,
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
        for i, name in enumerate(BAND_NAMES[:count] if describe else (), start=1):
            dst.set_band_description(i, name)
