"""Layer-by-layer tools shared by the rainbow family of papers (Guth et al. 2024; White et al. 2024): read the
input a layer receives, the cross-covariance of two networks' inputs at corresponding layers, rotate a weight's
input channels, re-estimate normalisation statistics, score a classifier. Plain torch.

Alignment (Guth et al. Sec. 3.2): with x_ref, x_new the inputs of corresponding layers (conv: batch × positions
(× Re/Im) are samples of C channels), K = E[x_ref x_newᵀ] = U S Vᵀ and A = U Vᵀ (`common.linalg.procrustes`)
minimises E‖x_ref − A x_new‖² over orthogonal A. Since x_ref ≈ A x_new, a weight W written for the reference
basis acts on the new network as W A (`rotate_input`), over the input-channel axis.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

Batches = Callable[[], Iterable[torch.Tensor]]  # a fresh pass over the training inputs


def rotate_input(weight: torch.Tensor, align: torch.Tensor) -> torch.Tensor:
    """W A over the input-channel axis: W'[n, c', ...] = Σ_c W[n, c, ...] A[c, c'].

    Works for Linear (N, C), Conv2d (N, C, k, k) and a flattened readout (N, C·H·W), channel-major.
    """
    n, c = weight.shape[0], align.shape[0]
    grouped = weight.reshape(n, c, -1)  # (N, C, m)
    return torch.einsum("ncm,cd->ndm", grouped, align.to(weight.dtype)).reshape(weight.shape)


def channel_samples(x: torch.Tensor) -> torch.Tensor:
    """A layer input as samples of its channels: (B, D) -> (B, D); (B, C, ...) -> (B·..., C);
    complex tensors count Re and Im as two samples."""
    if x.is_complex():
        x = torch.view_as_real(x).movedim(-1, 0).flatten(0, 1)  # (2B, C, ...)
    if x.dim() > 2:
        x = x.movedim(1, -1).reshape(-1, x.shape[1])
    return x


class _Reached(Exception):
    """Stops a forward pass once it reaches a given layer's input."""


def input_of(net: nn.Module, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The input `layer` receives when `net` runs on x; the forward pass stops there (later layers
    cost nothing)."""
    captured: list[torch.Tensor] = []

    def hook(_module: nn.Module, args: tuple) -> None:
        captured.append(args[0])
        raise _Reached

    handle = layer.register_forward_pre_hook(hook)
    try:
        net(x)
    except _Reached:
        pass
    finally:
        handle.remove()
    return captured[0]


@torch.no_grad()
def cross_covariance(ref: nn.Module, ref_layer: nn.Module, new: nn.Module, new_layer: nn.Module,
                     batches: Batches) -> torch.Tensor:
    """K = E[x_ref x_newᵀ] over the inputs of `ref_layer` / `new_layer` (float64, uncentred)."""
    cross, count = 0.0, 0
    for x in batches():
        x_ref = channel_samples(input_of(ref, ref_layer, x)).double()
        x_new = channel_samples(input_of(new, new_layer, x)).double()
        cross = cross + x_ref.T @ x_new
        count += x_ref.shape[0]
    return cross / count


def norm_layers(net: nn.Module) -> list[nn.Module]:
    """Layers with running statistics (BatchNorm and any module with `reset_running_stats`)."""
    return [m for m in net.modules() if hasattr(m, "reset_running_stats") and hasattr(m, "momentum")]


@torch.no_grad()
def reestimate_norm_stats(net: nn.Module, batches: Batches, until: nn.Module | None = None) -> None:
    """Reset every normalisation layer and re-estimate its statistics with one pass in train mode
    (momentum=None: a cumulative average, i.e. the exact mean of the batch statistics).

    With `until`, the pass stops at that layer's input: only the statistics before it are re-estimated
    (those after stay reset), which is all an alignment at that layer needs.
    """
    layers = norm_layers(net)
    if not layers:
        return
    saved = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None
    net.train()
    for x in batches():
        if until is None:
            net(x)
        else:
            input_of(net, until, x)
    net.eval()
    for m, momentum in zip(layers, saved, strict=True):
        m.momentum = momentum


@torch.no_grad()
def correct(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Per-example top-1 correctness (bool, N) of `net` in eval mode on the whole of (x, y)."""
    net.eval()
    return torch.cat([net(xb).argmax(-1) == yb for xb, yb in zip(x.split(batch_size), y.split(batch_size),
                                                                  strict=True)])


def evaluate(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    """Top-1 accuracy of `net` (eval mode) on the whole of (x, y)."""
    return correct(net, x, y, batch_size).float().mean().item()


def fit_head(head: nn.Linear, features: torch.Tensor, y: torch.Tensor, epochs: int, lr: float, batch_size: int,
             generator: torch.Generator) -> nn.Linear:
    """Retrain a Linear head in place on frozen features (N, C): cross-entropy, SGD with momentum 0.9, `epochs`
    shuffled passes (head retraining after resampling, White et al. 2024)."""
    opt = torch.optim.SGD(head.parameters(), lr=lr, momentum=0.9)
    with torch.enable_grad():
        for _ in range(epochs):
            for idx in torch.randperm(len(y), generator=generator).to(y.device).split(batch_size):
                opt.zero_grad(set_to_none=True)
                nn.functional.cross_entropy(head(features[idx]), y[idx]).backward()
                opt.step()
    return head
