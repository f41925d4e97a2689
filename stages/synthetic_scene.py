"""DVC stage synthetic_scene: the embedded default scene (composite + shifted inventory)."""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmls.io import load_params, run_stage  # noqa: E402
from mmls.synthetic import SyntheticConfig, generate_scene, summary, write_scene  # noqa: E402

COMPOSITE = Path("data/synthetic/composite.tif")
INVENTORY = Path("data/synthetic/inventory.tif")


def main() -> None:
    params = load_params()
    cfg = SyntheticConfig.from_params(params.get("synthetic"))
    t0 = time.perf_counter()
    scene = generate_scene(cfg)
    write_scene(scene, COMPOSITE, INVENTORY)
    print(f"{summary(scene)}; {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    run_stage(main)
