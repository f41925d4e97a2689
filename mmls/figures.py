"""Matplotlib figures shared by the stages and the report (headless Agg backend)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mmls.io import PathLike, atomic_path  # noqa: E402

SPLIT_COLORS = {
    "train": "#4C72B0",
    "val": "#DD8452",
    "test": "#55A868",
    "isolated_test": "#C44E52",
}


def save_figure(fig: plt.Figure, path: PathLike, dpi: int = 120) -> None:
    """Save a PNG atomically with no time-dependent metadata, then close the figure."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)


def plot_fg_intervals(intervals: pd.DataFrame, path: PathLike) -> None:
    """Fig. 2: grouped bars, share of each split's patches per foreground-ratio interval."""
    splits = [s for s in SPLIT_COLORS if s in intervals.columns]
    x = np.arange(len(intervals))
    width = 0.8 / len(splits)
    fig, ax = plt.subplots(figsize=(8, 4))
    for i, split in enumerate(splits):
        ax.bar(
            x + (i - (len(splits) - 1) / 2) * width,
            intervals[split],
            width,
            label=split,
            color=SPLIT_COLORS[split],
        )
    ax.set_xticks(x, intervals["interval"], rotation=30)
    ax.set_xlabel("foreground ratio interval")
    ax.set_ylabel("share of the split's patches (%)")
    ax.set_title("Foreground-ratio intervals per split (cf. MMLSv2 Fig. 2)")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)
