"""Training store (one contiguous .npy per split) and the torch Dataset fed to the models.

The store (docs/design.md) is built once from the GeoTIFF tiles by the ``store`` stage:

- ``<split>_images.npy``: N x C x S x S float32, the tiles' raw values (nodata kept as is);
- ``<split>_masks.npy``: N x S x S uint8 in {0, 1};
- ``<split>_index.csv``: ``region,col,row`` of each array row, in ``splits.csv`` order;
- ``meta.json``: band names, nodata value, tile size and per-split counts.

At training time the arrays are memory-mapped (``np.load(mmap_mode="r")``), so reading a batch is
a copy of contiguous bytes and the loader is never the bottleneck (``benchmarks/bench_loader.py``).

Input normalisation is not described in the paper (Sec. 4.1 is silent); we standardise each band
with the mean/std of the *training* split's valid pixels (:func:`band_stats`) and set nodata or
non-finite pixels to 0 (the band mean) after standardisation. The statistics travel with the
checkpoint so inference applies the very same transform.

Augmentation (Sec. 4.1, "random flips and rotations"): each training sample gets one of the 8
symmetries of the square (identity, 3 rotations by 90 degrees, and their horizontal mirrors),
applied identically to image and mask. Which symmetry and the sample order are drawn per epoch
from one seeded ``torch.Generator`` (:func:`epoch_plan`), whose state is part of the resumable
training state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from mmls.bands import BAND_NAMES
from mmls.errors import InputError
from mmls.io import PathLike, atomic_dir, open_raster, read_csv, read_json, write_json

SPLITS: tuple[str, ...] = ("train", "val", "test", "isolated_test")
INDEX_COLUMNS: tuple[str, ...] = ("region", "col", "row")
N_SYMMETRIES = 8


# --------------------------------------------------------------------------- building the store
def read_splits(path: PathLike) -> pd.DataFrame:
    """Read ``data/splits.csv`` and check the columns the store needs."""
    p = Path(path)
    df = read_csv(p, (*INDEX_COLUMNS, "split"))
    unknown = sorted(set(df["split"].astype(str)) - set(SPLITS))
    if unknown:
        raise InputError(p, f"unknown split value(s) {unknown}; expected {list(SPLITS)}")
    if df.duplicated(list(INDEX_COLUMNS)).any():
        raise InputError(p, "a (region, col, row) patch appears more than once")
    return df


def tile_paths(tiles_dir: PathLike, region: str, col: int, row: int) -> tuple[Path, Path]:
    """Image and mask GeoTIFF of one patch (docs/design.md tile layout)."""
    base = Path(tiles_dir) / str(region)
    name = f"c{int(col)}_r{int(row)}.tif"
    return base / "images" / name, base / "masks" / name


def _read_tile(
    image_path: Path, mask_path: Path, bands: Sequence[str], size: int
) -> tuple[np.ndarray, np.ndarray, float | None]:
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
        image = src.read(out_dtype="float32")
        nodata = None if src.nodata is None else float(src.nodata)
    with open_raster(mask_path) as src:
        if src.count != 1 or (src.height, src.width) != (size, size):
            raise InputError(mask_path, f"expected one {size}x{size} band")
        mask = src.read(1)
    if not np.isin(mask, (0, 1)).all():
        raise InputError(
            mask_path, f"mask values {np.unique(mask).tolist()} are not within {{0, 1}}"
        )
    return image, mask.astype(np.uint8), nodata


def build_store(
    splits_csv: PathLike,
    tiles_dir: PathLike,
    out_dir: PathLike,
    bands: Sequence[str],
    size: int,
) -> dict[str, Any]:
    """Pack every tile of ``splits_csv`` into one .npy per split under ``out_dir`` (atomically).

    Rows keep the order of ``splits.csv`` (sorted by region, col, row). Returns the meta record
    written to ``meta.json``.
    """
    df = read_splits(splits_csv)
    nodata_seen: set[float | None] = set()
    counts: dict[str, int] = {}
    with atomic_dir(out_dir) as tmp:
        for split in SPLITS:
            rows = df[df["split"].astype(str) == split]
            n = len(rows)
            counts[split] = n
            images = np.lib.format.open_memmap(
                tmp / f"{split}_images.npy",
                mode="w+",
                dtype=np.float32,
                shape=(n, len(bands), size, size),
            )
            masks = np.lib.format.open_memmap(
                tmp / f"{split}_masks.npy", mode="w+", dtype=np.uint8, shape=(n, size, size)
            )
            for i, rec in enumerate(rows.itertuples(index=False)):
                img_p, mask_p = tile_paths(tiles_dir, rec.region, rec.col, rec.row)
                images[i], masks[i], nodata = _read_tile(img_p, mask_p, bands, size)
                nodata_seen.add(nodata)
            images.flush()
            masks.flush()
            del images, masks
            rows[list(INDEX_COLUMNS)].to_csv(tmp / f"{split}_index.csv", index=False)
        if len(nodata_seen) > 1:
            raise InputError(tiles_dir, f"tiles disagree on their nodata value: {nodata_seen}")
        meta = {
            "bands": list(bands),
            "nodata": nodata_seen.pop() if nodata_seen else None,
            "size": int(size),
            "counts": counts,
        }
        write_json(tmp / "meta.json", meta)
    return meta


# ---------------------------------------------------------------------------- reading the store
@dataclass(frozen=True)
class StoreSplit:
    """One split of the store, memory-mapped."""

    name: str
    images: np.ndarray  # N x C x S x S float32 (np.memmap)
    masks: np.ndarray  # N x S x S uint8 (np.memmap)
    index: pd.DataFrame  # region, col, row
    bands: tuple[str, ...]
    nodata: float | None

    def __len__(self) -> int:
        return int(self.images.shape[0])


def read_store_meta(store_dir: PathLike) -> dict[str, Any]:
    """The store's ``meta.json``."""
    meta = read_json(Path(store_dir) / "meta.json")
    for key in ("bands", "nodata", "size"):
        if key not in meta:
            raise InputError(Path(store_dir) / "meta.json", f"missing key {key!r}")
    return meta


def load_split(store_dir: PathLike, split: str) -> StoreSplit:
    """Memory-map one split of the store and check its arrays against ``meta.json``."""
    if split not in SPLITS:
        raise InputError(store_dir, f"unknown split {split!r}; expected one of {list(SPLITS)}")
    d = Path(store_dir)
    meta = read_store_meta(d)
    arrays = []
    for kind in ("images", "masks"):
        p = d / f"{split}_{kind}.npy"
        if not p.is_file():
            raise InputError(p, "file not found (run the `store` stage)")
        try:
            arrays.append(np.load(p, mmap_mode="r"))
        except ValueError as exc:
            raise InputError(p, f"not a readable .npy ({exc})") from exc
    images, masks = arrays
    n, s = images.shape[0], int(meta["size"])
    if images.dtype != np.float32 or images.shape[1:] != (len(meta["bands"]), s, s):
        raise InputError(d / f"{split}_images.npy", f"unexpected {images.dtype} {images.shape}")
    if masks.dtype != np.uint8 or masks.shape != (n, s, s):
        raise InputError(d / f"{split}_masks.npy", f"unexpected {masks.dtype} {masks.shape}")
    index_path = d / f"{split}_index.csv"
    index = pd.read_csv(index_path) if index_path.is_file() else pd.DataFrame()
    if len(index) != n:
        raise InputError(index_path, f"has {len(index)} rows, arrays have {n}")
    nodata = meta["nodata"]
    return StoreSplit(split, images, masks, index, tuple(meta["bands"]), nodata)


def band_stats(
    images: np.ndarray, band_idx: Sequence[int], nodata: float | None, chunk: int = 64
) -> tuple[list[float], list[float]]:
    """Per-band mean and std over the valid pixels of ``images`` (N x C x H x W).

    Pixels equal to ``nodata`` or not finite are skipped. A band without valid pixels gets
    mean 0, std 1; a constant band gets std 1 (so standardisation never divides by 0).
    """
    k = len(band_idx)
    s1 = np.zeros(k)
    s2 = np.zeros(k)
    cnt = np.zeros(k)
    for start in range(0, images.shape[0], chunk):
        block = np.asarray(images[start : start + chunk][:, list(band_idx)], dtype=np.float64)
        valid = np.isfinite(block)
        if nodata is not None:
            valid &= block != nodata
        block = np.where(valid, block, 0.0)
        s1 += block.sum(axis=(0, 2, 3))
        s2 += (block * block).sum(axis=(0, 2, 3))
        cnt += valid.sum(axis=(0, 2, 3))
    means: list[float] = []
    stds: list[float] = []
    for a, b, c in zip(s1, s2, cnt, strict=True):
        if c == 0:
            means.append(0.0)
            stds.append(1.0)
            continue
        mean = a / c
        var = max(b / c - mean * mean, 0.0)
        std = math.sqrt(var)
        means.append(float(mean))
        stds.append(float(std) if std > 1e-12 else 1.0)
    return means, stds


def apply_symmetry(arr: np.ndarray, op: int) -> np.ndarray:
    """One of the 8 symmetries of the square (last two axes): op // 4 mirrors, op % 4 rotates."""
    if not 0 <= op < N_SYMMETRIES:
        raise ValueError(f"symmetry op must be in 0..7, got {op}")
    if op >= 4:
        arr = arr[..., ::-1]
    return np.rot90(arr, k=op % 4, axes=(-2, -1))


class TileDataset(Dataset):
    """Standardised, band-selected samples of a store split (MMLSv2 Sec. 4.1).

    Items are addressed by ``i`` or ``(i, op)`` with ``op`` a symmetry of
    :func:`apply_symmetry` (0 = identity); they are ``(image C x H x W float32, mask H x W int64)``.
    """

    def __init__(
        self,
        images: np.ndarray,
        masks: np.ndarray,
        band_idx: Sequence[int],
        mean: Sequence[float],
        std: Sequence[float],
        nodata: float | None,
    ) -> None:
        if len(band_idx) != len(mean) or len(mean) != len(std):
            raise ValueError("band_idx, mean and std must have the same length")
        self.images = images
        self.masks = masks
        self.band_idx = list(band_idx)
        # A contiguous band range reads as a slice (a view), not a fancy-index copy.
        lo = self.band_idx[0]
        contiguous = self.band_idx == list(range(lo, lo + len(self.band_idx)))
        self._bands: slice | list[int] = (
            slice(lo, lo + len(self.band_idx)) if contiguous else self.band_idx
        )
        self.mean = np.asarray(mean, dtype=np.float32)[:, None, None]
        self.inv_std = (1.0 / np.asarray(std, dtype=np.float32))[:, None, None]
        self.nodata = nodata

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def image(self, i: int) -> np.ndarray:
        """Standardised image ``i`` (C x H x W float32), nodata/non-finite pixels set to 0."""
        raw = np.asarray(self.images[i, self._bands], dtype=np.float32)
        invalid = ~np.isfinite(raw)
        if self.nodata is not None:
            invalid |= raw == self.nodata
        out = (raw - self.mean) * self.inv_std
        out[invalid] = 0.0
        return out

    def _sample(self, key: int | tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        i, op = (key, 0) if isinstance(key, int | np.integer) else key
        image = self.image(int(i))
        mask = np.asarray(self.masks[int(i)])
        if op:
            image = apply_symmetry(image, int(op))
            mask = apply_symmetry(mask, int(op))
        return image, mask

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self._sample(key)
        image = np.ascontiguousarray(image)
        mask = np.ascontiguousarray(mask, dtype=np.int64)
        return torch.from_numpy(image), torch.from_numpy(mask)

    def __getitems__(self, keys: Sequence[int | tuple[int, int]]) -> tuple[torch.Tensor, ...]:
        """A whole collated batch, filled in place (one allocation per batch, no stacking)."""
        _, h, w = self.masks.shape
        x = np.empty((len(keys), len(self.band_idx), h, w), dtype=np.float32)
        y = np.empty((len(keys), h, w), dtype=np.int64)
        for j, key in enumerate(keys):
            x[j], y[j] = self._sample(key)
        return torch.from_numpy(x), torch.from_numpy(y)


def _batch_as_is(batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """Collate function for :meth:`TileDataset.__getitems__`, which returns collated batches."""
    return batch


def split_batches(order: Sequence[Any], batch_size: int) -> list[list[Any]]:
    """Chunk ``order`` into batches; a trailing batch of ONE item joins the previous batch.

    BatchNorm after global pooling (DeepLabV3's ASPP pooling branch, PSPNet's 1x1 bin) cannot
    train on a single sample, so a last partial batch of size 1 is merged rather than dropped:
    every sample is still seen every epoch.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batches = [list(order[i : i + batch_size]) for i in range(0, len(order), batch_size)]
    if len(batches) >= 2 and len(batches[-1]) == 1:
        batches[-2].extend(batches.pop())
    return batches


def epoch_plan(
    n: int, batch_size: int, generator: torch.Generator, augment: bool
) -> list[list[tuple[int, int]]]:
    """One epoch of shuffled batches of ``(index, symmetry op)``, drawn from ``generator``."""
    perm = torch.randperm(n, generator=generator).tolist()
    ops = [0] * n
    if augment:
        ops = torch.randint(0, N_SYMMETRIES, (n,), generator=generator).tolist()
    return split_batches([(i, ops[i]) for i in perm], batch_size)


def make_loader(
    dataset: TileDataset, batches: Sequence[Sequence[Any]], num_workers: int = 0, pin: bool = False
) -> DataLoader:
    """A DataLoader over precomputed ``batches`` (keys of ``dataset``), optionally with workers."""
    return DataLoader(
        dataset,
        batch_sampler=batches,
        num_workers=num_workers,
        pin_memory=pin,
        collate_fn=_batch_as_is,
        generator=torch.Generator().manual_seed(0),  # keeps the global RNG untouched
    )


# ------------------------------------------------------------------------ synthetic store (tests)
def write_synthetic_store(
    out_dir: PathLike,
    counts: Mapping[str, int],
    size: int = 128,
    bands: Sequence[str] = BAND_NAMES,
    seed: int = 0,
    nodata: float | None = -9999.0,
    signal: float = 1.5,
) -> dict[str, Any]:
    """A learnable stand-in store (for tests and the loader benchmark), written atomically.

    Masks hold a few random discs of landslide; images are unit Gaussian noise plus ``signal``
    on landslide pixels in the DEM and slope bands (the first two bands if those are absent),
    on band-specific offsets/scales so that standardisation matters. A small corner of a few
    tiles is set to ``nodata``.
    """
    rng = np.random.default_rng(seed)
    names = list(bands)
    informative = [names.index(b) for b in ("dem", "slope") if b in names] or [0, 1][: len(names)]
    offsets = rng.uniform(-100, 100, len(names)).astype(np.float32)[:, None, None]
    scales = rng.uniform(0.5, 20, len(names)).astype(np.float32)[:, None, None]
    yy, xx = np.mgrid[:size, :size]
    meta_counts: dict[str, int] = {}
    with atomic_dir(out_dir) as tmp:
        for split in SPLITS:
            n = int(counts.get(split, 0))
            meta_counts[split] = n
            images = np.empty((n, len(names), size, size), dtype=np.float32)
            masks = np.zeros((n, size, size), dtype=np.uint8)
            for i in range(n):
                for _ in range(int(rng.integers(1, 4))):
                    cy, cx = rng.uniform(0, size, 2)
                    r = rng.uniform(size / 10, size / 3)
                    masks[i][(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1
                noise = rng.standard_normal((len(names), size, size), dtype=np.float32)
                noise[informative] += signal * masks[i]
                images[i] = noise * scales + offsets
                if nodata is not None and i % 3 == 0:
                    images[i, :, : size // 8, : size // 8] = nodata
            np.save(tmp / f"{split}_images.npy", images)
            np.save(tmp / f"{split}_masks.npy", masks)
            index = pd.DataFrame(
                {"region": "synthetic", "col": np.arange(n), "row": np.zeros(n, dtype=int)}
            )
            index.to_csv(tmp / f"{split}_index.csv", index=False)
        meta = {"bands": names, "nodata": nodata, "size": int(size), "counts": meta_counts}
        write_json(tmp / "meta.json", meta)
    return meta
