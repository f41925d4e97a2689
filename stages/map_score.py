"""DVC stage map_score@<scene>: the map of `map.scenes.<scene>` scored against the inventory of
`map.scores.<scene>` (pixel and object metrics, mmls/inference/map_scores.py). A stage of its
own because DVC cannot declare a dependency that only some scenes have."""

import argparse

from mmls.core import paths
from mmls.core.config import load_params, section
from mmls.core.errors import InputError
from mmls.core.io import run_stage, write_json
from mmls.geo.align import BinarizeConfig
from mmls.inference.map_scores import score_map
from mmls.inference.mapping import MapConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scene", required=True, help="a key of `map.scores`")
    name = parser.parse_args().scene
    params = load_params()
    cfg = section(params, "map", MapConfig)
    if name not in cfg.scores:
        raise InputError("params.yaml:map.scores", f"has no entry {name!r}")
    landslide_class = section(params, "binarize", BinarizeConfig).landslide_class
    record = score_map(paths.map_dir(name), cfg.scores[name].inventory, landslide_class, cfg)
    write_json(paths.MAP_SCORES / f"{name}.json", record)
    print(f"map_score {name}: miou={record['miou']:.4f} obj_recall={record['obj_recall']:.3f}")


if __name__ == "__main__":
    run_stage(main)
