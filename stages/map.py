"""DVC stage map@<scene>: the `map.scenes.<scene>` composite mapped with the pipeline's `model`
bundle, with its own decision and context: probability and mask Cloud-Optimized GeoTIFFs,
landslide polygons, summary.json and a quick look in maps/<scene>/ (mmls/inference/mapping.py,
the code of `mmls map`). Scored by map_score@<scene> when `map.scores` names an inventory."""

import argparse

from mmls.core import paths
from mmls.core.config import load_params, section, value
from mmls.core.io import run_stage
from mmls.inference.mapping import MapConfig, map_scene, scene_options


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scene", required=True, help="a key of `map.scenes`")
    name = parser.parse_args().scene
    params = load_params()
    cfg = section(params, "map", MapConfig)
    scene, options = scene_options(cfg, name, paths.REGIONS_JSON)
    model = value(params, "model", str)
    summary = map_scene(
        paths.bundle_path(model), scene.composite, paths.map_dir(name), cfg, options
    )
    print(
        f"map {name} with {model}: {summary['map']['n_polygons']} polygons, "
        f"{summary['map']['mpx_per_s']} Mpx/s -> {paths.map_dir(name)}"
    )


if __name__ == "__main__":
    run_stage(main)
