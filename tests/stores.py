"""A learnable stand-in store for tests and the loader benchmark (mmls/data/store.py layout)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmls.core.io import atomic_dir, write_json
from mmls.core.paths import SPLITS
from mmls.data.bands import BAND_NAMES
from mmls.data.store import IMAGES, MASKS, META, PATCHES


def write_synthetic_store(
    out_dir: Path | str,
    counts: Mapping[str, int],
    size: int = 128,
    bands: Sequence[str] = BAND_NAMES,
    seed: int = 0,
    nodata: float | None = -9999.0,
    signal: float = 1.5,
) -> dict[str, Any]:
    """Masks hold a few random discs of landslide; images are unit Gaussian noise plus
    ``signal`` on landslide pixels in the DEM and slope bands (the first two bands if those are
    absent), on band-specific offsets/scales so that standardisation matters. A small corner of
    every third tile is ``nodata``. Patches of split s get region "synthetic", col i, row = the
    split's index (so keys are unique), block = (col // 2, row).
    """
    rng = np.random.default_rng(seed)
    names = list(bands)
    informative = [names.index(b) for b in ("dem", "slope") if b in names] or [0, 1][: len(names)]
    offsets = rng.uniform(-100, 100, len(names)).astype(np.float32)[:, None, None]
    scales = rng.uniform(0.5, 20, len(names)).astype(np.float32)[:, None, None]
    yy, xx = np.mgrid[:size, :size]
    images, masks, rows = [], [], []
    for s_idx, split in enumerate(SPLITS):
        for i in range(int(counts.get(split, 0))):
            mask = np.zeros((size, size), dtype=np.uint8)
            for _ in range(int(rng.integers(1, 4))):
                cy, cx = rng.uniform(0, size, 2)
                r = rng.uniform(size / 10, size / 3)
                mask[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1
            noise = rng.standard_normal((len(names), size, size), dtype=np.float32)
            noise[informative] += signal * mask
            image = noise * scales + offsets
            if nodata is not None and i % 3 == 0:
                image[:, : size // 8, : size // 8] = nodata
            images.append(image)
            masks.append(mask)
            rows.append(
                {
                    "region": "synthetic",
                    "col": i,
                    "row": s_idx,
                    "x_off": i * size,
                    "y_off": s_idx * size,
                    "block_col": i // 2,
                    "block_row": s_idx,
                    "group": f"{i // 2}_{s_idx}",
                    "fg_ratio": float(mask.mean()),
                    "split": split,
                }
            )
    shape = (0, len(names), size, size)
    with atomic_dir(out_dir) as tmp:
        np.save(tmp / IMAGES, np.stack(images) if images else np.zeros(shape, np.float32))
        np.save(tmp / MASKS, np.stack(masks) if masks else np.zeros((0, size, size), np.uint8))
        pd.DataFrame(rows).to_csv(tmp / PATCHES, index=False)
        meta = {
            "bands": names,
            "nodata": nodata,
            "size": int(size),
            "counts": {s: int(counts.get(s, 0)) for s in SPLITS},
        }
        write_json(tmp / META, meta)
    return meta
