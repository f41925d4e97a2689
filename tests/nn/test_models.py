"""The six models of MMLSv2 Sec. 4.1: build, one training step, output shape, checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from mmls.core.errors import InputError
from mmls.data.bands import BAND_NAMES
from mmls.nn.models import build_model, check_input_size, load_checkpoint, save_checkpoint
from mmls.nn.probability import landslide_probability
from tests.configs import ROOT

EXPECTED = ("unet", "unetplusplus", "pspnet", "deeplabv3", "deeplabv3plus", "segformer")


def models_section() -> dict[str, Any]:
    """The `models` params section of params.yaml."""
    section = (yaml.safe_load((ROOT / "params.yaml").read_text()) or {}).get("models")
    if not section:
        pytest.fail("params.yaml has no `models` section")
    return section


MODELS = models_section()


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def test_section_lists_the_six_paper_models_without_pretrained_weights() -> None:
    assert set(EXPECTED) <= set(MODELS)
    for cfg in MODELS.values():
        assert cfg["encoder_weights"] is None
    assert MODELS["segformer"]["arch"] == "Segformer"
    assert MODELS["segformer"]["encoder_name"].startswith("mit_")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_builds_trains_one_step_and_predicts_shape(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, MODELS[name], in_channels=7)
    x = torch.randn(2, 7, 64, 64)
    y = torch.randint(0, 2, (2, 64, 64))
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
    model.eval()
    with torch.no_grad():
        out = model(x)
    assert out.shape == (2, 2, 64, 64)


def test_in_channels_follow_band_selection() -> None:
    model = build_model("unet", MODELS["unet"], in_channels=3)
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 2, 64, 64)


def test_segformer_rejects_a_cnn_encoder() -> None:
    cfg = {"arch": "Segformer", "encoder_name": "resnet34", "encoder_weights": None}
    with pytest.raises(InputError, match="MiT"):
        build_model("segformer", cfg, in_channels=7)


def test_unknown_arch_and_missing_encoder_are_input_errors() -> None:
    with pytest.raises(InputError, match="unknown arch"):
        build_model("x", {"arch": "FPNX", "encoder_name": "resnet34"}, in_channels=7)
    with pytest.raises(InputError, match="encoder_name"):
        build_model("x", {"arch": "Unet", "encoder_weights": None}, in_channels=7)


def test_checkpoint_loads_weights_only_and_reproduces_outputs(tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = MODELS["pspnet"]
    model = build_model("pspnet", cfg, in_channels=4).eval()
    meta = {"model_name": "pspnet", "model_config": dict(cfg), "bands": ["a", "b", "c", "d"]}
    save_checkpoint(tmp_path / "best.pt", model, {**meta, "epoch": 3, "val_miou": 0.5})
    payload = torch.load(tmp_path / "best.pt", weights_only=True)
    assert payload["epoch"] == 3 and payload["bands"] == meta["bands"]
    loaded, got = load_checkpoint(tmp_path / "best.pt", "cpu")
    assert got["val_miou"] == 0.5 and "state_dict" not in got
    x = torch.randn(2, 4, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def test_missing_or_corrupt_checkpoint_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_checkpoint(tmp_path / "none.pt", "cpu")
    (tmp_path / "bad.pt").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "bad.pt", "cpu")


def test_a_checkpoint_written_before_the_package_regrouping_still_loads() -> None:
    """tests/fixtures/checkpoint_2484759.pt was written by the flat-module code (see
    tests/fixtures/make_checkpoint_2484759.py): same meta, same weights, same probabilities."""
    fixtures = ROOT / "tests" / "fixtures"
    model, meta = load_checkpoint(fixtures / "checkpoint_2484759.pt", "cpu")
    assert meta["model_name"] == "tiny_unet" and meta["tile_size"] == 32
    assert meta["bands"] == list(BAND_NAMES) and len(meta["normalization"]["mean"]) == 7
    expected = np.load(fixtures / "checkpoint_2484759_expected.npz")
    with torch.inference_mode():
        model.to(memory_format=torch.channels_last)
        x = torch.from_numpy(expected["input"]).to(memory_format=torch.channels_last)
        prob = landslide_probability(model, x, tta=False).numpy()
    # Same probabilities up to the CPU's rounding: the fixture was computed on another CPU, whose
    # convolution kernels sum in another order (max 3.6e-7 apart on an AMD EPYC); misplaced weights
    # would be off by orders of magnitude more.
    np.testing.assert_allclose(prob, expected["probabilities"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("arch", ["FPN", "Linknet", "MAnet", "PAN", "UPerNet", "fpn"])
def test_every_smp_architecture_builds_from_params(arch: str) -> None:
    cfg = {"arch": arch, "encoder_name": "resnet18", "encoder_weights": None}
    model = build_model("m", cfg, in_channels=7)
    check_input_size(model, 7, 128, "params.yaml:models.m")


def test_unknown_arch_lists_every_smp_architecture() -> None:
    with pytest.raises(InputError, match=r"models\.x\.arch: unknown arch 'FPNX'.*'DPT'.*'UPerNet'"):
        build_model("x", {"arch": "FPNX", "encoder_name": "resnet18"}, in_channels=7)


def test_a_misspelled_architecture_argument_is_refused() -> None:
    cfg = {**MODELS["unet"], "decoder_attention_typ": "scse"}
    with pytest.raises(
        InputError,
        match=r"models\.unet\.decoder_attention_typ: not an argument of smp\.Unet; did you "
        r"mean 'decoder_attention_type'\?",
    ):
        build_model("unet", cfg, in_channels=7)
    model = build_model("unet", {**MODELS["unet"], "decoder_attention_type": "scse"}, 7)
    assert any("SCSE" in type(m).__name__ for m in model.modules())  # the spelled one applies


def test_keys_the_pipeline_sets_are_refused() -> None:
    with pytest.raises(InputError, match=r"models\.unet\.classes: set by the pipeline"):
        build_model("unet", {**MODELS["unet"], "classes": 3}, in_channels=7)


def test_an_architecture_that_cannot_take_the_tile_is_refused() -> None:
    pan = build_model(
        "pan", {"arch": "PAN", "encoder_name": "resnet18", "encoder_weights": None}, 7
    )
    with pytest.raises(InputError, match=r"models\.pan: cannot take 7 bands of 64 x 64 px"):
        check_input_size(pan, 7, 64, "params.yaml:models.pan")
    model = build_model("unet", MODELS["unet"], in_channels=7)
    with pytest.raises(InputError, match=r"cannot take 3 bands"):
        check_input_size(model, 3, 128, "params.yaml:models.unet")
    check_input_size(model, 7, 128, "params.yaml:models.unet")
    assert model.training  # the check leaves the model in the mode it found it


def test_a_pickled_checkpoint_is_refused_as_untrusted(tmp_path: Path) -> None:
    class Payload:
        def __reduce__(self):  # what a malicious file does: run code on unpickling
            return (print, ("pwned",))

    torch.save({"state_dict": {}, "evil": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(InputError, match="not a trusted checkpoint") as info:
        load_checkpoint(tmp_path / "evil.pt", "cpu")
    assert "weights_only=False" not in str(info.value)
