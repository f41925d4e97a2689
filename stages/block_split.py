"""DVC stage block_split: 2x2-block, fg-stratified train/val/test split (Sec. 2.4, Eqs. 1-2);
Table 1 and Fig. 2 data (Sec. 3), and the leakage audit of the split it makes."""

import pandas as pd

from mmls.core import paths
from mmls.core.config import load_params, section
from mmls.core.io import atomic_path, run_stage, write_json
from mmls.data.leakage import leakage_audit
from mmls.data.splitting import SplitConfig, Table1Config, assign_splits, fg_intervals, table1
from mmls.geo.tiling import TileConfig


def main() -> None:
    params = load_params()
    cfg = section(params, "split", SplitConfig)
    size = section(params, "tile", TileConfig).size_px
    splits = assign_splits(
        pd.read_csv(paths.TILE_INDEX),
        size=size,
        fractions=cfg.fractions,
        bins=cfg.bins,
        seed=cfg.seed,
    )
    with atomic_path(paths.SPLITS_CSV) as tmp:
        splits.to_csv(tmp, index=False)
    write_json(paths.TABLE1, table1(splits, section(params, "table1", Table1Config).std_ddof))
    with atomic_path(paths.FG_INTERVALS) as tmp:
        fg_intervals(splits).to_csv(tmp, index=False)
    write_json(paths.LEAKAGE, leakage_audit(splits, size))
    counts = splits["split"].value_counts().sort_index().to_dict()
    print(f"block_split: {counts} -> {paths.SPLITS_CSV}")


if __name__ == "__main__":
    run_stage(main)
