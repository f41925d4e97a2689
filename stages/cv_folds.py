"""DVC stage cv_folds: spatial block k-fold assignment of the labelled patches (cv.splits), 2x2
blocks merged where patches overlap, stratified by foreground ratio (mmls/data/folds.py)."""

from mmls.core import paths
from mmls.core.config import load_params, section
from mmls.core.errors import InputError
from mmls.core.io import atomic_path, run_stage, write_json
from mmls.data.folds import CVConfig, assign_folds, pool
from mmls.data.leakage import leakage_audit
from mmls.data.store import load_store
from mmls.geo.tiling import TileConfig


def main() -> None:
    params = load_params()
    cfg = section(params, "cv", CVConfig)
    patches = pool(load_store(paths.STORE).patches, cfg.splits)
    folds = assign_folds(patches, cfg.k, cfg.bins, cfg.seed)
    size = section(params, "tile", TileConfig).size_px
    summary = {"k": cfg.k, "n_patches": len(folds), "n_groups": int(folds["group"].nunique())}
    for k in range(cfg.k):
        in_fold = (folds["fold"] == k).to_numpy()
        as_split = patches.assign(split=["held_out" if f else "train" for f in in_fold])
        audit = leakage_audit(as_split, size, audited=("held_out",))["splits"]["held_out"]
        if audit["n_overlapping"]:
            raise InputError(
                paths.FOLDS_CSV,
                f"fold {k}: {audit['n_overlapping']} held-out patch(es) share pixels with the "
                "training folds (groups must hold every overlapping patch)",
            )
        summary[f"fold{k}"] = {
            "n_patches": int(in_fold.sum()),
            "n_groups": int(folds.loc[in_fold, "group"].nunique()),
            "mean_fg_ratio": round(float(patches.loc[in_fold, "fg_ratio"].mean()), 4),
            "n_touching_training_folds": audit["n_touching"],
            "n_overlapping_training_folds": audit["n_overlapping"],
        }
    with atomic_path(paths.FOLDS_CSV) as tmp:
        folds.to_csv(tmp, index=False)
    write_json(paths.CV_FOLDS_METRICS, summary)
    print(f"cv_folds: {cfg.k} folds over {len(folds)} patches -> {paths.FOLDS_CSV}")


if __name__ == "__main__":
    run_stage(main)
