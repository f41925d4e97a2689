"""DVC stage train@<model>-<seed>: train one model on train, keep its best val-mIoU epoch
(Sec. 4.1); per-epoch logs through DVCLive."""

import argparse

from mmls.core import paths
from mmls.core.config import load_params
from mmls.core.io import run_stage
from mmls.data.store import load_store
from mmls.nn.training import fit, read_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="a key of the `models` params section")
    parser.add_argument("--seed", required=True, type=int, help="one of the `seeds` params")
    args = parser.parse_args()
    run = read_run(load_params(), args.model, args.seed)
    store = load_store(paths.STORE)
    summary = fit(
        run,
        store,
        store.labelled_rows("train", paths.STORE),
        store.labelled_rows("val", paths.STORE),
        paths.model_dir(args.model, args.seed) / paths.CHECKPOINT_NAME,
        paths.train_log_dir(args.model, args.seed),
        paths.resume_path(paths.run_name(args.model, args.seed)),
    )
    print(f"train {args.model} seed {args.seed}: {summary}")


if __name__ == "__main__":
    run_stage(main)
