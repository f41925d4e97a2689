"""bf16 against fp32 in the pipeline: one CV fold of a real/mmlsv2 variant trained and scored
twice, the two precisions one after the other in one run (same store, folds, seed, threads).

Reports per precision: seconds per training step (median over epochs of epoch time / steps),
training hours, best inner-validation mIoU and the held-out fold's pooled mIoU. Needs
real/mmlsv2's `store` and `cv_folds` outputs (`dvc repro real/mmlsv2/dvc.yaml:cv_folds`).
Outputs go to a temporary folder; the pipeline's files are only read.

    python -m benchmarks.bench_bf16_fold --variant unet --fold 0
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

from mmls.core.config import load_params, section
from mmls.core.io import read_csv
from mmls.data.folds import CVConfig, fold_rows
from mmls.data.store import load_store
from mmls.evaluation.config import EvalConfig
from mmls.evaluation.scoring import open_predictor, score
from mmls.evaluation.variants import variant_run
from mmls.nn.tracking import read_history
from mmls.nn.training import fit

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = ROOT / "real" / "mmlsv2"


def one_run(params, variant: str, fold: int, seed: int, amp: str, out: Path) -> dict:
    run = variant_run(params, variant, seed)
    run = run.__class__(
        run.model_name, run.model_cfg, run.cfg.model_copy(update={"amp": amp}), run.recipe, run.seed
    )
    store = load_store("data/store")
    rows = fold_rows(
        store.patches, read_csv("data/folds.csv", ("fold",)), fold, section(params, "cv", CVConfig)
    )
    summary = fit(run, store, rows.train, rows.val, out / "best.pt", out / "log", out / "resume.pt")
    steps = -(-len(rows.train) // run.cfg.batch_size)
    history = read_history(out / "log")
    step_s = statistics.median(history["epoch_seconds"]) / steps
    predictor = open_predictor(out / "best.pt", section(params, "eval", EvalConfig))
    held_out = score(predictor, store, rows.held_out, section(params, "eval", EvalConfig), None)
    return {
        "amp": amp,
        "step_s": round(step_s, 4),
        "train_time_h": round(summary["train_time_h"], 4),
        "best_inner_val_miou": round(summary["best_val_miou"], 4),
        "held_out_miou": round(held_out.record["miou"], 4),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variant", default="unet")
    p.add_argument("--fold", type=int, default=0)
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args()
    os.chdir(PIPELINE)
    params = load_params()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for amp in ("fp32", "bf16"):
            results.append(
                one_run(params, args.variant, args.fold, args.seed, amp, Path(tmp) / amp)
            )
            print(json.dumps(results[-1]), flush=True)
    fp32, bf16 = results
    print(
        json.dumps(
            {
                "variant": args.variant,
                "fold": args.fold,
                "bf16_speedup": round(fp32["step_s"] / bf16["step_s"], 2),
                "held_out_miou_shift": round(bf16["held_out_miou"] - fp32["held_out_miou"], 4),
            }
        )
    )


if __name__ == "__main__":
    main()
