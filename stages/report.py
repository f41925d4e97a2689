"""DVC stage report: reports/report.md (+ figures) beside the paper's Tables 1-4 and Figs. 2,
5-8, with block-bootstrap CIs (metrics/bootstrap.json) and the leakage audit
(metrics/leakage.json). Reads metrics files only (plus splits, tiles and predictions)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmls.io import atomic_dir, atomic_path, load_params, run_stage, write_json  # noqa: E402
from mmls.report import ReportConfig, build_report, load_reference  # noqa: E402

REFERENCE = Path("reference/mmlsv2_tables.json")
OUT = Path("reports")


def main() -> None:
    cfg = ReportConfig.from_params(load_params())
    reference = load_reference(REFERENCE)
    with atomic_dir(OUT) as tmp:
        report = build_report(Path("."), cfg, reference, tmp / "figures")
        with atomic_path(tmp / "report.md") as md:
            md.write_text(report.markdown + "\n")
    write_json("metrics/bootstrap.json", report.stats)
    leakage = report.leakage or {"skipped": "data/splits.csv not found"}
    write_json("metrics/leakage.json", leakage)
    print(f"report: -> {OUT / 'report.md'} ({len(report.figures)} figures)")


if __name__ == "__main__":
    run_stage(main)
