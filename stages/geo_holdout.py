"""DVC stage geo_holdout: base and isolated regions at a fixed east-west boundary (Sec. 2.3)."""

from mmls.core import paths
from mmls.core.config import load_params, section
from mmls.core.io import run_stage, write_json
from mmls.data.bands import read_bands
from mmls.geo.holdout import HoldoutConfig, split_regions
from mmls.geo.raster import SceneConfig, check_composite, check_same_grid


def main() -> None:
    params = load_params()
    scene = section(params, "scene", SceneConfig)
    cfg = section(params, "holdout", HoldoutConfig)
    grid = check_composite(scene.composite, read_bands(params))
    check_same_grid(grid, scene.composite, paths.MASK)  # Sec. 2.2: verified before any split
    holdout = split_regions(grid, cfg.boundary_x, cfg.isolated_side, gap_px=cfg.gap_px)
    write_json(paths.REGIONS_JSON, holdout.to_json(grid))
    sizes = {k: f"{int(w.width)}x{int(w.height)} px" for k, w in holdout.windows.items()}
    print(f"geo_holdout: boundary column {holdout.boundary_col}; {sizes} -> {paths.REGIONS_JSON}")


if __name__ == "__main__":
    run_stage(main)
