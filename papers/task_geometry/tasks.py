"""The task family of Alleman, Lindsey & Fusi (ICLR 2024): d latent bits, Walsh-weighted centres, k target bits.

Condition i ∈ {0 … n−1}, n = 2^d, has latent bits b_m(i) (binary digits of i) and signs s_m = 2b_m − 1. The
n − 1 Walsh (parity) functions h_S(i) = Π_{m∈S} s_m(i), S ≠ ∅, ordered by degree |S| (the first d are the
bits themselves), are orthogonal: Σ_i h_S(i) h_T(i) = n δ_ST. Condition centres and inputs:

    μ_i = Σ_j sqrt(π_j) h_j(i) e_j ∈ R^{n−1},      x = sqrt(D) · μ_i Q + σ ε,   ε ~ N(0, I_D),

Q an (n−1) × D matrix with orthonormal rows (so ‖sqrt(D) μ_i Q‖² = D), targets y = (b_1 … b_k) ∈ {0,1}^k.
The knob π lies on the simplex with weight a on each of the k target components and b on the other m =
n − 1 − k, and c = cos(π, 1_targets) = k a / (sqrt(k) · ‖π‖). Because the h_j are orthogonal and centred,
c is exactly the centred kernel alignment (linear CKA) between the input kernel μμᵀ and the target kernel.
Solving: a / b = c sqrt(m) / sqrt(k (1 − c²)), k a + m b = 1. The sweep runs over c ∈ [0, c_max],
c_max = sqrt(k / (n − 1)) (a = b: isotropic inputs); c = 0 puts no input variance on the targets.
"""

from __future__ import annotations

import itertools
import math

import lightning as L
import torch
from omegaconf import DictConfig
from torch import Tensor

from common.data import TensorBatches
from common.errors import UserError


def latent_bits(d: int) -> Tensor:
    """(2^d, d) float 0/1 bits of every condition (condition i = binary digits of i, lowest first)."""
    i = torch.arange(2**d)
    return ((i[:, None] >> torch.arange(d)) & 1).double()


def walsh_functions(d: int) -> Tensor:
    """(2^d, 2^d − 1) ±1 parity functions of the d bits, ordered by degree, then lexicographically."""
    signs = 2 * latent_bits(d) - 1
    subsets = [s for r in range(1, d + 1) for s in itertools.combinations(range(d), r)]
    return torch.stack([signs[:, list(s)].prod(1) for s in subsets], 1)


def c_max(d: int, k: int) -> float:
    """The isotropic end of the knob: sqrt(k / (2^d − 1))."""
    return math.sqrt(k / (2**d - 1))


def check_task(d: int, k: int, c: float, dim: int, kind: str = "walsh") -> None:
    if not 1 <= k <= d:
        raise UserError(f"task.k={k} must be in 1..task.d={d} (the targets are the first k latent bits).")
    if kind == "random_kernel":
        if not (0 <= c < 1 and k < 2**d - 1):
            raise UserError(f"random-kernel knob c={c} must be in [0, 1), with k < 2^d - 1 (got k={k}, d={d}).")
    elif not 0 <= c <= c_max(d, k) + 1e-12:
        raise UserError(f"task knob c={c} must be in [0, c_max(d={d}, k={k})] = [0, {c_max(d, k):.4f}].")
    if dim < 2**d - 1:
        raise UserError(f"task.dim={dim} must be >= 2^d - 1 = {2**d - 1}: the embedding needs that many "
                        "orthonormal rows.")


def knob_weights(d: int, k: int, c: float) -> Tensor:
    """π ∈ simplex (2^d − 1,): weight a on the k target components, b on the rest, cos(π, 1_targets) = c."""
    n1 = 2**d - 1
    m = n1 - k
    if m == 0:
        return torch.full((n1,), 1 / n1, dtype=torch.float64)
    ratio = c * math.sqrt(m) / math.sqrt(k * (1 - c * c))
    b = 1 / (k * ratio + m)
    pi = torch.full((n1,), b, dtype=torch.float64)
    pi[:k] = ratio * b
    return pi


def centres(d: int, k: int, c: float) -> Tensor:
    """(2^d, 2^d − 1) μ_i = Σ_j sqrt(π_j) h_j(i) e_j."""
    return walsh_functions(d) * knob_weights(d, k, c).sqrt()


def random_kernel_centres(d: int, k: int, c: float, generator: torch.Generator) -> Tensor:
    """(2^d, 2^d − 1) centres μ whose centred kernel is a random one with CKA(μμᵀ, K_targets) = c exactly.

    With U_t the k target bits and U_o the other centred directions (orthonormal columns, here the normalised
    Walsh functions), K_r = U_o G Gᵀ U_oᵀ / ‖G Gᵀ‖_F (G Gaussian: a random Wishart kernel orthogonal to the
    targets) and μμᵀ = α U_t U_tᵀ + K_r: ⟨μμᵀ, U_tU_tᵀ⟩ = α k, ‖μμᵀ‖² = α² k + 1, so CKA = α sqrt(k) /
    sqrt(α² k + 1) = c for α = c / sqrt(k (1 − c²)), c ∈ [0, 1). The same G serves every knob value (from
    `generator`); rows are scaled to mean squared norm 1, like the Walsh centres.
    """
    n = 2**d
    basis = walsh_functions(d) / math.sqrt(n)
    m = n - 1 - k
    g = torch.randn(m, m, generator=generator, dtype=torch.float64)
    rest = basis[:, k:] @ g / torch.linalg.matrix_norm(g @ g.T).sqrt()
    alpha = c / math.sqrt(k * (1 - c * c))
    mu = torch.cat([math.sqrt(alpha) * basis[:, :k], rest], 1)
    return mu / mu.square().sum(1).mean().sqrt()


def embedding(n_rows: int, dim: int, generator: torch.Generator) -> Tensor:
    """(n_rows, dim) with orthonormal rows (QR of a Gaussian matrix)."""
    q, _ = torch.linalg.qr(torch.randn(dim, n_rows, generator=generator, dtype=torch.float64))
    return q.T


def knob_values(d: int, k: int, count: int) -> list[float]:
    """`count` evenly spaced knob values over [0, c_max(d, k)]."""
    return torch.linspace(0, c_max(d, k), count, dtype=torch.float64).tolist()


def xor_block_means(dim: int, generator: torch.Generator) -> Tensor:
    """(3, D) directions m1, m2, m3 of the ε-separable XOR: each non-negative, supported on its own block of
    D/3 coordinates, with norm sqrt(D/3)."""
    block = dim // 3
    means = torch.zeros(3, dim, dtype=torch.float64)
    for i in range(3):
        m = torch.randn(block, generator=generator, dtype=torch.float64).abs()
        means[i, i * block:(i + 1) * block] = m / m.norm() * math.sqrt(block)
    return means


def xor_centres(eps: float, means: Tensor) -> Tensor:
    """(4, D) centres s1 m1 + s2 m2 + ε (s1 s2 ⋯ parity sign) m3 of the ε-separable XOR, s = 2b − 1: at ε = 0 the
    parity (the target) is not linearly separable; ε > 0 moves the two parity classes apart along m3."""
    signs = 2 * latent_bits(2) - 1
    parity = 2 * (latent_bits(2).sum(1) % 2) - 1
    return torch.cat([signs, eps * parity[:, None]], 1) @ means


class TaskDataModule(L.LightningDataModule):
    """A task at every knob value at once: batches of x (B, K, D) (the same conditions and noise for all K
    knob values: only the centres differ) and y (B, k) 0/1 targets. Train / val / test are independent
    noisy samples of uniformly drawn conditions; the embedding and the samples come from `task.seed`.

    task.kind "walsh": the main family (module docstring), knob c. "random_kernel": a random input kernel with
    alignment c to the targets (`random_kernel_centres`), embedded the same way. "xor": the ε-separable XOR (2
    bits, target their parity, D split into three blocks; `xor_centres`), knob ε ∈ [0, 1].
    """

    def __init__(self, cfg: DictConfig) -> None:
        super().__init__()
        t = cfg.task
        self.dim, self.noise, self.kind = t.dim, t.noise, t.kind
        self.cfg = cfg
        generator = torch.Generator().manual_seed(t.seed)
        if t.kind in ("walsh", "random_kernel"):
            self.d, self.k = t.d, t.k
            self.knobs = list(t.knobs) if t.knobs else knob_values(t.d, t.k, t.num_knobs)
            for c in self.knobs:
                check_task(t.d, t.k, c, t.dim, t.kind)
            q = embedding(2**t.d - 1, t.dim, generator)
            if t.kind == "walsh":
                mus = [centres(t.d, t.k, c) for c in self.knobs]
            else:
                state = generator.get_state()  # one random kernel for every knob value
                mus = [random_kernel_centres(t.d, t.k, c, generator.set_state(state)) for c in self.knobs]
            clean = [math.sqrt(t.dim) * mu @ q for mu in mus]
            self.latents = latent_bits(t.d)  # the targets are the first k latent bits
        elif t.kind == "xor":
            self.d, self.k = 2, 1
            self.knobs = list(t.knobs) if t.knobs else torch.linspace(0, 1, t.num_knobs).tolist()
            if t.dim % 3 or any(not 0 <= e <= 1 for e in self.knobs):
                raise UserError(f"the XOR task needs task.dim divisible by 3 (got {t.dim}) and ε in [0, 1] "
                                f"(got {self.knobs}).")
            means = xor_block_means(t.dim, generator)
            clean = [xor_centres(e, means) for e in self.knobs]
            bits = latent_bits(2)
            self.latents = torch.cat([bits.sum(1, keepdim=True) % 2, bits], 1)  # the target (parity) first
        else:
            raise UserError(f"Unknown task.kind '{t.kind}' (walsh | random_kernel | xor).")
        self.clean = torch.stack(clean).float()  # (K, n, D) noise-free inputs of every condition and knob value
        self.splits = {name: self._sample(size, generator)
                       for name, size in (("train", t.train_size), ("val", t.val_size), ("test", t.val_size))}

    def _sample(self, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        cond = torch.randint(self.clean.shape[1], (size,), generator=generator)
        eps = torch.randn(size, self.dim, generator=generator)
        x = self.clean[:, cond].transpose(0, 1) + self.noise * eps[:, None, :]  # (N, K, D)
        return x, self.targets[cond]

    @property
    def targets(self) -> Tensor:
        """(n, k) 0/1 targets of every condition: the first k columns of `latents`."""
        return self.latents[:, : self.k].float()

    def _batches(self, split: str, batch_size: int, seed: int | None) -> TensorBatches:
        x, y = self.splits[split]
        trainer = self.trainer
        return TensorBatches(x, y, batch_size, seed=seed,
                             epoch=(lambda: trainer.current_epoch) if trainer is not None else None)

    def train_dataloader(self) -> TensorBatches:
        return self._batches("train", self.cfg.data.batch_size, self.cfg.seed)

    def val_dataloader(self) -> TensorBatches:
        return self._batches("val", self.cfg.data.eval_batch_size, None)

    def test_dataloader(self) -> TensorBatches:
        return self._batches("test", self.cfg.data.eval_batch_size, None)
