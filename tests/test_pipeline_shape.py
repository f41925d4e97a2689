"""dvc.yaml, params.yaml and the code held against each other (read through DVC's own parser).

- every ``mmls/`` module a stage's script imports, directly or not, is a dep of that stage, and
  no other ``mmls/`` module is (so editing a shared module re-runs exactly its users);
- every params section a stage script reads is among the stage's params;
- every entry of ``models`` x ``seeds`` has its train@ and eval@ stages, every entry of
  ``band_sets`` x ``seeds`` its band_ablation@ stage, with the paths of mmls/paths.py;
- every ``cv.rescored`` / ``cv.ensembles`` entry of the real pipeline has one stage that
  depends on the checkpoints and params of the variant it reuses, and on no other variant's;
- every CV row has one ``cv_counts`` stage putting its held-out per-patch counts in git, and
  ``cv_tables`` reads git-tracked outputs and the store alone;
- stage scripts import the package (an editable install), never edit ``sys.path``, and none is
  named like a standard-library module (``python stages/x.py`` puts ``stages/`` first on the
  path: a ``stages/statistics.py`` once shadowed the stdlib module of that name).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from dvc.repo import Repo

from mmls.core import paths
from mmls.evaluation.variants import variant_seeds
from pipelines.render import closure, rendered, stale
from tests.configs import PARAMS, REAL_PARAMS, ROOT

#: Library helpers that read params sections on a stage script's behalf. ``read_run`` and
#: ``variant_run`` also check that ``seeds`` (or ``cv.replicates``) lists the run's seed, but
#: the run depends on its own seed alone (the stage's command line): adding a seed must not
#: retrain the others.
HELPERS: dict[str, set[str]] = {
    "read_run": {"train", "recipe", "models"},
    "read_seeds": {"seeds"},
    "read_bands": {"bands"},
    "read_band_set": {"band_sets"},
    "read_model": {"models"},
    "score_checkpoint": {"eval", "cv", "recipe", "models"},
    "score_ensemble": {"eval", "cv", "recipe", "models", "seeds"},
    "score_reuse": {"eval", "cv", "recipe", "models", "seeds"},
}
READERS = {"section", "value", "entries", "entry"}


@pytest.fixture(scope="module")
def stages() -> list:
    return list(Repo(str(ROOT)).index.stages)


def commands(stage) -> list[str]:
    return stage.cmd if isinstance(stage.cmd, list) else [stage.cmd]


def script_of(stage) -> Path:
    """The stage script of ``PYTHONPATH=<repo root> python <script> ...`` (the last command; a
    first one, if any, is the name guard)."""
    env, python, script = commands(stage)[-1].split()[:3]
    assert python == "python" and env.startswith("PYTHONPATH="), stage.cmd
    root = (Path(stage.wdir) / env.split("=", 1)[1]).resolve()
    assert root == ROOT, f"{stage.addressing}: PYTHONPATH must be the repository root"
    return Path(stage.wdir) / script


def repo_path(dep) -> str:
    """A dep's path inside the repository ('' for one outside, such as a shared release)."""
    path = Path(dep.fs_path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else ""


def params_read(script: Path) -> set[str]:
    """Top-level params keys the script reads itself or through :data:`HELPERS`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(script.read_text())):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
            continue
        name = node.func.id
        if name in HELPERS:
            found |= HELPERS[name]
        elif name in READERS and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant):
            found.add(str(node.args[1].value))
        elif name == "model_section" and isinstance(node.args[2], ast.Constant):
            found |= {"models", str(node.args[2].value)}  # a section and the model's overrides
    return found


def param_keys(stage) -> set[str]:
    """Every params key a stage declares, as written (``cv.variants.unet``)."""
    return {str(k) for dep in stage.deps for k in (getattr(dep, "params", None) or [])}


def declared_params(stage) -> set[str]:
    """The params sections a stage declares (``cv`` for ``cv.variants.unet``)."""
    return {key.split(".")[0] for key in param_keys(stage)}


def python_stages(stages) -> Iterator:
    return (s for s in stages if s.cmd and " python " in f" {commands(s)[-1]} ")


def test_mmls_deps_are_exactly_the_transitive_imports(stages) -> None:
    assert len(list(python_stages(stages))) == len(stages)  # every stage runs a stage script
    problems = []
    for stage in python_stages(stages):
        script = script_of(stage)
        deps = {repo_path(d) for d in stage.deps if not getattr(d, "params", None)}
        assert str(script.resolve().relative_to(ROOT)) in deps, f"{stage.addressing}: own script"
        declared = {d for d in deps if d.startswith("mmls/")}
        imported = closure(script)
        if len(commands(stage)) == 2:  # the name guard runs first
            imported |= {"mmls/core/names.py"} | closure(ROOT / "mmls/core/names.py")
        imported = {m for m in imported if not m.endswith("__init__.py")}
        if declared != imported:
            problems.append(
                f"{stage.addressing}: missing {sorted(imported - declared)}, "
                f"extra {sorted(declared - imported)}"
            )
    assert not problems, "\n".join(problems)


def test_package_inits_hold_no_code() -> None:
    # so that no stage needs them as deps: importing mmls.x.y runs mmls/__init__.py and
    # mmls/x/__init__.py too
    for init in sorted((ROOT / "mmls").rglob("__init__.py")):
        body = ast.parse(init.read_text()).body
        assert len(body) <= 1 and all(isinstance(n, ast.Expr) for n in body), init  # a docstring


def test_stage_params_cover_what_the_scripts_read(stages) -> None:
    problems = []
    for stage in python_stages(stages):
        missing = params_read(script_of(stage)) - declared_params(stage)
        if missing:
            problems.append(f"{stage.addressing}: reads {sorted(missing)} undeclared")
    assert not problems, "\n".join(problems)


def test_every_model_band_set_and_seed_has_its_stages(stages) -> None:
    by_name = {s.addressing: s for s in stages}
    for seed in PARAMS["seeds"]:
        for model in PARAMS["models"]:
            train = by_name[f"train@{model}-{seed}"]
            outs = {o.def_path for o in train.outs}
            assert str(paths.model_dir(model, seed) / paths.CHECKPOINT_NAME) in outs
            assert str(paths.train_log_dir(model, seed) / "metrics.json") in outs
            evaluate = by_name[f"eval@{model}-{seed}"]
            assert {o.def_path for o in evaluate.outs} == {
                str(paths.eval_metrics_dir(model, seed)),
                str(paths.eval_predictions_dir(model, seed)),
            }
            assert str(paths.model_dir(model, seed) / paths.CHECKPOINT_NAME) in {
                d.def_path for d in evaluate.deps
            }
        for band_set in PARAMS["band_sets"]:
            ablation = by_name[f"band_ablation@{band_set}-{seed}"]
            outs = {o.def_path for o in ablation.outs}
            assert str(paths.ablation_metrics(band_set, seed)) in outs
            assert str(paths.ablation_predictions_dir(band_set, seed)) in outs
            assert str(paths.ablation_dir(band_set, seed) / paths.CHECKPOINT_NAME) in outs
    n_runs = len(PARAMS["seeds"]) * (2 * len(PARAMS["models"]) + len(PARAMS["band_sets"]))
    assert sum(
        s.addressing.split("@")[0] in ("train", "eval", "band_ablation") for s in stages
    ) == (n_runs)


def kind(stage) -> str:
    """``train`` for ``train@unet-42`` and ``real/mmlsv2/dvc.yaml:train@unet-42``."""
    return stage.addressing.split(":")[-1].split("@")[0]


TRAININGS = ("train", "band_ablation", "cv_train", "cv_train_replicate")


def test_every_pipeline_is_checked(stages) -> None:
    wdirs = {Path(s.wdir).resolve().relative_to(ROOT).as_posix() for s in stages}
    assert {".", "real/mmlsv2", "real/mmlsv1-west"} <= wdirs


def test_adding_a_seed_retrains_nothing_else(stages) -> None:
    for stage in stages:
        if kind(stage) in TRAININGS:
            assert "seeds" not in declared_params(stage), stage.addressing
            assert not {"cv", "cv.replicates"} & param_keys(stage), stage.addressing


def test_training_outputs_allow_the_run_cache(stages) -> None:
    """DVC skips its run-cache for persistent outputs and for uncached outputs that are not
    metrics or plots: queued and temporary experiments would then retrain every model."""
    checked = 0
    for stage in stages:
        if kind(stage) not in (*TRAININGS, "eval", "cv_eval", "cv_eval_replicate"):
            continue
        checked += 1
        for out in stage.outs:
            assert not out.persist, f"{stage.addressing}: {out.def_path} is persistent"
            assert out.use_cache or out.metric or out.plot, f"{stage.addressing}: {out.def_path}"
    assert checked > 2 * len(PARAMS["models"])  # the real pipelines' trainings too


def test_stage_scripts_import_the_installed_package() -> None:
    for script in sorted((ROOT / "stages").glob("*.py")):
        text = script.read_text()
        assert "sys.path" not in text, script.name
        assert script.stem not in sys.stdlib_module_names, f"{script.name} shadows the stdlib"


def test_a_reuse_of_checkpoints_depends_on_its_variant_alone(stages) -> None:
    """cv_rescore@<name> / cv_ensemble@<name> read the checkpoints of ``cv.<kind>.<name>.of``:
    adding or retraining another variant must not re-run them."""
    by_name = {s.addressing: s for s in stages}
    checked = 0
    for kind_, entries in (("cv_rescore", "rescored"), ("cv_ensemble", "ensembles")):
        for name, entry_ in REAL_PARAMS["cv"][entries].items():
            stage = by_name[f"real/mmlsv2/dvc.yaml:{kind_}@{name}"]
            of = entry_["of"]
            dep_paths = {repo_path(d) for d in stage.deps if not getattr(d, "params", None)}
            cv_paths = {
                p for p in dep_paths if p.startswith(("real/mmlsv2/models", "real/mmlsv2/metrics"))
            }
            assert cv_paths == {f"real/mmlsv2/models/cv/{of}", f"real/mmlsv2/metrics/cv_train/{of}"}
            keys = param_keys(stage)
            assert {f"cv.variants.{of}", f"cv.{entries}.{name}"} <= keys
            assert not {"cv", "cv.variants", f"cv.{entries}"} & keys, stage.addressing
            outs = {repo_path(o) for o in stage.outs}
            assert outs == {
                f"real/mmlsv2/{paths.cv_metrics(name, 0, 0).parent.parent}",
                f"real/mmlsv2/{paths.cv_predictions_dir(name, 0, 0).parent.parent}",
            }
            checked += 1
    assert checked == len(REAL_PARAMS["cv"]["rescored"]) + len(REAL_PARAMS["cv"]["ensembles"]) > 0


def test_the_cv_table_reads_git_alone_with_one_counts_stage_per_row(stages) -> None:
    """Every CV row (variant, rescoring, ensemble) has one cv_counts stage copying its held-out
    predictions' per-patch counts to an uncached, git-tracked folder, and cv_tables reads only
    such folders and the store: the table, its paired CIs included, can be rebuilt on a checkout
    whose DVC cache lacks the predictions of rows scored elsewhere."""
    by_name = {s.addressing: s for s in stages}
    cv = REAL_PARAMS["cv"]
    rows = {**cv["variants"], **cv["rescored"], **cv["ensembles"]}
    counts = {}
    for name in rows:
        matches = [
            a
            for a in by_name
            if a.split(":")[-1].split("@")[0].startswith("cv_counts")
            and a.endswith(f"@{name}")
            and a.startswith("real/mmlsv2/")
        ]
        assert len(matches) == 1, (name, matches)
        stage = by_name[matches[0]]
        data_deps = {repo_path(d) for d in stage.deps if not getattr(d, "params", None)}
        assert f"real/mmlsv2/predictions/cv/{name}" in data_deps, stage.addressing
        (out,) = stage.outs
        assert not out.use_cache and (out.plot or out.metric), stage.addressing
        counts[name] = repo_path(out)
    table = by_name["real/mmlsv2/dvc.yaml:cv_tables"]
    read = {
        repo_path(d)
        for d in table.deps
        if not getattr(d, "params", None) and not repo_path(d).endswith(".py")
    }
    assert "real/mmlsv2/metrics/cv_counts" in read
    assert counts == {n: f"real/mmlsv2/metrics/cv_counts/{n}" for n in rows}
    for folder in read - {"real/mmlsv2/data/store"}:
        under = [o for s in stages for o in s.outs if repo_path(o).startswith(f"{folder}/")]
        assert under, folder
        assert all(not o.use_cache and (o.metric or o.plot) for o in under), folder


def test_every_seed_of_every_variant_has_one_cv_training_and_scoring(stages) -> None:
    """cv_train@ / cv_eval@ (every variant x ``seeds``) and their _replicate twins (the
    variants x seeds of ``cv.replicates``) write each (variant, fold, seed) of
    :func:`variant_seeds` exactly once, and the twins have the same code and params deps."""
    real = [s for s in stages if s.addressing.startswith("real/mmlsv2/dvc.yaml:cv_")]
    outs = [repo_path(o) for s in real for o in s.outs]
    cv = REAL_PARAMS["cv"]
    for group, path in (("cv_train", paths.cv_dir), ("cv_eval", paths.cv_predictions_dir)):
        expected = sorted(
            f"real/mmlsv2/{path(v, f, s)}{'/best.pt' if group == 'cv_train' else ''}"
            for v in cv["variants"]
            for f in cv["folds"]
            for s in variant_seeds(REAL_PARAMS, v)
        )
        written = sorted(o for o in outs if o.startswith(expected[0].split("/cv/")[0] + "/cv/"))
        per_seed = [o for o in written if "/seed" in o]
        assert per_seed == expected, group
        twins = [s for s in real if s.addressing.split(":")[1].startswith(f"{group}_replicate@")]
        assert (
            len(twins)
            == len(cv["replicates"]["variants"]) * len(cv["folds"]) * len(cv["replicates"]["seeds"])
            > 0
        )
        base = next(s for s in real if s.addressing.split(":")[1].startswith(f"{group}@"))
        for twin in twins:
            assert code_and_param_deps(twin) == code_and_param_deps(base), twin.addressing


def code_and_param_deps(stage) -> tuple[set[str], set[str]]:
    """A stage's code deps and the params keys it depends on (its own entry's key generalised)."""
    code = {repo_path(d) for d in stage.deps if repo_path(d).endswith(".py")}
    keys = {k.rsplit(".", 1)[0] if k.startswith("cv.variants.") else k for k in param_keys(stage)}
    return code, keys


def test_every_dvc_yaml_is_rendered_from_the_stage_catalogue() -> None:
    # pipelines/catalogue.yaml is the one definition of every stage; a dvc.yaml edited by hand,
    # or a catalogue edited without re-rendering, fails here (and so in CI)
    files = rendered()
    assert {p.relative_to(ROOT).as_posix() for p in files} == {
        "dvc.yaml",
        "real/mmlsv1-west/dvc.yaml",
        "real/mmlsv2/dvc.yaml",
    }
    assert not stale(files), "run `python -m pipelines.render` and commit the dvc.yaml files"


def test_a_command_that_holds_a_params_value_runs_the_name_guard_first() -> None:
    """A params value in a command line (``--model ${item.model}``) reaches a shell only after
    ``python -m mmls.core.names`` passed, in a shell of its own (mmls/core/names.py). Read from
    the dvc.yaml files as written, before DVC interpolates anything."""
    guarded = 0
    for path in rendered():
        for name, stage in yaml.safe_load(path.read_text())["stages"].items():
            cmd = stage.get("do", stage)["cmd"]
            cmds = cmd if isinstance(cmd, list) else [cmd]
            if any("${" in c for c in cmds):
                assert len(cmds) == 2 and "${" not in cmds[0], f"{path}: {name}"
                assert cmds[0].split()[1:] == ["python", "-m", "mmls.core.names"], name
                guarded += 1
    assert guarded >= 10  # train, eval, band_ablation, the cv stages of every pipeline
