"""Train a BatchNorm- and dropout-free U-Net on a tiny store (a helper of test_distributed.py;
run alone or under torchrun): python -m tests.ddp_train <store> <out>."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from mmls.data.store import load_store
from mmls.nn.recipe import RecipeConfig
from mmls.nn.training import Run, TrainConfig
from tests.configs import config
from tests.tiny_training import fit_in

#: ConvNeXt-atto encoder (LayerNorm), decoder without normalisation, no dropout: nothing that
#: differs between one process and several but the reduction order.
MODEL = {
    "arch": "Unet",
    "encoder_name": "tu-convnext_atto",
    "encoder_weights": None,
    "decoder_use_norm": "identity",
}


def main(store_dir: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    store, out = load_store(store_dir), Path(out_dir)
    # contiguous layout: channels_last convolutions pick other CPU kernels for other batch
    # sizes (a chunk of 2 vs a batch of 4), which moved the weights by 1.2e-3 here
    cfg = config(
        "train",
        TrainConfig,
        epochs=2,
        batch_size=4,
        threads=1,
        lr_step_size=1,
        augment=True,
        channels_last=False,
    )
    run = Run("ddp_unet", MODEL, cfg, config("recipe", RecipeConfig), 7)
    fit_in(out, store, run)


if __name__ == "__main__":
    main(*sys.argv[1:3])
