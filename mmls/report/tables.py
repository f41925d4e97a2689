"""Tables 2-4 as the pipeline measured them: seeds aggregated, block-bootstrap CIs attached.

The ``statistics`` stage reads every trained replicate's metrics and per-patch counts and writes

- one flat JSON per model and scored split (``metrics/table2/<model>.json`` for test,
  ``metrics/table3/...`` for the isolated test) and per band set (``metrics/table4``): the
  paper's columns as the mean over seeds, ``<metric>_sd`` over seeds (null with one seed), and
  the CI of mIoU and IoU_FG (:mod:`mmls.metrics.bootstrap`), so
  ``dvc metrics show --md metrics/table2`` is Table 2;
- ``metrics/statistics.json``: every interval, paired model and band-set differences, and the
  test minus isolated-test drop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmls.core import paths
from mmls.core.errors import InputError
from mmls.core.io import read_json
from mmls.data.protocols import definition
from mmls.evaluation.held_out_counts import cv_counts_file, cv_ensemble_counts_file
from mmls.metrics.bootstrap import (
    Interval,
    StatisticsConfig,
    aligned_block_counts,
    bootstrap_ci,
    bootstrap_diff_ci,
    merge_overlapping_blocks,
)
from mmls.metrics.confusion import COUNT_COLUMNS, SCORE_KEYS, scores_array
from mmls.metrics.patch_files import read_patch_table

CI_METRICS: tuple[str, ...] = ("miou", "iou_fg")
#: Below this many blocks a percentile block bootstrap under-covers: reports flag "few".
MIN_BLOCKS = 20


@dataclass
class SeedResults:
    """One model (or band set) on one split: per-seed metrics records and per-patch counts."""

    seeds: list[int]
    records: list[dict[str, Any]]
    tables: list[pd.DataFrame]

    def blocks(self) -> list[np.ndarray]:
        """Per-seed B x 4 block counts over the patches every seed holds, one block order."""
        blocks, _ = aligned_block_counts(self.tables)
        return blocks


def read_replicates(
    metrics_files: Sequence[Path],
    patch_files: Sequence[Path],
    seeds: Sequence[int],
    groups: pd.DataFrame,
) -> SeedResults | None:
    """The replicates whose files exist (None when no seed has both); blocks merged by the
    ``group`` of ``groups`` (the store's patch table)."""
    kept = [
        (s, m, p)
        for s, m, p in zip(seeds, metrics_files, patch_files, strict=True)
        if m.is_file() and p.is_file()
    ]
    if not kept:
        return None
    records = [read_json(m) for _, m, _ in kept]
    tables = [merge_overlapping_blocks(read_patch_table(p), groups) for _, _, p in kept]
    for (_, m, p), record, table in zip(kept, records, tables, strict=True):
        sums = [int(table[c].sum()) for c in COUNT_COLUMNS]
        if sums != [record.get(c) for c in COUNT_COLUMNS]:
            raise InputError(p, f"per-patch counts {sums} do not add up to the counts in {m}")
    return SeedResults([s for s, _, _ in kept], records, tables)


def model_replicates(
    model: str, split: str, seeds: Sequence[int], groups: pd.DataFrame
) -> SeedResults | None:
    metrics = [paths.eval_metrics_dir(model, s) / f"{split}.json" for s in seeds]
    patches = [
        paths.eval_predictions_dir(model, s) / f"{split}{paths.PATCHES_SUFFIX}" for s in seeds
    ]
    return read_replicates(metrics, patches, seeds, groups)


def band_set_replicates(
    band_set: str, seeds: Sequence[int], groups: pd.DataFrame
) -> SeedResults | None:
    metrics = [paths.ablation_metrics(band_set, s) for s in seeds]
    patches = [
        paths.ablation_predictions_dir(band_set, s) / f"test{paths.PATCHES_SUFFIX}" for s in seeds
    ]
    return read_replicates(metrics, patches, seeds, groups)


def _mean(values: Sequence[Any]) -> float | None:
    nums = [float(v) for v in values if v is not None]
    return float(np.mean(nums)) if nums else None


#: How each scored split's numbers were obtained (the paper protocol: train on train, keep the
#: best-val-mIoU epoch, score the split).
PROTOCOLS: dict[str, str] = {
    "test": "paper: trained on train, checkpoint selected on val, scored on test",
    "isolated_test": "paper: trained on train, checkpoint selected on val, scored on isolated_test",
    "val": "paper, OPTIMISTIC: val also selects the checkpoint",
}


def table_row(
    rep: SeedResults, cis: Mapping[str, Interval], split: str | None = None
) -> dict[str, Any]:
    """One row of Table 2/3/4: means over seeds, sd over seeds, CIs (flat, for dvc metrics)."""
    n = len(rep.seeds)
    row: dict[str, Any] = {}
    for key in SCORE_KEYS:
        values = np.array([float(r[key]) for r in rep.records])
        row[key] = float(values.mean())
        row[f"{key}_sd"] = float(values.std(ddof=1)) if n > 1 else None
    row["latency_s"] = _mean([r.get("latency_s") for r in rep.records])
    row["latency_device"] = rep.records[0].get("latency_device")
    row["train_time_h"] = _mean([r.get("train_time_h") for r in rep.records])
    row["n_images"] = int(rep.records[0]["n_images"])
    row["n_seeds"] = n
    row["seeds"] = ",".join(str(s) for s in rep.seeds)
    for metric, iv in cis.items():
        row[f"{metric}_ci_lo"] = iv.lo
        row[f"{metric}_ci_hi"] = iv.hi
    first = next(iter(cis.values()), None)
    row["ci_level"] = first.level if first else None
    row["n_blocks"] = first.n_blocks if first else None
    row["protocol"] = PROTOCOLS.get(split, "") if split else ""
    row["seed_variance"] = (
        f"measured: {n} seeds (sd over seeds; CI over blocks and seeds)"
        if n > 1
        else "not measured: one seed (CI covers test-set sampling only)"
    )
    return row


def intervals(rep: SeedResults, cfg: StatisticsConfig) -> dict[str, Interval]:
    blocks = rep.blocks()
    return {
        m: bootstrap_ci(blocks, m, n_resamples=cfg.n_resamples, seed=cfg.seed, level=cfg.ci_level)
        for m in CI_METRICS
    }


def paired_diffs(
    b: Sequence[pd.DataFrame],
    a: Sequence[pd.DataFrame],
    cfg: StatisticsConfig,
    same_checkpoints: bool = False,
) -> tuple[dict[str, Interval], int]:
    """Block-bootstrap CIs of metric(b) - metric(a), paired over the blocks both score (one
    per-patch table per seed on each side; seeds paired too when ``same_checkpoints``), and
    how many patches that is."""
    blocks, n_patches = aligned_block_counts([*b, *a])
    mine, theirs = blocks[: len(b)], blocks[len(b) :]
    diffs = {
        m: bootstrap_diff_ci(
            mine,
            theirs,
            m,
            paired=True,
            same_checkpoints=same_checkpoints,
            n_resamples=cfg.n_resamples,
            seed=cfg.seed,
            level=cfg.ci_level,
        )
        for m in CI_METRICS
    }
    return diffs, n_patches


def pairwise(
    reps: Mapping[str, SeedResults | None], order: Sequence[str], cfg: StatisticsConfig
) -> list[dict[str, Any]]:
    """Paired CIs of ``metric(b) - metric(a)`` for every pair a before b in ``order`` (on the
    patches all their replicates hold)."""
    out = []
    present = [k for k in order if reps.get(k) is not None]
    for a, b in combinations(present, 2):
        ra, rb = reps[a], reps[b]
        assert ra is not None and rb is not None
        diffs, n_patches = paired_diffs(rb.tables, ra.tables, cfg)
        entry: dict[str, Any] = {"a": a, "b": b, "n_patches": n_patches}
        entry.update({m: iv.as_dict() for m, iv in diffs.items()})
        out.append(entry)
    return out


def drop(test: SeedResults, isolated: SeedResults, cfg: StatisticsConfig) -> dict[str, Any]:
    """Unpaired CIs of ``metric(test) - metric(isolated_test)``."""
    return {
        m: bootstrap_diff_ci(
            test.blocks(),
            isolated.blocks(),
            m,
            paired=False,
            n_resamples=cfg.n_resamples,
            seed=cfg.seed,
            level=cfg.ci_level,
        ).as_dict()
        for m in CI_METRICS
    }


@dataclass
class Tables:
    """What the statistics stage writes: table rows by table folder, and the statistics doc."""

    rows: dict[Path, dict[str, dict[str, Any]]]
    statistics: dict[str, Any]


def build_tables(
    models: Sequence[str],
    band_sets: Sequence[str],
    seeds: Sequence[int],
    splits: Sequence[str],
    cfg: StatisticsConfig,
    groups: pd.DataFrame,
) -> Tables:
    """Read every replicate under the current directory; aggregate and bootstrap them (blocks
    merged by the ``group`` of ``groups``, the store's patch table)."""
    rows: dict[Path, dict[str, dict[str, Any]]] = {}
    stats: dict[str, Any] = {
        "config": {
            **cfg.model_dump(),
            "unit": "spatial 2x2 block (region, block_col, block_row); blocks whose patches "
            "share pixels merged (splits.csv group)",
            "method": "percentile; two-level (blocks, then seeds) when several seeds",
        },
        "intervals": {},
        "model_differences": {},
        "test_minus_isolated": {},
    }
    by_split: dict[str, dict[str, SeedResults | None]] = {}
    for split in splits:
        reps = {m: model_replicates(m, split, seeds, groups) for m in models}
        by_split[split] = reps
        cis = {m: intervals(r, cfg) for m, r in reps.items() if r is not None}
        rows[paths.table_dir(split)] = {
            m: table_row(r, cis[m], split) for m, r in reps.items() if r is not None
        }
        stats["intervals"][split] = {
            m: {k: iv.as_dict() for k, iv in v.items()} for m, v in cis.items()
        }
        stats["model_differences"][split] = pairwise(reps, models, cfg)
    if "test" in by_split and "isolated_test" in by_split:
        for m in models:
            t, i = by_split["test"].get(m), by_split["isolated_test"].get(m)
            if t is not None and i is not None:
                stats["test_minus_isolated"][m] = drop(t, i, cfg)
    ab = {b: band_set_replicates(b, seeds, groups) for b in band_sets}
    ab_cis = {b: intervals(r, cfg) for b, r in ab.items() if r is not None}
    rows[paths.TABLE4] = {b: table_row(r, ab_cis[b]) for b, r in ab.items() if r is not None}
    stats["band_set_intervals"] = {
        b: {k: iv.as_dict() for k, iv in v.items()} for b, v in ab_cis.items()
    }
    stats["band_set_differences"] = pairwise(ab, band_sets, cfg)
    return Tables(rows, stats)


def cv_row(
    per_fold: Sequence[SeedResults],
    pooled: Sequence[pd.DataFrame],
    folds: Sequence[int],
    cfg: StatisticsConfig,
    seeds_label: str | None = None,
    protocol: str = "blocks",
) -> dict[str, Any]:
    """One model's cross-validation under its fold ``protocol``: per-fold scores (mean over
    seeds) with their mean and sd across folds, the pooled held-out scores of all folds with a
    block(+seed) bootstrap CI over ``pooled`` (:func:`pooled_tables`), and per fold the training
    patches (``n_train_fold<k>``, when its records hold them). ``seeds_label`` names the seeds
    behind one result (an ensemble's members: ``"42+43"``); by default the replicate seeds,
    ``"42,43"``."""
    row: dict[str, Any] = {
        "protocol": protocol,
        "protocol_definition": definition(protocol),
        "n_folds": len(per_fold),
    }
    for fold, rep in zip(folds, per_fold, strict=True):
        row[f"n_train_fold{fold}"] = _mean([r.get("n_train") for r in rep.records])
    for key in CI_METRICS:
        fold_values = [np.mean([float(r[key]) for r in rep.records]) for rep in per_fold]
        row[f"{key}_fold_mean"] = float(np.mean(fold_values))
        row[f"{key}_fold_sd"] = float(np.std(fold_values, ddof=1)) if len(fold_values) > 1 else None
        for fold, v in zip(folds, fold_values, strict=True):
            row[f"{key}_fold{fold}"] = float(v)
    seeds = sorted(set.intersection(*(set(rep.seeds) for rep in per_fold)))
    blocks, n_patches = aligned_block_counts(pooled)
    for key in SCORE_KEYS:
        row[key] = float(np.mean([scores_array(b.sum(axis=0))[key] for b in blocks]))
    for metric in CI_METRICS:
        iv = bootstrap_ci(
            blocks, metric, n_resamples=cfg.n_resamples, seed=cfg.seed, level=cfg.ci_level
        )
        row[f"{metric}_ci_lo"], row[f"{metric}_ci_hi"] = iv.lo, iv.hi
        row["n_blocks"] = iv.n_blocks
    row.update(
        n_seeds=len(seeds),
        seeds=seeds_label or ",".join(str(s) for s in seeds),
        n_patches=n_patches,
        ci_level=cfg.ci_level,
        train_time_h=float(
            sum(np.mean([float(r["train_time_h"]) for r in rep.records]) for rep in per_fold)
        ),
        latency_s=_mean([r.get("latency_s") for rep in per_fold for r in rep.records]),
        latency_device=per_fold[0].records[0].get("latency_device"),
    )
    return row


def _fold_replicates(
    name: str, folds: Sequence[int], seeds: Sequence[int], groups: pd.DataFrame
) -> list[SeedResults] | None:
    """Per fold, the seed results of one CV row (None unless every fold has results; an error
    when a fold has some seeds and not others)."""
    per_fold = []
    for f in folds:
        metrics = [paths.cv_metrics(name, f, s) for s in seeds]
        patches = [cv_counts_file(name, f, s) for s in seeds]
        rep = read_replicates(metrics, patches, seeds, groups)
        if rep is None:
            return None
        if rep.seeds != list(seeds):
            missing = [str(m) for s, m in zip(seeds, metrics, strict=True) if s not in rep.seeds]
            raise InputError(missing[0], f"missing: fold {f} of {name} lacks a seed of {seeds}")
        per_fold.append(rep)
    return per_fold


def _ensemble_fold_results(
    name: str, folds: Sequence[int], groups: pd.DataFrame
) -> list[SeedResults] | None:
    """Per fold, an ensemble's one result (replicate 0: its members' seeds are its label, not
    replicates); None unless every fold has it."""
    per_fold = []
    for f in folds:
        metrics = [paths.cv_ensemble_metrics(name, f)]
        patches = [cv_ensemble_counts_file(name, f)]
        rep = read_replicates(metrics, patches, [0], groups)
        if rep is None:
            return None
        per_fold.append(rep)
    return per_fold


def pooled_tables(per_fold: Sequence[SeedResults], groups: pd.DataFrame) -> list[pd.DataFrame]:
    """Per seed, the per-patch counts of all folds' held-out patches, their overlapping blocks
    merged again over the pool: a fold merges only the patches it holds, and a protocol that
    splits a group across folds (``random``) would otherwise put its patches in other blocks
    than ``blocks`` does, and the two rows could not be paired."""
    seeds = sorted(set.intersection(*(set(rep.seeds) for rep in per_fold)))
    return [
        merge_overlapping_blocks(
            pd.concat([rep.tables[rep.seeds.index(s)] for rep in per_fold], ignore_index=True),
            groups,
        )
        for s in seeds
    ]


def build_cv_tables(
    seeds_of: Mapping[str, Sequence[int]],
    ensembles: Mapping[str, Sequence[int]],
    folds: Sequence[int],
    baseline: str,
    cfg: StatisticsConfig,
    groups: pd.DataFrame,
    rescored_of: Mapping[str, str] | None = None,
    protocols: Mapping[str, str] | None = None,
    best: Mapping[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """``metrics/cv_table/<name>.json`` for every CV row (``seeds_of``: each row's seeds, in
    order; ``ensembles``: rows of one result per fold, each with the seeds it averages, written
    as ``seeds: "42+43"``, ``n_seeds: 1``) whose folds all have results, with the
    paired difference to ``baseline`` (same held-out patches: blocks paired; seeds drawn
    independently, or paired for a rescoring of the baseline's own checkpoints, ``rescored_of``
    mapping such a row to the variant it rescores; ``protocols``: each row's fold protocol,
    ``blocks`` where unnamed; ``best``: the current best single recipe (``mean``, a row over
    seeds) and seed ensemble (``ensemble``): each row is also paired with the one of its kind)."""
    per = {n: _fold_replicates(n, folds, s, groups) for n, s in seeds_of.items()}
    per |= {n: _ensemble_fold_results(n, folds, groups) for n in ensembles}
    labels = {n: "+".join(str(s) for s in members) for n, members in ensembles.items()}
    pooled = {n: pooled_tables(reps, groups) for n, reps in per.items() if reps}
    rows = {
        n: {
            **cv_row(
                reps, pooled[n], folds, cfg, labels.get(n), (protocols or {}).get(n, "blocks")
            ),
            "baseline": baseline,
        }
        for n, reps in per.items()
        if reps
    }
    for n, reps in per.items():
        if reps is None:
            continue
        against = [baseline]
        if best:  # like with like: a seed ensemble with the best ensemble, others the best mean
            against.append(best["ensemble"] if n in ensembles else best["mean"])
        for other in dict.fromkeys(against):
            if other == n or per.get(other) is None:
                continue
            same = (rescored_of or {}).get(n) == other  # a rescoring of other's own checkpoints
            diffs, _ = paired_diffs(pooled[n], pooled[other], cfg, same_checkpoints=same)
            for metric, iv in diffs.items():
                rows[n][f"{metric}_minus_{other}"] = iv.estimate
                rows[n][f"{metric}_minus_{other}_ci_lo"] = iv.lo
                rows[n][f"{metric}_minus_{other}_ci_hi"] = iv.hi
            flag = "beats_baseline" if other == baseline else "beats_best"
            rows[n][flag] = bool(rows[n][f"miou_minus_{other}_ci_lo"] > 0)
            if flag == "beats_best":
                rows[n]["best"] = other
    return rows
