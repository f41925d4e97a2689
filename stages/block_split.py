"""DVC stage block_split: 2x2-block, fg-stratified train/val/test split; Table 1 and Fig. 2 data.

Sec. 2.4 (Eqs. 1-2) and Sec. 3 (Table 1, Fig. 2).
"""

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmls.io import atomic_path, load_params, run_stage, write_json  # noqa: E402
from mmls.splitting import assign_splits, fg_intervals, table1  # noqa: E402

INDEX = Path("data/tiles/index.csv")
SPLITS = Path("data/splits.csv")
TABLE1 = Path("metrics/table1.json")
INTERVALS = Path("metrics/fg_intervals.csv")


def main() -> None:
    params = load_params()
    index = pd.read_csv(INDEX)
    splits = assign_splits(
        index,
        size=params["tile"]["size"],
        fractions=params["split"]["fractions"],
        bins=params["split"]["bins"],
        seed=params["split"]["seed"],
    )
    with atomic_path(SPLITS) as tmp:
        splits.to_csv(tmp, index=False)
    write_json(TABLE1, table1(splits))
    with atomic_path(INTERVALS) as tmp:
        fg_intervals(splits).to_csv(tmp, index=False)
    counts = splits["split"].value_counts().sort_index().to_dict()
    print(f"block_split: {counts} -> {SPLITS}")


if __name__ == "__main__":
    run_stage(main)
