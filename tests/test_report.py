"""The report renders from a small fixture of metrics files (and from nothing at all)."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml
from rasterio.transform import from_origin

from mmls.io import write_json
from mmls.metrics import Confusion, metrics_record
from mmls.report import (
    DPI,
    PAPER_BAND_SETS,
    PAPER_MODELS,
    ReportConfig,
    build_report,
    cell,
    load_reference,
    qualitative_figsize,
)
from mmls.stats import write_patch_outputs

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "reference" / "mmlsv2_tables.json"
S = 16  # tile size of the fixture (small: fast)
MODELS = ("unet", "pspnet")  # the other four stay "not run"
BAND_SETS = ("rgb", "all")


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def section(md: str, heading: str) -> str:
    """The Markdown from ``heading`` to the next level-2 heading."""
    start = md.index(heading)
    end = md.find("\n## ", start + 1)
    return md[start : end if end >= 0 else None]


def _write_tile(path: Path, data: np.ndarray, nodata: float | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=S,
        height=S,
        count=data.shape[0],
        dtype=data.dtype,
        nodata=nodata,
        transform=from_origin(1000, 1000, 1, 1),
    ) as dst:
        dst.write(data)


def _noisy(truth: np.ndarray, flip: float, rng: np.random.Generator) -> np.ndarray:
    return np.where(rng.random(truth.shape) < flip, 1 - truth, truth).astype(np.uint8)


def make_project(root: Path) -> ReportConfig:
    """Splits, tiles, metrics, per-patch counts and predictions for 2 models and 2 band sets."""
    rng = np.random.default_rng(0)
    rows = []
    for region, x0, ncol in (("base", 0, 8), ("isolated", 8 * S, 4)):
        for col in range(ncol):
            for row in range(6):
                bc, br = col // 2, row // 2
                split = ("train", "test", "train", "val")[(bc + br) % 4]
                rows.append(
                    dict(
                        region=region,
                        col=col,
                        row=row,
                        x_off=x0 + col * S,
                        y_off=row * S,
                        block_col=bc,
                        block_row=br,
                        split=split if region == "base" else "isolated_test",
                    )
                )
    splits = pd.DataFrame(rows)
    truths = {}
    for r in splits.itertuples():
        yy, xx = np.mgrid[:S, :S]
        cx, cy, rad = rng.uniform(0, S, 3)
        truth = (((xx - cx) ** 2 + (yy - cy) ** 2) < (rad + 2) ** 2).astype(np.uint8)
        truths[(r.region, r.col, r.row)] = truth
        if r.split in ("test", "isolated_test"):
            image = rng.random((7, S, S)).astype(np.float32)
            image[:, 0, 0] = -9999.0
            name = f"c{r.col}_r{r.row}.tif"
            _write_tile(root / "data/tiles" / r.region / "images" / name, image, -9999.0)
            _write_tile(root / "data/tiles" / r.region / "masks" / name, truth[None])
    splits["fg_ratio"] = [
        truths[k].mean() for k in zip(splits.region, splits.col, splits.row, strict=True)
    ]
    (root / "data").mkdir(parents=True, exist_ok=True)
    splits.to_csv(root / "data/splits.csv", index=False)

    table1 = {
        s: {
            "n_images": int((splits.split == s).sum()),
            "avg_fg_pct": 30.0,
            "std_fg_pct": 20.0,
            "min_fg_pct": 0.1,
            "max_fg_pct": 90.0,
        }
        for s in ("train", "val", "test", "isolated_test")
    }
    write_json(root / "metrics/table1.json", table1)
    pd.DataFrame(
        {
            "interval": ["0-50%", "50-100%"],
            "interval_hi_pct": [50, 100],
            "train": [60, 40],
            "val": [50, 50],
            "test": [55, 45],
            "isolated_test": [80, 20],
        }
    ).to_csv(root / "metrics/fg_intervals.csv", index=False)

    def score(split: str, flip: float, metrics_dir: Path, stem: str, pred_path: Path) -> None:
        idx = splits.loc[splits.split == split, ["region", "col", "row"]].reset_index(drop=True)
        truth = np.stack([truths[k] for k in idx.itertuples(index=False, name=None)])
        pred = _noisy(truth, flip, rng)
        # what the eval stage does: one call writes the counts file and the masks
        table = write_patch_outputs(
            pred_path.with_suffix(".patches.csv"), pred_path, idx, splits, pred, truth
        )
        conf = Confusion(*(int(table[c].sum()) for c in ("tp", "fp", "fn", "tn")))
        write_json(
            metrics_dir / f"{stem}.json",
            metrics_record(conf, len(idx), 0.01 * (1 + flip), "cpu (2 threads)", 0.01),
        )

    for m, flip in zip(MODELS, (0.02, 0.2), strict=True):
        for split in ("test", "isolated_test"):
            score(
                split,
                flip,
                root / "metrics/eval" / split,
                m,
                root / "predictions" / split / f"{m}.npz",
            )
        hist = pd.DataFrame(
            {
                "epoch": [1, 2, 3],
                "train_loss": [0.7, 0.5, 0.4],
                "val_loss": [0.8, 0.6, 0.5],
                "val_miou": [0.5, 0.6, 0.7],
                "val_iou_fg": [0.3, 0.4, 0.5],
                "lr": [1e-3] * 3,
                "seconds": [1.0] * 3,
            }
        )
        (root / "models" / m).mkdir(parents=True)
        hist.to_csv(root / "models" / m / "history.csv", index=False)
    for b, flip in zip(BAND_SETS, (0.3, 0.02), strict=True):
        score(
            "test", flip, root / "metrics/ablation", b, root / "predictions/ablation" / f"{b}.npz"
        )
    for k, value in enumerate((0.80, 0.84)):
        write_json(
            root / "metrics/eval/test" / f"unet.seed{k}.json",
            {"miou": value, "iou_fg": value - 0.1},
        )
    return ReportConfig(
        tile_size=S, n_resamples=300, seed=0, n_examples=3, scene="data/synthetic/composite.tif"
    )


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    cfg = make_project(root)
    out = root / "reports" / "figures"
    report = build_report(root, cfg, load_reference(REFERENCE), out)
    return root, cfg, report, out


def test_cell_is_measured_over_paper_with_difference():
    assert cell(0.812, 0.814, "miou") == "0.812 / 0.814 (-0.002)"
    assert cell(None, 0.814, "miou") == "– / 0.814"
    assert cell(140, 133, "n_images") == "140 / 133 (+7)"


def test_report_has_every_table_with_paper_numbers_and_not_run_rows(rendered):
    _, _, report, _ = rendered
    md = report.markdown
    for title in ("Table 1", "Table 2", "Table 3", "Table 4", "Leakage audit", "Uncertainty"):
        assert f"## {title}" in md
    ref = json.loads(REFERENCE.read_text())
    assert "| U-Net | measured |" in md and "| SegFormer | not run |" in md
    assert "| RGB-DEM | not run |" in md and "| RGB | measured |" in md
    assert f"/ {ref['table2']['rows']['segformer']['miou']:.3f}" in md
    assert "SYNTHETIC" in md
    assert "MISMATCH" not in md and "| ok |" in md
    assert "across training seeds" in md and "0.820 ± 0.028" in md
    # U-Net (2 % flips) vs PSPNet (20 % flips): clearly distinguishable, paired
    diffs = report.stats["model_differences"]["test"]
    assert len(diffs) == 1 and diffs[0]["miou"]["excludes_zero"] and diffs[0]["miou"]["hi"] < 0
    assert "**yes**" in md
    band = report.stats["band_set_differences"][0]
    assert (band["a"], band["b"]) == ("rgb", "all") and band["miou"]["lo"] > 0
    for split in ("test", "isolated_test"):
        iv = report.stats["intervals"][split]["unet"]["miou"]
        assert iv["lo"] <= iv["estimate"] <= iv["hi"]
    for name in report.figures:
        assert f"](figures/{name})" in md


def test_figures_are_pngs_of_the_expected_size(rendered):
    _, cfg, report, out = rendered
    expected = {  # inches
        "fig2_fg_intervals.png": (8, 4),
        "fig6_latency_miou.png": (10, 4),
        "ci_miou.png": (7, 4),
        "training_curves.png": (10, 4),
        "fig5_qualitative_test.png": qualitative_figsize(cfg.n_examples, 3 + len(MODELS)),
        "fig7_qualitative_isolated.png": qualitative_figsize(cfg.n_examples, 3 + len(MODELS)),
        "fig8_band_sets.png": qualitative_figsize(cfg.n_examples, 3 + len(BAND_SETS)),
    }
    assert sorted(report.figures) == sorted(expected)
    for name, (w, h) in expected.items():
        path = out / name
        assert path.stat().st_size > 2000
        size = (round(w * DPI), round(h * DPI))
        assert png_size(path) == size, name


def test_leakage_of_the_fixture(rendered):
    _, _, report, _ = rendered
    leak = report.leakage
    assert leak["splits"]["test"]["n_overlapping"] == 0
    assert leak["splits"]["test"]["n_touching"] > 0  # blocks are adjacent to training blocks
    assert leak["splits"]["isolated_test"]["n_touching"] > 0  # across the region boundary
    assert "isolated-test patches touch a training patch" in report.markdown


def test_report_renders_from_nothing(tmp_path):
    report = build_report(tmp_path, ReportConfig(), load_reference(REFERENCE), tmp_path / "f")
    md = report.markdown
    for title, n in (
        ("## Table 1", 4),
        ("## Table 2", len(PAPER_MODELS)),
        ("## Table 3", len(PAPER_MODELS)),
        ("## Table 4", len(PAPER_BAND_SETS)),
    ):
        assert section(md, title).count("| not run |") == n, title
    for skipped in (
        "Fig. 2 skipped",
        "Fig. 5 skipped",
        "Fig. 7 skipped",
        "Fig. 8 skipped",
        "Training curves skipped",
    ):
        assert skipped in md
    assert report.leakage is None and report.figures == ["fig6_latency_miou.png"]


def test_report_flags_counts_that_do_not_add_up(tmp_path):
    cfg = make_project(tmp_path)
    path = tmp_path / "metrics/eval/test/unet.json"
    record = json.loads(path.read_text())
    record["tp"] += 1
    path.write_text(json.dumps(record))
    report = build_report(tmp_path, cfg, load_reference(REFERENCE), tmp_path / "f")
    assert "MISMATCH" in report.markdown


def test_stage_script_writes_report_and_json(tmp_path):
    make_project(tmp_path)
    (tmp_path / "reference").mkdir()
    shutil.copy(REFERENCE, tmp_path / "reference" / REFERENCE.name)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["tile"]["size"] = S
    params["report"] = {"n_resamples": 200, "n_examples": 2}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = subprocess.run(
        [sys.executable, str(ROOT / "stages" / "report.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    md = (tmp_path / "reports/report.md").read_text()
    assert "## Table 4" in md
    assert (tmp_path / "reports/figures/fig5_qualitative_test.png").is_file()
    assert json.loads((tmp_path / "metrics/leakage.json").read_text())["tile_size"] == S
    boot = json.loads((tmp_path / "metrics/bootstrap.json").read_text())
    assert boot["config"]["n_resamples"] == 200
    assert not [p for p in tmp_path.rglob("*.tmp")]

    params["report"] = {"bogus": 1}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    before = (tmp_path / "reports/report.md").read_text()
    result = subprocess.run(
        [sys.executable, str(ROOT / "stages" / "report.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2 and "bogus" in result.stderr
    assert (tmp_path / "reports/report.md").read_text() == before
