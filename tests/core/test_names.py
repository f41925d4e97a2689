"""Names that DVC interpolates into commands: validated, and never run by a shell when bad."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mmls.core.config import load_params
from mmls.core.errors import InputError
from mmls.core.names import check_names, main
from pipelines.render import render_pipeline
from tests.configs import PARAMS, REAL_PARAMS
from tests.dvc_projects import make_dvc_project, run, write_params

EVIL = "x$(touch pwned)"


def test_the_repository_params_pass() -> None:
    check_names(PARAMS)
    check_names(REAL_PARAMS)


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"models": {EVIL: {}}}, r"models\.x\$\(touch pwned\)"),
        ({"models": {"my model": {}}}, r"models\.my model"),
        ({"band_sets": {"RGB": []}}, r"band_sets\.RGB"),
        ({"seeds": [42, "43; rm -rf /"]}, r"params\.yaml:seeds"),
        ({"seeds": [True]}, r"params\.yaml:seeds"),
        ({"cv": {"variants": {"../up": {}}}}, r"cv\.variants\.\.\./up"),
        ({"cv": {"replicates": {"variants": ["a'b"], "seeds": [1]}}}, r"cv\.replicates\.variants"),
        ({"cv": {"folds": [0, -1]}}, r"cv\.folds"),
        ({"map": {"scenes": {"a b": {}}}}, r"map\.scenes\.a b"),
        ({"model": "u-net;id"}, r"params\.yaml:model"),
    ],
)
def test_a_bad_name_names_its_key(params: dict, key: str) -> None:
    with pytest.raises(InputError, match=key):
        check_names(params)


def test_load_params_refuses_bad_names_unknown_top_level_keys_and_empty_files(tmp_path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({**PARAMS, "models": {EVIL: PARAMS["models"]["unet"]}}))
    with pytest.raises(InputError, match="not a valid name"):
        load_params(path)
    path.write_text(yaml.safe_dump({**PARAMS, "trian": {}}))
    with pytest.raises(
        InputError, match=r"params\.yaml:trian: unknown top-level key; did you mean"
    ):
        load_params(path)
    path.write_text("")
    with pytest.raises(InputError, match="params file is empty"):
        load_params(path)


def test_the_guard_exits_2_naming_the_key(tmp_path, capsys) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"seeds": [42], "models": {EVIL: {}}}))
    assert main(str(path)) == 2
    assert "models.x$(touch pwned)" in capsys.readouterr().err
    path.write_text(yaml.safe_dump({"seeds": [42], "models": {"unet": {}}}))
    assert main(str(path)) == 0


def _project(root: Path, guarded: bool) -> None:
    """A DVC project whose one stage runs a stage script with ``--model ${item.model}``."""
    make_dvc_project(root)
    entry = {
        "matrix": {"model": "${models}", "seed": "${seeds}"},
        "script": "summary",
        "args": "--model ${item.model} --seed ${item.seed}",
    }
    text = render_pipeline(".", {"header": "probe", "stages": ["probe"]}, {"probe": entry})
    if not guarded:  # the same stage as a plain command line: what the shell did before
        stage = yaml.safe_load(text)
        stage["stages"]["probe"]["cmd"] = stage["stages"]["probe"]["cmd"][-1]
        text = yaml.safe_dump(stage)
    (root / "dvc.yaml").write_text(text)
    write_params(root, {"seeds": [42], "models": {EVIL: {}}})


@pytest.mark.parametrize("guarded", [True, False], ids=["guarded", "unguarded control"])
def test_a_model_key_with_a_command_substitution_is_never_run(tmp_path, guarded: bool) -> None:
    _project(tmp_path, guarded)
    done = run(["dvc", "repro"], tmp_path, check=False)
    assert done.returncode != 0  # the guard, or the summary script's bad arguments
    if guarded:
        assert not (tmp_path / "pwned").exists()
        assert "not a valid name" in done.stderr + done.stdout
    else:  # the threat is real: without the guard the shell runs the substitution
        assert (tmp_path / "pwned").exists()
