"""DVC stage eval@<model>-<seed>: pooled metrics, per-patch counts, masks and latency of one
trained model on every scored split (`eval.splits`; Sec. 4.1, Tables 2-3)."""

import argparse

from mmls import layout
from mmls.config import load_params, section
from mmls.evaluation import EvalConfig, open_predictor, score, write_scored
from mmls.io import atomic_dir, read_json, run_stage
from mmls.store import load_store
from mmls.tracking import METRICS_FILE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="a key of the `models` params section")
    parser.add_argument("--seed", required=True, type=int, help="one of the `seeds` params")
    args = parser.parse_args()
    cfg = section(load_params(), "eval", EvalConfig)
    name, seed = args.model, args.seed
    predictor = open_predictor(layout.model_dir(name, seed) / layout.CHECKPOINT_NAME, cfg)
    train_time_h = read_json(layout.train_log_dir(name, seed) / METRICS_FILE)["train_time_h"]
    store = load_store(layout.STORE)
    metrics_dir, predictions_dir = (
        layout.eval_metrics_dir(name, seed),
        layout.eval_predictions_dir(name, seed),
    )
    with atomic_dir(metrics_dir) as m_tmp, atomic_dir(predictions_dir) as p_tmp:
        for split in cfg.splits:
            scored = score(predictor, store, store.rows(split), cfg, train_time_h)
            write_scored(scored, m_tmp / f"{split}.json", p_tmp, split)
            print(f"eval {name} seed {seed} {split}: miou={scored.record['miou']:.4f}")


if __name__ == "__main__":
    run_stage(main)
