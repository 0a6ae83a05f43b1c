"""The CIFAR-style ResNet-18 and its FactConv version."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from common.errors import UserError
from common.models.factconv import FactConv2d, factorize_convs
from common.models.resnet import resnet18


def test_resnet18_has_the_cifar_shape_and_parameter_count() -> None:
    net = resnet18(3, 10)
    # the standard CIFAR ResNet-18 (kuangliu/pytorch-cifar): 11,173,962 parameters
    assert sum(p.numel() for p in net.parameters()) == 11_173_962
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 20 and convs[0].stride == (1, 1) and convs[0].kernel_size == (3, 3)
    assert not any(isinstance(m, nn.MaxPool2d) for m in net.modules())
    assert sum(c.kernel_size == (1, 1) for c in convs) == 3  # projection shortcuts of stages 2-4


@pytest.mark.parametrize("scale", [0.125, 0.5])
def test_width_scale_multiplies_every_stage(scale: float) -> None:
    net = resnet18(1, 10, width_scale=scale)
    outs = [m.out_channels for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert sorted(set(outs)) == [int(scale * w) for w in (64, 128, 256, 512)]
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_factconv_resnet_swaps_every_conv_and_trains_only_factors() -> None:
    net = factorize_convs(resnet18(3, 10, width_scale=0.125))
    layers = net.weight_layers()
    assert len(layers) == 21 and all(isinstance(m, FactConv2d) for m in layers[:-1])
    net(torch.randn(2, 3, 32, 32)).sum().backward()
    fact = sum(p.numel() for m in layers[:-1] for p in m.parameters())
    expected = sum(m.in_channels * (m.in_channels + 1) // 2 + m.kernel_size**2 * (m.kernel_size**2 + 1) // 2
                   for m in layers[:-1])
    assert fact == expected
    assert all(p.grad is not None for m in layers[:-1] for p in m.parameters())


def test_width_scale_with_zero_channels_is_a_clear_error() -> None:
    with pytest.raises(UserError, match=r"width_scale=0.01 gives \[0, 1, 2, 5\] channels"):
        resnet18(3, 10, width_scale=0.01)
