"""Collect what the report shows: every input is optional, a missing one reads "not run".

Inputs (paths from :mod:`mmls.core.paths`, relative to the pipeline's folder): Table 1, Fig. 2
data and the leakage audit of the split; the tables and statistics of the ``statistics``
stage; the DVCLive training logs; the predicted masks of the first seed of every model and
band set; and the store (patch table, images and masks) for the qualitative figures, so that
the report follows ``dataset.*`` like every other stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mmls.core import paths
from mmls.core.io import read_json
from mmls.data.store import Store, load_store
from mmls.nn.tracking import read_history


@dataclass
class Results:
    """Everything the report reads, keyed by split / model / band set (absent = not run)."""

    table1: dict[str, Any] | None
    fg_intervals: pd.DataFrame | None
    leakage: dict[str, Any] | None
    tables: dict[str, dict[str, dict[str, Any]]]  # split -> model -> table row
    ablation: dict[str, dict[str, Any]]  # band set -> table row
    statistics: dict[str, Any] | None
    histories: dict[str, pd.DataFrame]  # model -> first seed's epochs
    masks: dict[str, dict[str, Path]] = field(default_factory=dict)  # split -> model -> .npz
    ablation_masks: dict[str, Path] = field(default_factory=dict)  # band set -> .npz
    store: Store | None = None
    cv: dict[str, dict[str, Any]] = field(default_factory=dict)  # model -> CV table row
    rebuild: dict[str, Any] | None = None  # the raster route's check on released tiles


def optional_json(path: Path) -> dict[str, Any] | None:
    return read_json(path) if path.is_file() else None


def collect(
    models: Sequence[str], band_sets: Sequence[str], seeds: Sequence[int], splits: Sequence[str]
) -> Results:
    first = seeds[0]
    tables = {
        s: {
            m: row
            for m in models
            if (row := optional_json(paths.table_dir(s) / f"{m}.json")) is not None
        }
        for s in splits
    }
    ablation = {
        b: row for b in band_sets if (row := optional_json(paths.TABLE4 / f"{b}.json")) is not None
    }
    histories = {}
    for m in models:
        log = paths.train_log_dir(m, first)
        if (log / "plots").is_dir():
            histories[m] = read_history(log)
    masks = {
        s: {
            m: p
            for m in models
            if (p := paths.eval_predictions_dir(m, first) / f"{s}{paths.MASKS_SUFFIX}").is_file()
        }
        for s in splits
    }
    ablation_masks = {
        b: p
        for b in band_sets
        if (p := paths.ablation_predictions_dir(b, first) / f"test{paths.MASKS_SUFFIX}").is_file()
    }
    cv = {}
    if paths.CV_TABLE.is_dir():
        cv = {p.stem: read_json(p) for p in sorted(paths.CV_TABLE.glob("*.json"))}
    intervals = paths.FG_INTERVALS
    return Results(
        table1=optional_json(paths.TABLE1),
        fg_intervals=pd.read_csv(intervals) if intervals.is_file() else None,
        leakage=optional_json(paths.LEAKAGE),
        tables=tables,
        ablation=ablation,
        statistics=optional_json(paths.STATISTICS),
        histories=histories,
        masks=masks,
        ablation_masks=ablation_masks,
        store=load_store(paths.STORE) if (paths.STORE / "meta.json").is_file() else None,
        cv=cv,
        rebuild=optional_json(paths.REBUILD_CHECK),
    )
