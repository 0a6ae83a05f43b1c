"""Pre-BN ResNets of stochastic rainbow networks (White et al. 2024, Sci4DL), width-scaled.

    stem:   x ← ReLU(conv(image))                                        3×3, C → int(64 w)
    block:  x̂ = BN(align(x));  h = ReLU(conv1(x̂));  out = ReLU(conv2(BN(align(h))) + shortcut(x̂))
    head:   logits = Linear(avgpool(BN(align(x))))

ResNet-9 / 18 / 34: [1, 1, 1, 1] / [2, 2, 2, 2] / [3, 4, 6, 3] blocks of int(w · [64, 128, 256, 512]) channels
(stride 2 from the second stage on). The shortcut is the identity, or a 1×1 stride-s conv where the shape
changes; it sees the block's aligned input x̂ like conv1 (the identity adds x̂ to both paths).

`conv` picks the convolution: `stochastic` (StochasticFactConv2d: paired [generated ; reference] tensors between
a conv and the next Align, the reference path on the first m ≈ f B examples, f = `reference_fraction`), `factconv`
(FactConv2d, fixed noise: the plain FactConv baseline) or `conv` (nn.Conv2d); without the stochastic conv,
`align` is the identity and the same net is an ordinary pre-BN ResNet. `channel` / `rank` choose the FactConv
channel factor (full | lowrank | lrdiag with rank k, clipped to each layer's input channels: the stem sees the
image's 1 or 3).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from common.errors import UserError
from common.models.factconv import FactConv2d
from common.models.resnet import WIDTHS
from papers.stochastic_rainbow.layers import (
    Align,
    Paired,
    StochasticFactConv2d,
    reference_count,
    set_reference_fraction,
)

DEPTHS = {9: (1, 1, 1, 1), 18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
CONVS = ("stochastic", "factconv", "conv")
MakeConv = Callable[[int, int, int, int, int], nn.Module]  # (c_in, c_out, kernel, stride, padding) -> conv


class PairedIdentity(Paired):
    """The identity shortcut of a stochastic net: x̂ -> [x̂ ; x̂[:m]], so that it adds to both paths
    (the plain identity when the net is not paired)."""

    def __init__(self, paired: bool) -> None:
        super().__init__()
        self.paired = paired

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.paired:
            return x
        return torch.cat([x, x[:reference_count(x.shape[0], self.reference_fraction, x.shape[1:])]])


class PreBNBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, make_conv: MakeConv, paired: bool) -> None:
        super().__init__()
        self.align1, self.bn1 = _align(c_in, paired), nn.BatchNorm2d(c_in)
        self.conv1 = make_conv(c_in, c_out, 3, stride, 1)
        self.align2, self.bn2 = _align(c_out, paired), nn.BatchNorm2d(c_out)
        self.conv2 = make_conv(c_out, c_out, 3, 1, 1)
        same_shape = stride == 1 and c_in == c_out
        self.shortcut = PairedIdentity(paired) if same_shape else make_conv(c_in, c_out, 1, stride, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn1(self.align1(x))
        h = F.relu(self.conv1(x))
        return F.relu(self.conv2(self.bn2(self.align2(h))) + self.shortcut(x))


def _align(channels: int, paired: bool) -> nn.Module:
    return Align(channels) if paired else nn.Identity()


class StochasticResNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, depth: int = 18, width_scale: float = 1.0,
                 conv: str = "stochastic", channel: str = "full", rank: int | None = None,
                 reference_fraction: float = 1.0) -> None:
        super().__init__()
        if depth not in DEPTHS:
            raise UserError(f"model.depth={depth}: the pre-BN ResNets have depth {' | '.join(map(str, DEPTHS))}.")
        if conv not in CONVS:
            raise UserError(f"model.conv='{conv}': use one of {', '.join(CONVS)}.")
        widths = [int(width_scale * w) for w in WIDTHS]
        if min(widths) < 1:
            raise UserError(f"model.width_scale={width_scale} gives {widths} channels per stage: a stage would "
                            f"have none. Use a width scale >= {1 / WIDTHS[0]:g}.")
        if channel != "full" and rank is not None and rank > max(widths):
            raise UserError(f"factconv.rank={rank} exceeds the channels of every layer (at most {max(widths)} at "
                            f"width scale {width_scale}): a rank >= a layer's input channels is full rank, use "
                            "factconv.channel=full.")
        paired = conv == "stochastic"

        def make_conv(c_in: int, c_out: int, k: int, stride: int, padding: int) -> nn.Module:
            if conv == "conv":
                return nn.Conv2d(c_in, c_out, k, stride, padding, bias=False)
            kind = StochasticFactConv2d if paired else FactConv2d
            layer_rank = None if rank is None else min(rank, c_in)
            return kind(c_in, c_out, k, stride, padding, channel=channel, rank=layer_rank)

        self.stem = make_conv(in_channels, widths[0], 3, 1, 1)
        blocks, c_in = [], widths[0]
        for i, (width, count) in enumerate(zip(widths, DEPTHS[depth], strict=True)):
            for b in range(count):
                blocks.append(PreBNBlock(c_in, width, 2 if i > 0 and b == 0 else 1, make_conv, paired))
                c_in = width
        self.blocks = nn.Sequential(*blocks)
        self.align, self.bn = _align(c_in, paired), nn.BatchNorm2d(c_in)
        self.classifier = nn.Linear(c_in, num_classes)
        set_reference_fraction(self, reference_fraction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(F.relu(self.stem(x)))
        return self.classifier(self.bn(self.align(x)).mean((2, 3)))

    def weight_layers(self) -> list[nn.Module]:
        """Every conv in module order, then the classifier."""
        return [m for m in self.modules() if isinstance(m, nn.Conv2d | FactConv2d)] + [self.classifier]
