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
