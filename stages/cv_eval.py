"""DVC stage cv_eval@<model>-<fold>-<seed>: score a fold's checkpoint on its held-out fold
(pooled metrics, per-patch counts, masks); a recipe's threshold is calibrated on the fold's
inner validation split, never on the held-out fold."""

import argparse

from mmls import layout
from mmls.config import load_params, section
from mmls.evaluation import EvalConfig, decide, open_predictor, score, write_scored
from mmls.folds import CVConfig, fold_rows
from mmls.io import atomic_dir, read_csv, read_json, run_stage
from mmls.models import model_section
from mmls.recipe import RecipeConfig
from mmls.store import load_store
from mmls.tracking import METRICS_FILE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--fold", required=True, type=int)
    parser.add_argument("--seed", required=True, type=int)
    args = parser.parse_args()
    params = load_params()
    m, f, s = args.model, args.fold, args.seed
    cfg = section(params, "eval", EvalConfig)
    store = load_store(layout.STORE)
    rows = fold_rows(
        store.patches, read_csv(layout.FOLDS_CSV, ("fold",)), f, section(params, "cv", CVConfig)
    )
    predictor = open_predictor(layout.cv_dir(m, f, s) / layout.CHECKPOINT_NAME, cfg)
    decision = decide(
        model_section(params, m, "recipe", RecipeConfig), predictor, store, rows.val, cfg
    )
    train_time_h = read_json(layout.cv_log_dir(m, f, s) / METRICS_FILE)["train_time_h"]
    scored = score(predictor, store, rows.held_out, cfg, train_time_h, decision)
    with atomic_dir(layout.cv_predictions_dir(m, f, s)) as tmp:
        write_scored(scored, layout.cv_metrics(m, f, s), tmp, layout.HELD_OUT)
    print(f"cv_eval {m} fold {f} seed {s}: miou={scored.record['miou']:.4f}")


if __name__ == "__main__":
    run_stage(main)
