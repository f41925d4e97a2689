"""Every metric of the default pipeline at a git revision beside the working tree's, file by file.

A refactor must not change results: this prints, model by model and split by split, each
non-timing metric of ``--before`` (a git revision, read with ``git show``) and of the working
tree, and exits 1 if any differs. Files moved between layouts; the table of files compared is
:data:`PAIRS` (before path, after path). Timing keys (latency, training time, throughput) are
listed apart, as they move between runs.

    python -m benchmarks.compare_metrics --before a82ab34 [--after be54551] [--layout-before flat]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("unet", "unetplusplus", "pspnet", "deeplabv3", "deeplabv3plus", "segformer")
SPLITS = ("test", "isolated_test")
BAND_SETS = ("rgb", "rgb_dem", "rgb_dem_slope", "rgb_dem_slope_thermal", "all")
TIMING = ("latency", "seconds", "time", "mpx_per_s", "device")


def pairs(before_layout: str) -> list[tuple[str, str]]:
    """(path at --before, path in the working tree) of every compared metrics file."""
    flat = before_layout == "flat"
    out = [("metrics/table1.json", "metrics/table1.json")]
    out += [("metrics/leakage.json", "metrics/leakage.json")]
    out += [("metrics/tiles.json", "metrics/tiles.json")]
    for m in MODELS:
        for s in SPLITS:
            old = f"metrics/eval/{s}/{m}.json" if flat else f"metrics/eval/{m}/seed42/{s}.json"
            out.append((old, f"metrics/eval/{m}/seed42/{s}.json"))
    for b in BAND_SETS:
        old = f"metrics/ablation/{b}.json" if flat else f"metrics/ablation/{b}/seed42.json"
        out.append((old, f"metrics/ablation/{b}/seed42.json"))
    # the old `predict` stage's scores; since the model bundles, map_score@synthetic_isolated's
    out.append(("metrics/predict.json", "metrics/map_scores/synthetic_isolated.json"))
    return out


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def at_revision(rev: str, path: str) -> dict[str, Any] | None:
    shown = subprocess.run(
        ["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, text=True
    )
    return json.loads(shown.stdout) if shown.returncode == 0 else None


def in_tree(path: str) -> dict[str, Any] | None:
    file = ROOT / path
    return json.loads(file.read_text()) if file.is_file() else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="git revision of the earlier run")
    parser.add_argument("--after", help="git revision of the later run (default: working tree)")
    parser.add_argument("--layout-before", choices=("flat", "seeded"), default="flat")
    args = parser.parse_args()
    differing = 0
    print("| file (before -> now) | metrics compared | identical | timing keys (not compared) |")
    print("|---|---|---|---|")
    for old_path, new_path in pairs(args.layout_before):
        old = at_revision(args.before, old_path)
        new = at_revision(args.after, new_path) if args.after else in_tree(new_path)
        if old is None or new is None:
            print(f"| {old_path} -> {new_path} | missing on one side | - | - |")
            differing += 1
            continue
        a, b = flatten(old), flatten(new)
        timing = sorted(k for k in a.keys() | b.keys() if any(t in k for t in TIMING))
        keys = sorted((a.keys() & b.keys()) - set(timing))
        diff = [k for k in keys if a[k] != b[k]]
        differing += len(diff)
        label = "yes" if not diff else "NO: " + ", ".join(f"{k} {a[k]} -> {b[k]}" for k in diff)
        only = sorted((a.keys() ^ b.keys()) - set(timing))
        extra = f" (only on one side: {', '.join(only)})" if only else ""
        print(f"| {old_path} -> {new_path} | {len(keys)}{extra} | {label} | {len(timing)} |")
    print(f"\n{differing} differing value(s)")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
