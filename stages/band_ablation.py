"""DVC stage band_ablation@<set>: train the studied model on a band subset, score it on test.

MMLSv2 Sec. 4.2, Table 4 / Fig. 8: U-Net with RGB, +DEM, +slope, +thermal inertia, +grayscale.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmls.errors import InputError  # noqa: E402
from mmls.evaluation import EvalConfig, evaluate_checkpoint  # noqa: E402
from mmls.io import load_params, run_stage, write_json  # noqa: E402
from mmls.store import read_splits  # noqa: E402
from mmls.training import TrainConfig, train_model  # noqa: E402

STORE = Path("data/store")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--band-set", required=True, help="a key of the `band_sets` params section")
    args = parser.parse_args()
    params = load_params()
    band_sets = params.get("band_sets") or {}
    if args.band_set not in band_sets:
        raise InputError(
            "params.yaml", f"unknown band set {args.band_set!r}; known: {sorted(band_sets)}"
        )
    model = params["model"]
    models = params.get("models") or {}
    if model not in models:
        raise InputError("params.yaml", f"`model: {model}` is not in the `models` section")
    cfg = TrainConfig.from_params(params, bands=band_sets[args.band_set])
    out = Path("models/ablation") / args.band_set
    trained = train_model(model, models[model], cfg, STORE, out)
    write_json(out / "train.json", trained)
    eval_cfg = EvalConfig.from_params(params)
    device = eval_cfg.setup()
    predictions = Path("predictions/ablation")
    record = evaluate_checkpoint(
        out / "best.pt",
        STORE,
        "test",
        device,
        eval_cfg,
        trained["train_time_h"],
        patch_outputs=(
            predictions / f"{args.band_set}.patches.csv",
            predictions / f"{args.band_set}.npz",
            read_splits(params["dataset"]["splits"]),
        ),
    )
    write_json(Path("metrics/ablation") / f"{args.band_set}.json", record)
    print(f"band_ablation {args.band_set}: miou={record['miou']:.4f}")


if __name__ == "__main__":
    run_stage(main)
