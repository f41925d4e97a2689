"""DVC stage cv_ensemble@<name>-<fold>: the seed ensemble of a variant on a held-out fold: the
mean landslide probability of every seed's checkpoint of the fold (mmls/ensemble.py), scored
like one model (its threshold calibrated on the fold's inner validation split)."""

import argparse

from mmls import layout
from mmls.config import load_params, read_seeds, section
from mmls.ensemble import ensemble
from mmls.errors import InputError
from mmls.evaluation import EvalConfig, decide, open_predictor, score, write_scored
from mmls.folds import CVConfig, fold_rows
from mmls.io import atomic_dir, read_csv, read_json, run_stage
from mmls.store import load_store
from mmls.tracking import METRICS_FILE
from mmls.variants import variant_recipe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True, help="a key of `cv.ensembles`")
    parser.add_argument("--fold", required=True, type=int)
    args = parser.parse_args()
    params = load_params()
    name, f = args.name, args.fold
    cv = section(params, "cv", CVConfig)
    of, seeds = cv.ensembles[name].of, read_seeds(params)
    if len(seeds) < 2:
        raise InputError("params.yaml:seeds", f"ensemble {name!r} needs >= 2 seeds, got {seeds}")
    cfg = section(params, "eval", EvalConfig)
    store = load_store(layout.STORE)
    rows = fold_rows(store.patches, read_csv(layout.FOLDS_CSV, ("fold",)), f, cv)
    members = [open_predictor(layout.cv_dir(of, f, s) / layout.CHECKPOINT_NAME, cfg) for s in seeds]
    predictor = ensemble(members)
    decision = decide(variant_recipe(params, name), predictor, store, rows.val, cfg, rows.train)
    hours = sum(
        read_json(layout.cv_log_dir(of, f, s) / METRICS_FILE)["train_time_h"] for s in seeds
    )
    scored = score(predictor, store, rows.held_out, cfg, hours, decision)
    with atomic_dir(layout.cv_ensemble_predictions_dir(name, f)) as tmp:
        write_scored(scored, layout.cv_ensemble_metrics(name, f), tmp, layout.HELD_OUT)
    print(f"cv_ensemble {name} ({len(seeds)} seeds) fold {f}: miou={scored.record['miou']:.4f}")


if __name__ == "__main__":
    run_stage(main)
