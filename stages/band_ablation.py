"""DVC stage band_ablation@<set>-<seed>: the studied `model` trained on a band subset and
scored on test (Sec. 4.2, Table 4 / Fig. 8: RGB, +DEM, +slope, +thermal inertia, +grayscale)."""

import argparse

from mmls.core import paths
from mmls.core.config import load_params, section, value
from mmls.core.io import atomic_dir, run_stage
from mmls.data.bands import read_band_set
from mmls.data.store import load_store
from mmls.evaluation.config import EvalConfig
from mmls.evaluation.scoring import decide_on_val, open_predictor, score, write_scored
from mmls.nn.training import fit, read_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--band-set", required=True, help="a key of the `band_sets` section")
    parser.add_argument("--seed", required=True, type=int, help="one of the `seeds` params")
    args = parser.parse_args()
    params = load_params()
    model = value(params, "model", str)
    run = read_run(params, model, args.seed, read_band_set(params, args.band_set))
    store = load_store(paths.STORE)
    out = paths.ablation_dir(args.band_set, args.seed)
    summary = fit(
        run,
        store,
        store.labelled_rows("train", paths.STORE),
        store.labelled_rows("val", paths.STORE),
        out / paths.CHECKPOINT_NAME,
        paths.ablation_log_dir(args.band_set, args.seed),
        paths.resume_path(paths.run_name(model, args.seed, args.band_set)),
    )
    eval_cfg = section(params, "eval", EvalConfig)
    predictor = open_predictor(out / paths.CHECKPOINT_NAME, eval_cfg)
    test = store.labelled_rows("test", paths.STORE)
    decision = decide_on_val(run.recipe, predictor, store, eval_cfg)
    scored = score(predictor, store, test, eval_cfg, summary["train_time_h"], decision)
    with atomic_dir(paths.ablation_predictions_dir(args.band_set, args.seed)) as tmp:
        write_scored(scored, paths.ablation_metrics(args.band_set, args.seed), tmp, "test")
    print(f"band_ablation {args.band_set} seed {args.seed}: miou={scored.record['miou']:.4f}")


if __name__ == "__main__":
    run_stage(main)
