"""DVC stage cv_rescore@<name>: other test-time decisions (`cv.rescored.<name>`: TTA, a
threshold calibrated on each fold's inner validation split) on every fold x seed checkpoint of
the variant it rescores, scored on the held-out folds (mmls/cv_scoring.py). One stage per
rescoring, so that it depends on that variant's checkpoints alone."""

import argparse

from mmls import layout
from mmls.config import load_params, read_seeds, section
from mmls.cv_scoring import score_checkpoint
from mmls.folds import CVConfig
from mmls.io import run_stage
from mmls.store import load_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True, help="a key of `cv.rescored`")
    args = parser.parse_args()
    params = load_params()
    store = load_store(layout.STORE)
    for fold in section(params, "cv", CVConfig).folds:
        for seed in read_seeds(params):
            record = score_checkpoint(params, store, args.name, fold, seed)
            print(f"cv_rescore {args.name} fold {fold} seed {seed}: miou={record['miou']:.4f}")


if __name__ == "__main__":
    run_stage(main)
