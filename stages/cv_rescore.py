"""DVC stages cv_rescore@<name> and cv_ensemble@<name>: a variant's checkpoints reused without
training, scored on the held-out folds (mmls/evaluation/cv.py). A `cv.rescored` entry takes other
test-time decisions (TTA, a threshold calibrated on each fold's inner validation split) on every
fold x seed checkpoint; a `cv.ensembles` entry averages every seed's checkpoint of a fold. One
stage per entry, so that it depends on its variant's checkpoints alone."""

import argparse

from mmls.core import paths
from mmls.core.config import load_params
from mmls.core.io import run_stage
from mmls.data.store import load_store
from mmls.evaluation.cv import score_reuse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True, help="a key of `cv.rescored` or `cv.ensembles`")
    args = parser.parse_args()
    for where, record in score_reuse(load_params(), load_store(paths.STORE), args.name):
        print(f"cv reuse {args.name} {where}: miou={record['miou']:.4f}")


if __name__ == "__main__":
    run_stage(main)
