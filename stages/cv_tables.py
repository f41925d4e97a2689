"""DVC stage cv_tables: the cross-validation protocol's table (metrics/cv_table/<model>.json):
per-fold mIoU and IoU_FG with their mean and sd across folds, and the pooled held-out scores of
all folds with a block(-and-seed) bootstrap CI."""

from mmls.core import paths
from mmls.core.config import load_params, read_seeds, section
from mmls.core.io import atomic_dir, run_stage, write_json
from mmls.data.folds import CVConfig
from mmls.data.store import load_store
from mmls.metrics.bootstrap import StatisticsConfig
from mmls.report.tables import build_cv_tables


def main() -> None:
    params = load_params()
    cv = section(params, "cv", CVConfig)
    seeds = read_seeds(params)
    one_by_one = [*cv.variants, *cv.rescored]
    rows = build_cv_tables(
        {n: cv.seeds_of(cv.trained_variant(n), seeds) for n in one_by_one},
        {n: cv.ensemble_seeds(n, seeds) for n in cv.ensembles},
        cv.folds,
        cv.baseline,
        section(params, "statistics", StatisticsConfig),
        load_store(paths.STORE).patches,
        {n: cv.trained_variant(n) for n in cv.rescored},
        {n: cv.variants[cv.protocol_variant(n)].protocol for n in cv.scored},
        cv.best.model_dump() if cv.best else None,
    )
    with atomic_dir(paths.CV_TABLE) as tmp:
        for name, row in rows.items():
            write_json(tmp / f"{name}.json", row)
    for name, row in rows.items():
        print(
            f"cv {name} ({row['protocol']}): mIoU {row['miou_fold_mean']:.4f} +- "
            f"{row['miou_fold_sd'] or 0:.4f} over {row['n_folds']} folds; pooled "
            f"{row['miou']:.4f} [{row['miou_ci_lo']:.4f}, {row['miou_ci_hi']:.4f}]"
        )


if __name__ == "__main__":
    run_stage(main)
