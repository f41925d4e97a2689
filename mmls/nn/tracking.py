"""Per-epoch training logs through DVCLive: ``dvc exp show`` columns, ``dvc plots``, live updates.

A log folder holds DVCLive's ``metrics.json`` (the latest epoch plus the run's summary, rewritten
after every epoch, so a running training shows its progress) and ``plots/metrics/<name>.tsv``
(one row per epoch, ``step`` = epoch, no timestamps, so the files are deterministic apart from
``epoch_seconds``). DVCLive is told not to write a dvc.yaml nor to create experiments itself:
the pipeline's dvc.yaml declares these folders as the training stages' metrics and plots.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mmls.core.errors import InputError
from mmls.core.io import PathLike

#: Per-epoch values a training logs (one tsv each), besides ``step`` = epoch.
EPOCH_METRICS: tuple[str, ...] = (
    "train_loss",
    "val_loss",
    "val_miou",
    "val_iou_fg",
    "lr",
    "epoch_seconds",
)
METRICS_FILE = "metrics.json"
PLOTS_DIR = Path("plots/metrics")


class EpochLog:
    """Writes one training's epochs and summary into ``directory`` through DVCLive."""

    def __init__(self, directory: PathLike) -> None:
        from dvclive import Live  # imported here: DVCLive pulls in DVC, slow to import

        self.live = Live(
            dir=str(directory), resume=False, report=None, save_dvc_exp=False, dvcyaml=False
        )

    def epoch(self, row: Mapping[str, Any]) -> None:
        """Log one epoch's :data:`EPOCH_METRICS` under ``step = row["epoch"]``."""
        self.live.step = int(row["epoch"])
        for name in EPOCH_METRICS:
            self.live.log_metric(name, float(row[name]))
        self.live.next_step()

    def finish(self, summary: Mapping[str, Any]) -> None:
        """Add the run's summary (best epoch, training time, ...) to ``metrics.json``."""
        self.live.summary.update(summary)
        self.live.end()


def read_history(directory: PathLike) -> pd.DataFrame:
    """One row per epoch (column ``epoch`` plus :data:`EPOCH_METRICS`) from a log folder."""
    d = Path(directory)
    frames = []
    for name in EPOCH_METRICS:
        path = d / PLOTS_DIR / f"{name}.tsv"
        if not path.is_file():
            raise InputError(path, "training log not found (run the training stage)")
        frames.append(pd.read_csv(path, sep="\t").set_index("step")[[name]])
    return pd.concat(frames, axis=1).rename_axis("epoch").reset_index()


def history_rows(history: Sequence[Mapping[str, Any]]) -> list[dict[str, float]]:
    """Plain copies of history rows (what the resumable state stores)."""
    return [{k: float(v) for k, v in row.items()} for row in history]
