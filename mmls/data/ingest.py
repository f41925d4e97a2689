"""Released tile folders as an entry point: what the ``tile`` and ``block_split`` stages write,
from a published dataset instead of raw rasters, keeping the released split as given.

Writes ``<tiles>/<region>/images/<name>`` (float32, the project's band order, band descriptions)
and, for labelled splits, ``<tiles>/<region>/masks/<name>`` (uint8 {0, 1}), and returns the
split table (``splits.csv`` columns, :data:`mmls.data.splitting.SPLIT_COLUMNS`):

- georeferenced releases (MMLSv2) keep each tile's CRS and transform; every tile of a region
  must sit on one grid (:mod:`mmls.geo.georef`), and ``x_off, y_off`` are its pixel offsets on that
  grid, terminal tiles included, so that overlaps are visible to the grouping and the leakage
  audit. Releases without georeferencing (MMLSv1) are written with the plain pixel transform
  ``Affine.translation(col * S, row * S)`` and no CRS;
- blocks are Eq. 2 (0-based), merged where patches share pixels (``group``); ``stratum`` is -1
  (the release's split is kept, nothing is stratified here); ``source`` is the released file
  name; ``labelled`` is False for splits released without masks;
- image values are kept bit for bit (float32 releases). Non-physical values (NaN, +-inf,
  magnitudes beyond 1e30, such as an undeclared float32 nodata sentinel) are reported with a
  warning per file and band; the models treat them as missing (:mod:`mmls.data.normalization`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning
from tqdm import tqdm

from mmls.core.errors import InputError
from mmls.core.io import PathLike, open_raster, read_raster
from mmls.core.paths import tile_paths
from mmls.data.bands import band_indices
from mmls.data.leakage import leakage_audit
from mmls.data.releases import IngestConfig, ReleasedTile, find_tiles
from mmls.data.splitting import SPLIT_COLUMNS, overlap_groups
from mmls.geo.georef import PIXEL_TOLERANCE, TileGeo, plain_offsets, tile_offsets
from mmls.geo.nodata import warn_nonphysical
from mmls.geo.raster import Grid, geotiff_profile
from mmls.geo.rebuild import scene_offsets


@dataclass(frozen=True)
class Header:
    """What a released image says about itself before its pixels are read."""

    tile: ReleasedTile
    crs: CRS | None
    transform: Affine


def read_header(tile: ReleasedTile, n_bands: int, size: int) -> Header:
    """Check an image (and its mask) without reading pixels: band count, size, georeference."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with open_raster(tile.image) as src:
            if src.count != n_bands:
                raise InputError(tile.image, f"has {src.count} band(s), layout has {n_bands}")
            if (src.height, src.width) != (size, size):
                raise InputError(
                    tile.image, f"is {src.width}x{src.height}, params tile.size_px is {size}"
                )
            crs, transform = src.crs, src.transform
        if tile.mask is not None:
            with open_raster(tile.mask) as src:
                if src.count != 1 or (src.height, src.width) != (size, size):
                    raise InputError(
                        tile.mask,
                        f"has {src.count} band(s) of {src.width}x{src.height}, its image "
                        f"one {size}x{size} band",
                    )
                if src.crs != crs or not src.transform.almost_equals(
                    transform, precision=PIXEL_TOLERANCE * abs(transform.a)
                ):
                    raise InputError(tile.mask, f"georeferencing differs from {tile.image}")
    return Header(tile, crs, transform)


def read_pixels(tile: ReleasedTile, order: Sequence[int]) -> tuple[np.ndarray, np.ndarray | None]:
    """(image in project band order, float32; mask uint8 {0, 1} or None)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with open_raster(tile.image) as src:
            image = read_raster(src)[list(order)].astype(np.float32, copy=False)
        if tile.mask is None:
            return image, None
        with open_raster(tile.mask) as src:
            mask = read_raster(src, 1)
    if not np.isin(mask, (0, 1)).all():
        values = np.unique(mask[~np.isin(mask, (0, 1))])[:5].tolist()
        raise InputError(tile.mask, f"mask holds values other than 0 and 1, e.g. {values}")
    return image, mask.astype(np.uint8)


def positions(headers: Sequence[Header], size: int) -> list[tuple[int, int]]:
    """Pixel offsets of every tile on its region's grid (georeferenced or plain)."""
    out: dict[int, tuple[int, int]] = {}
    for region in sorted({h.tile.region for h in headers}):
        idx = [i for i, h in enumerate(headers) if h.tile.region == region]
        georef = [headers[i].crs is not None for i in idx]
        if all(georef):
            geos = [
                TileGeo(h.tile.image, h.tile.col, h.tile.row, h.crs, h.transform)
                for h in (headers[i] for i in idx)
            ]
            _, offsets = tile_offsets(geos, size)
        elif not any(georef):
            cols, rows = [headers[i].tile.col for i in idx], [headers[i].tile.row for i in idx]
            offsets = plain_offsets(cols, rows, size)
        else:
            odd = headers[idx[georef.index(False)]].tile.image
            raise InputError(odd, f"has no CRS while other tiles of region {region!r} have one")
        out.update(zip(idx, offsets, strict=True))
    return [out[i] for i in range(len(headers))]


def write_tile(
    path: Path,
    data: np.ndarray,
    header: Header,
    x_off: int,
    y_off: int,
    names: Sequence[str] | None,
) -> None:
    """A tile with the release's georeference, or the plain pixel transform without one."""
    transform = header.transform if header.crs is not None else Affine.translation(x_off, y_off)
    grid = Grid(header.crs, transform, data.shape[-1], data.shape[-2])
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(
            path, "w", **geotiff_profile(grid, data.shape[0], str(data.dtype))
        ) as dst:
            dst.write(data)
            for i, name in enumerate(names or (), start=1):
                dst.set_band_description(i, name)


def ingest_release(
    cfg: IngestConfig, tiles_out: PathLike, *, bands: Sequence[str], size: int
) -> tuple[pd.DataFrame, list[str]]:
    """Write the release's tiles under ``tiles_out``; return (split table, notes)."""
    layout = cfg.preset
    order = band_indices(bands, layout.band_order, source=f"params.yaml:ingest.layout {cfg.layout}")
    tiles, notes = find_tiles(cfg)
    headers = [read_header(t, len(layout.band_order), size) for t in tiles]
    offsets = positions(headers, size)
    out = Path(tiles_out)
    records = []
    for header, (x_off, y_off) in tqdm(
        list(zip(headers, offsets, strict=True)), desc="ingest", unit="tile", disable=None
    ):
        t = header.tile
        image, mask = read_pixels(t, order)
        warn_nonphysical(image, t.image, bands)
        image_path, mask_path = tile_paths(out, t.region, t.col, t.row)
        write_tile(image_path, image, header, x_off, y_off, bands)
        if mask is not None:
            write_tile(mask_path, mask[None], header, x_off, y_off, None)
        fg = int(np.count_nonzero(mask)) if mask is not None else None
        records.append(
            {
                "region": t.region,
                "col": t.col,
                "row": t.row,
                "x_off": x_off,
                "y_off": y_off,
                "block_col": t.col // 2,  # Eq. 2, 0-based
                "block_row": t.row // 2,
                "fg_pixels": fg,
                "fg_ratio": None if fg is None else fg / (size * size),  # Eq. 1
                "stratum": -1,
                "split": t.split,
                "labelled": mask is not None,
                "source": t.image.name,
            }
        )
    table = pd.DataFrame.from_records(records)
    table = table.sort_values(["region", "col", "row"], kind="stable").reset_index(drop=True)
    table["group"] = ""
    for region in table["region"].unique():
        sel = table["region"] == region
        table.loc[sel, "group"] = overlap_groups(table[sel], size)
    return table[list(SPLIT_COLUMNS)], notes


def released_leakage_audit(splits: pd.DataFrame, tiles_dir: Path, size: int) -> dict:
    """The leakage audit of a released split (:mod:`mmls.data.leakage`), the positions of every
    region in one frame: the tiles' georeferencing when they have it; without it a single region
    is audited on its own grid, and several regions cannot be placed and are an error."""
    georeferenced = True
    for rec in splits.head(1).itertuples(index=False):
        with open_raster(tile_paths(tiles_dir, rec.region, rec.col, rec.row)[0]) as src:
            georeferenced = src.crs is not None
    if georeferenced:
        return leakage_audit(scene_offsets(splits, tiles_dir, size), size)
    if splits["region"].nunique() > 1:
        raise InputError(
            tiles_dir, "regions without georeferencing cannot be placed in one frame for the audit"
        )
    return leakage_audit(splits, size)
