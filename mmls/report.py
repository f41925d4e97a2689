"""The paper-side-by-side report: Tables 1-4, Figs. 2 and 5-8, training curves, block-bootstrap
confidence intervals and the leakage audit, regenerated from the pipeline's files alone.

Inputs (all under a project ``root``; every one optional, a missing one says "not run"):

- ``metrics/table1.json``, ``metrics/fg_intervals.csv`` (block_split), ``data/splits.csv``;
- ``metrics/eval/<split>/<model>.json`` (eval, split in test and isolated_test);
  ``metrics/eval/<split>/<model>.seed<k>.json`` for multi-seed runs;
- ``metrics/ablation/<band_set>.json`` (band_ablation);
- ``predictions/<split>/<model>.patches.csv`` and ``predictions/ablation/<band_set>.patches.csv``
  (per-patch counts for the block bootstrap), ``predictions/<split>/<model>.npz`` and
  ``predictions/ablation/<band_set>.npz`` (masks for the qualitative figures; see
  :func:`mmls.stats.write_patch_outputs`);
- ``models/<model>/history.csv`` (training curves), ``data/tiles`` (RGB, DEM, ground truth).

:func:`build_report` returns the Markdown and the statistics; it writes the figures into the
given folder. The paper's numbers come from ``reference/mmlsv2_tables.json``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmls.bands import BAND_NAMES
from mmls.errors import InputError
from mmls.figures import plot_fg_intervals, plt, save_figure
from mmls.io import read_json
from mmls.stats import (
    COUNT_COLUMNS,
    Interval,
    aligned_block_counts,
    bootstrap_ci,
    bootstrap_diff_ci,
    leakage_audit,
    prediction_key,
    read_patch_counts,
    read_predictions,
    seed_summary,
)

PAPER_MODELS: tuple[str, ...] = (
    "unet",
    "unetplusplus",
    "pspnet",
    "deeplabv3",
    "deeplabv3plus",
    "segformer",
)
PAPER_BAND_SETS: tuple[str, ...] = (
    "rgb",
    "rgb_dem",
    "rgb_dem_slope",
    "rgb_dem_slope_thermal",
    "all",
)
EVAL_SPLITS: tuple[str, ...] = ("test", "isolated_test")
TABLE1_SPLITS: tuple[str, ...] = ("train", "val", "test", "isolated_test")
CI_METRICS: tuple[str, ...] = ("miou", "iou_fg")
DPI = 120
#: Below this many blocks a percentile block bootstrap under-covers: such rows say "(few)".
MIN_BLOCKS = 20
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
COLUMN_LABELS: dict[str, str] = {
    "n_images": "# Images",
    "avg_fg_pct": "Avg_FG (%)",
    "std_fg_pct": "Std_FG (%)",
    "min_fg_pct": "Min_FG (%)",
    "max_fg_pct": "Max_FG (%)",
    "precision": "Precision",
    "recall": "Recall",
    "f1": "F1",
    "iou_bg": "IoU_BG",
    "iou_fg": "IoU_FG",
    "miou": "mIoU",
    "latency_s": "Inference time (s)",
    "train_time_h": "Training time (h)",
}


# ------------------------------------------------------------------------------------ config
@dataclass(frozen=True)
class ReportConfig:
    """What to report and how (params: ``models``, ``band_sets``, ``model``, ``bands``,
    ``tile.size``, ``scene.composite`` and the ``report`` section)."""

    models: tuple[str, ...] = PAPER_MODELS
    band_sets: tuple[str, ...] = PAPER_BAND_SETS
    model: str = "unet"
    bands: tuple[str, ...] = BAND_NAMES
    tile_size: int = 128
    scene: str = ""
    n_resamples: int = 2000
    ci_level: float = 0.95
    seed: int = 0
    n_examples: int = 4

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ReportConfig:
        section = dict(params.get("report") or {})
        known = {"n_resamples", "ci_level", "seed", "n_examples"}
        unknown = sorted(set(section) - known)
        if unknown:
            raise InputError("params.yaml", f"unknown report key(s) {unknown}")
        models = list(PAPER_MODELS) + [
            m for m in params.get("models") or {} if m not in PAPER_MODELS
        ]
        sets = list(PAPER_BAND_SETS) + [
            b for b in params.get("band_sets") or {} if b not in PAPER_BAND_SETS
        ]
        cfg = cls(
            models=tuple(models),
            band_sets=tuple(sets),
            model=str(params.get("model", "unet")),
            bands=tuple(params.get("bands") or cls.bands),
            tile_size=int((params.get("tile") or {}).get("size", 128)),
            scene=str((params.get("scene") or {}).get("composite", "")),
            **section,
        )
        if cfg.n_resamples < 100 or not 0.5 <= cfg.ci_level < 1 or cfg.n_examples < 1:
            raise InputError(
                "params.yaml",
                "report: need n_resamples >= 100, 0.5 <= ci_level < 1, n_examples >= 1",
            )
        return cfg


# ------------------------------------------------------------------------------------ inputs
def load_reference(path: str | Path) -> dict[str, Any]:
    """The paper's tables (``reference/mmlsv2_tables.json``)."""
    ref = read_json(path)
    for key in ("table1", "table2", "table3", "table4"):
        if key not in ref or "rows" not in ref[key]:
            raise InputError(path, f"lacks {key}.rows")
    return ref


def read_optional_json(path: Path) -> dict[str, Any] | None:
    return read_json(path) if path.is_file() else None


def read_optional_patches(path: Path) -> pd.DataFrame | None:
    return read_patch_counts(path) if path.is_file() else None


def seed_records(directory: Path, name: str) -> list[dict[str, Any]]:
    """Per-seed metric records ``<name>.seed<k>.json`` in ``directory``, by k."""
    pattern = re.compile(rf"^{re.escape(name)}\.seed(\d+)\.json$")
    found = sorted(
        (int(m.group(1)), p)
        for p in (directory.glob(f"{name}.seed*.json") if directory.is_dir() else [])
        if (m := pattern.match(p.name))
    )
    return [read_json(p) for _, p in found]


@dataclass
class Results:
    """Everything the report reads, keyed by model / band set (None = not run)."""

    table1: dict[str, Any] | None
    eval: dict[str, dict[str, dict[str, Any] | None]]
    eval_patches: dict[str, dict[str, pd.DataFrame | None]]
    ablation: dict[str, dict[str, Any] | None]
    ablation_patches: dict[str, pd.DataFrame | None]
    seeds: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)


def collect_results(root: Path, cfg: ReportConfig) -> Results:
    ev = {
        s: {m: read_optional_json(root / "metrics/eval" / s / f"{m}.json") for m in cfg.models}
        for s in EVAL_SPLITS
    }
    evp = {
        s: {
            m: read_optional_patches(root / "predictions" / s / f"{m}.patches.csv")
            for m in cfg.models
        }
        for s in EVAL_SPLITS
    }
    ab = {b: read_optional_json(root / "metrics/ablation" / f"{b}.json") for b in cfg.band_sets}
    abp = {
        b: read_optional_patches(root / "predictions/ablation" / f"{b}.patches.csv")
        for b in cfg.band_sets
    }
    seeds = {
        s: {m: seed_records(root / "metrics/eval" / s, m) for m in cfg.models} for s in EVAL_SPLITS
    }
    return Results(read_optional_json(root / "metrics/table1.json"), ev, evp, ab, abp, seeds)


# -------------------------------------------------------------------------------- formatting
def fmt(value: Any, key: str) -> str:
    """A number as the paper prints it (3 decimals; 2 for percentages; integers as is)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if key == "n_images":
        return str(int(value))
    if key.endswith("_pct"):
        return f"{float(value):.2f}"
    if key == "latency_s":
        return f"{float(value):.4f}"
    return f"{float(value):.3f}"


def fmt_diff(measured: Any, paper: Any, key: str) -> str:
    if measured is None or paper is None:
        return ""
    d = float(measured) - float(paper)
    text = fmt(abs(d), key)
    sign = "-" if d < 0 and float(text) != 0 else "+"
    return f" ({sign}{text})"


def cell(measured: Any, paper: Any, key: str) -> str:
    """``measured / paper (measured - paper)``."""
    return f"{fmt(measured, key)} / {fmt(paper, key)}{fmt_diff(measured, paper, key)}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt_ci(iv: Interval | None, signed: bool = False) -> str:
    if iv is None:
        return "–"
    f = "{:+.3f}" if signed else "{:.3f}"
    return f"{f.format(iv.estimate)} [{f.format(iv.lo)}, {f.format(iv.hi)}]"


def fmt_blocks(n: int) -> str:
    """Block count, flagged when too few for a percentile bootstrap to be trusted."""
    return f"{n} (few)" if n < MIN_BLOCKS else str(n)


def display(ref: Mapping[str, Any], key: str) -> str:
    return ref.get("display_names", {}).get(key, key)


def comparison_table(
    ref: Mapping[str, Any],
    table: str,
    keys: Sequence[str],
    measured: Mapping[str, Mapping[str, Any] | None],
    first_header: str,
) -> str:
    """Rows: measured vs paper, one cell per column of the paper's table."""
    paper_rows = ref[table]["rows"]
    columns = list(ref[table]["columns"])
    headers = [first_header, "status", *(COLUMN_LABELS.get(c, c) for c in columns)]
    rows = []
    for key in keys:
        rec = measured.get(key)
        paper = paper_rows.get(key, {})
        status = "measured" if rec is not None else "not run"
        rows.append(
            [
                display(ref, key),
                status,
                *(cell(None if rec is None else rec.get(c), paper.get(c), c) for c in columns),
            ]
        )
    return markdown_table(headers, rows)


# ------------------------------------------------------------------------------- statistics
def counts_check(table: pd.DataFrame | None, record: Mapping[str, Any] | None) -> str:
    """Do the per-patch counts add up to the metrics JSON's pooled counts?"""
    if table is None or record is None:
        return "–"
    sums = table[list(COUNT_COLUMNS)].sum()
    ok = all(int(sums[c]) == int(record.get(c, -1)) for c in COUNT_COLUMNS)
    return "ok" if ok else "MISMATCH"


def interval_stats(
    tables: Mapping[str, pd.DataFrame | None], cfg: ReportConfig
) -> dict[str, dict[str, Interval]]:
    """Per key (model / band set) with counts: the CI of each of :data:`CI_METRICS`."""
    out: dict[str, dict[str, Interval]] = {}
    for key, table in tables.items():
        if table is None or table.empty:
            continue
        (blocks,), _ = aligned_block_counts([table])
        out[key] = {
            m: bootstrap_ci(
                blocks, m, n_resamples=cfg.n_resamples, seed=cfg.seed, level=cfg.ci_level
            )
            for m in CI_METRICS
        }
    return out


def pairwise_stats(
    tables: Mapping[str, pd.DataFrame | None], order: Sequence[str], cfg: ReportConfig
) -> list[dict[str, Any]]:
    """Paired CIs of ``metric(b) - metric(a)`` for every pair a before b in ``order`` that both
    have counts, on the patches both hold."""
    out = []
    present = [k for k in order if tables.get(k) is not None and not tables[k].empty]
    for a, b in combinations(present, 2):
        (ba, bb), n_patches = aligned_block_counts([tables[a], tables[b]])
        entry: dict[str, Any] = {"a": a, "b": b, "n_patches": n_patches}
        for m in CI_METRICS:
            entry[m] = bootstrap_diff_ci(
                bb,
                ba,
                m,
                paired=True,
                n_resamples=cfg.n_resamples,
                seed=cfg.seed,
                level=cfg.ci_level,
            )
        out.append(entry)
    return out


def drop_stats(
    test: Mapping[str, pd.DataFrame | None],
    isolated: Mapping[str, pd.DataFrame | None],
    cfg: ReportConfig,
) -> dict[str, dict[str, Interval]]:
    """Unpaired CIs of ``metric(test) - metric(isolated_test)`` per model."""
    out: dict[str, dict[str, Interval]] = {}
    for key in test:
        a, b = test.get(key), isolated.get(key)
        if a is None or b is None or a.empty or b.empty:
            continue
        (ba,), _ = aligned_block_counts([a])
        (bb,), _ = aligned_block_counts([b])
        out[key] = {
            m: bootstrap_diff_ci(
                ba,
                bb,
                m,
                paired=False,
                n_resamples=cfg.n_resamples,
                seed=cfg.seed,
                level=cfg.ci_level,
            )
            for m in CI_METRICS
        }
    return out


def verdict(iv: Interval) -> str:
    return "**yes**" if iv.excludes_zero else "no"


# ------------------------------------------------------------------------------------ figures
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
    """One patch of a qualitative figure: its key and what could be read of its tile."""

    region: str
    col: int
    row: int
    rgb: np.ndarray | None  # H x W x 3 in [0, 1]
    dem: np.ndarray | None  # H x W in [0, 1]
    truth: np.ndarray | None  # H x W {0, 1}

    @property
    def key(self) -> str:
        return prediction_key(self.region, self.col, self.row)


def read_example(tiles_dir: Path, region: str, col: int, row: int, bands: Sequence[str]) -> Example:
    """Read RGB, DEM and mask of a tile (None for what is missing)."""
    import rasterio

    name = f"c{int(col)}_r{int(row)}.tif"
    image_path = tiles_dir / region / "images" / name
    mask_path = tiles_dir / region / "masks" / name
    rgb = dem = truth = None
    if image_path.is_file():
        with rasterio.open(image_path) as src:
            data = src.read(out_dtype="float64")
            if src.nodata is not None:
                data[data == src.nodata] = np.nan
        names = list(bands)
        if all(b in names for b in ("red", "green", "blue")) and data.shape[0] == len(names):
            rgb = np.dstack([stretch(data[names.index(b)]) for b in ("red", "green", "blue")])
            rgb = np.nan_to_num(rgb)
        if "dem" in names and data.shape[0] == len(names):
            dem = np.nan_to_num(stretch(data[names.index("dem")]))
    if mask_path.is_file():
        with rasterio.open(mask_path) as src:
            truth = src.read(1)
    return Example(region, int(col), int(row), rgb, dem, truth)


def select_examples(candidates: pd.DataFrame, available: set[str], n: int) -> pd.DataFrame:
    """``n`` patches spread over the foreground-ratio range (quantiles (i + 0.5) / n of the
    sorted candidates that have a prediction in every file), deterministic."""
    keys = [prediction_key(r.region, r.col, r.row) for r in candidates.itertuples()]
    pool = candidates[[k in available for k in keys]]
    if "fg_ratio" in pool.columns:
        pool = pool.sort_values(["fg_ratio", "region", "col", "row"], kind="stable")
    if pool.empty:
        return pool
    n = min(n, len(pool))
    picks = sorted({int((i + 0.5) / n * len(pool)) for i in range(n)})
    return pool.iloc[picks]


def plot_qualitative(
    examples: Sequence[Example],
    columns: Sequence[tuple[str, Mapping[str, np.ndarray]]],
    path: Path,
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
    cis: Mapping[str, Mapping[str, Interval]],
    paper: Mapping[str, Mapping[str, Any]],
    names: Mapping[str, str],
    path: Path,
) -> None:
    """Fig. 6: latency (ms per image) vs test mIoU, measured (with CI bars) beside the paper."""
    fig, (ax_m, ax_p) = plt.subplots(1, 2, figsize=(10, 4))
    devices = sorted({str(r.get("latency_device")) for r in measured.values()})
    for key, rec in measured.items():
        if rec.get("latency_s") is None:
            continue
        x, y = 1000 * float(rec["latency_s"]), float(rec["miou"])
        iv = cis.get(key, {}).get("miou")
        yerr = None if iv is None else [[max(y - iv.lo, 0)], [max(iv.hi - y, 0)]]
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
    cis: Mapping[str, Mapping[str, Mapping[str, Interval]]],
    order: Sequence[str],
    names: Mapping[str, str],
    path: Path,
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
            ax.plot([iv.lo, iv.hi], [y, y], color=color)
            ax.plot(
                iv.estimate,
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
    histories: Mapping[str, pd.DataFrame], names: Mapping[str, str], path: Path
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


# ------------------------------------------------------------------------------------ report
@dataclass
class Report:
    markdown: str
    figures: list[str]
    stats: dict[str, Any]
    leakage: dict[str, Any] | None


def _read_splits(root: Path) -> pd.DataFrame | None:
    path = root / "data/splits.csv"
    if not path.is_file():
        return None
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(path, f"not a readable CSV ({exc})") from exc
    needed = {"region", "col", "row", "x_off", "y_off", "split"}
    if not needed <= set(df.columns):
        raise InputError(path, f"missing column(s) {sorted(needed - set(df.columns))}")
    df["region"] = df["region"].astype(str)
    return df


def _qualitative(
    root: Path,
    splits: pd.DataFrame | None,
    split: str,
    sources: Sequence[tuple[str, Path]],
    cfg: ReportConfig,
    path: Path,
    title: str,
) -> str | None:
    """Draw one qualitative grid; return None, or a note saying why it was skipped."""
    columns = [(label, read_predictions(p)) for label, p in sources if p.is_file()]
    if not columns:
        return (
            "no prediction file ("
            + ", ".join(str(p.relative_to(root)) for _, p in sources[:2])
            + ", ...)"
        )
    available = set.intersection(*(set(preds) for _, preds in columns))
    if splits is not None:
        candidates = splits[splits["split"] == split]
    else:
        rows = [re.match(r"^c(\d+)_r(\d+)_(.+)$", k) for k in sorted(available)]
        candidates = pd.DataFrame(
            [
                {"region": m.group(3), "col": int(m.group(1)), "row": int(m.group(2))}
                for m in rows
                if m
            ]
        )
    chosen = select_examples(candidates, available, cfg.n_examples)
    if chosen.empty:
        return "no patch has a prediction in every file"
    examples = [
        read_example(root / "data/tiles", r.region, r.col, r.row, cfg.bands)
        for r in chosen.itertuples()
    ]
    plot_qualitative(examples, columns, path, title)
    return None


def build_report(
    root: Path, cfg: ReportConfig, reference: Mapping[str, Any], figures_dir: Path
) -> Report:
    """Read everything under ``root``, draw the figures into ``figures_dir`` and return the
    Markdown (figures linked as ``figures/<name>.png``), the statistics and the leakage audit."""
    root = Path(root)
    figures_dir.mkdir(parents=True, exist_ok=True)
    res = collect_results(root, cfg)
    splits = _read_splits(root)
    names = dict(reference.get("display_names", {}))
    figures: list[str] = []
    md: list[str] = []

    def figure(name: str, caption: str) -> None:
        figures.append(name)
        md.append(f"![{caption}](figures/{name})\n\n*{caption}*\n")

    def qualitative(split: str, sources: list[tuple[str, Path]], name: str, caption: str) -> None:
        note = _qualitative(root, splits, split, sources, cfg, figures_dir / name, caption)
        if note is None:
            figure(name, caption)
        else:
            md.append(f"*{caption.split(':')[0]} skipped: {note}.*\n")

    md.append(_intro(reference, cfg))

    # ---------------------------------------------------------------- Table 1, Fig. 2
    md.append("## Table 1: dataset splits\n")
    md.append(comparison_table(reference, "table1", TABLE1_SPLITS, res.table1 or {}, "Split"))
    md.append("")
    intervals = root / "metrics/fg_intervals.csv"
    if intervals.is_file():
        plot_fg_intervals(pd.read_csv(intervals), figures_dir / "fig2_fg_intervals.png")
        figure(
            "fig2_fg_intervals.png",
            "Fig. 2: share of each split's patches per foreground-ratio interval",
        )
    else:
        md.append("*Fig. 2 skipped: `metrics/fg_intervals.csv` not found.*\n")

    # ---------------------------------------------------------------- Tables 2, 3, Figs. 5-7
    split_cis = {s: interval_stats(res.eval_patches[s], cfg) for s in EVAL_SPLITS}
    err = "errors: TP green, FP red, FN blue, TN black"
    for split, table, title, fig_no in (
        ("test", "table2", "Table 2: models on the test split", 5),
        ("isolated_test", "table3", "Table 3: models on the isolated test split", 7),
    ):
        md.append(f"## {title}\n")
        md.append(comparison_table(reference, table, cfg.models, res.eval[split], "Method"))
        md.append("")
        devices = sorted({str(r.get("latency_device")) for r in res.eval[split].values() if r})
        md.append(
            f"Latency: measured = median batch-1 forward pass on {', '.join(devices) or '–'}; "
            f"paper = {reference[table].get('latency_device', '?')}. Not comparable across "
            "devices.\n"
        )
        sources = [(names.get(m, m), root / "predictions" / split / f"{m}.npz") for m in cfg.models]
        qualitative(
            split,
            sources,
            f"fig{fig_no}_qualitative_{split.split('_')[0]}.png",
            f"Fig. {fig_no}: {names.get(split, split)} patches, one column per model; {err}",
        )
        if split == "test":
            measured = {k: v for k, v in res.eval["test"].items() if v is not None}
            plot_latency_miou(
                measured,
                split_cis["test"],
                reference["table2"]["rows"],
                names,
                figures_dir / "fig6_latency_miou.png",
            )
            figure("fig6_latency_miou.png", "Fig. 6: inference time per image vs test mIoU")

    # ---------------------------------------------------------------- Table 4, Fig. 8
    model_name = names.get(cfg.model, cfg.model)
    md.append(f"## Table 4: band combinations ({model_name}, test split)\n")
    if cfg.model != reference["table4"].get("model", "unet"):
        md.append(
            f"Note: the paper's Table 4 uses {reference['table4'].get('model')}, "
            f"this run `{cfg.model}`.\n"
        )
    md.append(comparison_table(reference, "table4", cfg.band_sets, res.ablation, "Bands"))
    md.append("")
    sources = [(names.get(b, b), root / "predictions/ablation" / f"{b}.npz") for b in cfg.band_sets]
    qualitative(
        "test",
        sources,
        "fig8_band_sets.png",
        f"Fig. 8: {model_name} on test patches, one column per band set; {err}",
    )

    # ---------------------------------------------------------------- statistics
    stats: dict[str, Any] = {
        "config": {
            "n_resamples": cfg.n_resamples,
            "ci_level": cfg.ci_level,
            "seed": cfg.seed,
            "unit": "spatial block (region, block_col, block_row)",
            "method": "percentile",
        },
        "intervals": {},
        "model_differences": {},
        "test_minus_isolated": {},
    }
    md.append(_statistics_section(res, cfg, names, split_cis, stats))
    md.append(_band_stats_section(res, cfg, names, stats))
    if any(split_cis.values()):
        plot_ci(split_cis, cfg.models, names, figures_dir / "ci_miou.png")
        figure("ci_miou.png", f"mIoU with {cfg.ci_level:.0%} block-bootstrap CIs per split")

    # ---------------------------------------------------------------- training curves
    md.append("## Training curves\n")
    histories = {}
    for m in cfg.models:
        h = root / "models" / m / "history.csv"
        if h.is_file():
            df = pd.read_csv(h)
            if {"epoch", "train_loss", "val_loss", "val_miou"} <= set(df.columns) and len(df):
                histories[m] = df
    if histories:
        plot_training_curves(histories, names, figures_dir / "training_curves.png")
        figure("training_curves.png", "Training curves (models/<model>/history.csv)")
    else:
        md.append("*Training curves skipped: no `models/<model>/history.csv`.*\n")

    # ---------------------------------------------------------------- leakage audit
    leakage = None
    md.append("## Leakage audit\n")
    if splits is None:
        md.append("*Skipped: `data/splits.csv` not found.*\n")
    else:
        leakage = leakage_audit(splits, cfg.tile_size)
        md.append(_leakage_section(leakage, names))

    return Report("\n".join(md), figures, stats, leakage)


def _intro(reference: Mapping[str, Any], cfg: ReportConfig) -> str:
    src = reference.get("source", {})
    text = (
        "# MMLSv2 reproduction report\n\n"
        "Regenerated by the `report` stage from the pipeline's metrics files alone. "
        f"Published numbers: *{src.get('title', 'MMLSv2')}*, Tables 1-4 (copied into "
        "`reference/mmlsv2_tables.json`, each entry with its source). Each cell reads "
        '**measured / paper (measured - paper)**; "not run" rows have no metrics file yet. '
        "The paper reports no uncertainty; the section *Uncertainty* adds block-bootstrap "
        "intervals.\n\n"
        f"Scene: `{cfg.scene or '?'}`"
    )
    if "synthetic" in cfg.scene:
        text += (
            " — a SYNTHETIC scene, not the paper's Valles Marineris mosaic: differences to the "
            "paper measure nothing about the method's accuracy on Mars, only that the pipeline "
            "runs end to end."
        )
    return text + "\n"


def _statistics_section(
    res: Results,
    cfg: ReportConfig,
    names: Mapping[str, str],
    split_cis: Mapping[str, Mapping[str, Mapping[str, Interval]]],
    stats: dict[str, Any],
) -> str:
    lvl = f"{cfg.ci_level:.0%}"
    md = [
        "## Uncertainty (not in the paper)\n",
        f"{lvl} percentile intervals from a **spatial block bootstrap**: {cfg.n_resamples} "
        f"resamples (seed {cfg.seed}) of the split's 2 x 2 patch blocks with replacement, each "
        "recomputing the pooled metric from the summed TP/FP/FN/TN of the drawn blocks "
        "(neighbouring pixels are correlated, so pixels are not independent samples). They "
        "cover test-set sampling only, not training randomness (seeds). With few blocks "
        f'(marked "few", < {MIN_BLOCKS}) percentile intervals are too narrow. "counts" checks '
        "that the per-patch counts add up to the metrics JSON.\n",
    ]
    for split in EVAL_SPLITS:
        cis = split_cis.get(split, {})
        stats["intervals"][split] = {
            k: {m: iv.as_dict() for m, iv in v.items()} for k, v in cis.items()
        }
        rows = []
        for m in cfg.models:
            iv = cis.get(m)
            table = res.eval_patches[split].get(m)
            if iv is None:
                status = "not run" if res.eval[split].get(m) is None else "no per-patch counts"
                rows.append([names.get(m, m), status, "–", "–", "–", "–"])
                continue
            rows.append(
                [
                    names.get(m, m),
                    counts_check(table, res.eval[split].get(m)),
                    fmt_ci(iv["miou"]),
                    fmt_ci(iv["iou_fg"]),
                    fmt_blocks(iv["miou"].n_blocks),
                    str(len(table)),
                ]
            )
        md.append(f"### {split}: {lvl} CIs\n")
        md.append(
            markdown_table(
                ["Method", "counts", "mIoU [CI]", "IoU_FG [CI]", "blocks", "patches"], rows
            )
            + "\n"
        )
        diffs = pairwise_stats(res.eval_patches[split], cfg.models, cfg)
        stats["model_differences"][split] = [
            {
                "a": d["a"],
                "b": d["b"],
                "n_patches": d["n_patches"],
                **{m: d[m].as_dict() for m in CI_METRICS},
            }
            for d in diffs
        ]
        if diffs:
            md.append(f"### {split}: paired differences between models (row B - A)\n")
            md.append(_diff_table(diffs, names) + "\n")
        seeds = {m: r for m, r in res.seeds[split].items() if r}
        if seeds:
            rows = []
            for m, recs in seeds.items():
                s = seed_summary(recs, CI_METRICS)
                rows.append(
                    [
                        names.get(m, m),
                        str(s["n_seeds"]),
                        f"{s['miou_mean']:.3f} ± {s['miou_std']:.3f}",
                        f"{s['iou_fg_mean']:.3f} ± {s['iou_fg_std']:.3f}",
                    ]
                )
            md.append(f"### {split}: across training seeds (mean ± sample std)\n")
            md.append(markdown_table(["Method", "seeds", "mIoU", "IoU_FG"], rows) + "\n")
    drops = drop_stats(res.eval_patches["test"], res.eval_patches["isolated_test"], cfg)
    stats["test_minus_isolated"] = {
        k: {m: iv.as_dict() for m, iv in v.items()} for k, v in drops.items()
    }
    if drops:
        md.append("### Test minus isolated test (unpaired: independent block resamples)\n")
        rows = [
            [
                names.get(k, k),
                fmt_ci(v["miou"], True),
                verdict(v["miou"]),
                fmt_ci(v["iou_fg"], True),
                verdict(v["iou_fg"]),
            ]
            for k, v in drops.items()
        ]
        md.append(
            markdown_table(
                ["Method", "Δ mIoU [CI]", "CI excludes 0", "Δ IoU_FG [CI]", "CI excludes 0"], rows
            )
            + "\n"
        )
    n_pairs = sum(len(v) for v in stats["model_differences"].values())
    if n_pairs:
        md.append(
            f"{n_pairs} pairwise intervals are shown without multiplicity correction: among many "
            f"truly equal pairs about {1 - cfg.ci_level:.0%} would still exclude 0 by chance.\n"
        )
    return "\n".join(md)


def _diff_table(diffs: Sequence[Mapping[str, Any]], names: Mapping[str, str]) -> str:
    rows = [
        [
            names.get(d["a"], d["a"]),
            names.get(d["b"], d["b"]),
            fmt_ci(d["miou"], True),
            verdict(d["miou"]),
            fmt_ci(d["iou_fg"], True),
            verdict(d["iou_fg"]),
        ]
        for d in diffs
    ]
    return markdown_table(
        ["A", "B", "Δ mIoU (B - A) [CI]", "CI excludes 0", "Δ IoU_FG [CI]", "CI excludes 0"], rows
    )


def _band_stats_section(
    res: Results, cfg: ReportConfig, names: Mapping[str, str], stats: dict[str, Any]
) -> str:
    cis = interval_stats(res.ablation_patches, cfg)
    stats["band_set_intervals"] = {
        k: {m: iv.as_dict() for m, iv in v.items()} for k, v in cis.items()
    }
    diffs = pairwise_stats(res.ablation_patches, cfg.band_sets, cfg)
    stats["band_set_differences"] = [
        {
            "a": d["a"],
            "b": d["b"],
            "n_patches": d["n_patches"],
            **{m: d[m].as_dict() for m in CI_METRICS},
        }
        for d in diffs
    ]
    if not cis:
        return "*Band-set CIs skipped: no `predictions/ablation/<band_set>.patches.csv`.*\n"
    rows = [
        [
            names.get(b, b),
            counts_check(res.ablation_patches[b], res.ablation.get(b)),
            fmt_ci(cis[b]["miou"]),
            fmt_ci(cis[b]["iou_fg"]),
            fmt_blocks(cis[b]["miou"].n_blocks),
        ]
        for b in cfg.band_sets
        if b in cis
    ]
    md = [
        f"### Band sets ({cfg.ci_level:.0%} CIs; paired differences, B - A)\n",
        markdown_table(["Bands", "counts", "mIoU [CI]", "IoU_FG [CI]", "blocks"], rows) + "\n",
    ]
    if diffs:
        md.append(_diff_table(diffs, names) + "\n")
    return "\n".join(md)


def _leakage_section(leakage: Mapping[str, Any], names: Mapping[str, str]) -> str:
    md = [
        f"Which evaluation patches touch a **{leakage['against']}** patch "
        f"({leakage['n_' + leakage['against']]} of them; tile size {leakage['tile_size']} px). "
        f"{leakage['definition']} Also written to `metrics/leakage.json`.\n"
    ]
    rows = []
    entries = [
        *leakage["splits"].items(),
        ("isolated_test vs any base patch", leakage["isolated_test_vs_base"]),
    ]
    for split, s in entries:
        rows.append(
            [
                names.get(split, split),
                s["n_patches"],
                s["n_touching"],
                f"{100 * s['share_touching']:.1f}%",
                s["n_overlapping"],
                s["n_edge_adjacent"],
                s["n_corner_adjacent"],
                s["n_within_one_patch"],
                "–" if s["min_gap_px"] is None else s["min_gap_px"],
            ]
        )
    md.append(
        markdown_table(
            [
                "Patches",
                "n",
                "touching",
                "share",
                "overlap",
                "edge",
                "corner only",
                "gap < 1 patch",
                "min gap (px)",
            ],
            rows,
        )
        + "\n"
    )
    iso = leakage["splits"].get("isolated_test", {})
    if iso.get("n_touching"):
        md.append(
            f"**{iso['n_touching']} isolated-test patches touch a training patch** "
            "(across the holdout boundary): the isolated region is not separated from "
            "training data by any buffer.\n"
        )
    return "\n".join(md)
