"""DVC stage tables: Tables 2-4 (mean and sd over seeds, block-bootstrap CIs) and the
paired differences between models and band sets (metrics/statistics.json)."""

from mmls import layout
from mmls.config import entries, load_params, read_seeds, section
from mmls.evaluation import EvalConfig
from mmls.io import atomic_dir, run_stage, write_json
from mmls.store import load_store
from mmls.tables import StatisticsConfig, build_tables


def main() -> None:
    params = load_params()
    tables = build_tables(
        entries(params, "models"),
        entries(params, "band_sets"),
        read_seeds(params),
        section(params, "eval", EvalConfig).splits,
        section(params, "statistics", StatisticsConfig),
        load_store(layout.STORE).patches,
    )
    for folder, rows in tables.rows.items():
        with atomic_dir(folder) as tmp:
            for name, row in rows.items():
                write_json(tmp / f"{name}.json", row)
    write_json(layout.STATISTICS, tables.statistics)
    print("tables: " + ", ".join(f"{f} ({len(r)} rows)" for f, r in tables.rows.items()))


if __name__ == "__main__":
    run_stage(main)
