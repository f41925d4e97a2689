"""`mmls map` (a bundle, its checks, COGs, quick look) against the old `predict` path (the
checkpoint through `predict_scene`, plain GeoTIFFs) on the same scene and threads.

Each run is a fresh process (imports and model load included), the two interleaved over
``--rounds``; wall time, Mpx/s and the child's peak RSS are reported per run, and the two
probability maps are compared bit for bit (the map's COG holds the same pixels as the plain
GeoTIFF). Usage, from the repository root after `dvc repro` of the default pipeline:

    python -m benchmarks.bench_map --rounds 2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import rasterio

ROOT = Path(__file__).resolve().parents[1]

PREDICT = """
import sys, torch
from mmls.api import engine
from mmls.inference.predictor import Predictor
from mmls.inference.scene import predict_scene
from mmls.nn.device import set_threads
checkpoint, scene, out, threads = sys.argv[1:5]
set_threads(int(threads))
predictor = Predictor.load(checkpoint, torch.device("cpu"))
predict_scene(predictor, scene, out, band_idx=range(7), cfg=engine(threads=int(threads)),
              progress=False)
"""
MAP = """
import sys
from mmls.api import load_model
bundle, scene, out, threads = sys.argv[1:5]
load_model(bundle).map(scene, out, threads=int(threads), device="cpu", progress=False,
                       overwrite="replace")
"""


#: Runs its argument in a fresh interpreter; prints the wall seconds and the child's peak RSS.
WRAPPER = """
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
subprocess.run([sys.executable, "-c", *sys.argv[1:]], check=True)
wall = time.perf_counter() - t0
print(json.dumps([wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024]))
"""


def measured(code: str, args: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of ``code`` run with ``args`` in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, code, *args],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    wall, rss = json.loads(done.stdout.strip().splitlines()[-1])
    return wall, rss


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", default="bundles/unet.mmls.pt")
    p.add_argument("--checkpoint", default="models/unet/seed42/best.pt")
    p.add_argument("--scene", default="data/synthetic/composite.tif")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    with rasterio.open(ROOT / args.scene) as src:
        mpx = src.width * src.height / 1e6
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name, code, model in (
                ("predict", PREDICT, args.checkpoint),
                ("map", MAP, args.bundle),
            ):
                out = Path(tmp) / f"{name}{r}"
                out.mkdir()
                wall, rss = measured(code, [model, args.scene, str(out), str(args.threads)])
                rows.append(
                    {
                        "engine": name,
                        "round": r,
                        "wall_s": round(wall, 2),
                        "mpx_per_s": round(mpx / wall, 3),
                        "peak_rss_mib": round(rss),
                    }
                )
        with rasterio.open(Path(tmp) / "predict0" / "probability.tif") as a:
            plain = a.read(1)
        with rasterio.open(Path(tmp) / "map0" / "probability.tif") as b:
            cog = b.read(1)
        same = bool(np.array_equal(plain, cog))
    for row in rows:
        print(json.dumps(row))
    print(
        json.dumps(
            {
                "scene": args.scene,
                "mpx": round(mpx, 2),
                "threads": args.threads,
                "probability_maps_bitwise_equal": same,
            }
        )
    )


if __name__ == "__main__":
    main()
