"""Rainbow networks (Guth, Ménard, Rochette, Mallat, JMLR 2024, arXiv 2305.18512): sampling a network's
weights from the covariances of a trained one, with layer-by-layer alignment. Plain torch.

For any network exposing `weight_layers()` (Linear/Conv2d layers in forward order, classifier last):

1. Fit (Sec. 3): C_j = W_jᵀ W_j / N_j, uncentred, rows = output units (conv kernels flattened to
   C_in·k·k). Optionally averaged over several trained nets, optionally truncated to rank r.
2. Sample: W̃_j = G C_j^{1/2} with G iid N(0, 1) of shape N_j × D_j (symmetric PSD root), so that
   E[W̃ᵀW̃]/N = C.
3. Align (Sec. 3.2): with x_ref, x_new the inputs of layer j+1 in the reference and new networks
   (conv: batch × positions (× Re/Im) are samples of C channels),
       K = E[x_ref x_newᵀ] = U S Vᵀ,   A_{j+1} = U Vᵀ = argmin_{A orthogonal} E‖x_ref − A x_new‖².
   Since x_ref ≈ A x_new, a weight W written for the reference basis acts on the new net as W A
   (`rotate_input`), over the input-channel axis. (The layer-wise tools are in common.layerwise.)
4. Normalisation statistics of the new network are re-estimated before each alignment.
5. Classifier: the trained classifier rotated by the last alignment, W_cls A_{J+1}. No training.

Variants (paper Table 1): "rainbow" samples layers 1..J−1 and rotates the trained layer J;
"full" samples all J layers. Controls (ours): no alignment (A = I everywhere) and isotropic
sampling with matched variance (C replaced by tr(C)/D · I).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from common.layerwise import Batches, cross_covariance, reestimate_norm_stats, rotate_input
from common.linalg import eigvalsh_desc, lapack_threads, procrustes, sqrt_psd


def weight_rows(weight: torch.Tensor) -> torch.Tensor:
    """(N, C, k, k) or (N, D) -> (N, D): one row per output unit."""
    return weight.reshape(weight.shape[0], -1)


def fit_covariance(weights: Sequence[torch.Tensor], rank: int | None = None) -> torch.Tensor:
    """C = mean over nets of WᵀW / N (float64, uncentred); with `rank`, keep the top-r eigenspace."""
    rows = [weight_rows(w).double() for w in weights]
    cov = sum(r.T @ r / r.shape[0] for r in rows) / len(rows)
    if rank is not None:
        with lapack_threads(cov):
            eigval, eigvec = torch.linalg.eigh(cov)
        top = eigvec[:, -rank:]
        cov = top @ torch.diag(eigval[-rank:]) @ top.T
    return cov


def sample_weights(root: torch.Tensor, n_rows: int, generator: torch.Generator) -> torch.Tensor:
    """W̃ = G C^{1/2}, G ~ N(0, 1)^{n_rows × D}: rows iid N(0, C), given the root C^{1/2}."""
    gauss = torch.randn(n_rows, root.shape[0], generator=generator, dtype=torch.float64)  # CPU generator
    return gauss.to(root.device) @ root


def isotropic(cov: torch.Tensor) -> torch.Tensor:
    """The matched-variance control: tr(C)/D · I."""
    return torch.eye(cov.shape[0], dtype=cov.dtype) * cov.trace() / cov.shape[0]


def covariance_roots(reference: nn.Module, *, rank: int | None = None, covariance: str = "trained",
                     others: Sequence[nn.Module] = ()) -> list[torch.Tensor]:
    """C_j^{1/2} for every hidden weight layer, fitted on `reference` (and averaged with `others`, nets of
    the same architecture). covariance: "trained" (C_j) or "isotropic" (tr(C_j)/D_j · I, our control)."""
    nets = [reference, *others]
    roots = []
    for j in range(len(reference.weight_layers()) - 1):
        cov = fit_covariance([net.weight_layers()[j].weight.detach() for net in nets], rank)
        roots.append(isotropic(cov).sqrt() if covariance == "isotropic" else sqrt_psd(cov))
    return roots


def resample(reference: nn.Module, batches: Batches, n_sampled: int, generator: torch.Generator, *,
             align: bool = True, roots: Sequence[torch.Tensor] | None = None) -> nn.Module:
    """A new network whose first `n_sampled` weight layers are sampled, W̃_j = G C_j^{1/2}, later layers
    the reference's (rotated), each layer's input aligned to the reference (steps 1–5 above).

    roots: the C_j^{1/2} to sample from (default: `covariance_roots(reference)`; pass them to reuse one
    decomposition across samples and variants). Returns the new network in eval mode.
    """
    reference = reference.eval()
    new = copy.deepcopy(reference)
    ref_layers, new_layers = reference.weight_layers(), new.weight_layers()
    if not 0 <= n_sampled < len(ref_layers):
        raise ValueError(f"n_sampled={n_sampled} not in [0, {len(ref_layers) - 1}]: the classifier is never sampled")
    roots = covariance_roots(reference) if roots is None and n_sampled else roots
    rotation = None
    for j, (ref_layer, new_layer) in enumerate(zip(ref_layers, new_layers, strict=True)):
        weight = ref_layer.weight.detach()
        if j < n_sampled:
            weight = sample_weights(roots[j], weight.shape[0], generator).reshape(weight.shape)
        if rotation is not None:
            weight = rotate_input(weight.double(), rotation)
        new_layer.weight.data.copy_(weight.to(new_layer.weight.dtype))
        if j + 1 < len(ref_layers) and align:  # the next layer's input, as the new net computes it now
            reestimate_norm_stats(new, batches, until=new_layers[j + 1])
            rotation = procrustes(cross_covariance(reference, ref_layers[j + 1], new, new_layers[j + 1], batches))
    reestimate_norm_stats(new, batches)
    return new.eval()


def effective_rank(cov: torch.Tensor, fraction: float = 0.9) -> int:
    """The number of top eigenvalues of C holding `fraction` of its trace (low-rank claim, Sec. 4)."""
    eigval = eigvalsh_desc(cov).clamp_min(0)
    share = eigval.cumsum(0) / eigval.sum()
    return int((share < fraction).sum().item()) + 1
