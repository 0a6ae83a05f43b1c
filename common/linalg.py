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
    if tensor.device.type != "cpu" or torch.compiler.is_compiling():  # thread settings cannot be traced
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


class _Polar(torch.autograd.Function):
    """Q = U Vᵀ for K = U S Vᵀ, with the backward of `polar_factor`."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, cross: torch.Tensor, rtol: float) -> torch.Tensor:
        # A non-finite K (training diverged) would make LAPACK raise an opaque convergence error: decompose zeros
        # instead and return NaN, so the NaN reaches the loss and the trainer's non-finite-loss check names the
        # step (no host sync: the test stays on the device).
        # Under mixed precision (autocast) the decomposition and U Vᵀ stay in K's dtype, promoted to float32.
        cross = cross.to(torch.promote_types(cross.dtype, torch.float32))
        finite = torch.isfinite(cross).all()
        with lapack_threads(cross), torch.autocast(cross.device.type, enabled=False):
            u, s, vh = torch.linalg.svd(torch.where(finite, cross, torch.zeros_like(cross)))
            q = u @ vh
        ctx.save_for_backward(u, s, vh)
        ctx.rtol = rtol
        return q.masked_fill(~finite, float("nan"))

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        u, s, vh = ctx.saved_tensors
        v = vh.mT
        h = u.mT @ grad.to(u.dtype) @ v
        total = s[:, None] + s[None, :]  # s_i + s_j
        eps = (ctx.rtol * s.max()).clamp_min(torch.finfo(s.dtype).tiny ** 0.5)
        inverse = total / (total.square() + eps.square())  # ≈ 1 / (s_i + s_j), 0 where both vanish
        return u @ ((h - h.mT) * inverse) @ vh, None


def polar_factor(cross: torch.Tensor, rtol: float = 1e-4) -> torch.Tensor:
    """The orthogonal polar factor Q = U Vᵀ of a square K = U S Vᵀ (the Q maximising tr(Qᵀ K)), differentiable.

    Backward: with K = U S Vᵀ the differential is dQ = U Ω Vᵀ, Ω_ij = (M_ij − M_ji) / (s_i + s_j), M = Uᵀ dK V,
    so for an upstream gradient G = ∂L/∂Q,

        ∂L/∂K = U [(H − Hᵀ) ∘ F] Vᵀ,   H = Uᵀ G V,   F_ij = 1 / (s_i + s_j).

    The 1/(s_i − s_j) terms of a generic SVD backward cancel, so repeated singular values are harmless; only
    s_i + s_j → 0 is singular (rank-deficient K: Q is then not unique). F is regularised as
    F_ij = (s_i + s_j) / ((s_i + s_j)² + ε²), ε = rtol · s_max: exact to a relative (ε / (s_i + s_j))² where
    s_i + s_j ≫ ε, bounded by 1 / (2ε), and 0 for two null directions (whose rotation no loss can see).
    Never NaN for a finite K, the zero matrix included (Q is then the SVD's completion, the gradient 0); a K with
    a NaN or inf entry gives an all-NaN Q (never a LAPACK error), so a diverged step ends as a non-finite loss.
    """
    return _Polar.apply(cross, rtol)
