"""A small pipeline folder with everything the tables and report stages read: a store, eval
metrics and per-patch counts of 2 models x 2 seeds, two band sets, DVCLive logs, Table 1, Fig. 2
data and the leakage audit. Paths follow mmls/paths.py relative to ``root``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from mmls.core import paths
from mmls.core.io import write_json
from mmls.data.leakage import leakage_audit
from mmls.metrics.confusion import Confusion, metrics_record, patch_counts
from mmls.metrics.patch_files import patch_table, write_masks, write_patch_table
from mmls.nn.tracking import EpochLog
from tests.stores import write_synthetic_store

S = 16  # tile size (small: fast)
MODELS = ("unet", "pspnet")  # the other four of params.yaml stay "not run"
BAND_SETS = ("rgb", "all")
SEEDS = (42, 43)
#: Share of pixels flipped in each model's predictions (per seed): U-Net clearly better.
FLIPS = {"unet": (0.02, 0.04), "pspnet": (0.20, 0.22), "rgb": (0.30, 0.30), "all": (0.02, 0.02)}


def _grid() -> pd.DataFrame:
    rows = []
    for region, x0, ncol in (("base", 0, 8), ("isolated", 8 * S, 4)):
        for col in range(ncol):
            for row in range(6):
                bc, br = col // 2, row // 2
                split = ("train", "test", "train", "val")[(bc + br) % 4]
                rows.append(
                    {
                        "region": region,
                        "col": col,
                        "row": row,
                        "x_off": x0 + col * S,
                        "y_off": row * S,
                        "block_col": bc,
                        "block_row": br,
                        "group": f"{bc}_{br}",
                        "split": split if region == "base" else "isolated_test",
                    }
                )
    return pd.DataFrame(rows)


def _store(root: Path, grid: pd.DataFrame) -> np.ndarray:
    """The store of the grid (discs of landslide, noise images); returns the masks."""
    counts = grid["split"].value_counts().to_dict()
    write_synthetic_store(root / paths.STORE, counts, size=S, seed=0)
    patches = pd.read_csv(root / paths.STORE / "patches.csv")
    # put the fixture's keys and blocks in the store's own split order
    ordered = pd.concat([grid[grid["split"] == s] for s in paths.SPLITS], ignore_index=True)
    ordered["fg_ratio"] = patches["fg_ratio"]
    ordered.to_csv(root / paths.STORE / "patches.csv", index=False)
    return np.load(root / paths.STORE / "masks.npy")


def _noisy(truth: np.ndarray, flip: float, rng: np.random.Generator) -> np.ndarray:
    return np.where(rng.random(truth.shape) < flip, 1 - truth, truth).astype(np.uint8)


def _score(
    patches: pd.DataFrame,
    truth: np.ndarray,
    flip: float,
    rng,
    metrics: Path,
    preds: Path,
    split: str,
) -> None:
    """What the eval stage writes for one model, seed and split."""
    pred = _noisy(truth, flip, rng)
    counts = patch_counts(pred, truth)
    table = patch_table(patches, counts)
    write_patch_table(preds / f"{split}{paths.PATCHES_SUFFIX}", table)
    write_masks(preds / f"{split}{paths.MASKS_SUFFIX}", patches, pred)
    latency = 0.01 * (1 + flip)
    record = metrics_record(Confusion.of(counts), len(patches), latency, "cpu (2 threads)", 0.01)
    write_json(metrics, record)


def make_project(root: Path) -> None:
    """Write the fixture under ``root`` (which becomes nothing else's working directory)."""
    cwd = Path.cwd()
    os.chdir(root)
    try:
        rng = np.random.default_rng(0)
        grid = _grid()
        masks = _store(root, grid)
        store_patches = pd.read_csv(paths.STORE / "patches.csv")
        for m in MODELS:
            for seed, flip in zip(SEEDS, FLIPS[m], strict=True):
                for split in ("test", "isolated_test"):
                    rows = np.flatnonzero(store_patches["split"] == split)
                    _score(
                        store_patches.iloc[rows],
                        masks[rows],
                        flip,
                        rng,
                        paths.eval_metrics_dir(m, seed) / f"{split}.json",
                        paths.eval_predictions_dir(m, seed),
                        split,
                    )
                log = EpochLog(paths.train_log_dir(m, seed))
                for epoch in (1, 2, 3):
                    log.epoch(
                        {
                            "epoch": epoch,
                            "train_loss": 0.8 - 0.1 * epoch,
                            "val_loss": 0.9 - 0.1 * epoch,
                            "val_miou": 0.4 + 0.1 * epoch,
                            "val_iou_fg": 0.2 + 0.1 * epoch,
                            "lr": 1e-3,
                            "epoch_seconds": 1.0,
                        }
                    )
                log.finish({"train_time_h": 0.01, "best_epoch": 3})
        for b in BAND_SETS:
            for seed, flip in zip(SEEDS, FLIPS[b], strict=True):
                rows = np.flatnonzero(store_patches["split"] == "test")
                _score(
                    store_patches.iloc[rows],
                    masks[rows],
                    flip,
                    rng,
                    paths.ablation_metrics(b, seed),
                    paths.ablation_predictions_dir(b, seed),
                    "test",
                )
        table1 = {
            s: {
                "n_images": int((grid.split == s).sum()),
                "avg_fg_pct": 30.0,
                "std_fg_pct": 20.0,
                "min_fg_pct": 0.1,
                "max_fg_pct": 90.0,
            }
            for s in paths.SPLITS
        }
        write_json(paths.TABLE1, table1)
        pd.DataFrame(
            {
                "interval": ["0-50%", "50-100%"],
                "interval_hi_pct": [50, 100],
                "train": [60, 40],
                "val": [50, 50],
                "test": [55, 45],
                "isolated_test": [80, 20],
            }
        ).to_csv(paths.FG_INTERVALS, index=False)
        write_json(paths.LEAKAGE, leakage_audit(grid, S))
    finally:
        os.chdir(cwd)
