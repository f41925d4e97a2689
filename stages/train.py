"""DVC stage train@<model>: train one model, keep its best val-mIoU weights (Sec. 4.1)."""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmls.errors import InputError  # noqa: E402
from mmls.io import load_params, run_stage, write_json  # noqa: E402
from mmls.training import TrainConfig, train_model  # noqa: E402

STORE = Path("data/store")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="a key of the `models` params section")
    args = parser.parse_args()
    params = load_params()
    models = params.get("models") or {}
    if args.model not in models:
        raise InputError("params.yaml", f"unknown model {args.model!r}; known: {sorted(models)}")
    cfg = TrainConfig.from_params(params)
    record = train_model(args.model, models[args.model], cfg, STORE, Path("models") / args.model)
    write_json(Path("metrics/train") / f"{args.model}.json", record)
    print(f"train {args.model}: {record}")


if __name__ == "__main__":
    run_stage(main)
