"""DVC stage eval@<split>: pooled metrics and latency of every best checkpoint (Sec. 4.1)."""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmls.evaluation import EvalConfig, evaluate_checkpoint  # noqa: E402
from mmls.io import load_params, read_json, run_stage, write_json  # noqa: E402
from mmls.store import read_splits  # noqa: E402

STORE = Path("data/store")
PREDICTIONS = Path("predictions")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--split", required=True, choices=["test", "isolated_test"])
    args = parser.parse_args()
    params = load_params()
    cfg = EvalConfig.from_params(params)
    device = cfg.setup()
    splits = read_splits(params["dataset"]["splits"])
    for name in params.get("models") or {}:
        train_time_h = read_json(Path("metrics/train") / f"{name}.json")["train_time_h"]
        out = PREDICTIONS / args.split
        record = evaluate_checkpoint(
            Path("models") / name / "best.pt",
            STORE,
            args.split,
            device,
            cfg,
            train_time_h,
            patch_outputs=(out / f"{name}.patches.csv", out / f"{name}.npz", splits),
        )
        write_json(Path("metrics/eval") / args.split / f"{name}.json", record)
        print(f"eval {args.split} {name}: miou={record['miou']:.4f} iou_fg={record['iou_fg']:.4f}")


if __name__ == "__main__":
    run_stage(main)
