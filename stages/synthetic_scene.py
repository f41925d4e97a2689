"""DVC stage synthetic_scene: the embedded default scene (composite + shifted inventory)."""

import time

from mmls.core import paths
from mmls.core.config import load_params, section
from mmls.core.io import run_stage
from mmls.data.synthetic.config import SyntheticConfig
from mmls.data.synthetic.geotiff import write_scene
from mmls.data.synthetic.scene import generate_scene, summary


def main() -> None:
    cfg = section(load_params(), "synthetic", SyntheticConfig)
    t0 = time.perf_counter()
    scene = generate_scene(cfg)
    write_scene(scene, paths.SYNTHETIC_COMPOSITE, paths.SYNTHETIC_INVENTORY)
    print(f"{summary(scene)}; {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    run_stage(main)
