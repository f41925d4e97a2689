"""DVC stage report: reports/report.md (+ figures) beside the paper's Tables 1-4 and Figs. 2,
5-8, with the statistics stage's CIs and the split's leakage audit."""

from mmls import layout
from mmls.config import entries, load_params, read_seeds, section, value
from mmls.evaluation import EvalConfig
from mmls.io import atomic_dir, atomic_path, run_stage
from mmls.raster import SceneConfig
from mmls.report import ReportConfig, Scope, build_report, load_reference
from mmls.results import collect
from mmls.store import DatasetConfig


def main() -> None:
    params = load_params()
    dataset = section(params, "dataset", DatasetConfig)
    scope = Scope(
        models=entries(params, "models"),
        band_sets=entries(params, "band_sets"),
        model=value(params, "model", str),
        seeds=read_seeds(params),
        splits=section(params, "eval", EvalConfig).splits,
        data=f"{section(params, 'scene', SceneConfig).composite} -> {dataset.tiles}",
    )
    results = collect(scope.models, scope.band_sets, scope.seeds, scope.splits)
    cfg = section(params, "report", ReportConfig)
    with atomic_dir(layout.REPORTS) as tmp:
        report = build_report(
            results, scope, cfg, load_reference(layout.REFERENCE), tmp / "figures"
        )
        with atomic_path(tmp / "report.md") as md:
            md.write_text(report.markdown + "\n")
    print(f"report: -> {layout.REPORTS / 'report.md'} ({len(report.figures)} figures)")


if __name__ == "__main__":
    run_stage(main)
