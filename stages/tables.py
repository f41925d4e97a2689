"""DVC stage tables: Tables 2-4 (mean and sd over seeds, block-bootstrap CIs) and the
paired differences between models and band sets (metrics/statistics.json)."""

from mmls.core import paths
from mmls.core.config import entries, load_params, read_seeds, section
from mmls.core.io import atomic_dir, run_stage, write_json
from mmls.data.store import load_store
from mmls.evaluation.config import EvalConfig
from mmls.metrics.bootstrap import StatisticsConfig
from mmls.report.tables import build_tables


def main() -> None:
    params = load_params()
    tables = build_tables(
        entries(params, "models"),
        entries(params, "band_sets"),
        read_seeds(params),
        section(params, "eval", EvalConfig).splits,
        section(params, "statistics", StatisticsConfig),
        load_store(paths.STORE).patches,
    )
    for folder, rows in tables.rows.items():
        with atomic_dir(folder) as tmp:
            for name, row in rows.items():
                write_json(tmp / f"{name}.json", row)
    write_json(paths.STATISTICS, tables.statistics)
    print("tables: " + ", ".join(f"{f} ({len(r)} rows)" for f, r in tables.rows.items()))


if __name__ == "__main__":
    run_stage(main)
