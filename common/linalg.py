"""Small linear-algebra pieces shared by layer-alignment algorithms (float64 where it matters).

CPU decompositions run single-threaded: on small VMs (2 vCPUs) MKL's threaded eigh/svd of a
1024 x 1024 matrix was measured 4-40x slower than its single-threaded path (benchmarks/README.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def lapack_threads(tensor: torch.Tensor) -> Iterator[None]:
    """One intra-op thread while decomposing a CPU tensor; no change on accelerators."""
    if tensor.device.type != "cpu":
        yield
        return
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def sqrt_psd(cov: torch.Tensor) -> torch.Tensor:
    """Symmetric PSD square root C^{1/2} = V diag(√max(λ, 0)) Vᵀ."""
    with lapack_threads(cov):
        eigval, eigvec = torch.linalg.eigh(cov)
    return eigvec @ torch.diag(eigval.clamp_min(0).sqrt()) @ eigvec.T


def eigvalsh_desc(cov: torch.Tensor) -> torch.Tensor:
    """Eigenvalues of a symmetric matrix, largest first."""
    with lapack_threads(cov):
        return torch.linalg.eigvalsh(cov).flip(0)


def procrustes(cross: torch.Tensor) -> torch.Tensor:
    """Orthogonal Procrustes: A = U Vᵀ for K = U S Vᵀ, the orthogonal A maximising tr(Aᵀ K).

    With K = E[x_ref x_newᵀ], A minimises E‖x_ref − A x_new‖² over orthogonal matrices.
    """
    with lapack_threads(cross):
        u, _, vh = torch.linalg.svd(cross)
    return u @ vh


def procrustes_rows(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """source Q for Q = procrustes(sourceᵀ target): the orthogonal Q (D × D) minimising ‖source Q − target‖_F,
    for row sets source, target of shape (N, D) (weight alignment of White et al. 2024).

    With N < D the D × D decomposition is avoided: with QR factors sourceᵀ = Q1 T1, targetᵀ = Q2 T2 (D × N),
    sourceᵀ target = Q1 (T1 T2ᵀ) Q2ᵀ, so its polar factor acts on the rows of source as Q1 polar(T1 T2ᵀ) Q2ᵀ
    (the rest of Q maps the null space of source and does not change the product).
    """
    n, d = source.shape
    if n >= d:
        return source @ procrustes(source.T @ target)
    with lapack_threads(source):
        q1, t1 = torch.linalg.qr(source.T)
        q2, t2 = torch.linalg.qr(target.T)
    return source @ q1 @ procrustes(t1 @ t2.T) @ q2.T
