"""DVC stage geo_holdout: base and isolated regions at a fixed east-west boundary (Sec. 2.3)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmls.holdout import split_regions  # noqa: E402
from mmls.io import load_params, run_stage, write_json  # noqa: E402
from mmls.raster import check_composite, check_same_grid  # noqa: E402

MASK = Path("data/aligned/mask.tif")
OUT = Path("data/holdout/regions.json")


def main() -> None:
    params = load_params()
    composite_path = params["scene"]["composite"]
    grid = check_composite(composite_path, params["bands"])
    check_same_grid(grid, composite_path, MASK)  # Sec. 2.2: verified before any split
    holdout = split_regions(
        grid,
        float(params["holdout"]["boundary_x"]),
        params["holdout"]["isolated_side"],
        gap_px=int(params["holdout"].get("gap_px", 0)),
    )
    write_json(OUT, holdout.to_json(grid))
    sizes = {k: f"{int(w.width)}x{int(w.height)} px" for k, w in holdout.windows.items()}
    print(f"geo_holdout: boundary column {holdout.boundary_col}; {sizes} -> {OUT}")


if __name__ == "__main__":
    run_stage(main)
