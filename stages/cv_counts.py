"""DVC stages cv_counts@<row>, cv_counts_rescored@<row> and cv_counts_ensemble@<row>: a CV row's
held-out per-patch counts copied from its predictions (DVC's cache) to metrics/cv_counts/<row>
(git), where the CV table reads them (mmls/evaluation/held_out_counts.py)."""

import argparse

from mmls.core.io import run_stage
from mmls.evaluation.held_out_counts import copy_held_out_counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--name",
        required=True,
        help="a CV row: a key of `cv.variants`, `cv.rescored` or `cv.ensembles`",
    )
    args = parser.parse_args()
    for path in copy_held_out_counts(args.name):
        print(f"cv_counts {args.name}: {path}")


if __name__ == "__main__":
    run_stage(main)
