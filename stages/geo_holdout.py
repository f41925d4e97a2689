"""DVC stage geo_holdout: base and isolated regions at a fixed east-west boundary (Sec. 2.3)."""

from mmls import layout
from mmls.bands import read_bands
from mmls.config import load_params, section
from mmls.holdout import HoldoutConfig, split_regions
from mmls.io import run_stage, write_json
from mmls.raster import SceneConfig, check_composite, check_same_grid


def main() -> None:
    params = load_params()
    scene = section(params, "scene", SceneConfig)
    cfg = section(params, "holdout", HoldoutConfig)
    grid = check_composite(scene.composite, read_bands(params))
    check_same_grid(grid, scene.composite, layout.MASK)  # Sec. 2.2: verified before any split
    holdout = split_regions(grid, cfg.boundary_x, cfg.isolated_side, gap_px=cfg.gap_px)
    write_json(layout.REGIONS_JSON, holdout.to_json(grid))
    sizes = {k: f"{int(w.width)}x{int(w.height)} px" for k, w in holdout.windows.items()}
    print(f"geo_holdout: boundary column {holdout.boundary_col}; {sizes} -> {layout.REGIONS_JSON}")


if __name__ == "__main__":
    run_stage(main)
