"""DVC stage cv_train@<variant>-<fold>-<seed>: train a cross-validated recipe on the other folds
(minus the inner validation) and select its checkpoint on the inner validation split
under its fold protocol (mmls/data/folds.py, mmls/data/protocols.py,
mmls/evaluation/variants.py): the held-out fold never chooses anything."""

import argparse

from mmls.core import paths
from mmls.core.config import load_params
from mmls.core.io import run_stage
from mmls.data.store import load_store
from mmls.evaluation.variants import variant_fold_rows, variant_run
from mmls.nn.training import fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variant", required=True, help="a key of `cv.variants`")
    parser.add_argument("--fold", required=True, type=int)
    parser.add_argument("--seed", required=True, type=int)
    args = parser.parse_args()
    params = load_params()
    v, f, s = args.variant, args.fold, args.seed
    run = variant_run(params, v, s)
    store = load_store(paths.STORE)
    rows = variant_fold_rows(params, store, v, f)
    summary = fit(
        run,
        store,
        rows.train,
        rows.val,
        paths.cv_dir(v, f, s) / paths.CHECKPOINT_NAME,
        paths.cv_log_dir(v, f, s),
        paths.resume_path(paths.cv_run_name(v, f, s)),
    )
    print(f"cv_train {v} fold {f} seed {s}: {summary}")


if __name__ == "__main__":
    run_stage(main)
