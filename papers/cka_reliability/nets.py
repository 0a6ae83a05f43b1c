"""The networks of Davari et al. (2023), with their CKA layers named `blocks.0` ... `blocks.7`.

- `vgg7` (Sec. 4.1, Fig. 2): 8 Conv-BN-ReLU blocks, stride 1, no padding, channels/kernels
  16k7, 16k7, 32k3, 32k3, 32k3, 64k3, 64k3, 64k1; global average pool; linear 64 → classes.
- `vgg3x3` (Sec. 4.3, Figs 5-7): 8 Conv3×3-BN-ReLU blocks (padding 1), channels
  16, 16, 32, 32, 32, 64, 64, 64 (× width_mult), stride 2 at the 3rd and 6th conv; pool; linear.
- `resnet34_cifar` (Sec. 4.3): timm's ResNet-34 with the CIFAR stem (3×3 stride-1 first conv, no max
  pool), stage widths × width_mult; its CKA layers are block outputs named by the config (e.g. `net.layer1.2`).
Xavier-uniform init of every conv / linear weight (the paper's recipe).
"""

from __future__ import annotations

import timm
import torch
from torch import nn

# (out_channels, kernel, stride, padding) per block
VGG7 = ((16, 7, 1, 0), (16, 7, 1, 0), (32, 3, 1, 0), (32, 3, 1, 0), (32, 3, 1, 0), (64, 3, 1, 0), (64, 3, 1, 0),
        (64, 1, 1, 0))
VGG3X3 = ((16, 3, 1, 1), (16, 3, 1, 1), (32, 3, 2, 1), (32, 3, 1, 1), (32, 3, 1, 1), (64, 3, 2, 1), (64, 3, 1, 1),
          (64, 3, 1, 1))


def draw_seed(base: int, run_seed: int) -> int:
    """The seed of an auxiliary draw (label permutation, random net, moved points, target net) in the run of
    seed `run_seed`: `base` + 1000 · run_seed, so that every training seed is a fresh replicate of all of them
    and seed 0 keeps `base`."""
    return base + 1000 * run_seed


def _xavier(net: nn.Module) -> None:
    for m in net.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class BlockCNN(nn.Module):
    """Conv-BN-ReLU blocks from a spec, global average pool, linear classifier."""

    def __init__(self, spec: tuple[tuple[int, int, int, int], ...], in_channels: int, num_classes: int,
                 width_mult: float = 1.0) -> None:
        super().__init__()
        blocks, channels = [], in_channels
        for out, kernel, stride, padding in spec:
            out = max(1, round(out * width_mult))
            blocks.append(nn.Sequential(nn.Conv2d(channels, out, kernel, stride, padding, bias=False),
                                        nn.BatchNorm2d(out), nn.ReLU()))
            channels = out
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(channels, num_classes)
        _xavier(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.blocks(x)))

    def weight_layers(self) -> list[nn.Module]:
        return [b[0] for b in self.blocks] + [self.classifier]


class CifarResNet34(nn.Module):
    """timm ResNet-34 with a 3×3 stride-1 stem (64 channels) and no max pool (32×32 inputs keep a 4×4 last map);
    its stage widths 64, 128, 256, 512 × width_mult (1 is the paper's net; the test-size runs shrink it)."""

    def __init__(self, in_channels: int, num_classes: int, width_mult: float = 1.0) -> None:
        super().__init__()
        widths = tuple(max(1, round(c * width_mult)) for c in (64, 128, 256, 512))
        self.net = timm.create_model("resnet34", pretrained=False, num_classes=num_classes, in_chans=in_channels,
                                     channels=widths)
        self.net.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
        self.net.maxpool = nn.Identity()
        _xavier(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def weight_layers(self) -> list[nn.Module]:
        return [m for m in self.net.modules() if isinstance(m, nn.Conv2d)] + [self.net.fc]
