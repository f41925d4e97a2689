"""Ingest and scene rebuild of a released MMLSv2 folder: wall time and peak RSS of each step.

Each step runs in its own subprocess (peak RSS from wait4, so one step's memory does not hide
another's): ingest of the release (``mmlsv2-challenge`` preset), then the rebuild of the scene
from the ingested tiles. Default release: ../shared/data/mmlsv2-release (531 tiles).

    python -m benchmarks.bench_release [--release PATH] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "data" / "mmlsv2-release"


def child(step: str, release: str, work: str) -> None:
    """One step, timed inside the process (imports excluded)."""
    import warnings

    from mmls.data.bands import BAND_NAMES
    from mmls.data.ingest import ingest_release
    from mmls.data.releases import IngestConfig
    from mmls.data.store import read_splits
    from mmls.geo.rebuild import rebuild_scene

    warnings.simplefilter("ignore")
    w = Path(work)
    t0 = time.perf_counter()
    if step == "ingest":
        cfg = IngestConfig(layout="mmlsv2-challenge", root=release, folders={}, regions={})
        table, _ = ingest_release(cfg, w / "tiles", bands=BAND_NAMES, size=128)
        table.to_csv(w / "splits.csv", index=False)
        n = len(table)
    else:
        table = read_splits(w / "splits.csv")
        grid = rebuild_scene(
            table, w / "tiles", w / "composite.tif", w / "inventory.tif", bands=BAND_NAMES, size=128
        )
        n = grid.width * grid.height
    print(json.dumps({"step": step, "seconds": time.perf_counter() - t0, "n": n}))


def run_step(step: str, release: Path, work: Path) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.bench_release",
        "--child",
        step,
        str(release),
        str(work),
    ]
    env = {**os.environ, "GDAL_CACHEMAX": "256"}
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, env=env)
    _, _, usage = os.wait4(proc.pid, 0)
    rec = json.loads(proc.stdout.read().strip().splitlines()[-1])
    rec["peak_rss_mib"] = round(usage.ru_maxrss / 1024, 1)
    return rec


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:5])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", type=Path, default=DEFAULT)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    for r in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            for step in ("ingest", "rebuild"):
                rec = run_step(step, args.release, Path(tmp))
                what = "tiles" if step == "ingest" else "scene pixels"
                print(
                    f"repeat {r}: {step}: {rec['seconds']:.1f} s, peak RSS {rec['peak_rss_mib']} "
                    f"MiB ({rec['n']} {what})",
                    flush=True,
                )


if __name__ == "__main__":
    main()
