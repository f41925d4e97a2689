"""DVC stage binarize: landslide class -> 1, everything else (incl. nodata) -> 0 (Sec. 2.2)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmls.align import binarize_mask  # noqa: E402
from mmls.io import load_params, run_stage  # noqa: E402
from mmls.raster import check_composite  # noqa: E402

OUT = Path("data/aligned/mask.tif")


def main() -> None:
    params = load_params()
    composite = check_composite(params["scene"]["composite"], params["bands"])
    fg, total = binarize_mask(
        composite,
        "data/aligned/inventory.tif",
        OUT,
        landslide_class=params["binarize"]["landslide_class"],
        window_px=params["align"]["window_px"],
    )
    print(f"binarize: {fg} landslide pixels of {total} ({fg / total:.2%}) -> {OUT}")


if __name__ == "__main__":
    run_stage(main)
