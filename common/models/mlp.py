"""Bias-free ReLU MLP: [Linear -> norm -> ReLU] x depth -> Linear."""

from __future__ import annotations

import math

import torch
from torch import nn

from common.models.layers import norm_layer


class MLP(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int, width: int, depth: int, norm: str) -> None:
        super().__init__()
        sizes = [math.prod(input_shape)] + [width] * depth
        blocks: list[nn.Module] = [nn.Flatten()]
        for d_in, d_out in zip(sizes[:-1], sizes[1:], strict=True):
            blocks += [nn.Linear(d_in, d_out, bias=False), norm_layer(norm, d_out, 1), nn.ReLU()]
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Linear(sizes[-1], num_classes, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))

    def weight_layers(self) -> list[nn.Module]:
        return [m for m in self.features if isinstance(m, nn.Linear)] + [self.classifier]
