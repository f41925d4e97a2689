"""DVC stage eval@<model>-<seed>: pooled metrics, per-patch counts, masks and latency of one
trained model on every scored split (`eval.splits`; Sec. 4.1, Tables 2-3). A recipe's
test-time augmentation and threshold apply here; `threshold: calibrate` is fitted on val, the
split that selected the checkpoint, never on a scored split."""

import argparse

from mmls.core import paths
from mmls.core.config import load_params, section
from mmls.core.io import atomic_dir, read_json, run_stage
from mmls.data.store import load_store
from mmls.evaluation.config import EvalConfig
from mmls.evaluation.scoring import decide_on_val, open_predictor, score, write_scored
from mmls.nn.models import model_section
from mmls.nn.recipe import RecipeConfig
from mmls.nn.tracking import METRICS_FILE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="a key of the `models` params section")
    parser.add_argument("--seed", required=True, type=int, help="one of the `seeds` params")
    args = parser.parse_args()
    params = load_params()
    cfg = section(params, "eval", EvalConfig)
    name, seed = args.model, args.seed
    recipe = model_section(params, name, "recipe", RecipeConfig)
    predictor = open_predictor(paths.model_dir(name, seed) / paths.CHECKPOINT_NAME, cfg)
    train_time_h = read_json(paths.train_log_dir(name, seed) / METRICS_FILE)["train_time_h"]
    store = load_store(paths.STORE)
    decision = decide_on_val(recipe, predictor, store, cfg)
    metrics_dir, predictions_dir = (
        paths.eval_metrics_dir(name, seed),
        paths.eval_predictions_dir(name, seed),
    )
    with atomic_dir(metrics_dir) as m_tmp, atomic_dir(predictions_dir) as p_tmp:
        for split in cfg.splits:
            if len(store.rows(split)) == 0:  # e.g. an isolated region without patches
                print(f"eval {name} seed {seed} {split}: the split has no patch, not scored")
                continue
            rows = store.labelled_rows(split)
            scored = score(predictor, store, rows, cfg, train_time_h, decision)
            write_scored(scored, m_tmp / f"{split}.json", p_tmp, split)
            print(f"eval {name} seed {seed} {split}: miou={scored.record['miou']:.4f}")


if __name__ == "__main__":
    run_stage(main)
