"""DVC stage tile: 128x128 georeferenced patches of each region, filtered (Sec. 2.3)."""

from dataclasses import asdict

from mmls import layout
from mmls.bands import read_bands
from mmls.config import load_params, section
from mmls.holdout import windows_from_json
from mmls.io import atomic_dir, read_json, run_stage, write_json
from mmls.raster import SceneConfig
from mmls.tiling import TileConfig, tile_regions


def main() -> None:
    params = load_params()
    scene = section(params, "scene", SceneConfig)
    cfg = section(params, "tile", TileConfig)
    windows = windows_from_json(read_json(layout.REGIONS_JSON))
    with atomic_dir(layout.TILES) as tmp:
        index, stats = tile_regions(
            scene.composite,
            layout.MASK,
            windows,
            tmp,
            size=cfg.size,
            min_fg_ratio=cfg.min_fg_ratio,
            band_names=read_bands(params),
            workers=cfg.workers,
            unmapped_path=layout.ALIGNED_INVENTORY if cfg.drop_unmapped else None,
        )
        index.to_csv(tmp / layout.TILE_INDEX.name, index=False)
    write_json(layout.TILES_METRICS, {region: asdict(s) for region, s in stats.items()})
    print("tile: " + "; ".join(f"{r}: {asdict(s)}" for r, s in stats.items()))


if __name__ == "__main__":
    run_stage(main)
