"""DVC stage cv_eval@<variant>-<fold>-<seed>: score a variant's fold checkpoint on its held-out
fold (pooled metrics, per-patch counts, masks) with the variant's test-time decisions
(mmls/evaluation/cv.py)."""

import argparse

from mmls.core import paths
from mmls.core.config import load_params
from mmls.core.io import run_stage
from mmls.data.store import load_store
from mmls.evaluation.cv import score_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True, help="a key of `cv.variants`")
    parser.add_argument("--fold", required=True, type=int)
    parser.add_argument("--seed", required=True, type=int)
    args = parser.parse_args()
    record = score_checkpoint(
        load_params(), load_store(paths.STORE), args.name, args.fold, args.seed
    )
    print(f"cv_eval {args.name} fold {args.fold} seed {args.seed}: miou={record['miou']:.4f}")


if __name__ == "__main__":
    run_stage(main)
