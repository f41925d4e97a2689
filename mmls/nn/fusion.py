"""A two-branch fusion U-Net: optical and auxiliary bands through separate encoders (Sec. 5).

The paper concatenates the seven bands at the input and names multi-branch, modality-aware
fusion as future work. Here each branch (e.g. optical = red, green, blue, grayscale; auxiliary =
DEM, slope, thermal inertia) has its own smp encoder; at every scale the two feature maps are
concatenated and mixed by a 1x1 convolution (with BatchNorm and ReLU) back to one branch's
width, and a standard smp U-Net decoder and head follow. Branches are given as lists of band
NAMES in the model's params entry (``branches``), resolved against the run's input bands.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from segmentation_models_pytorch.base import SegmentationHead
from segmentation_models_pytorch.base.initialization import initialize_decoder, initialize_head
from segmentation_models_pytorch.decoders.unet.decoder import UnetDecoder
from segmentation_models_pytorch.encoders import get_encoder
from torch import nn

DECODER_CHANNELS = (256, 128, 64, 32, 16)


class FusionUnet(nn.Module):
    """Two encoders over disjoint band groups, fused per scale, one U-Net decoder."""

    def __init__(
        self,
        branch_channels: Sequence[Sequence[int]],
        encoder_name: str,
        classes: int,
        encoder_weights: str | None = None,
    ) -> None:
        super().__init__()
        if len(branch_channels) != 2 or not all(branch_channels):
            raise ValueError("FusionUnet needs two non-empty branches of input channels")
        self.branch_channels = [list(b) for b in branch_channels]
        self.encoders = nn.ModuleList(
            get_encoder(encoder_name, in_channels=len(b), depth=5, weights=encoder_weights)
            for b in self.branch_channels
        )
        widths = self.encoders[0].out_channels
        self.fuse = nn.ModuleList(
            nn.Identity()
            if i == 0
            else nn.Sequential(nn.Conv2d(2 * w, w, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU())
            for i, w in enumerate(widths)
        )
        self.decoder = UnetDecoder(
            encoder_channels=widths, decoder_channels=DECODER_CHANNELS, n_blocks=5
        )
        self.head = SegmentationHead(
            in_channels=DECODER_CHANNELS[-1], out_channels=classes, kernel_size=3
        )
        # the initialisation smp gives its own U-Net (SegmentationModel.initialize)
        initialize_decoder(self.decoder)
        initialize_decoder(self.fuse)
        initialize_head(self.head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [
            enc(x[:, idx]) for enc, idx in zip(self.encoders, self.branch_channels, strict=True)
        ]
        pairs = zip(self.fuse[1:], feats[0][1:], feats[1][1:], strict=True)
        # smp's U-Net decoder takes only the spatial size of the stage-0 (input) feature
        fused = [x] + [fuse(torch.cat([a, b], dim=1)) for fuse, a, b in pairs]
        return self.head(self.decoder(fused))


def branch_indices(branches: Sequence[Sequence[str]], bands: Sequence[str]) -> list[list[int]]:
    """Channel indices of each branch's band names within the run's input ``bands``."""
    names = list(bands)
    missing = [b for branch in branches for b in branch if b not in names]
    if missing:
        raise ValueError(f"branch band(s) {missing} are not among the input bands {names}")
    covered = sorted(b for branch in branches for b in branch)
    if covered != sorted(names):
        raise ValueError(f"branches {list(branches)} must split the input bands {names} exactly")
    return [[names.index(b) for b in branch] for branch in branches]
