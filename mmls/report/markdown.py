"""The paper-side-by-side report: Markdown from collected results (:mod:`mmls.report.results`) and
figures (:mod:`mmls.report.figures`). No statistic is computed here: intervals and differences come
from the ``statistics`` stage (``metrics/statistics.json``), the leakage audit from the split.

Each table cell reads **measured / paper (measured - paper)**; the paper's numbers come from
``reference/mmlsv2_tables.json``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmls.core.config import ParamError, Section
from mmls.core.errors import InputError
from mmls.core.io import read_json
from mmls.core.paths import SPLITS, patch_key
from mmls.data.store import Store
from mmls.metrics.patch_files import read_masks
from mmls.report.figures import (
    Example,
    plot_ci,
    plot_fg_intervals,
    plot_latency_miou,
    plot_qualitative,
    plot_training_curves,
    stretch,
)
from mmls.report.results import Results
from mmls.report.tables import MIN_BLOCKS

#: The paper's tables of model scores, by split.
PAPER_TABLES: dict[str, tuple[str, str, int]] = {
    "test": ("table2", "Table 2: models on the test split", 5),
    "isolated_test": ("table3", "Table 3: models on the isolated test split", 7),
}
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
MODEL_COLUMNS = ("precision", "recall", "f1", "iou_bg", "iou_fg", "miou", "latency_s")
ERRORS = "errors: TP green, FP red, FN blue, TN black"


class ReportConfig(Section):
    """The ``report`` params section."""

    n_examples: int  # patches per qualitative figure, at evenly spaced fg-ratio quantiles

    def check(self) -> None:
        if self.n_examples < 1:
            raise ParamError("n_examples", "must be >= 1")


@dataclass(frozen=True)
class Scope:
    """What the pipeline was asked to run (params), in the order the report shows it."""

    models: Sequence[str]
    band_sets: Sequence[str]
    model: str  # the model under study (band ablation)
    seeds: Sequence[int]
    splits: Sequence[str]  # scored splits (eval.splits)
    data: str  # the scene or release the numbers come from


@dataclass
class Report:
    markdown: str
    figures: list[str]


def load_reference(path: str | Path) -> dict[str, Any]:
    """The paper's tables (``reference/mmlsv2_tables.json``)."""
    ref = read_json(path)
    for key in ("table1", "table2", "table3", "table4"):
        if key not in ref or "rows" not in ref[key]:
            raise InputError(path, f"lacks {key}.rows")
    return ref


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


def cell(measured: Any, paper: Any, key: str) -> str:
    """``measured / paper (measured - paper)``, or ``measured`` alone without a paper value."""
    if paper is None:
        return fmt(measured, key)
    text = f"{fmt(measured, key)} / {fmt(paper, key)}"
    if measured is None:
        return text
    d = float(measured) - float(paper)
    diff = fmt(abs(d), key)
    sign = "-" if d < 0 and float(diff) != 0 else "+"
    return f"{text} ({sign}{diff})"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt_ci(iv: Mapping[str, Any] | None, signed: bool = False) -> str:
    if iv is None:
        return "–"
    f = "{:+.3f}" if signed else "{:.3f}"
    return f"{f.format(iv['estimate'])} [{f.format(iv['lo'])}, {f.format(iv['hi'])}]"


def fmt_blocks(n: int) -> str:
    """Block count, flagged when too few for a percentile bootstrap to be trusted."""
    return f"{n} (few)" if n < MIN_BLOCKS else str(n)


def verdict(iv: Mapping[str, Any]) -> str:
    return "**yes**" if iv["excludes_zero"] else "no"


def comparison_table(
    keys: Sequence[str],
    columns: Sequence[str],
    measured: Mapping[str, Mapping[str, Any] | None],
    paper: Mapping[str, Mapping[str, Any]],
    first_header: str,
    names: Mapping[str, str],
) -> str:
    """Rows: measured vs paper, one cell per column; ``± sd`` over seeds where measured."""
    headers = [first_header, "status", *(COLUMN_LABELS.get(c, c) for c in columns)]
    rows = []
    for key in keys:
        rec = measured.get(key)
        ref = paper.get(key, {})
        cells = []
        for c in columns:
            text = cell(None if rec is None else rec.get(c), ref.get(c), c)
            sd = None if rec is None else rec.get(f"{c}_sd")
            cells.append(text + (f" ± {sd:.3f}" if sd is not None else ""))
        status = "not run" if rec is None else f"seeds: {rec.get('n_seeds', 1)}"
        if rec is not None and "n_seeds" not in rec:
            status = "none in the data" if rec.get("n_images") == 0 else "measured"
        rows.append([names.get(key, key), status, *cells])
    return markdown_table(headers, rows)


# ----------------------------------------------------------------------------- figures
def select_examples(candidates: pd.DataFrame, available: set[str], n: int) -> pd.DataFrame:
    """``n`` patches spread over the foreground-ratio range (quantiles (i + 0.5) / n of the
    sorted candidates that have a prediction in every file), deterministic."""
    keys = [patch_key(r.region, r.col, r.row) for r in candidates.itertuples()]
    pool = candidates[[k in available for k in keys]]
    if "fg_ratio" in pool.columns:
        pool = pool.sort_values(["fg_ratio", "region", "col", "row"], kind="stable")
    if pool.empty:
        return pool
    n = min(n, len(pool))
    picks = sorted({int((i + 0.5) / n * len(pool)) for i in range(n)})
    return pool.iloc[picks]


def example_from_store(store: Store, row: int) -> Example:
    """RGB, DEM and mask of one store row, stretched for display."""
    rec = store.patches.iloc[row]
    data = np.asarray(store.images[row], dtype=np.float64)
    if store.nodata is not None:
        data[data == store.nodata] = np.nan
    names = list(store.bands)
    rgb = np.nan_to_num(
        np.dstack([stretch(data[names.index(b)]) for b in ("red", "green", "blue")])
    )
    dem = np.nan_to_num(stretch(data[names.index("dem")]))
    return Example(
        str(rec["region"]), int(rec["col"]), int(rec["row"]), rgb, dem, np.asarray(store.masks[row])
    )


def qualitative(
    store: Store | None,
    split: str,
    sources: Mapping[str, Path],
    n_examples: int,
    path: Path,
    title: str,
) -> str | None:
    """Draw one qualitative grid; return None, or a note saying why it was skipped."""
    if store is None:
        return "no store (run the `store` stage)"
    columns = [(label, read_masks(p)) for label, p in sources.items()]
    if not columns:
        return "no prediction file"
    available = set.intersection(*(set(preds) for _, preds in columns))
    candidates = store.patches[store.patches["split"] == split]
    chosen = select_examples(candidates, available, n_examples)
    if chosen.empty:
        return "no patch has a prediction in every file"
    examples = [example_from_store(store, int(i)) for i in chosen.index]
    plot_qualitative(examples, columns, path, title)
    return None


# ----------------------------------------------------------------------------- sections
def _intro(reference: Mapping[str, Any], scope: Scope) -> str:
    src = reference.get("source", {})
    text = (
        "# MMLSv2 reproduction report\n\n"
        "Regenerated by the `report` stage from the pipeline's files alone. "
        f"Published numbers: *{src.get('title', 'MMLSv2')}*, Tables 1-4 (copied into "
        "`reference/mmlsv2_tables.json`, each entry with its source). Each cell reads "
        '**measured / paper (measured - paper)**; "not run" rows have no metrics file yet. '
        "Where several seeds were trained, cells show the mean over seeds ± the sample sd. "
        "The paper reports no uncertainty; the section *Uncertainty* adds block-bootstrap "
        "intervals.\n\n"
        f"Data: `{scope.data}`; seeds: {', '.join(str(s) for s in scope.seeds)}"
    )
    if "synthetic" in scope.data:
        text += (
            " — a SYNTHETIC scene, not the paper's Valles Marineris mosaic: differences to the "
            "paper measure nothing about the method's accuracy on Mars, only that the pipeline "
            "runs end to end."
        )
    if len(scope.seeds) == 1:
        text += "\n\nOne seed per model: seed variance is not measured in any interval below."
    return text + "\n"


def _interval_table(
    per_key: Mapping[str, Mapping[str, Any]],
    order: Sequence[str],
    names: Mapping[str, str],
) -> str:
    rows = []
    for key in order:
        iv = per_key.get(key)
        if iv is None:
            rows.append([names.get(key, key), "not run", "–", "–", "–"])
            continue
        rows.append(
            [
                names.get(key, key),
                str(iv["miou"].get("n_seeds", 1)),
                fmt_ci(iv["miou"]),
                fmt_ci(iv["iou_fg"]),
                fmt_blocks(iv["miou"]["n_blocks"]),
            ]
        )
    return markdown_table(["", "seeds", "mIoU [CI]", "IoU_FG [CI]", "blocks"], rows)


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


def _statistics_section(stats: Mapping[str, Any], scope: Scope, names: Mapping[str, str]) -> str:
    cfg = stats["config"]
    lvl = f"{cfg['ci_level']:.0%}"
    md = [
        "## Uncertainty (not in the paper)\n",
        f"{lvl} percentile intervals from a **spatial block bootstrap**: {cfg['n_resamples']} "
        f"resamples (seed {cfg['seed']}) of the split's 2 x 2 patch blocks with replacement, each "
        "recomputing the pooled metric from the summed TP/FP/FN/TN of the drawn blocks "
        "(neighbouring pixels are correlated, so pixels are not independent samples). With "
        "several seeds each resample also draws seeds with replacement and averages their "
        "metrics (training randomness inside the interval); model differences are paired over "
        "blocks and independent over seeds. With one seed the intervals cover test-set sampling "
        f'only. With few blocks (marked "few", < {MIN_BLOCKS}) percentile intervals are too '
        "narrow.\n",
    ]
    for split in scope.splits:
        md.append(f"### {split}: {lvl} CIs\n")
        md.append(_interval_table(stats["intervals"].get(split, {}), scope.models, names))
        md.append("")
        diffs = stats["model_differences"].get(split, [])
        if diffs:
            md.append(f"### {split}: paired differences between models (row B - A)\n")
            md.append(_diff_table(diffs, names) + "\n")
    drops = stats.get("test_minus_isolated", {})
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
    if stats.get("band_set_intervals"):
        md.append(f"### Band sets ({lvl} CIs; paired differences, B - A)\n")
        md.append(_interval_table(stats["band_set_intervals"], scope.band_sets, names) + "\n")
        if stats.get("band_set_differences"):
            md.append(_diff_table(stats["band_set_differences"], names) + "\n")
    n_pairs = sum(len(v) for v in stats["model_differences"].values())
    n_pairs += len(stats.get("band_set_differences", []))
    if n_pairs:
        md.append(
            f"{n_pairs} pairwise intervals are shown without multiplicity correction: among many "
            f"truly equal pairs about {1 - cfg['ci_level']:.0%} would still exclude 0 by chance.\n"
        )
    return "\n".join(md)


#: The peers' offline yardstick (PBVS 2026 Mars landslide challenge, 3rd place): 5-fold CV on
#: train + val with RANDOM folds and ImageNet-pretrained SwinV2 encoders.
PEER_CV = "0.839 ± 0.010 (challenge 3rd place: random 5-fold CV, ImageNet-pretrained SwinV2)"


def _paired(row: Mapping[str, Any], other: str | None) -> str:
    """``row``'s paired difference in mIoU to ``other`` with its CI (bold "yes" where the CI
    excludes 0), or a dash."""
    if not other or f"miou_minus_{other}" not in row:
        return "–"
    d = row[f"miou_minus_{other}"]
    lo, hi = row[f"miou_minus_{other}_ci_lo"], row[f"miou_minus_{other}_ci_hi"]
    return f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]" + (" **yes**" if lo > 0 or hi < 0 else "")


def cv_section(cv: Mapping[str, Mapping[str, Any]], names: Mapping[str, str]) -> str:
    first = next(iter(cv.values()))
    base = first.get("baseline")
    rows = []
    for model, r in cv.items():
        sd = r.get("miou_fold_sd")
        diff = "baseline" if model == base else _paired(r, base)
        best = f"{_paired(r, r['best'])} vs `{r['best']}`" if r.get("best") else "–"
        rows.append(
            [
                names.get(model, model),
                r["protocol"],
                r["n_folds"],
                r.get("seeds", r["n_seeds"]),
                f"{r['miou_fold_mean']:.3f} ± {sd:.3f}" if sd is not None else "–",
                f"{r['miou']:.3f} [{r['miou_ci_lo']:.3f}, {r['miou_ci_hi']:.3f}]",
                f"{r['iou_fg']:.3f} [{r['iou_fg_ci_lo']:.3f}, {r['iou_fg_ci_hi']:.3f}]",
                diff,
                best,
                f"{r['train_time_h']:.3f}",
                fmt(r.get("latency_s"), "latency_s"),
            ]
        )
    headers = [
        "Recipe",
        "protocol",
        "folds",
        "seeds",
        "mIoU per fold (mean ± sd)",
        "pooled mIoU [CI]",
        "pooled IoU_FG [CI]",
        f"Δ mIoU vs {base} [CI], excludes 0",
        "Δ mIoU vs the best of its kind [CI]",
        "training (h)",
        "latency (s)",
    ]
    protocols = {str(r["protocol"]): str(r["protocol_definition"]) for r in cv.values()}
    legend = "; ".join(f"`{k}`: {v}" for k, v in sorted(protocols.items()))
    return "\n".join(
        [
            f"Protocols: {legend}. Pooled = all held-out folds together (every patch is held "
            "out once under every protocol); CIs from a block bootstrap (and seeds); "
            "differences paired over blocks. Peers: "
            f"{PEER_CV}; their random folds share 2 x 2 blocks (and, at terminal origins, "
            "pixels) between folds: compare them with the `random` rows. Training time "
            "sums the folds (mean over seeds); ensembles sum their members.\n",
            markdown_table(headers, rows) + "\n",
        ]
    )


def _leakage_section(leakage: Mapping[str, Any], names: Mapping[str, str]) -> str:
    md = [
        f"Which evaluation patches touch a **{leakage['against']}** patch "
        f"({leakage['n_' + leakage['against']]} of them; tile size {leakage['tile_size']} px). "
        f"{leakage['definition']} Computed with the split (`metrics/leakage.json`).\n"
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
    headers = ["Patches", "n", "touching", "share", "overlap", "edge", "corner only"]
    md.append(markdown_table([*headers, "gap < 1 patch", "min gap (px)"], rows) + "\n")
    iso = leakage["splits"].get("isolated_test", {})
    if iso.get("n_touching"):
        md.append(
            f"**{iso['n_touching']} isolated-test patches touch a training patch** "
            "(across the holdout boundary): the isolated region is not separated from "
            "training data by any buffer.\n"
        )
    return "\n".join(md)


# --------------------------------------------------------------------------------- report
@dataclass
class _Draft:
    """The report being written: its Markdown blocks and figures so far, and what a figure
    needs (results, display names, folder). The sections below append to it in order."""

    res: Results
    names: dict[str, str]
    figures_dir: Path
    n_examples: int
    md: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)

    def figure(self, name: str, caption: str) -> None:
        """Link the figure ``name`` (already drawn) with its caption and list it."""
        self.figures.append(name)
        self.md.append(f"![{caption}](figures/{name})\n\n*{caption}*\n")

    def grid(self, split: str, sources: Mapping[str, Path], name: str, caption: str) -> None:
        """Draw and link a qualitative grid, or say in the text why it was skipped."""
        labelled = {self.names.get(k, k): p for k, p in sources.items()}
        path = self.figures_dir / name
        note = qualitative(self.res.store, split, labelled, self.n_examples, path, caption)
        if note is None:
            self.figure(name, caption)
        else:
            self.md.append(f"*{caption.split(':')[0]} skipped: {note}.*\n")


def _add_table1(draft: _Draft, reference: Mapping[str, Any]) -> None:
    """Table 1 (dataset splits) and Fig. 2 (fg intervals), when its data exist."""
    res, md, names = draft.res, draft.md, draft.names
    md.append("## Table 1: dataset splits\n")
    t1 = reference["table1"]
    md.append(comparison_table(SPLITS, t1["columns"], res.table1 or {}, t1["rows"], "Split", names))
    md.append("")
    if res.fg_intervals is not None:
        plot_fg_intervals(res.fg_intervals, draft.figures_dir / "fig2_fg_intervals.png")
        draft.figure(
            "fig2_fg_intervals.png", "Fig. 2: share of each split's patches per fg interval"
        )


def _add_model_table(
    draft: _Draft,
    reference: Mapping[str, Any],
    split: str,
    models: Sequence[str],
    stats: Mapping[str, Any],
) -> None:
    """One split's model table (Table 2 or 3 for the paper's splits), its protocol and latency
    notes, its qualitative grid and, for the test split, Fig. 6 (latency vs mIoU)."""
    md, names = draft.md, draft.names
    table, title, fig_no = PAPER_TABLES.get(split, ("", f"Models on the {split} split", 0))
    paper = reference[table] if table else {"rows": {}, "columns": list(MODEL_COLUMNS)}
    md.append(f"## {title}\n")
    columns = [*paper["columns"]] if table else list(MODEL_COLUMNS)
    measured = draft.res.tables.get(split, {})
    md.append(comparison_table(models, columns, measured, paper["rows"], "Method", names))
    md.append("")
    protocols = sorted({str(r["protocol"]) for r in measured.values() if r.get("protocol")})
    if protocols:
        md.append(f"Protocol: {'; '.join(protocols)}.\n")
    devices = sorted({str(r.get("latency_device")) for r in measured.values()})
    md.append(
        f"Latency: measured = median batch-1 forward pass on {', '.join(devices) or '–'}; "
        f"paper = {paper.get('latency_device', '?')}. Not comparable across devices.\n"
    )
    name = f"fig{fig_no}_qualitative_{split}.png" if fig_no else f"qualitative_{split}.png"
    caption = f"{names.get(split, split)} patches, one column per model; {ERRORS}"
    draft.grid(
        split,
        draft.res.masks.get(split, {}),
        name,
        f"Fig. {fig_no}: {caption}" if fig_no else caption,
    )
    if split == "test" and measured:
        plot_latency_miou(
            measured,
            stats.get("intervals", {}).get("test", {}),
            reference["table2"]["rows"],
            names,
            draft.figures_dir / "fig6_latency_miou.png",
        )
        draft.figure("fig6_latency_miou.png", "Fig. 6: inference time per image vs test mIoU")


def _add_band_sets(draft: _Draft, reference: Mapping[str, Any], scope: Scope) -> None:
    """Table 4 (band combinations of the model under study) and Fig. 8, or a note that the
    pipeline defines no band set."""
    md, names = draft.md, draft.names
    model_name = names.get(scope.model, scope.model)
    if not scope.band_sets:
        md.append("*Table 4 not run: this pipeline defines no band set.*\n")
        return
    md.append(f"## Table 4: band combinations ({model_name}, test split)\n")
    if scope.model != reference["table4"].get("model", "unet"):
        md.append(f"Note: the paper's Table 4 uses {reference['table4'].get('model')}.\n")
    t4 = reference["table4"]
    md.append(
        comparison_table(
            scope.band_sets, t4["columns"], draft.res.ablation, t4["rows"], "Bands", names
        )
    )
    md.append("")
    draft.grid(
        "test",
        draft.res.ablation_masks,
        "fig8_band_sets.png",
        f"Fig. 8: {model_name} on test patches, one column per band set; {ERRORS}",
    )


def _add_cv_and_rebuild(draft: _Draft) -> None:
    """The spatial block cross-validation and the raster-route check, each when it was run."""
    res, md = draft.res, draft.md
    if res.cv:
        md.append("## Spatial block cross-validation (the honest protocol)\n")
        md.append(cv_section(res.cv, draft.names))
    if res.rebuild is not None:
        r = res.rebuild
        md.append("## The raster route on the released tiles\n")
        md.append(
            f"The scene rebuilt from the released tiles, then align_mask .. tile with the paper's "
            f"boundary, regenerated **{r['n_identical']} of {r['n_released_labelled']}** labelled "
            f"released tiles bit for bit (image and mask pixels, name, CRS; transform within "
            f"{r['max_transform_diff_px']:g} px); {r['n_missing']} missing, {r['n_extra']} extra.\n"
        )


def _add_uncertainty(draft: _Draft, stats: Mapping[str, Any], scope: Scope) -> None:
    """The bootstrap intervals and their figure, or a note that the statistics are missing."""
    if not stats:
        draft.md.append("*Uncertainty skipped: `metrics/statistics.json` not found.*\n")
        return
    draft.md.append(_statistics_section(stats, scope, draft.names))
    plot_ci(stats["intervals"], scope.models, draft.names, draft.figures_dir / "ci_miou.png")
    draft.figure("ci_miou.png", "mIoU with block-bootstrap CIs per split")


def _add_training_curves(draft: _Draft) -> None:
    """The first seed's training curves of every model that has a DVCLive log."""
    draft.md.append("## Training curves\n")
    if draft.res.histories:
        path = draft.figures_dir / "training_curves.png"
        plot_training_curves(draft.res.histories, draft.names, path)
        draft.figure("training_curves.png", "Training curves (first seed; DVCLive logs)")
    else:
        draft.md.append("*Training curves skipped: no training log.*\n")


def _add_leakage(draft: _Draft) -> None:
    """The split's leakage audit, or a note that it is missing."""
    draft.md.append("## Leakage audit\n")
    if draft.res.leakage is None:
        draft.md.append("*Skipped: `metrics/leakage.json` not found.*\n")
    else:
        draft.md.append(_leakage_section(draft.res.leakage, draft.names))


def build_report(
    res: Results,
    scope: Scope,
    cfg: ReportConfig,
    reference: Mapping[str, Any],
    figures_dir: Path,
) -> Report:
    """Draw the figures into ``figures_dir``; return the Markdown (figures linked as
    ``figures/<name>.png``) and the list of figures."""
    figures_dir.mkdir(parents=True, exist_ok=True)
    names = dict(reference.get("display_names", {}))
    draft = _Draft(res, names, figures_dir, cfg.n_examples, [_intro(reference, scope)])
    _add_table1(draft, reference)
    stats = res.statistics or {}
    for split in scope.splits:
        _add_model_table(draft, reference, split, scope.models, stats)
    _add_band_sets(draft, reference, scope)
    _add_cv_and_rebuild(draft)
    _add_uncertainty(draft, stats, scope)
    _add_training_curves(draft)
    _add_leakage(draft)
    return Report("\n".join(draft.md), draft.figures)
