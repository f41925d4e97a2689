"""Whole-scene prediction on the engines of mmls/inference/engine.py: throughput and memory.

Not a test. Generates synthetic 7-band float32 composites (written strip by strip, so the
generator never holds a scene) and maps each in a fresh subprocess, reporting wall time, scene
throughput (Mpx/s) and peak RSS of the calling process and of the busiest worker process
(``RUSAGE_CHILDREN``: the maximum over the worker processes).

    python -m benchmarks.bench_predict throughput [--scene 4096x4096] [--model unet]
                                                 [--engines processes,single]
        1 worker x 1 thread against 2 workers x 1 thread (Dask processes), and the default
        single process with 1 and with 2 threads, in one run, interleaved twice. Times include
        starting the workers and loading the model in each; the Dask runs also report the
        throughput from the moment every worker holds its model to the last row written.
    python -m benchmarks.bench_predict memory [--scenes 1GB,8GB] [--model standin]
        2 workers x 1 thread on a 1 GB and an 8 GB composite: peak RSS per worker.
    python -m benchmarks.bench_predict sink [--scene 16384x16384]
        the calling process alone (no model, no reads: rows of a fixed probability pattern):
        writing the probability and mask GeoTIFFs, polygons and scores. Its Mpx/s is the ceiling
        of one mapping run however many workers feed it.

Models: ``unet`` (U-Net resnet34, random weights: the model the pipeline trains) or
``standin`` (a one-level PSPNet: cheap, so the large scene measures the engine, not torch).
"""

from __future__ import annotations

import argparse
import json
import os
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
BANDS = ["red", "green", "blue", "dem", "slope", "thermal_inertia", "grayscale"]
MODELS = {
    "unet": {"arch": "Unet", "encoder_name": "resnet34", "encoder_weights": None},
    "standin": {
        "arch": "PSPNet",
        "encoder_name": "resnet18",
        "encoder_weights": None,
        "encoder_depth": 1,
        "psp_out_channels": 16,
        "upsampling": 2,
    },
}


def make_composite(path: Path, width: int, height: int, strip: int = 256) -> None:
    """Smooth 7-band fields with a nodata band on the left edge."""
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 7,
        "dtype": "float32",
        "crs": CRS_MARS,
        "nodata": NODATA,
        "tiled": True,
        "transform": Affine(100.0, 0, -4e6, 0, -100.0, 0.0),
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


def make_checkpoint(path: Path, model: str) -> None:
    import torch

    from mmls.nn.models import build_model, save_checkpoint

    torch.manual_seed(0)
    cfg = MODELS[model]
    meta = {
        "model_name": model,
        "model_config": cfg,
        "bands": BANDS,
        "tile_size": 128,
        "normalization": {"mean": [0.5] * 7, "std": [0.3] * 7, "nodata": NODATA},
    }
    save_checkpoint(path, build_model(model, cfg, 7), meta)


def child(
    composite: str,
    checkpoint: str,
    out_dir: str,
    scheduler: str,
    workers: int,
    threads: int,
    chunk_rows: int,
) -> None:
    """Map one composite; print one JSON line of measurements."""
    import torch

    from mmls.core.config import load_params, parse
    from mmls.inference.engine import Done, row_source
    from mmls.inference.predictor import Predictor
    from mmls.inference.scene import PredictConfig, predict_scene

    if scheduler == "sink":
        from mmls.inference.blending import Rows

        def sink_rows(predictor, src, bands, plan, cfg, tta=False):
            xx, yy = np.meshgrid(np.arange(plan.width), np.arange(2 * plan.size))
            pattern = (0.5 + 0.5 * np.sin(xx / 37.0) * np.sin(yy / 41.0)).astype(np.float32)
            ends = [*plan.ys[1:], plan.height]
            for y, end in zip(plan.ys, ends, strict=True):
                yield Rows(pattern[: end - y], np.ones((end - y, plan.width), bool))

    engine_keys = PredictConfig.model_fields
    section = {
        **{k: v for k, v in load_params(ROOT / "params.yaml")["map"].items() if k in engine_keys},
        "overlap_px": 32,
        "batch_size": 16,
        "threads": threads,
        "scheduler": "single" if scheduler == "sink" else scheduler,
        "workers": workers,
        "chunk_window_rows": chunk_rows,
    }
    cfg = parse(section, PredictConfig, "map")
    torch.set_num_threads(threads)
    predictor = Predictor.load(checkpoint, torch.device("cpu"))
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    log: list[Done] = []
    rows = sink_rows if scheduler == "sink" else row_source(checkpoint, "cpu", cfg, log)
    res = predict_scene(
        predictor,
        composite,
        out_dir,
        band_idx=range(7),
        cfg=cfg,
        progress=False,
        rows=rows,
    )
    end_s = time.perf_counter()
    rec = {k: res.record()[k] for k in ("seconds", "mpx_per_s", "n_windows", "n_polygons")}
    if log:  # every worker started and holding the model -> the last row written
        rec["steady_mpx_per_s"] = res.n_pixels / 1e6 / (end_s - log[0].received_s)
    me = resource.getrusage(resource.RUSAGE_SELF)
    rec["peak_rss_mib"] = me.ru_maxrss / 1024
    rec["caller_cpu_s"] = me.ru_utime + me.ru_stime  # the sink: writing, polygons, scores
    rec["worker_peak_rss_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps(rec))


def measure(
    composite: Path,
    checkpoint: Path,
    out: Path,
    scheduler: str,
    workers: int,
    threads: int,
    chunk_rows: int = 8,
) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.bench_predict",
        "--child",
        str(composite),
        str(checkpoint),
        str(out),
        scheduler,
        str(workers),
        str(threads),
        str(chunk_rows),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False, env=env)
    if proc.returncode:
        raise SystemExit(f"child failed:\n{proc.stderr[-3000:]}")
    shutil.rmtree(out, ignore_errors=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def line(label: str, rec: dict) -> str:
    return (
        f"{label}: {rec['seconds']:.1f} s, {rec['mpx_per_s']:.3f} Mpx/s, peak RSS "
        f"{rec['peak_rss_mib']:.0f} MiB (busiest worker {rec['worker_peak_rss_mib']:.0f} MiB), "
        f"calling process {rec['caller_cpu_s']:.1f} CPU s"
    )


def throughput(work: Path, scene: str, model: str, rounds: int, engines: str) -> None:
    configs = [("processes", 1, 1), ("processes", 2, 1), ("single", 1, 1), ("single", 1, 2)]
    chosen = set(engines.split(","))
    unknown = chosen - {c[0] for c in configs}
    if unknown:
        raise SystemExit(f"--engines: unknown {sorted(unknown)} (processes, single)")
    configs = [c for c in configs if c[0] in chosen]
    w, h = (int(v) for v in scene.split("x"))
    comp, ckpt = work / "scene.tif", work / "model.pt"
    make_composite(comp, w, h)
    make_checkpoint(ckpt, model)
    results: dict[tuple, list[dict]] = {c: [] for c in configs}
    for r in range(rounds):
        for c in configs:
            rec = measure(comp, ckpt, work / "out", *c)
            results[c].append(rec)
            steady = rec.get("steady_mpx_per_s")
            print(
                f"round {r} {c[0]} {c[1]} worker(s) x {c[2]} thread(s): "
                + line("", rec)
                + ("" if steady is None else f", {steady:.3f} Mpx/s once the workers are up"),
                flush=True,
            )
    if ("processes", 1, 1) in results:
        for key, what in (("mpx_per_s", "end to end"), ("steady_mpx_per_s", "workers up")):
            one, two = (max(r[key] for r in results[("processes", n, 1)]) for n in (1, 2))
            print(f"{model} on {scene}, 2 workers / 1 worker x 1 thread, {what}: {two / one:.2f}x")
    best = {c: max(r["mpx_per_s"] for r in v) for c, v in results.items()}
    if ("single", 1, 1) in best:
        threads = best[("single", 1, 2)] / best[("single", 1, 1)]
        print(f"single process, 2 threads / 1 thread = {threads:.2f}x")


def sink(work: Path, scene: str) -> None:
    w, h = (int(v) for v in scene.split("x"))
    comp, ckpt = work / "scene.tif", work / "model.pt"
    make_composite(comp, w, h)
    make_checkpoint(ckpt, "standin")
    rec = measure(comp, ckpt, work / "out", "sink", 1, 1)
    print(line(f"calling process alone on {scene} ({rec['n_polygons']} polygons)", rec))


def memory(work: Path, scenes: str, model: str) -> None:
    ckpt = work / "model.pt"
    make_checkpoint(ckpt, model)
    for size in scenes.split(","):
        gb = float(size.rstrip("GB"))
        w = 16384
        h = int(gb * 1e9 / (7 * 4 * w))
        comp = work / "scene.tif"
        t0 = time.perf_counter()
        make_composite(comp, w, h)
        rec = measure(comp, ckpt, work / "out", "processes", 2, 1)
        print(
            line(
                f"{w}x{h} px ({gb:.0f} GB, made in {time.perf_counter() - t0:.0f} s), 2 workers "
                "x 1 thread",
                rec,
            ),
            flush=True,
        )
        comp.unlink()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:6], int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["throughput", "memory", "sink"])
    parser.add_argument("--scene", help="WxH (throughput: 4096x4096, sink: 16384x16384)")
    parser.add_argument("--scenes", default="1GB,8GB")
    parser.add_argument("--model", choices=sorted(MODELS))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--engines", default="processes,single", help="throughput: which engines")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mmls_bench_predict"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    try:
        if args.what == "throughput":
            scene, model = args.scene or "4096x4096", args.model or "unet"
            throughput(args.workdir, scene, model, args.rounds, args.engines)
        elif args.what == "sink":
            sink(args.workdir, args.scene or "16384x16384")
        else:
            memory(args.workdir, args.scenes, args.model or "standin")
    finally:
        shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
