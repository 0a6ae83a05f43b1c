"""Small layers shared by the models."""

from __future__ import annotations

import torch
from torch import nn


def norm_layer(kind: str, channels: int, dims: int) -> nn.Module:
    """`none` or `batch`: BatchNorm without affine parameters (a pure standardisation, as in Guth et al.,
    so that only the weight layers learn)."""
    if kind == "none":
        return nn.Identity()
    if kind == "batch":
        return (nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d)(channels, affine=False)
    raise ValueError(f"unknown norm '{kind}' (none | batch)")


class FlattenLinear(nn.Linear):
    """Linear readout of a (B, C, H, W) feature map, flattened channel-major.

    Taking the map unflattened lets layer-wise algorithms see C channels at the readout's input
    (its weight reshapes to (out, C, H·W)), like they do at a conv layer's input.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.flatten(1))
