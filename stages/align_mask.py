"""DVC stage align_mask: the inventory (raster or vector) onto the composite grid (Sec. 2.2)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmls.align import align_inventory  # noqa: E402
from mmls.io import load_params, run_stage  # noqa: E402
from mmls.raster import check_composite  # noqa: E402

OUT = Path("data/aligned/inventory.tif")


def main() -> None:
    params = load_params()
    composite = check_composite(params["scene"]["composite"], params["bands"])
    report = align_inventory(  # a partial coverage is reported as a warning on stderr
        composite,
        params["scene"]["inventory"],
        OUT,
        window_px=params["align"]["window_px"],
        burn_value=params["binarize"]["landslide_class"],
        class_column=params["align"]["class_column"],
        class_value=params["align"]["class_value"],
    )
    print(f"align_mask: {report.kind} inventory -> {OUT} ({report.covered_fraction:.1%} covered)")


if __name__ == "__main__":
    run_stage(main)
