"""Benchmark of the data chain (align + binarize + tile) on large synthetic scenes.

Not a test. For each ``--sizes`` entry it writes, window by window, a 7-band float32 composite
(tiled 256, uncompressed by default, Mars equirectangular, 100 m pixels, nodata -9999) and a
uint8 inventory on a shifted, larger grid, then runs each step in its own subprocess so that
the peak RSS (``ru_maxrss`` of that child, from ``os.wait4``) belongs to that step alone:

* ``copy``  - baseline: ``rasterio.shutil.copy`` (GDALCreateCopy) to a DEFLATE/predictor-3 tiled
  GeoTIFF, the same compression the pipeline writes;
* ``align`` - ``check_composite`` + ``align_inventory`` (raster) + ``binarize_mask``;
* ``tile``  - ``split_regions`` (boundary at ~70 % of the width, isolated east) + ``tile_regions``.

Throughput is composite bytes (uncompressed) / step wall time; the step's CPU time is reported
too (steadier than wall time on a shared machine). The steps inherit this process' environment
(what a ``dvc repro`` would give them); the GDAL block cache limit in effect is reported. Steps
whose peak RSS exceeds ``--rss-limit-mb`` are measured again with
``GDAL_CACHEMAX=<--rerun-cachemax>`` (MB) to tell the cache apart from the code's own memory.
The composite stays in the OS page cache after generation, so reads are warm for every step.
Results also go to ``benchmarks/out/bench_data_chain.json`` (``--out``).

Example (about 13 minutes on 2 cores; 0.23 GB and 3.8 GB uncompressed composites)::

    .venv/bin/python benchmarks/bench_data_chain.py --sizes 4096x2048,16384x8192
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

MARS_EQC = "+proj=eqc +lat_ts=0 +lat_0=0 +lon_0=0 +x_0=0 +y_0=0 +R=3396190 +units=m +no_defs"
PIXEL_M = 100.0
ORIGIN = (-4_000_000.0, -300_000.0)
NODATA = -9999.0
N_BANDS = 7
BLOCK = 256
GEN_WINDOW = 1024  # generation window (multiple of BLOCK): memory of generation is bounded by it
CELL = 128  # landslide blobs: at most one per CELL x CELL cell of the composite
INV_SHIFT = (37, 23)  # inventory origin: dx pixels left, dy pixels up of the composite's
INV_PAD = 300  # inventory extends this much further right and down
INV_LANDSLIDE, INV_BACKGROUND, INV_NODATA = 1, 0, 255
STEPS = ("copy", "align", "tile")
DEFAULT_OUT = ROOT / "benchmarks" / "out" / "bench_data_chain.json"


# --------------------------------------------------------------------------------------------
# Scene generation (window by window)
# --------------------------------------------------------------------------------------------
def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"size {text!r} is not WIDTHxHEIGHT") from exc
    if w < 2 * CELL or h < CELL:
        raise argparse.ArgumentTypeError(f"size {text!r} is too small (>= {2 * CELL}x{CELL})")
    return w, h


def composite_bytes(width: int, height: int) -> int:
    return width * height * N_BANDS * 4


def nodata_box(width: int, height: int) -> tuple[int, int, int, int]:
    """(row0, row1, col0, col1) of the composite's small nodata area (~0.1 % of the scene)."""
    r0, c0 = height // 8, width // 8
    return r0, r0 + max(1, height // 32), c0, c0 + max(1, width // 32)


def boundary_col(width: int) -> int:
    """Holdout boundary at ~70 % of the width, on the CELL grid (both regions keep blobs)."""
    col = round(0.7 * width / CELL) * CELL
    return min(max(col, CELL), width - CELL)


def _windows(width: int, height: int, size: int) -> Iterator[tuple[int, int, int, int]]:
    for r in range(0, height, size):
        for c in range(0, width, size):
            yield r, c, min(size, height - r), min(size, width - c)


def _hash(a: Any, b: Any, seed: int) -> Any:
    """splitmix64-style hash of two int64 arrays (wrapping uint64 arithmetic)."""
    import numpy as np

    h = a.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    h ^= b.astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F) + np.uint64(seed)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return h


def _blob_mask(rows: Any, cols: Any, seed: int) -> Any:
    """Landslide blobs in composite pixel coords: 90 % of CELL cells hold one disc (r 6-19 px)."""
    import numpy as np

    rows, cols = np.broadcast_arrays(rows, cols)
    cr, cc = rows // CELL, cols // CELL
    h = _hash(cr, cc, seed)
    present = (h % np.uint64(10)) != 0
    radius = (6 + (h >> np.uint64(8)) % np.uint64(14)).astype(np.int64)
    cy = (20 + (h >> np.uint64(16)) % np.uint64(88)).astype(np.int64)
    cx = (20 + (h >> np.uint64(24)) % np.uint64(88)).astype(np.int64)
    dy = rows % CELL - cy
    dx = cols % CELL - cx
    return present & (dy * dy + dx * dx <= radius * radius)


def generate_scene(
    composite: Path, inventory: Path, width: int, height: int, seed: int, compress: str
) -> dict[str, Any]:
    """Write the composite and the inventory window by window; return a few facts about them."""
    import numpy as np
    import rasterio
    from affine import Affine
    from rasterio.crs import CRS
    from rasterio.windows import Window

    from mmls.data.bands import BAND_NAMES

    crs = CRS.from_proj4(MARS_EQC)
    transform = Affine(PIXEL_M, 0.0, ORIGIN[0], 0.0, -PIXEL_M, ORIGIN[1])
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": N_BANDS,
        "dtype": "float32",
        "crs": crs,
        "transform": transform,
        "nodata": NODATA,
        "tiled": True,
        "blockxsize": BLOCK,
        "blockysize": BLOCK,
        "interleave": "pixel",
        "BIGTIFF": "YES",
    }
    if compress != "none":
        profile.update(compress=compress, predictor=3)
    # smooth per-band pattern (separable, seamless across windows) + per-window seeded noise
    prng = np.random.default_rng(seed)
    fx = prng.uniform(2e-3, 2e-2, N_BANDS).astype(np.float32)
    fy = prng.uniform(2e-3, 2e-2, N_BANDS).astype(np.float32)
    px = prng.uniform(0, 2 * np.pi, N_BANDS).astype(np.float32)
    py = prng.uniform(0, 2 * np.pi, N_BANDS).astype(np.float32)
    nr0, nr1, nc0, nc1 = nodata_box(width, height)
    with rasterio.open(composite, "w", **profile) as dst:
        for i, name in enumerate(BAND_NAMES, start=1):
            dst.set_band_description(i, name)
        for r, c, h, w in _windows(width, height, GEN_WINDOW):
            ys = np.arange(r, r + h, dtype=np.float32)
            xs = np.arange(c, c + w, dtype=np.float32)
            sy = np.cos(ys[None, :] * fy[:, None] + py[:, None])  # (bands, h)
            sx = np.sin(xs[None, :] * fx[:, None] + px[:, None])  # (bands, w)
            data = np.random.default_rng([seed, r, c]).random((N_BANDS, h, w), dtype=np.float32)
            data *= np.float32(0.1)
            data += np.float32(0.45)
            data += np.float32(0.4) * sy[:, :, None] * sx[:, None, :]  # values in [0.05, 0.95]
            a0, a1, b0, b1 = max(nr0, r), min(nr1, r + h), max(nc0, c), min(nc1, c + w)
            if a0 < a1 and b0 < b1:
                data[:, a0 - r : a1 - r, b0 - c : b1 - c] = NODATA
            dst.write(data, window=Window(c, r, w, h))

    dx, dy = INV_SHIFT
    iw, ih = width + dx + INV_PAD, height + dy + INV_PAD
    inv_transform = Affine(
        PIXEL_M, 0.0, ORIGIN[0] - dx * PIXEL_M, 0.0, -PIXEL_M, ORIGIN[1] + dy * PIXEL_M
    )
    inv_profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": iw,
        "height": ih,
        "count": 1,
        "dtype": "uint8",
        "crs": crs,
        "transform": inv_transform,
        "nodata": INV_NODATA,
        "tiled": True,
        "blockxsize": BLOCK,
        "blockysize": BLOCK,
        "compress": "deflate",
        "BIGTIFF": "IF_SAFER",
    }
    fg = 0
    with rasterio.open(inventory, "w", **inv_profile) as dst:
        dst.set_band_description(1, "landslide_inventory")
        for r, c, h, w in _windows(iw, ih, GEN_WINDOW):
            rows = np.arange(r, r + h, dtype=np.int64)[:, None] - dy  # composite coords
            cols = np.arange(c, c + w, dtype=np.int64)[None, :] - dx
            inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
            in_nodata = (rows >= nr0) & (rows < nr1) & (cols >= nc0) & (cols < nc1)
            blobs = _blob_mask(rows, cols, seed) & inside
            out = np.where(blobs, INV_LANDSLIDE, INV_BACKGROUND).astype(np.uint8)
            out[~inside | in_nodata] = INV_NODATA
            fg += int(np.count_nonzero(out == INV_LANDSLIDE))
            dst.write(out, 1, window=Window(c, r, w, h))
    return {
        "composite_file_bytes": composite.stat().st_size,
        "inventory_file_bytes": inventory.stat().st_size,
        "inventory_size": [iw, ih],
        "inventory_landslide_pixels": fg,
        "nodata_box_rows_cols": [nr0, nr1, nc0, nc1],
    }


# --------------------------------------------------------------------------------------------
# Child side: one step, measured in its own process
# --------------------------------------------------------------------------------------------
def _dir_bytes(path: Path) -> tuple[int, int]:
    n = total = 0
    for p in path.rglob("*"):
        if p.is_file():
            n += 1
            total += p.stat().st_size
    return n, total


def run_step(step: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """Run one step (imports done before the clock starts); return timings and facts."""
    import resource

    import psutil
    import rasterio
    import rasterio.shutil
    from rasterio.env import get_gdal_config

    from mmls.data.bands import BAND_NAMES
    from mmls.geo.align import align_inventory, binarize_mask
    from mmls.geo.holdout import split_regions
    from mmls.geo.raster import check_composite
    from mmls.geo.tiling import tile_regions

    work = Path(cfg["workdir"])
    comp = work / "composite.tif"
    result: dict[str, Any] = {
        "rss_after_imports_mib": psutil.Process().memory_info().rss / 2**20,
        "maxrss_after_imports_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    with rasterio.Env():
        cachemax = get_gdal_config("GDAL_CACHEMAX")
    result["gdal_cachemax_bytes"] = int(cachemax) if cachemax is not None else None
    result["env_GDAL_CACHEMAX"] = os.environ.get("GDAL_CACHEMAX")
    parts: dict[str, float] = {}
    outputs: list[Path] = []  # measured and removed after the clock stops
    c0, t0 = time.process_time(), time.perf_counter()
    if step == "generate":
        result["scene"] = generate_scene(
            comp, work / "inventory.tif", cfg["width"], cfg["height"], cfg["seed"], cfg["compress"]
        )
    elif step == "copy":
        dst = work / "copy.tif"
        rasterio.shutil.copy(comp, dst, driver="GTiff", compress="deflate", predictor=3, tiled=True)
        outputs.append(dst)
    elif step == "align":
        grid = check_composite(comp, BAND_NAMES)
        report = align_inventory(grid, work / "inventory.tif", work / "aligned.tif", window_px=1024)
        parts["align_inventory"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        fg, total = binarize_mask(
            grid, work / "aligned.tif", work / "mask.tif", landslide_class=1, window_px=1024
        )
        parts["binarize_mask"] = time.perf_counter() - t1
        result["covered_fraction"] = report.covered_fraction
        result["fg_fraction"] = fg / total
    elif step == "tile":
        grid = check_composite(comp, BAND_NAMES)
        col = boundary_col(grid.width)
        holdout = split_regions(grid, grid.transform.c + col * grid.transform.a, "east")
        tiles = work / "tiles"
        if tiles.exists():
            shutil.rmtree(tiles)
        index, stats = tile_regions(
            comp,
            work / "mask.tif",
            holdout.windows,
            tiles,
            size=128,
            min_fg_ratio=0.0,
            band_names=BAND_NAMES,
            workers=cfg.get("tile_workers", 1),
        )
        index.to_csv(tiles / "index.csv", index=False)
        result["boundary_col"] = col
        result["tile_stats"] = {region: asdict(s) for region, s in stats.items()}
        outputs.append(tiles)
    else:
        raise ValueError(f"unknown step {step!r}")
    result["wall_s"] = time.perf_counter() - t0
    result["cpu_s"] = time.process_time() - c0
    for out in outputs:
        if out.is_dir():
            result["output_files"], result["output_bytes"] = _dir_bytes(out)
        else:
            result["output_files"], result["output_bytes"] = 1, out.stat().st_size
        if not cfg.get("keep_outputs"):
            shutil.rmtree(out) if out.is_dir() else out.unlink()
    result["parts_s"] = parts
    result["maxrss_self_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


# --------------------------------------------------------------------------------------------
# Parent side
# --------------------------------------------------------------------------------------------
@dataclass
class Row:
    size: str
    width: int
    height: int
    composite_gb: float
    step: str
    cachemax: str  # "inherited" or the GDAL_CACHEMAX value set for the rerun
    gdal_cachemax_mib: float | None
    wall_s: float
    cpu_s: float  # user + system CPU of the step (all threads): steadier on a shared machine
    mb_per_s: float
    peak_rss_mib: float
    rss_after_imports_mib: float
    process_wall_s: float
    details: dict[str, Any] = field(default_factory=dict)


def spawn(step: str, cfg: dict[str, Any], env: dict[str, str]) -> tuple[dict[str, Any], float]:
    """Run ``step`` in a child; return its report (with ``peak_rss_mib`` from wait4)."""
    work = Path(cfg["workdir"])
    res_path = work / f".{step}.result.json"
    log_path = work / f"{step}.log"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", step, json.dumps(cfg)]
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            cmd + ["--child-result", str(res_path)], stdout=log, stderr=subprocess.STDOUT, env=env
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(log_path.read_text()[-4000:])
        raise SystemExit(f"step {step} failed (exit {proc.returncode}); log: {log_path}")
    report = json.loads(res_path.read_text())
    res_path.unlink()
    report["peak_rss_mib"] = usage.ru_maxrss / 1024  # KiB on Linux
    report["log"] = log_path.read_text().strip()[-2000:]
    return report, elapsed


def make_row(
    size: tuple[int, int], step: str, cachemax: str, report: dict[str, Any], elapsed: float
) -> Row:
    w, h = size
    nbytes = composite_bytes(w, h)
    cm = report.get("gdal_cachemax_bytes")
    details = {
        k: v
        for k, v in report.items()
        if k
        not in {
            "wall_s",
            "cpu_s",
            "peak_rss_mib",
            "rss_after_imports_mib",
            "gdal_cachemax_bytes",
        }
    }
    return Row(
        size=f"{w}x{h}",
        width=w,
        height=h,
        composite_gb=nbytes / 1e9,
        step=step,
        cachemax=cachemax,
        gdal_cachemax_mib=cm / 2**20 if cm is not None else None,
        wall_s=report["wall_s"],
        cpu_s=report["cpu_s"],
        mb_per_s=nbytes / 1e6 / report["wall_s"],
        peak_rss_mib=report["peak_rss_mib"],
        rss_after_imports_mib=report["rss_after_imports_mib"],
        process_wall_s=elapsed,
        details=details,
    )


def measure(
    rows: list[Row], cfg: dict[str, Any], step: str, label: str, env: dict[str, str]
) -> Row:
    """Run ``step`` in a child with ``env``, append its row to ``rows`` and print a line."""
    report, elapsed = spawn(step, cfg, env)
    row = make_row((cfg["width"], cfg["height"]), step, label, report, elapsed)
    rows.append(row)
    print(
        f"   {step} [{label}]: {row.wall_s:.1f} s, peak RSS {row.peak_rss_mib:.0f} MiB", flush=True
    )
    return row


def format_table(rows: list[Row]) -> str:
    head = (
        f"{'size (px)':>13} {'comp GB':>8} {'GDAL cache':>11} {'step':>8} {'wall s':>8} "
        f"{'cpu s':>8} {'MB/s':>8} {'peak RSS MiB':>13} {'RSS@import':>10}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        cache = f"{r.gdal_cachemax_mib:.0f} MiB" if r.gdal_cachemax_mib is not None else "?"
        lines.append(
            f"{r.size:>13} {r.composite_gb:>8.2f} {cache:>11} {r.step:>8} {r.wall_s:>8.1f} "
            f"{r.cpu_s:>8.1f} {r.mb_per_s:>8.1f} {r.peak_rss_mib:>13.0f} "
            f"{r.rss_after_imports_mib:>10.0f}"
        )
    return "\n".join(lines)


def ratios(rows: list[Row]) -> list[dict[str, Any]]:
    """tile (and align) throughput / copy throughput, per size and cache setting."""
    out = []
    for size in dict.fromkeys(r.size for r in rows):
        for cache in dict.fromkeys(r.cachemax for r in rows if r.size == size):
            by = {r.step: r for r in rows if r.size == size and r.cachemax == cache}
            if "copy" not in by:
                continue
            entry: dict[str, Any] = {"size": size, "cachemax": cache}
            for step in ("align", "tile"):
                if step in by:
                    entry[f"{step}_over_copy"] = by[step].mb_per_s / by["copy"].mb_per_s
                    entry[f"{step}_over_copy_cpu"] = by["copy"].cpu_s / by[step].cpu_s
            out.append(entry)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="4096x2048,16384x12288", help="WxH[,WxH...]")
    parser.add_argument("--workdir", type=Path, default=None, help="default /work/bench_tmp")
    parser.add_argument(
        "--keep", action="store_true", help="keep the generated rasters and the steps' outputs"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--tile-workers", type=int, default=2, help="tile processes (params tile.workers)"
    )
    parser.add_argument(
        "--compress", choices=("none", "deflate"), default="none", help="composite compression"
    )
    parser.add_argument("--steps", default=",".join(STEPS), help="subset of copy,align,tile")
    parser.add_argument("--rss-limit-mb", type=float, default=1024.0)
    parser.add_argument(
        "--rerun-cachemax",
        default="256",
        help="GDAL_CACHEMAX for re-measuring steps over --rss-limit-mb ('' = no rerun)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("child_cfg", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        result = run_step(args.child, json.loads(args.child_cfg))
        args.child_result.write_text(json.dumps(result))
        return

    sizes = [parse_size(s) for s in args.sizes.split(",") if s]
    steps = [s for s in args.steps.split(",") if s]
    if unknown := set(steps) - set(STEPS):
        parser.error(f"unknown steps {sorted(unknown)}")
    if "tile" in steps and "align" not in steps:
        parser.error("the tile step needs the mask written by the align step")
    steps = [s for s in STEPS if s in steps]
    if args.workdir is not None:
        root = args.workdir
    elif Path("/work").is_dir():
        root = Path("/work/bench_tmp")
    else:
        root = Path(tempfile.mkdtemp(prefix="bench_data_chain."))
    env = dict(os.environ)
    rows: list[Row] = []
    generation: list[dict[str, Any]] = []
    for w, h in sizes:
        work = root / f"{w}x{h}"
        work.mkdir(parents=True, exist_ok=True)
        cfg = {"workdir": str(work), "width": w, "height": h, "seed": args.seed}
        cfg.update(compress=args.compress, keep_outputs=args.keep, tile_workers=args.tile_workers)
        print(f"== {w}x{h}: {composite_bytes(w, h) / 1e9:.2f} GB uncompressed, in {work}")
        try:
            gen, _ = spawn("generate", cfg, env)
            generation.append(
                {
                    "size": f"{w}x{h}",
                    "wall_s": gen["wall_s"],
                    "peak_rss_mib": gen["peak_rss_mib"],
                    **gen["scene"],
                }
            )
            print(
                f"   generate: {gen['wall_s']:.1f} s, peak RSS {gen['peak_rss_mib']:.0f} MiB, "
                f"composite file {gen['scene']['composite_file_bytes'] / 1e9:.2f} GB"
            )
            rerun = f"GDAL_CACHEMAX={args.rerun_cachemax}"
            env_rerun = {**env, "GDAL_CACHEMAX": args.rerun_cachemax}

            over = False
            for step in steps:
                row = measure(rows, cfg, step, "inherited", env)
                if args.rerun_cachemax and row.peak_rss_mib > args.rss_limit_mb:
                    over = True
                    measure(rows, cfg, step, rerun, env_rerun)
            copied = any(
                r.size == f"{w}x{h}" and r.step == "copy" and r.cachemax == rerun for r in rows
            )
            if over and "copy" in steps and not copied:  # the baseline under the same cache limit
                measure(rows, cfg, "copy", rerun, env_rerun)
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
    if not args.keep and args.workdir is None and not any(root.iterdir()):
        root.rmdir()

    rows.sort(key=lambda r: (r.width * r.height, r.cachemax != "inherited", STEPS.index(r.step)))
    print()
    print(format_table(rows))
    rat = ratios(rows)
    for entry in rat:
        text = ", ".join(
            f"{step}/copy {entry[f'{step}_over_copy']:.2f} (by CPU time "
            f"{entry[f'{step}_over_copy_cpu']:.2f})"
            for step in ("align", "tile")
            if f"{step}_over_copy" in entry
        )
        print(f"throughput vs GDAL copy, {entry['size']} [{entry['cachemax']}]: {text}")
    doc = {
        "command": [sys.executable, *sys.argv],
        "host": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "env_GDAL_CACHEMAX": os.environ.get("GDAL_CACHEMAX"),
        "composite_compress": args.compress,
        "generation": generation,
        "rows": [asdict(r) for r in rows],
        "throughput_ratios": rat,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
