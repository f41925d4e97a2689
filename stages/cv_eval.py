"""DVC stage cv_eval@<name>-<fold>-<seed>: score a fold checkpoint of a variant on its held-out
fold (pooled metrics, per-patch counts, masks) with the variant's test-time decisions, or, for
a `cv.rescored` entry, another variant's checkpoint with other decisions; a threshold is
calibrated on the fold's inner validation split, never on the held-out fold."""

import argparse

from mmls import layout
from mmls.config import load_params, section
from mmls.evaluation import EvalConfig, decide, open_predictor, score, write_scored
from mmls.folds import CVConfig, fold_rows
from mmls.io import atomic_dir, read_csv, read_json, run_stage
from mmls.store import load_store
from mmls.tracking import METRICS_FILE
from mmls.variants import variant_recipe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True, help="a key of `cv.variants` or `cv.rescored`")
    parser.add_argument("--fold", required=True, type=int)
    parser.add_argument("--seed", required=True, type=int)
    args = parser.parse_args()
    params = load_params()
    name, f, s = args.name, args.fold, args.seed
    cv = section(params, "cv", CVConfig)
    trained = cv.rescored[name].of if name in cv.rescored else name
    cfg = section(params, "eval", EvalConfig)
    store = load_store(layout.STORE)
    rows = fold_rows(store.patches, read_csv(layout.FOLDS_CSV, ("fold",)), f, cv)
    predictor = open_predictor(layout.cv_dir(trained, f, s) / layout.CHECKPOINT_NAME, cfg)
    decision = decide(variant_recipe(params, name), predictor, store, rows.val, cfg, rows.train)
    train_time_h = read_json(layout.cv_log_dir(trained, f, s) / METRICS_FILE)["train_time_h"]
    scored = score(predictor, store, rows.held_out, cfg, train_time_h, decision)
    with atomic_dir(layout.cv_predictions_dir(name, f, s)) as tmp:
        write_scored(scored, layout.cv_metrics(name, f, s), tmp, layout.HELD_OUT)
    print(f"cv_eval {name} fold {f} seed {s}: miou={scored.record['miou']:.4f}")


if __name__ == "__main__":
    run_stage(main)
