"""DVC stage cv_train@<model>-<fold>-<seed>: train on the other folds (minus the inner
validation), select the checkpoint on the inner validation split (mmls/folds.py): the held-out
fold never chooses anything."""

import argparse

from mmls import layout
from mmls.config import load_params, section
from mmls.folds import CVConfig, fold_rows
from mmls.io import read_csv, run_stage
from mmls.store import load_store
from mmls.training import fit, read_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--fold", required=True, type=int)
    parser.add_argument("--seed", required=True, type=int)
    args = parser.parse_args()
    params = load_params()
    cfg = section(params, "cv", CVConfig)
    run = read_run(params, args.model, args.seed)
    store = load_store(layout.STORE)
    rows = fold_rows(store.patches, read_csv(layout.FOLDS_CSV, ("fold",)), args.fold, cfg)
    m, f, s = args.model, args.fold, args.seed
    summary = fit(
        run,
        store,
        rows.train,
        rows.val,
        layout.cv_dir(m, f, s) / layout.CHECKPOINT_NAME,
        layout.cv_log_dir(m, f, s),
        layout.resume_path(layout.cv_run_name(m, f, s)),
    )
    print(f"cv_train {m} fold {f} seed {s}: {summary}")


if __name__ == "__main__":
    run_stage(main)
