"""The report renders from a small fixture project (and from nothing at all)."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mmls.core import paths
from mmls.core.io import write_json
from mmls.metrics.bootstrap import StatisticsConfig
from mmls.report.figures import DPI, qualitative_figsize
from mmls.report.markdown import (
    ReportConfig,
    Scope,
    build_report,
    cell,
    comparison_table,
    cv_section,
    load_reference,
)
from mmls.report.results import collect
from mmls.report.tables import build_tables
from tests.configs import PARAMS, ROOT, config
from tests.projects import BAND_SETS, MODELS, SEEDS, make_project

REFERENCE = ROOT / "reference" / "mmlsv2_tables.json"
ALL_MODELS = tuple(PARAMS["models"])  # four of them are "not run" in the fixture
ALL_BANDS = tuple(PARAMS["band_sets"])
N_EXAMPLES = 3


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def section(md: str, heading: str) -> str:
    """The Markdown from ``heading`` to the next level-2 heading."""
    start = md.index(heading)
    end = md.find("\n## ", start + 1)
    return md[start : end if end >= 0 else None]


def scope(seeds=SEEDS) -> Scope:
    return Scope(
        ALL_MODELS,
        ALL_BANDS,
        "unet",
        seeds,
        ["test", "isolated_test"],
        "data/synthetic/composite.tif -> data/tiles",
    )


def render(root: Path, seeds=SEEDS):
    cwd = Path.cwd()
    os.chdir(root)
    try:
        stats = config("statistics", StatisticsConfig, n_resamples=300)
        groups = pd.read_csv(paths.STORE / "patches.csv")
        t = build_tables(MODELS, BAND_SETS, seeds, ["test", "isolated_test"], stats, groups)
        for folder, rows in t.rows.items():
            for name, row in rows.items():
                write_json(folder / f"{name}.json", row)
        write_json(paths.STATISTICS, t.statistics)
        res = collect(ALL_MODELS, ALL_BANDS, seeds, ["test", "isolated_test"])
        cfg = config("report", ReportConfig, n_examples=N_EXAMPLES)
        return build_report(res, scope(seeds), cfg, load_reference(REFERENCE), root / "figures")
    finally:
        os.chdir(cwd)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    make_project(root)
    return root, render(root)


def test_cell_is_measured_over_paper_with_difference():
    assert cell(0.812, 0.814, "miou") == "0.812 / 0.814 (-0.002)"
    assert cell(None, 0.814, "miou") == "– / 0.814"
    assert cell(140, 133, "n_images") == "140 / 133 (+7)"
    assert cell(0.5, None, "miou") == "0.500"


def test_a_split_absent_from_the_data_is_not_called_measured():
    measured = {"train": {"n_images": 465}, "test": {"n_images": 0}}
    md = comparison_table(["train", "test", "val"], ["n_images"], measured, {}, "Split", {})
    assert "| train | measured |" in md
    assert "| test | none in the data |" in md and "| val | not run |" in md


def test_report_has_every_table_with_paper_numbers_and_not_run_rows(rendered):
    _, report = rendered
    md = report.markdown
    for title in ("Table 1", "Table 2", "Table 3", "Table 4", "Leakage audit", "Uncertainty"):
        assert f"## {title}" in md
    ref = json.loads(REFERENCE.read_text())
    assert "| U-Net | seeds: 2 |" in md and "| SegFormer | not run |" in md
    assert "| RGB-DEM | not run |" in md and "| RGB | seeds: 2 |" in md
    assert f"/ {ref['table2']['rows']['segformer']['miou']:.3f}" in md
    assert "SYNTHETIC" in md and "±" in md  # two seeds: mean ± sd in the cells
    assert "**yes**" in md  # U-Net vs PSPNet is clearly distinguishable
    assert "isolated-test patches touch a training patch" in md
    for name in report.figures:
        assert f"](figures/{name})" in md


def test_one_seed_says_seed_variance_is_not_measured(tmp_path):
    make_project(tmp_path)
    md = render(tmp_path, seeds=SEEDS[:1]).markdown
    assert "seed variance is not measured" in md and "| U-Net | seeds: 1 |" in md


def test_figures_are_pngs_of_the_expected_size(rendered):
    root, report = rendered
    expected = {  # inches
        "fig2_fg_intervals.png": (8, 4),
        "fig6_latency_miou.png": (10, 4),
        "ci_miou.png": (7, 4),
        "training_curves.png": (10, 4),
        "fig5_qualitative_test.png": qualitative_figsize(N_EXAMPLES, 3 + len(MODELS)),
        "fig7_qualitative_isolated_test.png": qualitative_figsize(N_EXAMPLES, 3 + len(MODELS)),
        "fig8_band_sets.png": qualitative_figsize(N_EXAMPLES, 3 + len(BAND_SETS)),
    }
    assert sorted(report.figures) == sorted(expected)
    for name, (w, h) in expected.items():
        path = root / "figures" / name
        assert path.stat().st_size > 2000
        assert png_size(path) == (round(w * DPI), round(h * DPI)), name


def test_report_renders_from_nothing(tmp_path):
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        res = collect(ALL_MODELS, ALL_BANDS, SEEDS, ["test", "isolated_test"])
        cfg = config("report", ReportConfig)
        report = build_report(res, scope(), cfg, load_reference(REFERENCE), tmp_path / "f")
    finally:
        os.chdir(cwd)
    md = report.markdown
    for title, n in (
        ("## Table 1", 4),
        ("## Table 2", len(ALL_MODELS)),
        ("## Table 3", len(ALL_MODELS)),
        ("## Table 4", len(ALL_BANDS)),
    ):
        assert section(md, title).count("| not run |") == n, title
    for skipped in (
        "Fig. 5 skipped",
        "Fig. 7 skipped",
        "Fig. 8 skipped",
        "Uncertainty skipped",
        "Training curves skipped",
        "Leakage audit\n\n*Skipped",
    ):
        assert skipped.replace("\\n", "\n") in md, skipped
    assert report.figures == []


def test_stage_scripts_write_tables_and_report(tmp_path):
    make_project(tmp_path)
    (tmp_path / "reference").mkdir()
    shutil.copy(REFERENCE, tmp_path / "reference" / REFERENCE.name)
    params = {**PARAMS, "seeds": list(SEEDS)}
    params["models"] = {m: PARAMS["models"][m] for m in MODELS}
    params["band_sets"] = {b: PARAMS["band_sets"][b] for b in BAND_SETS}
    params["statistics"] = {**PARAMS["statistics"], "n_resamples": 200}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))

    def run(stage: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, str(ROOT / "stages" / f"{stage}.py")]
        return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)

    for stage in ("tables", "report"):
        result = run(stage)
        assert result.returncode == 0, result.stderr
    md = (tmp_path / "reports/report.md").read_text()
    assert "## Table 4" in md and (tmp_path / "reports/figures/fig5_qualitative_test.png").is_file()
    stats = json.loads((tmp_path / paths.STATISTICS).read_text())
    assert stats["config"]["n_resamples"] == 200
    assert sorted(p.name for p in (tmp_path / "metrics/table2").iterdir()) == [
        f"{m}.json" for m in sorted(MODELS)
    ]
    assert not [p for p in tmp_path.rglob("*.tmp")]

    params["report"] = {**PARAMS["report"], "bogus": 1}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    before = md
    result = run("report")
    assert result.returncode == 2 and "params.yaml:report.bogus: unknown key" in result.stderr
    assert (tmp_path / "reports/report.md").read_text() == before


def _cv_row(protocol: str, miou: float, **extra) -> dict:
    return {
        "protocol": protocol,
        "protocol_definition": f"{protocol} folds",
        "baseline": "unet",
        "n_folds": 5,
        "seeds": "42",
        "n_seeds": 1,
        "miou_fold_mean": miou,
        "miou_fold_sd": 0.01,
        "miou": miou,
        "miou_ci_lo": miou - 0.02,
        "miou_ci_hi": miou + 0.02,
        "iou_fg": miou - 0.05,
        "iou_fg_ci_lo": miou - 0.07,
        "iou_fg_ci_hi": miou - 0.03,
        "train_time_h": 0.4,
        "latency_s": 0.03,
        **extra,
    }


def test_cv_section_names_each_protocol_and_compares_like_with_like():
    diff = {"miou_minus_unet": 0.03, "miou_minus_unet_ci_lo": 0.01, "miou_minus_unet_ci_hi": 0.05}
    vs_best = {
        "best": "fusion_context",
        "miou_minus_fusion_context": -0.01,
        "miou_minus_fusion_context_ci_lo": -0.02,
        "miou_minus_fusion_context_ci_hi": 0.004,
    }
    rows = {
        "unet": _cv_row("blocks", 0.78),
        "unet_random": _cv_row("random", 0.81, **diff, **vs_best),
    }
    text = cv_section(rows, {})
    assert "`blocks`: blocks folds; `random`: random folds" in text
    line = next(row for row in text.splitlines() if row.startswith("| unet_random"))
    assert "| random |" in line and "+0.030 [+0.010, +0.050] **yes**" in line
    assert "-0.010 [-0.020, +0.004] vs `fusion_context`" in line  # CI holds 0: no "yes"
