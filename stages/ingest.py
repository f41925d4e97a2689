"""DVC stage ingest: a published release (MMLSv1, MMLSv2 in either distribution) as the
pipeline's tiles and split table, the released split kept as given; with Table 1, Fig. 2 data
and the leakage audit of the released split (mmls/data/releases.py, mmls/data/ingest.py)."""

import time
from pathlib import Path

from mmls.core import paths
from mmls.core.config import load_params, section
from mmls.core.io import atomic_dir, atomic_path, run_stage, write_json
from mmls.data.bands import read_bands
from mmls.data.ingest import ingest_release, released_leakage_audit
from mmls.data.releases import IngestConfig
from mmls.data.splitting import Table1Config, fg_intervals, table1
from mmls.geo.tiling import TileConfig


def main() -> None:
    params = load_params()
    cfg = section(params, "ingest", IngestConfig)
    size = section(params, "tile", TileConfig).size_px
    t0 = time.perf_counter()
    # everything is computed before anything is written: a failure leaves the outputs as they were
    with atomic_dir(paths.RELEASED_TILES) as tmp:
        splits, notes = ingest_release(cfg, tmp, bands=read_bands(params), size=size)
        seconds = time.perf_counter() - t0
        stats = table1(splits, section(params, "table1", Table1Config).std_ddof)
        intervals = fg_intervals(splits)
        leakage = released_leakage_audit(splits, Path(tmp), size)
    with atomic_path(paths.RELEASED_SPLITS) as tmp:
        splits.to_csv(tmp, index=False)
    write_json(paths.TABLE1, stats)
    with atomic_path(paths.FG_INTERVALS) as tmp:
        intervals.to_csv(tmp, index=False)
    write_json(paths.LEAKAGE, leakage)
    counts = splits.groupby("split")["labelled"].agg(["size", "all"])
    write_json(
        paths.INGEST_METRICS,
        {
            "layout": cfg.layout,
            "n_tiles": len(splits),
            "n_labelled": int(splits["labelled"].sum()),
            "ingest_seconds": round(seconds, 2),
            **{f"n_{s}": int(r["size"]) for s, r in counts.iterrows()},
        },
    )
    for note in notes:
        print(f"ingest: {note}")
    print(f"ingest {cfg.layout}: {len(splits)} tiles in {seconds:.1f} s -> {paths.RELEASED_TILES}")


if __name__ == "__main__":
    run_stage(main)
