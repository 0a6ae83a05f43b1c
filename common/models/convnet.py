"""Small bias-free CNN: [Conv(k, stride 2) -> norm -> ReLU] x depth -> linear readout of the map."""

from __future__ import annotations

import torch
from torch import nn

from common.models.factconv import CONV_TYPES
from common.models.layers import FlattenLinear, norm_layer


class ConvNet(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int, width: int, depth: int, norm: str,
                 kernel_size: int) -> None:
        super().__init__()
        channels, size = input_shape[0], input_shape[-1]
        blocks: list[nn.Module] = []
        for _ in range(depth):
            blocks += [nn.Conv2d(channels, width, kernel_size, stride=2, padding=kernel_size // 2, bias=False),
                       norm_layer(norm, width, 2), nn.ReLU()]
            channels, size = width, (size + 2 * (kernel_size // 2) - kernel_size) // 2 + 1
        self.features = nn.Sequential(*blocks)
        self.classifier = FlattenLinear(width * size * size, num_classes, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))

    def weight_layers(self) -> list[nn.Module]:
        return [m for m in self.features if isinstance(m, CONV_TYPES)] + [self.classifier]
