"""The random-feature network of White et al.'s feature table (the 2022 "randomized scattering network";
checked against glomerulus-lab/fact-conv RSN_experiments). Plain torch.

    x ← BN(x);  h1 = ReLU(conv1(x));  h2 = ReLU(conv2(h1))        conv1: C → n, conv2: n → n, 7 × 7, FIXED
    features = [BN(pool(x)), BN(pool(h1)), BN(pool(h2))]          pool = AvgPool(4, stride 4, padding 1)
    logits = Linear(features)                                     ((C + 2n) × 8 × 8 on 32 × 32 images)

Only the BatchNorm affines and the readout learn. The fixed kernels, one per (out, in) pair, are drawn from:
- v1:       N(0, σ² C_v1(m)) with C_v1 the V1-like covariance (`v1_covariance`, s = 2, f = 0.1: a diagonal
            Gaussian envelope) around a centre m drawn uniformly in the k × k square for every kernel;
            σ² = 1 / (C_in k²) per tap on average (trace-normalised)
- uniform:  PyTorch's default conv init, U(−1/√fan_in, 1/√fan_in)
- gaussian: N(0, 1 / fan_in) iid: the white-noise control with V1's average variance (the public code's
            "Gaussian" init never fires, so its row probably equals uniform: ours is a real Gaussian)

The table's last row, "scattering + linear", is `ScatteringFeatureNet`: first-order scattering coefficients
(`common.models.wavelets.FirstOrderScattering`, J = 2, L = 8 as kymatio's: 51 channels of 8 × 8 for an RGB 32 × 32
image), BatchNorm (as every feature of the random-feature nets), Linear.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from common.models.factconv import v1_covariance
from common.models.wavelets import FirstOrderScattering

FEATURES = ("v1", "uniform", "gaussian")


def random_kernels(features: str, c_out: int, c_in: int, k: int,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """(c_out, c_in, k, k) fixed kernels of the given kind (module doc)."""
    fan_in = c_in * k * k
    if features == "uniform":
        return (2 * torch.rand(c_out, c_in, k, k, generator=generator) - 1) / fan_in**0.5
    if features == "gaussian":
        return torch.randn(c_out, c_in, k, k, generator=generator) / fan_in**0.5
    if features == "v1":
        centres = torch.rand(c_out * c_in, 2, generator=generator, dtype=torch.float64) * (k - 1)
        roots = torch.linalg.cholesky(v1_covariance(k, center=centres) / fan_in)  # (c_out·c_in, k², k²)
        gauss = torch.randn(c_out * c_in, k * k, 1, generator=generator, dtype=torch.float64)
        return (roots @ gauss).reshape(c_out, c_in, k, k).float()
    raise ValueError(f"unknown random features '{features}' ({' | '.join(FEATURES)})")


class RandomFeatureNet(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int, features: str, width: int = 100,
                 kernel_size: int = 7) -> None:
        super().__init__()
        c, size = input_shape[0], input_shape[-1]
        self.bn_in = nn.BatchNorm2d(c)
        self.conv1 = nn.Conv2d(c, width, kernel_size, padding=kernel_size // 2, bias=False)
        self.conv2 = nn.Conv2d(width, width, kernel_size, padding=kernel_size // 2, bias=False)
        for conv in (self.conv1, self.conv2):
            conv.weight.data.copy_(random_kernels(features, *conv.weight.shape[:3]))
            conv.weight.requires_grad_(False)
        self.pool = nn.AvgPool2d(4, stride=4, padding=1)
        self.norms = nn.ModuleList([nn.BatchNorm2d(n) for n in (c, width, width)])
        pooled = (size + 2 - 4) // 4 + 1
        self.classifier = nn.Linear((c + 2 * width) * pooled**2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn_in(x)
        h1 = F.relu(self.conv1(x))
        h2 = F.relu(self.conv2(h1))
        feats = [bn(self.pool(h)) for bn, h in zip(self.norms, (x, h1, h2), strict=True)]
        return self.classifier(torch.cat(feats, 1).flatten(1))

    def weight_layers(self) -> list[nn.Module]:
        """The learned weight layers: the readout only (the convs are fixed)."""
        return [self.classifier]


class ScatteringFeatureNet(nn.Module):
    """x -> Linear(BN(S x)), S the fixed first-order scattering (J = 2, L = 8); BN affines and readout learn."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, scales: int = 2, angles: int = 8) -> None:
        super().__init__()
        c, size = input_shape[0], input_shape[-1]
        self.scattering = FirstOrderScattering(size, scales, angles)
        channels = c * self.scattering.channels_per_input
        self.norm = nn.BatchNorm2d(channels)
        self.classifier = nn.Linear(channels * (-(-size // 2**scales)) ** 2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.norm(self.scattering(x)).flatten(1))

    def weight_layers(self) -> list[nn.Module]:
        """The learned weight layers: the readout only."""
        return [self.classifier]
