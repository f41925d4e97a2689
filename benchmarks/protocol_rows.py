"""The fold-protocol study of real/mmlsv2 (docs/recipes-and-cv.md, "Fold protocols").

``--counts``: per fold and protocol, the training, inner-validation, held-out and dropped patches
(no training needed; needs real/mmlsv2's ``store`` and ``cv_folds`` outputs).

Otherwise: the CV rows of the named variants, computed by the library function of the
``cv_tables`` stage (``mmls.report.tables.build_cv_tables``) from their held-out per-patch
counts in git (``metrics/cv_counts``, written by the ``cv_counts`` stages), each paired with
``--baseline``. It exists because ``cv_tables`` rebuilds every row of the table, and rows scored
before ``cv_counts`` existed have their counts only in the DVC cache of the machine that trained
them; once every row has counts, ``dvc repro -s real/mmlsv2/dvc.yaml:cv_tables`` gives the same
rows. Each variant's fold-wise committed metrics (``metrics/cv/<variant>/fold<k>/seed<s>.json``,
present for rows trained elsewhere too) also give its pooled mIoU without a CI (``--pooled``), and
each training's committed per-epoch log its epoch times (``--epoch-seconds``: median, min and max
over every epoch of the named seeds and folds, e.g. fp32 against bf16 rows of one model).

    python -m benchmarks.protocol_rows --counts
    python -m benchmarks.protocol_rows unet_buffered unet_buffered_control \
        --baseline unet_buffered_control
    python -m benchmarks.protocol_rows --pooled unet unet_random unet_buffered unet_buffered_control
    python -m benchmarks.protocol_rows --epoch-seconds fusion_context_random fusion_context_cosine30
    python -m benchmarks.protocol_rows fusion_context_random fusion_context_cosine30:42+43 \
        --ensembles fusion_context_cosine30_seeds --baseline fusion_context_random

A row named ``name:42+43`` takes those seeds (default ``--seeds``); ``--ensembles`` names seed
ensembles of ``cv.ensembles`` (their ``cv_ensemble`` outputs, over the seeds params.yaml gives
them).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from mmls.core import paths
from mmls.core.config import load_params, read_seeds, section
from mmls.core.io import read_csv, read_json
from mmls.data.folds import CVConfig, fold_rows
from mmls.data.protocols import PROTOCOL_DEFINITIONS
from mmls.data.store import load_store
from mmls.metrics.bootstrap import StatisticsConfig
from mmls.metrics.confusion import COUNT_COLUMNS, scores_array
from mmls.nn.tracking import METRICS_FILE, read_history
from mmls.report.tables import build_cv_tables

PIPELINE = Path(__file__).resolve().parents[1] / "real" / "mmlsv2"


def counts(cv: CVConfig) -> list[dict]:
    store = load_store(paths.STORE)
    folds = read_csv(paths.FOLDS_CSV, ("fold",))
    out = []
    for protocol in PROTOCOL_DEFINITIONS:
        for fold in cv.folds:
            r = fold_rows(store.patches, folds, fold, cv, protocol, store.size)  # type: ignore[arg-type]
            out.append(
                {
                    "protocol": protocol,
                    "fold": fold,
                    "n_train": len(r.train),
                    "n_inner_val": len(r.val),
                    "n_held_out": len(r.held_out),
                    "n_dropped": r.n_dropped,
                }
            )
    return out


def pooled(variant: str, cv: CVConfig, seeds: list[int]) -> dict:
    """Pooled scores of each seed from the committed fold metrics (sums of their pixel counts),
    each fold's held-out mIoU and the epoch of its checkpoint (chosen on the inner validation)."""
    out = {}
    for seed in seeds:
        files = [paths.cv_metrics(variant, f, seed) for f in cv.folds]
        if not all(f.is_file() for f in files):
            continue
        records = [read_json(f) for f in files]
        sums = np.sum([[r[c] for c in COUNT_COLUMNS] for r in records], axis=0)
        out[seed] = {
            "miou": round(float(scores_array(sums)["miou"]), 4),
            "fold_miou": [round(float(r["miou"]), 4) for r in records],
            "best_epoch": [
                read_json(paths.cv_log_dir(variant, f, seed) / METRICS_FILE).get("best_epoch")
                for f in cv.folds
            ],
            "n_train": [r.get("n_train") for r in records],
            "train_time_h": round(sum(float(r["train_time_h"]) for r in records), 3),
        }
    return out


def epoch_seconds(variant: str, cv: CVConfig, seeds: list[int]) -> dict:
    """Median, min and max seconds per training epoch over the committed DVCLive logs."""
    logs = [paths.cv_log_dir(variant, f, s) for s in seeds for f in cv.folds]
    found = [d for d in logs if (d / METRICS_FILE).is_file()]
    if not found:
        return {"n_epochs": 0}
    sec = pd.concat([read_history(d)["epoch_seconds"] for d in found])
    return {
        "n_trainings": len(found),
        "n_epochs": len(sec),
        "median_s": round(float(sec.median()), 2),
        "min_s": round(float(sec.min()), 2),
        "max_s": round(float(sec.max()), 2),
    }


def row_seeds(arg: str, default: list[int]) -> tuple[str, list[int]]:
    """``name`` -> (name, default seeds); ``name:42+43`` -> (name, [42, 43])."""
    name, _, seeds = arg.partition(":")
    return name, [int(s) for s in seeds.split("+")] if seeds else default


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("variants", nargs="*")
    p.add_argument("--counts", action="store_true")
    p.add_argument("--pooled", action="store_true")
    p.add_argument("--epoch-seconds", action="store_true")
    p.add_argument("--baseline", help="a variant among those named (paired CIs against it)")
    p.add_argument("--seeds", type=int, nargs="+", default=[42])
    p.add_argument("--ensembles", nargs="*", default=[], help="seed-ensemble rows (cv.ensembles)")
    args = p.parse_args()
    os.chdir(PIPELINE)
    params = load_params()
    cv = section(params, "cv", CVConfig)
    if args.counts:
        for rec in counts(cv):
            print(json.dumps(rec))
        return
    if args.epoch_seconds:
        for v in args.variants:
            print(json.dumps({"variant": v, **epoch_seconds(v, cv, args.seeds)}))
        return
    if args.pooled:
        for v in args.variants:
            print(
                json.dumps(
                    {
                        "variant": v,
                        "protocol": cv.variants[cv.protocol_variant(v)].protocol,
                        "seeds": pooled(v, cv, args.seeds),
                    }
                )
            )
        return
    seeds_of = dict(row_seeds(v, args.seeds) for v in args.variants)
    ensembles = {e: cv.ensemble_seeds(e, read_seeds(params)) for e in args.ensembles}
    names = [*seeds_of, *ensembles]
    if len(names) != len(args.variants) + len(args.ensembles):
        p.error("each row may be named once (one row per name: its seeds after `:`)")
    rows = build_cv_tables(
        seeds_of,
        ensembles,
        cv.folds,
        args.baseline or next(iter(seeds_of)),
        section(params, "statistics", StatisticsConfig),
        load_store(paths.STORE).patches,
        protocols={n: cv.variants[cv.protocol_variant(n)].protocol for n in names},
    )
    keep = (
        "protocol",
        "seeds",
        "miou",
        "miou_ci_lo",
        "miou_ci_hi",
        "miou_fold_mean",
        "miou_fold_sd",
        "iou_fg",
        "train_time_h",
    )
    for name, row in rows.items():
        rec = {"row": name, **{k: row.get(k) for k in keep}}
        rec["n_train_per_fold"] = [row.get(f"n_train_fold{f}") for f in cv.folds]
        rec.update({k: v for k, v in row.items() if "_minus_" in k and k.startswith("miou")})
        print(json.dumps(rec))


if __name__ == "__main__":
    main()
