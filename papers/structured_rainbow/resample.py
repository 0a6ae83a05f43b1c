"""Resampling a trained FactConv network with alignment (White et al. 2024, "Learning and Aligning Structured
Random Feature Networks"; checked against glomerulus-lab/fact-conv, rainbow.py). Plain torch.

For every weight layer of the reference, in module order (`weight_layers()`: convs, then the classifier):

1. Fresh noise: G drawn from the training law of W0 (`draw_noise`), the trained factors kept,
   W̃ = G (R_c ⊗ R_s).
2. Weight alignment (WA): G ← G Q with Q = argmin_{Q orthogonal} ‖G Q − W0_ref‖_F = polar(Gᵀ W0_ref), D × D,
   D = C_in k² (`procrustes_rows`). We report cos(G Q, W0_ref) = ⟨GQ, W0_ref⟩ / (‖GQ‖ ‖W0_ref‖) beside every WA
   result: for C_out < D (every 3×3 conv with C_out < 9 C_in) the N rows of G and W0_ref are nearly orthogonal
   sets of equal norm and Q can map one onto the other, so the cosine is ≈ 1 and "resampled + WA" is close to
   a copy of the trained network.
3. Activation alignment (ACA, from the second layer on: the first sees the image in both nets): the new net's
   normalisation statistics re-estimated up to this layer, K = E[x_ref x_newᵀ] at its input (batch × positions
   as samples), A = polar(K), W̃ ← W̃ A over the input channels (`common.layerwise`).
4. The classifier is the trained one, rotated by the alignment at its input (ACA), bias kept.
5. Every normalisation layer of the new net is re-estimated (reset + one train-mode pass).

The new net's convs are plain nn.Conv2d holding W̃ (A folded in): a sampled network is an ordinary network.

Rank-deficient K (fewer samples than channels, or channels that are always zero, e.g. dead ReLUs): the polar
factor is then not unique; `procrustes` returns the SVD's completion, which (generically) acts only on directions
the new net's inputs never take on the alignment data, so on those data every completion computes the same thing.
Conv layers have batch × positions samples (≥ 4 × 4 × examples at the ResNet's last stage), so this happens only
with dead channels or tiny `align_examples`.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from common.layerwise import Batches, cross_covariance, reestimate_norm_stats, rotate_input
from common.linalg import procrustes, procrustes_rows
from common.models.factconv import FactConv2d, draw_noise


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """⟨a, b⟩ / (‖a‖ ‖b‖) over all entries."""
    return ((a * b).sum() / (a.norm() * b.norm())).item()


def fresh_noise(layer: FactConv2d, generator: torch.Generator, weight_align: bool) -> tuple[torch.Tensor, dict]:
    """New noise for `layer` (aligned to its reference noise with WA) and the cosines to the reference noise
    before (`fresh_cosine`, ≈ 0) and after (`wa_cosine`) weight alignment."""
    ref = layer.noise.double().flatten(1)  # (C_out, D)
    noise = draw_noise(tuple(layer.noise.shape), generator).to(ref).flatten(1)
    stats = {"c_out": ref.shape[0], "d": ref.shape[1], "fresh_cosine": cosine(noise, ref)}
    if weight_align:
        noise = procrustes_rows(noise, ref)
        stats["wa_cosine"] = cosine(noise, ref)
    return noise.reshape(layer.noise.shape), stats


def _install(net: nn.Module, name: str, layer: nn.Module, weight: torch.Tensor) -> None:
    """Put `weight` into the layer called `name` of `net`; a FactConv2d becomes a plain nn.Conv2d."""
    if isinstance(layer, FactConv2d):
        conv = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding,
                         bias=False, device=layer.noise.device, dtype=layer.noise.dtype)
        parent, _, child = name.rpartition(".")
        setattr(net.get_submodule(parent), child, conv)
        layer = conv
    layer.weight.data.copy_(weight.to(layer.weight.dtype))


def resample_factconv(reference: nn.Module, batches: Batches, generator: torch.Generator, *,
                      weight_align: bool = True, activation_align: bool = True) -> tuple[nn.Module, list[dict]]:
    """A network with fresh noise in every FactConv layer of `reference`, aligned by WA and/or ACA (steps 1-5).

    Returns the new network (eval mode) and one record per FactConv layer: its name, C_out, D and the noise
    cosines. With both alignments off, only the normalisation statistics are re-estimated (our control).
    """
    reference = reference.eval()
    new = copy.deepcopy(reference)
    names = {module: name for name, module in new.named_modules()}
    records = []
    for j, (ref_layer, new_layer) in enumerate(zip(reference.weight_layers(), new.weight_layers(), strict=True)):
        with torch.no_grad():
            if isinstance(ref_layer, FactConv2d):
                noise, stats = fresh_noise(ref_layer, generator, weight_align)
                weight = ref_layer.weight_from(noise)
                records.append({"layer": names[new_layer], **stats})
            else:
                weight = ref_layer.weight.detach().double()
        if activation_align and j > 0:
            reestimate_norm_stats(new, batches, until=new_layer)
            weight = rotate_input(weight, procrustes(cross_covariance(reference, ref_layer, new, new_layer, batches)))
        _install(new, names[new_layer], new_layer, weight)
    reestimate_norm_stats(new, batches)
    return new.eval(), records
