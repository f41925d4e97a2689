"""Per-patch result files written by evaluation and read by statistics and the report.

- ``<split>.patches.csv``: one row per patch, columns :data:`PATCH_COLUMNS`; summed over the
  rows they give the split's pooled TP/FP/FN/TN exactly (mmls.metrics.confusion);
- ``<split>.npz``: the predicted masks, uint8, one array per patch under
  :func:`mmls.core.paths.patch_key`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mmls.core.errors import InputError
from mmls.core.io import PathLike, atomic_path, read_csv
from mmls.core.paths import patch_key
from mmls.metrics.confusion import COUNT_COLUMNS

KEY_COLUMNS: tuple[str, ...] = ("region", "col", "row")
PATCH_COLUMNS: tuple[str, ...] = (*KEY_COLUMNS, "block_col", "block_row", *COUNT_COLUMNS)


def patch_table(patches: pd.DataFrame, counts: np.ndarray) -> pd.DataFrame:
    """N x 4 per-patch counts beside the patches' keys and blocks (:data:`PATCH_COLUMNS`)."""
    if len(patches) != len(counts):
        raise ValueError(f"{len(counts)} count rows for {len(patches)} patches")
    table = patches[list(PATCH_COLUMNS[:5])].reset_index(drop=True).copy()
    for i, name in enumerate(COUNT_COLUMNS):
        table[name] = np.asarray(counts)[:, i].astype(np.int64)
    return table


def write_patch_table(path: PathLike, table: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        table[list(PATCH_COLUMNS)].to_csv(tmp, index=False, lineterminator="\n")


def read_patch_table(path: PathLike) -> pd.DataFrame:
    """Read and check a per-patch counts file."""
    p = Path(path)
    df = read_csv(p, PATCH_COLUMNS)
    if df.duplicated(list(KEY_COLUMNS)).any():
        raise InputError(p, "a (region, col, row) patch appears more than once")
    if (df[list(COUNT_COLUMNS)] < 0).to_numpy().any():
        raise InputError(p, "negative confusion count")
    df["region"] = df["region"].astype(str)
    return df[list(PATCH_COLUMNS)]


def write_masks(path: PathLike, patches: pd.DataFrame, labels: np.ndarray) -> None:
    """Save N x H x W predicted labels as a compressed ``.npz`` (uint8, one key per patch)."""
    labels = np.asarray(labels)
    if labels.ndim != 3 or len(labels) != len(patches):
        raise ValueError(f"expected {len(patches)} x H x W labels, got shape {labels.shape}")
    arrays = {
        patch_key(r.region, r.col, r.row): labels[i].astype(np.uint8)
        for i, r in enumerate(patches[list(KEY_COLUMNS)].itertuples(index=False))
    }
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def read_masks(path: PathLike) -> dict[str, np.ndarray]:
    """All masks of a predictions ``.npz`` by :func:`mmls.core.paths.patch_key`."""
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "file not found")
    try:
        with np.load(p) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise InputError(p, f"not a readable .npz ({exc})") from exc
