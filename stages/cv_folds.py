"""DVC stage cv_folds: spatial block k-fold assignment of the labelled patches (cv.splits), 2x2
blocks merged where patches overlap, stratified by foreground ratio (mmls/folds.py)."""

from mmls import layout
from mmls.config import load_params, section
from mmls.errors import InputError
from mmls.folds import CVConfig, assign_folds, pool
from mmls.io import atomic_path, run_stage, write_json
from mmls.leakage import leakage_audit
from mmls.store import load_store
from mmls.tiling import TileConfig


def main() -> None:
    params = load_params()
    cfg = section(params, "cv", CVConfig)
    patches = pool(load_store(layout.STORE).patches, cfg.splits)
    folds = assign_folds(patches, cfg.k, cfg.bins, cfg.seed)
    size = section(params, "tile", TileConfig).size
    summary = {"k": cfg.k, "n_patches": len(folds), "n_groups": int(folds["group"].nunique())}
    for k in range(cfg.k):
        in_fold = (folds["fold"] == k).to_numpy()
        as_split = patches.assign(split=["held_out" if f else "train" for f in in_fold])
        audit = leakage_audit(as_split, size, audited=("held_out",))["splits"]["held_out"]
        if audit["n_overlapping"]:
            raise InputError(
                layout.FOLDS_CSV,
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
    with atomic_path(layout.FOLDS_CSV) as tmp:
        folds.to_csv(tmp, index=False)
    write_json(layout.CV_FOLDS_METRICS, summary)
    print(f"cv_folds: {cfg.k} folds over {len(folds)} patches -> {layout.FOLDS_CSV}")


if __name__ == "__main__":
    run_stage(main)
