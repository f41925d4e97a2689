"""DVC stage report: reports/report.md (+ figures) beside the paper's Tables 1-4 and Figs. 2,
5-8, with the statistics stage's CIs and the split's leakage audit."""

from mmls.core import paths
from mmls.core.config import entries, load_params, read_seeds, section, value
from mmls.core.io import atomic_dir, atomic_path, run_stage
from mmls.data.store import DatasetConfig
from mmls.evaluation.config import EvalConfig
from mmls.geo.raster import SceneConfig
from mmls.report.markdown import ReportConfig, Scope, build_report, load_reference
from mmls.report.results import collect


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
    with atomic_dir(paths.REPORTS) as tmp:
        report = build_report(results, scope, cfg, load_reference(paths.REFERENCE), tmp / "figures")
        with atomic_path(tmp / "report.md") as md:
            md.write_text(report.markdown + "\n")
    print(f"report: -> {paths.REPORTS / 'report.md'} ({len(report.figures)} figures)")


if __name__ == "__main__":
    run_stage(main)
