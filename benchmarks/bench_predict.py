"""Memory and throughput of whole-scene prediction (mmls/predict.py) on a small and a large scene.

Not a test: generates synthetic 7-band float32 composites (written strip by strip, so the
generator itself never holds a scene), then maps each in a fresh subprocess with a tiny stand-in
model (a fixed 1x1 convolution: the U-Net on CPU would measure torch, not the streaming) and
reports per scene: size, wall time, throughput (Mpx/s of the scene) and peak RSS. Bounded memory
shows as a peak RSS that does not grow with the scene's area: the default scenes are a small one,
a wide one (same width as the large one, 1/8 of its area) and a large one (7.5 GB of input).

    .venv/bin/python benchmarks/bench_predict.py     # 2048x2048, 16384x2048, 16384x16384 px
    .venv/bin/python benchmarks/bench_predict.py --scenes 1024x1024,4096x4096 --keep

The composites are uncompressed tiled GeoTIFFs under --workdir (default
/tmp/mmls_bench_predict), removed afterwards unless --keep. About 3 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS

ROOT = Path(__file__).resolve().parents[1]

CRS_MARS = CRS.from_proj4(
    "+proj=eqc +lat_ts=0 +lat_0=0 +lon_0=0 +x_0=0 +y_0=0 +R=3396190 +units=m +no_defs"
)
NODATA = -9999.0


def make_composite(path: Path, width: int, height: int, strip: int = 256) -> None:
    """Smooth 7-band fields (blobs after thresholding) with a nodata band on the left edge."""
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 7,
        "dtype": "float32",
        "crs": CRS_MARS,
        "transform": Affine(100.0, 0, -4e6, 0, -100.0, 0.0),
        "nodata": NODATA,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "BIGTIFF": "YES",
    }
    x = np.arange(width, dtype=np.float32)
    with rasterio.open(path, "w", **profile) as dst:
        for r0 in range(0, height, strip):
            h = min(strip, height - r0)
            y = np.arange(r0, r0 + h, dtype=np.float32)[:, None]
            block = np.empty((7, h, width), np.float32)
            block[0] = 0.5 + 0.5 * np.sin(x / 41.0) * np.cos(y / 29.0)
            for b in range(1, 7):
                block[b] = np.float32(b / 7.0) + 0.01 * np.sin((x + b * y) / 97.0)
            block[:, :, : min(200, width // 10)] = NODATA
            dst.write(block, window=rasterio.windows.Window(0, r0, width, h))


def child(composite: str, out_dir: str) -> None:
    """Map one composite with the stand-in model; print one JSON line of measurements."""
    import torch

    from mmls.bands import BAND_NAMES
    from mmls.config import load_params, parse
    from mmls.predict import PredictConfig, predict_scene
    from mmls.predictor import Predictor

    torch.set_num_threads(1)
    model = torch.nn.Conv2d(7, 2, 1)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
        model.weight[1, 0] = 8.0
        model.bias[1] = -4.0  # landslide where band 0 > 0.5
    model.eval()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    cpu = torch.device("cpu")
    predictor = Predictor(model, BAND_NAMES, [0.0] * 7, [1.0] * 7, None, cpu, False, 128, {}, "")
    section = {**load_params(ROOT / "params.yaml")["predict"], "overlap_px": 32, "batch_size": 16}
    res = predict_scene(
        predictor,
        composite,
        out_dir,
        band_idx=range(7),
        cfg=parse(section, PredictConfig, "predict"),
        progress=False,
    )
    rec = res.record()
    rec["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rec["rss_after_imports_mb"] = rss_before
    print(json.dumps(rec))


def measure(composite: Path, out_dir: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", str(composite), str(out_dir)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"child failed:\n{proc.stderr}")
    rec = json.loads(proc.stdout.strip().splitlines()[-1])
    rec["wall_s_with_startup"] = round(time.perf_counter() - t0, 2)
    return rec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scenes", default="2048x2048,16384x2048,16384x16384", help="WxH,WxH,... in pixels"
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mmls_bench_predict"))
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--child", nargs=2, metavar=("COMPOSITE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    scenes = [tuple(int(v) for v in s.split("x")) for s in args.scenes.split(",")]
    rows = []
    try:
        for k, (width, height) in enumerate(scenes):
            comp = args.workdir / f"scene{k}.tif"
            t0 = time.perf_counter()
            make_composite(comp, width, height)
            gen_s = time.perf_counter() - t0
            rec = measure(comp, args.workdir / f"scene{k}_out")
            if not args.keep:
                comp.unlink()  # free the disk before the next scene
            size_gb = width * height * 7 * 4 / 1e9
            rows.append(rec)
            print(
                f"{width}x{height} px ({size_gb:.2f} GB input, generated in {gen_s:.0f} s): "
                f"{rec['seconds']:.1f} s, {rec['mpx_per_s']:.2f} Mpx/s, "
                f"peak RSS {rec['peak_rss_mb']:.0f} MB (after imports "
                f"{rec['rss_after_imports_mb']:.0f} MB), {rec['n_windows']} windows, "
                f"{rec['n_polygons']} polygons",
                flush=True,
            )
    finally:
        if not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
