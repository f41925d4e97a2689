"""DVC stage tile: 128x128 georeferenced patches of each region, filtered (Sec. 2.3)."""

from dataclasses import asdict

from mmls.core import paths
from mmls.core.config import load_params, section
from mmls.core.io import atomic_dir, read_json, run_stage, write_json
from mmls.data.bands import read_bands
from mmls.geo.holdout import windows_from_json
from mmls.geo.raster import SceneConfig
from mmls.geo.tiling import TileConfig, tile_regions


def main() -> None:
    params = load_params()
    scene = section(params, "scene", SceneConfig)
    cfg = section(params, "tile", TileConfig)
    windows = windows_from_json(read_json(paths.REGIONS_JSON))
    with atomic_dir(paths.TILES) as tmp:
        index, stats = tile_regions(
            scene.composite,
            paths.MASK,
            windows,
            tmp,
            size=cfg.size_px,
            min_fg_ratio=cfg.min_fg_ratio,
            band_names=read_bands(params),
            workers=cfg.workers,
            unmapped_path=paths.ALIGNED_INVENTORY if cfg.drop_unmapped else None,
        )
        index.to_csv(tmp / paths.TILE_INDEX.name, index=False)
    write_json(paths.TILES_METRICS, {region: asdict(s) for region, s in stats.items()})
    print("tile: " + "; ".join(f"{r}: {asdict(s)}" for r, s in stats.items()))


if __name__ == "__main__":
    run_stage(main)
