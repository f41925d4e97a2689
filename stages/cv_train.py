"""DVC stage cv_train@<variant>-<fold>-<seed>: train a cross-validated recipe on the other folds
(minus the inner validation) and select its checkpoint on the inner validation split
(mmls/folds.py, mmls/variants.py): the held-out fold never chooses anything."""

import argparse

from mmls import layout
from mmls.config import load_params, section
from mmls.folds import CVConfig, fold_rows
from mmls.io import read_csv, run_stage
from mmls.store import load_store
from mmls.training import fit
from mmls.variants import variant_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variant", required=True, help="a key of `cv.variants`")
    parser.add_argument("--fold", required=True, type=int)
    parser.add_argument("--seed", required=True, type=int)
    args = parser.parse_args()
    params = load_params()
    v, f, s = args.variant, args.fold, args.seed
    run = variant_run(params, v, s)
    store = load_store(layout.STORE)
    rows = fold_rows(
        store.patches, read_csv(layout.FOLDS_CSV, ("fold",)), f, section(params, "cv", CVConfig)
    )
    summary = fit(
        run,
        store,
        rows.train,
        rows.val,
        layout.cv_dir(v, f, s) / layout.CHECKPOINT_NAME,
        layout.cv_log_dir(v, f, s),
        layout.resume_path(layout.cv_run_name(v, f, s)),
    )
    print(f"cv_train {v} fold {f} seed {s}: {summary}")


if __name__ == "__main__":
    run_stage(main)
