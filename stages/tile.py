"""DVC stage tile: 128x128 georeferenced patches of each region, filtered (Sec. 2.3)."""

import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmls.holdout import windows_from_json  # noqa: E402
from mmls.io import atomic_dir, load_params, read_json, run_stage, write_json  # noqa: E402
from mmls.tiling import tile_regions  # noqa: E402

OUT = Path("data/tiles")
STATS = Path("metrics/tiles.json")


def main() -> None:
    params = load_params()
    windows = windows_from_json(read_json("data/holdout/regions.json"))
    with atomic_dir(OUT) as tmp:
        index, stats = tile_regions(
            params["scene"]["composite"],
            "data/aligned/mask.tif",
            windows,
            tmp,
            size=params["tile"]["size"],
            min_fg_ratio=params["tile"]["min_fg_ratio"],
            band_names=params["bands"],
            workers=params["tile"]["workers"],
        )
        index.to_csv(tmp / "index.csv", index=False)
    write_json(STATS, {region: asdict(s) for region, s in stats.items()})
    print("tile: " + "; ".join(f"{r}: {asdict(s)}" for r, s in stats.items()))


if __name__ == "__main__":
    run_stage(main)
