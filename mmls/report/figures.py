"""Matplotlib figures shared by the stages and the report (headless Agg backend)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from collections.abc import Mapping, Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mmls.core.io import PathLike, atomic_path
from mmls.core.paths import patch_key

DPI = 120
#: Size in inches of one image cell of the qualitative grids, and the extra height for the
#: title and legend. Pixel size of a grid = :func:`qualitative_figsize` x :data:`DPI`.
CELL_IN = 1.5
GRID_EXTRA_IN = 0.8
#: Error-map colours (RGB 0-1): TN, FP, FN, TP (index = 2 * truth + prediction).
ERROR_COLORS = np.array(
    [
        [0.0, 0.0, 0.0],  # TN black
        [0.894, 0.102, 0.110],  # FP red
        [0.216, 0.494, 0.722],  # FN blue
        [0.302, 0.686, 0.290],  # TP green
    ]
)

SPLIT_COLORS = {
    "train": "#4C72B0",
    "val": "#DD8452",
    "test": "#55A868",
    "isolated_test": "#C44E52",
}


def save_figure(fig: plt.Figure, path: PathLike, dpi: int = DPI) -> None:
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


def qualitative_figsize(n_rows: int, n_cols: int) -> tuple[float, float]:
    """Figure size (inches) of a qualitative grid; pixels = this x :data:`DPI`."""
    return CELL_IN * n_cols, CELL_IN * n_rows + GRID_EXTRA_IN


def error_map(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """H x W x 3 colours: TN black, FP red, FN blue, TP green."""
    code = 2 * (np.asarray(truth) > 0).astype(np.int64) + (np.asarray(pred) > 0)
    return ERROR_COLORS[code]


def stretch(band: np.ndarray) -> np.ndarray:
    """Linear 2-98 percentile stretch to [0, 1] (NaN where the input is NaN)."""
    finite = band[np.isfinite(band)]
    if finite.size == 0:
        return np.zeros_like(band, dtype=np.float64)
    lo, hi = np.percentile(finite, [2, 98])
    return np.clip((band - lo) / (hi - lo if hi > lo else 1.0), 0, 1)


@dataclass(frozen=True)
class Example:
    """One patch of a qualitative figure: what could be read of it."""

    region: str
    col: int
    row: int
    rgb: np.ndarray | None  # H x W x 3 in [0, 1]
    dem: np.ndarray | None  # H x W in [0, 1]
    truth: np.ndarray | None  # H x W {0, 1}

    @property
    def key(self) -> str:
        return patch_key(self.region, self.col, self.row)


def plot_qualitative(
    examples: Sequence[Example],
    columns: Sequence[tuple[str, Mapping[str, np.ndarray]]],
    path: PathLike,
    title: str,
) -> None:
    """Figs. 5/7/8: per row a patch; RGB, DEM, ground truth, then one error map per column."""
    n_cols = 3 + len(columns)
    fig, axes = plt.subplots(
        len(examples), n_cols, figsize=qualitative_figsize(len(examples), n_cols), squeeze=False
    )
    for r, ex in enumerate(examples):
        panels: list[tuple[str, np.ndarray | None, str | None]] = [
            ("RGB", ex.rgb, None),
            ("DEM", ex.dem, "gray"),
            ("ground truth", None if ex.truth is None else ex.truth, "gray"),
        ]
        for label, preds in columns:
            pred = preds.get(ex.key)
            if pred is None:
                panels.append((label, None, None))
            elif ex.truth is None:
                panels.append((label, pred, "gray"))
            else:
                panels.append((label, error_map(pred, ex.truth), None))
        for c, (label, img, cmap) in enumerate(panels):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if img is None:
                ax.text(0.5, 0.5, "missing", ha="center", va="center", fontsize=7)
            else:
                ax.imshow(img, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
            if r == 0:
                ax.set_title(label, fontsize=7)
            if c == 0:
                ax.set_ylabel(f"{ex.region}\nc{ex.col} r{ex.row}", fontsize=6)
    handles = [plt.Rectangle((0, 0), 1, 1, color=ERROR_COLORS[i]) for i in (3, 1, 2, 0)]
    fig.legend(handles, ["TP", "FP", "FN", "TN"], loc="lower center", ncol=4, fontsize=7)
    fig.suptitle(title, fontsize=8)
    fig.subplots_adjust(
        left=0.05,
        right=0.99,
        top=1 - 0.45 / fig.get_figheight(),
        bottom=0.35 / fig.get_figheight(),
        wspace=0.05,
        hspace=0.08,
    )
    save_figure(fig, path, dpi=DPI)


def plot_latency_miou(
    measured: Mapping[str, Mapping[str, Any]],
    cis: Mapping[str, Mapping[str, Mapping[str, float]]],
    paper: Mapping[str, Mapping[str, Any]],
    names: Mapping[str, str],
    path: PathLike,
) -> None:
    """Fig. 6: latency (ms per image) vs test mIoU, measured (with CI bars) beside the paper."""
    fig, (ax_m, ax_p) = plt.subplots(1, 2, figsize=(10, 4))
    devices = sorted({str(r.get("latency_device")) for r in measured.values()})
    for key, rec in measured.items():
        if rec.get("latency_s") is None:
            continue
        x, y = 1000 * float(rec["latency_s"]), float(rec["miou"])
        iv = cis.get(key, {}).get("miou")
        yerr = None if iv is None else [[max(y - iv["lo"], 0)], [max(iv["hi"] - y, 0)]]
        ax_m.errorbar(x, y, yerr=yerr, fmt="o", capsize=3)
        ax_m.annotate(
            names.get(key, key), (x, y), fontsize=7, xytext=(4, 4), textcoords="offset points"
        )
    ax_m.set_title(f"measured ({', '.join(devices) or 'no run'})", fontsize=8)
    for key, rec in paper.items():
        x, y = 1000 * float(rec["latency_s"]), float(rec["miou"])
        ax_p.plot(x, y, "s", color="gray")
        ax_p.annotate(
            names.get(key, key), (x, y), fontsize=7, xytext=(4, 4), textcoords="offset points"
        )
    ax_p.set_title("paper, Table 2 (NVIDIA A100)", fontsize=8)
    for ax in (ax_m, ax_p):
        ax.set_xlabel("inference time per image (ms)")
        ax.set_ylabel("test mIoU")
        ax.grid(alpha=0.3)
    fig.suptitle("Latency vs mIoU (cf. MMLSv2 Fig. 6); bars: block-bootstrap CI", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=DPI)


def plot_ci(
    cis: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]],
    order: Sequence[str],
    names: Mapping[str, str],
    path: PathLike,
    metric: str = "miou",
) -> None:
    """Forest plot: per model the point estimate and CI of ``metric``, one colour per split."""
    fig, ax = plt.subplots(figsize=(7, 4))
    colors = {"test": "#55A868", "isolated_test": "#C44E52"}
    labelled: set[str] = set()
    for j, (split, per_key) in enumerate(cis.items()):
        for i, key in enumerate(order):
            iv = per_key.get(key, {}).get(metric)
            if iv is None:
                continue
            y = i + (j - 0.5) * 0.25
            color = colors.get(split, "k")
            ax.plot([iv["lo"], iv["hi"]], [y, y], color=color)
            ax.plot(
                iv["estimate"],
                y,
                "o",
                color=color,
                label=None if split in labelled else names.get(split, split),
            )
            labelled.add(split)
    ax.set_yticks(range(len(order)), [names.get(k, k) for k in order])
    ax.invert_yaxis()
    ax.set_xlabel(f"{metric} (point estimate and block-bootstrap CI)")
    if labelled:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=DPI)


def plot_training_curves(
    histories: Mapping[str, pd.DataFrame], names: Mapping[str, str], path: PathLike
) -> None:
    """Train / validation loss and validation mIoU per epoch, one colour per model."""
    fig, (ax_l, ax_m) = plt.subplots(1, 2, figsize=(10, 4))
    for i, (key, h) in enumerate(histories.items()):
        color = f"C{i % 10}"
        label = names.get(key, key)
        ax_l.plot(h["epoch"], h["train_loss"], "-", color=color, label=f"{label} train")
        ax_l.plot(h["epoch"], h["val_loss"], "--", color=color, label=f"{label} val")
        ax_m.plot(h["epoch"], h["val_miou"], "-o", ms=3, color=color, label=label)
    ax_l.set_xlabel("epoch")
    ax_l.set_ylabel("cross entropy")
    ax_l.set_title("loss (solid: train, dashed: val)", fontsize=8)
    ax_m.set_xlabel("epoch")
    ax_m.set_ylabel("validation mIoU")
    ax_m.legend(fontsize=7)
    for ax in (ax_l, ax_m):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=DPI)
