"""Training store: every patch of the dataset in one memory-mappable array, plus its table.

Built once from the GeoTIFF tiles by the ``store`` stage (``data/store``):

- ``images.npy``: N x C x S x S float32, the tiles' raw values (missing values kept as is);
- ``masks.npy``: N x S x S uint8 in {0, 1}; :data:`UNLABELLED` (255) everywhere for the patches
  of a split released without masks (``labelled`` False: predicted, never trained on or scored);
- ``patches.csv``: the rows of ``splits.csv`` (region, col, row, split, block, group, fg ratio,
  ...) in the arrays' order, i.e. sorted by region, col, row;
- ``meta.json``: band names, nodata value, tile size and per-split counts.

A split (or a cross-validation fold) is a set of row numbers (:meth:`Store.rows`); at training
time the arrays are memory-mapped, so a batch is a copy of contiguous bytes and the loader is
never the bottleneck (``benchmarks/bench_loader.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmls.core.config import Section
from mmls.core.errors import InputError
from mmls.core.io import (
    PathLike,
    atomic_dir,
    open_raster,
    read_csv,
    read_json,
    read_raster,
    write_json,
)
from mmls.core.paths import SPLITS, tile_paths
from mmls.geo.nodata import warn_nonphysical

KEY_COLUMNS: tuple[str, ...] = ("region", "col", "row")
UNLABELLED = 255


class DatasetConfig(Section):
    """The ``dataset`` params section: where the store takes its tiles and split from."""

    tiles: str  # tiles folder (the `tile` stage's, or an ingested release's)
    splits: str  # the split table (the `block_split` stage's, or an ingested release's)


IMAGES, MASKS, PATCHES, META = "images.npy", "masks.npy", "patches.csv", "meta.json"


def read_splits(path: PathLike) -> pd.DataFrame:
    """Read ``splits.csv`` and check the columns the store needs."""
    p = Path(path)
    df = read_csv(p, (*KEY_COLUMNS, "split"))
    unknown = sorted(set(df["split"].astype(str)) - set(SPLITS))
    if unknown:
        raise InputError(p, f"unknown split value(s) {unknown}; expected {list(SPLITS)}")
    if df.duplicated(list(KEY_COLUMNS)).any():
        raise InputError(p, "a (region, col, row) patch appears more than once")
    if "labelled" not in df:
        df["labelled"] = True
    df["labelled"] = df["labelled"].astype(bool)
    return df


def read_tile(
    image_path: Path, mask_path: Path | None, bands: Sequence[str], size: int
) -> tuple[np.ndarray, np.ndarray, float | None]:
    """(image C x S x S float32, mask S x S uint8, nodata) of one patch, checked; the mask of
    an unlabelled patch (``mask_path`` None) is :data:`UNLABELLED` everywhere."""
    with open_raster(image_path) as src:
        if src.count != len(bands):
            raise InputError(
                image_path, f"has {src.count} bands, params `bands` names {len(bands)}"
            )
        if (src.height, src.width) != (size, size):
            raise InputError(image_path, f"is {src.width}x{src.height}, expected {size}x{size}")
        desc = list(src.descriptions)
        if all(desc) and desc != list(bands):
            raise InputError(
                image_path, f"band descriptions {desc} != params `bands` {list(bands)}"
            )
        image = read_raster(src, out_dtype="float32")
        nodata = None if src.nodata is None else float(src.nodata)
    warn_nonphysical(image, image_path, bands)
    if mask_path is None:
        return image, np.full((size, size), UNLABELLED, np.uint8), nodata
    with open_raster(mask_path) as src:
        if src.count != 1 or (src.height, src.width) != (size, size):
            raise InputError(mask_path, f"expected one {size}x{size} band")
        mask = read_raster(src, 1)
    if not np.isin(mask, (0, 1)).all():
        raise InputError(
            mask_path, f"mask values {np.unique(mask).tolist()} are not within {{0, 1}}"
        )
    return image, mask.astype(np.uint8), nodata


def build_store(
    splits_csv: PathLike, tiles_dir: PathLike, out_dir: PathLike, bands: Sequence[str], size: int
) -> dict[str, Any]:
    """Pack every tile of ``splits_csv`` into ``out_dir`` (atomically); return ``meta.json``."""
    df = read_splits(splits_csv)
    nodata_seen: set[float | None] = set()
    n = len(df)
    with atomic_dir(out_dir) as tmp:
        images = np.lib.format.open_memmap(
            tmp / IMAGES, mode="w+", dtype=np.float32, shape=(n, len(bands), size, size)
        )
        masks = np.lib.format.open_memmap(
            tmp / MASKS, mode="w+", dtype=np.uint8, shape=(n, size, size)
        )
        for i, rec in enumerate(df.itertuples(index=False)):
            img_p, mask_p = tile_paths(tiles_dir, rec.region, rec.col, rec.row)
            mask_p = mask_p if rec.labelled else None
            images[i], masks[i], nodata = read_tile(img_p, mask_p, bands, size)
            nodata_seen.add(nodata)
        images.flush()
        masks.flush()
        del images, masks
        df.to_csv(tmp / PATCHES, index=False, lineterminator="\n")
        if len(nodata_seen) > 1:
            raise InputError(tiles_dir, f"tiles disagree on their nodata value: {nodata_seen}")
        counts = {s: int((df["split"] == s).sum()) for s in SPLITS}
        unlabelled = sorted(set(df.loc[~df["labelled"], "split"]))
        meta = {
            "bands": list(bands),
            "nodata": nodata_seen.pop() if nodata_seen else None,
            "size": int(size),
            "counts": counts,
            "unlabelled_splits": unlabelled,
        }
        write_json(tmp / META, meta)
    return meta


@dataclass(frozen=True)
class Store:
    """The memory-mapped store."""

    path: Path
    images: np.ndarray  # N x C x S x S float32 (np.memmap)
    masks: np.ndarray  # N x S x S uint8 (np.memmap)
    patches: pd.DataFrame  # splits.csv rows in array order
    bands: tuple[str, ...]
    nodata: float | None
    size: int

    def rows(self, split: str) -> np.ndarray:
        """Row numbers of ``split`` in array order."""
        if split not in SPLITS:
            raise InputError(self.path, f"unknown split {split!r}; expected one of {SPLITS}")
        return np.flatnonzero((self.patches["split"] == split).to_numpy())

    def labelled_rows(self, split: str, where: str = "params.yaml:eval.splits") -> np.ndarray:
        """Rows of ``split`` for training or scoring: an error if the split has none or was
        released without masks."""
        rows = self.rows(split)
        if len(rows) == 0:
            raise InputError(where, f"split {split!r} has no patch in {self.path}")
        if not self.patches["labelled"].to_numpy()[rows].all():
            raise InputError(
                where,
                f"split {split!r} was released without masks (unlabelled): it can be "
                "predicted (stage predict_tiles), not trained on or scored",
            )
        return rows


def load_store(store_dir: PathLike) -> Store:
    """Memory-map the store and check its arrays against ``meta.json`` and ``patches.csv``."""
    d = Path(store_dir)
    meta = read_json(d / META)
    for key in ("bands", "nodata", "size"):
        if key not in meta:
            raise InputError(d / META, f"missing key {key!r}")
    arrays = []
    for name in (IMAGES, MASKS):
        if not (d / name).is_file():
            raise InputError(d / name, "file not found (run the `store` stage)")
        try:
            arrays.append(np.load(d / name, mmap_mode="r"))
        except ValueError as exc:
            raise InputError(d / name, f"not a readable .npy ({exc})") from exc
    images, masks = arrays
    s, c = int(meta["size"]), len(meta["bands"])
    if images.dtype != np.float32 or images.shape[1:] != (c, s, s):
        raise InputError(d / IMAGES, f"unexpected {images.dtype} {images.shape}")
    if masks.dtype != np.uint8 or masks.shape != (len(images), s, s):
        raise InputError(d / MASKS, f"unexpected {masks.dtype} {masks.shape}")
    patches = read_splits(d / PATCHES)
    if len(patches) != len(images):
        raise InputError(d / PATCHES, f"has {len(patches)} rows, arrays have {len(images)}")
    return Store(d, images, masks, patches, tuple(meta["bands"]), meta["nodata"], s)
