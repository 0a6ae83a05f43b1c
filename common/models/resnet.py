"""CIFAR-style ResNet-18 with a width scale (He et al. 2016, the "kuangliu/pytorch-cifar" variant used by White
et al. 2024): 3×3 stem stride 1 and no max-pool, BasicBlocks [2, 2, 2, 2] with int(w·[64, 128, 256, 512])
channels (stride 2 from the second stage on), 1×1 conv + BN projection shortcuts where the shape changes,
global average pool, Linear. The blocks are timm's BasicBlock. Every conv is a bias-free nn.Conv2d, so
`common.models.factconv.factorize_convs` turns it into a FactConv ResNet.
"""

from __future__ import annotations

import torch
from timm.models.resnet import BasicBlock
from torch import nn

from common.errors import UserError
from common.models.factconv import CONV_TYPES

WIDTHS = (64, 128, 256, 512)


def _shortcut(c_in: int, c_out: int, stride: int) -> nn.Module | None:
    if stride == 1 and c_in == c_out:
        return None
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))


class ResNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, width_scale: float = 1.0,
                 blocks: tuple[int, ...] = (2, 2, 2, 2)) -> None:
        super().__init__()
        widths = [int(width_scale * w) for w in WIDTHS]
        if min(widths) < 1:
            raise UserError(f"model.width_scale={width_scale} gives {widths} channels per stage: a stage would "
                            f"have none. Use a width scale >= {1 / WIDTHS[0]:g}.")
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        stages, c_in = [], widths[0]
        for i, (width, count) in enumerate(zip(widths, blocks, strict=True)):
            for b in range(count):
                stride = 2 if i > 0 and b == 0 else 1
                stages.append(BasicBlock(c_in, width, stride, downsample=_shortcut(c_in, width, stride)))
                c_in = width
        self.blocks = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.blocks(self.stem(x))).flatten(1))

    def weight_layers(self) -> list[nn.Module]:
        """Every conv in module order (a block's projection shortcut after its two convs), then the classifier."""
        return [m for m in self.modules() if isinstance(m, CONV_TYPES)] + [self.classifier]


def resnet18(in_channels: int, num_classes: int, width_scale: float = 1.0) -> ResNet:
    return ResNet(in_channels, num_classes, width_scale, (2, 2, 2, 2))
