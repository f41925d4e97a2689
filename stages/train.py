"""DVC stage train@<model>-<seed>: train one model on train, keep its best val-mIoU epoch
(Sec. 4.1); per-epoch logs through DVCLive."""

import argparse

from mmls import layout
from mmls.config import load_params
from mmls.io import run_stage
from mmls.store import load_store
from mmls.training import fit, read_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="a key of the `models` params section")
    parser.add_argument("--seed", required=True, type=int, help="one of the `seeds` params")
    args = parser.parse_args()
    run = read_run(load_params(), args.model, args.seed)
    store = load_store(layout.STORE)
    summary = fit(
        run,
        store,
        store.labelled_rows("train", layout.STORE),
        store.labelled_rows("val", layout.STORE),
        layout.model_dir(args.model, args.seed) / layout.CHECKPOINT_NAME,
        layout.train_log_dir(args.model, args.seed),
        layout.resume_path(layout.run_name(args.model, args.seed)),
    )
    print(f"train {args.model} seed {args.seed}: {summary}")


if __name__ == "__main__":
    run_stage(main)
