"""Small released tile folders written by tests, in the layouts of mmls/data/releases.py."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning

from mmls.data.bands import BAND_NAMES
from mmls.data.releases import LAYOUTS

MARS = CRS.from_wkt(
    'PROJCS["SimpleCylindrical_Mars",GEOGCS["GCS_Mars",DATUM["D_Mars",SPHEROID["Mars",3396190,0]],'
    'PRIMEM["Reference_Meridian",0],UNIT["degree",0.0174532925199433]],'
    'PROJECTION["Equirectangular"],PARAMETER["standard_parallel_1",0],'
    'PARAMETER["central_meridian",0],PARAMETER["false_easting",0],PARAMETER["false_northing",0],'
    'UNIT["metre",1]]'
)
PIXEL = 232.0
ORIGIN = (-5513958.344403904, -132835.2345385598)


def write_raster(path: Path, data: np.ndarray, transform: Affine | None, crs: CRS | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(
            path,
            "w",
            driver="GTiff",
            width=data.shape[-1],
            height=data.shape[-2],
            count=data.shape[0],
            dtype=str(data.dtype),
            transform=transform or Affine.identity(),
            crs=crs,
        ) as dst:
            dst.write(data)


def tile_transform(x_off: int, y_off: int) -> Affine:
    return Affine(PIXEL, 0.0, ORIGIN[0] + x_off * PIXEL, 0.0, -PIXEL, ORIGIN[1] - y_off * PIXEL)


def scene_tiles(
    cols: int, rows: int, size: int, seed: int = 0, width: int | None = None
) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray, int, int]]:
    """Tiles (project band order image, mask, x_off, y_off) cut from one random scene on a
    ``cols`` x ``rows`` grid; with ``width`` the last column is a terminal origin (shifted back
    so that it ends at ``width``), overlapping its neighbour with the same pixels."""
    rng = np.random.default_rng(seed)
    w = width or cols * size
    scene = rng.random((7, rows * size, w), dtype=np.float32) * 1000
    truth = (rng.random((rows * size, w)) < 0.3).astype(np.uint8)
    tiles = {}
    for c in range(cols):
        x = c * size if c < cols - 1 or width is None else width - size
        for r in range(rows):
            y = r * size
            tiles[(c, r)] = (
                scene[:, y : y + size, x : x + size].copy(),
                truth[y : y + size, x : x + size].copy(),
                x,
                y,
            )
    return tiles


def write_release(
    root: Path,
    tiles: Mapping[tuple[int, int], tuple[np.ndarray, np.ndarray, int, int]],
    split_of: Mapping[tuple[int, int], str],
    layout: str = "mmlsv2-challenge",
    unlabelled: Sequence[str] = (),
) -> None:
    """The tiles in ``layout``'s folders, band order and names (georeferenced for MMLSv2)."""
    preset = LAYOUTS[layout]
    order = [list(BAND_NAMES).index(b) for b in preset.band_order]
    for (col, row), (image, mask, x, y) in tiles.items():
        split = split_of[(col, row)]
        folder = root / preset.folders[split]
        if layout == "mmlsv1":
            name, transform, crs = f"Image_patch_{row}_{col}.tif", None, None
            mask_data = mask[None].astype(np.float32)
        else:
            name, transform, crs = f"col{col:05d}_row{row:05d}.tif", tile_transform(x, y), MARS
            mask_data = mask[None]
        write_raster(folder / "images" / name, image[order], transform, crs)
        if split not in unlabelled:
            write_raster(folder / "masks" / name, mask_data, transform, crs)
