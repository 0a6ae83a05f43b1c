"""Centred kernel alignment (CKA): the toolkit every paper of the suite uses.

    CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) · HSIC(L, L))          (Kornblith et al. 2019, eq. 2)

on Gram matrices K = k(X), L = l(Y) of the same n examples (rows), with

- biased HSIC      HSIC_b(K, L) = tr(K H L H) / (n − 1)²,  H = I − 11ᵀ/n                (Gretton 2005)
- unbiased HSIC    HSIC_u(K, L) = [tr(K̃L̃) + 1ᵀK̃1 · 1ᵀL̃1 / ((n−1)(n−2)) − 2/(n−2) · 1ᵀK̃L̃1] / (n(n−3)),
                   K̃ = K with its diagonal set to zero                                  (Song et al. 2012)
  ("debiased" CKA; needs n ≥ 4).
- kernels: linear k(X) = XXᵀ; RBF k(X)_ij = exp(−d²_ij / (2 t² median(d²))), the median over all n²
  squared distances (zeros included, the two middle values averaged as numpy does), t = threshold.

Numerics: every estimate is accumulated in float64; for float32 inputs the large matrix products
(Grams, XᵀY) run in float32 on features already centred in float64, which costs ~1e-9 in CKA. Linear
CKA works in feature space (d×d products) when n > d and in Gram space (n×n) otherwise: the same value.
Features are centred (column means removed) first: HSIC_b and HSIC_u are exactly invariant to a common
feature shift, and centring keeps large offsets (ReLU features) from cancelling catastrophically.
Results are never clamped to [0, 1].

Minibatch CKA (Nguyen et al. 2021): CKA_mb = mean_b HSIC_u(K_b, L_b) / sqrt(mean_b HSIC_u(K_b, K_b) ·
mean_b HSIC_u(L_b, L_b)) over batches b, so a layer × layer map over a dataset never holds all of its
activations. `MinibatchCKA` accumulates the sums as a torchmetrics Metric (summed across DDP ranks);
`batch_cka_map` is the differentiable single-batch map.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from torch import Tensor, nn
from torchmetrics import Metric
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names


def _as_matrix(x: Tensor, name: str = "x") -> Tensor:
    """(n, ...) -> (n, d) float64, checked: at least 2-D, finite."""
    if x.dim() < 2:
        raise ValueError(f"{name} must be (n, d) (or (n, ...) to flatten), got shape {tuple(x.shape)}")
    x = x.flatten(1).double()
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} holds NaN or inf values")
    return x


def _check_pair(x: Tensor, y: Tensor) -> None:
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must hold the same examples: {x.shape[0]} rows vs {y.shape[0]}")


def _check_debiased(n: int) -> None:
    if n < 4:
        raise ValueError(f"the debiased (unbiased HSIC) estimator needs n >= 4 examples, got {n}")


def centre(x: Tensor) -> Tensor:
    """Remove column means: X − 1 meanᵀ."""
    return x - x.mean(0, keepdim=True)


def gram_linear(x: Tensor) -> Tensor:
    """K = X Xᵀ (n × n, float64)."""
    x = _as_matrix(x)
    return x @ x.T


def gram_rbf(x: Tensor, threshold: float = 1.0) -> Tensor:
    """K_ij = exp(−d²_ij / (2 t² median(d²))), median over all n² squared distances (numpy's median)."""
    x = _as_matrix(x)
    sq_norms = x.square().sum(1)
    sq_dist = (sq_norms[:, None] + sq_norms[None, :] - 2 * x @ x.T).clamp_min(0)
    flat = sq_dist.flatten()
    k = flat.numel() // 2  # numpy: the mean of the two middle values when the count is even
    middle = flat.kthvalue(k + 1).values if flat.numel() % 2 else (flat.kthvalue(k).values
                                                                     + flat.kthvalue(k + 1).values) / 2
    return torch.exp(-sq_dist / (2 * threshold**2 * middle))


def _centre_gram(k: Tensor) -> Tensor:
    """H K H."""
    return k - k.mean(0, keepdim=True) - k.mean(1, keepdim=True) + k.mean()


def hsic(k: Tensor, l: Tensor, debiased: bool = False) -> Tensor:
    """HSIC_b or HSIC_u (module docstring) of two n × n Gram matrices, float64."""
    k, l = k.double(), l.double()
    n = k.shape[0]
    if k.shape != (n, n) or l.shape != (n, n):
        raise ValueError(f"hsic needs two n × n Gram matrices, got {tuple(k.shape)} and {tuple(l.shape)}")
    if not debiased:
        return (_centre_gram(k) * _centre_gram(l)).sum() / (n - 1) ** 2
    _check_debiased(n)
    k0, l0 = k - torch.diag(k.diagonal()), l - torch.diag(l.diagonal())
    rk, rl = k0.sum(1), l0.sum(1)
    return ((k0 * l0).sum() + rk.sum() * rl.sum() / ((n - 1) * (n - 2)) - 2 / (n - 2) * rk @ rl) / (n * (n - 3))


def _linear_hsic_features(x: Tensor, y: Tensor, debiased: bool, low_precision: bool) -> Tensor:
    """HSIC of K = XXᵀ, L = YYᵀ from d_x × d_y products (no n × n matrix), X and Y centred (float64);
    the d_x × d_y product runs in float32 when the inputs came as float32 (see `_gram`)."""
    n = x.shape[0]
    product = (x.float().T @ y.float()).double() if low_precision else x.T @ y
    cross = product.square().sum()  # tr(KL) = ‖XᵀY‖²_F
    if not debiased:
        return cross / (n - 1) ** 2
    _check_debiased(n)
    dk, dl = x.square().sum(1), y.square().sum(1)  # diagonals of K and L
    rk, rl = x @ x.sum(0) - dk, y @ y.sum(0) - dl  # K̃1 and L̃1
    trace = cross - dk @ dl  # tr(K̃L̃)
    return (trace + rk.sum() * rl.sum() / ((n - 1) * (n - 2)) - 2 / (n - 2) * rk @ rl) / (n * (n - 3))


def cka(x: Tensor, y: Tensor, kernel: str = "linear", threshold: float | None = None,
        debiased: bool = False) -> Tensor:
    """CKA between two representations of the same n examples, (n, d_x) and (n, d_y) (or (n, ...),
    flattened). kernel: "linear" or "rbf" (threshold t: bandwidth t × median distance, default 1).
    Returns a float64 scalar tensor, differentiable, not clamped."""
    low = x.dtype in (torch.float32, torch.float16, torch.bfloat16) and y.dtype == x.dtype
    x, y = centre(_as_matrix(x, "x")), centre(_as_matrix(y, "y"))
    _check_pair(x, y)
    if kernel == "linear" and x.shape[0] > max(x.shape[1], y.shape[1]):
        pair = (_linear_hsic_features(x, y, debiased, low), _linear_hsic_features(x, x, debiased, low),
                _linear_hsic_features(y, y, debiased, low))
    else:
        if kernel == "linear":
            k, l = x @ x.T, y @ y.T
        elif kernel == "rbf":
            t = 1.0 if threshold is None else threshold
            k, l = gram_rbf(x, t), gram_rbf(y, t)
        else:
            raise ValueError(f"unknown kernel '{kernel}' (linear | rbf)")
        pair = (hsic(k, l, debiased), hsic(k, k, debiased), hsic(l, l, debiased))
    xy, xx, yy = pair
    return xy / (xx * yy).sqrt()


def _gram(f: Tensor, name: str) -> Tensor:
    """Linear Gram of centred float64 features; its products run in float32 when the features came as
    float32 or lower (centring first keeps that accurate: ~1e-9 on CKA), the result is float64."""
    centred = centre(_as_matrix(f, name))
    if f.dtype in (torch.float32, torch.float16, torch.bfloat16):
        low = centred.float()
        return (low @ low.T).double()
    return centred @ centred.T


class BatchTerms:
    """The per-layer quantities of one batch that every HSIC_u needs: K̃ flattened (L × n²), K̃1 (L × n),
    1ᵀK̃1 (L). Built once per network and batch, then shared by all layer pairs."""

    def __init__(self, features: Sequence[Tensor]) -> None:
        self.n = features[0].shape[0]
        _check_debiased(self.n)
        grams = []
        for i, f in enumerate(features):
            if f.shape[0] != self.n:
                raise ValueError(f"every layer must hold the batch's {self.n} examples, layer {i} has {f.shape[0]}")
            k = _gram(f, f"layer {i}")
            grams.append(k - torch.diag(k.diagonal()))
        k0 = torch.stack(grams)  # (L, n, n)
        self.flat = k0.flatten(1)
        self.rows = k0.sum(2)
        self.sums = self.rows.sum(1)

    def hsic_with(self, other: BatchTerms) -> Tensor:
        """HSIC_u(K_i, L_j) for every layer pair (L_a × L_b), from three matrix products."""
        n = self.n
        if other.n != n:
            raise ValueError(f"both networks must see the same batch: {n} vs {other.n} examples")
        return (self.flat @ other.flat.T + torch.outer(self.sums, other.sums) / ((n - 1) * (n - 2))
                - 2 / (n - 2) * self.rows @ other.rows.T) / (n * (n - 3))

    def self_hsic(self) -> Tensor:
        """HSIC_u(K_i, K_i) per layer."""
        n = self.n
        return ((self.flat * self.flat).sum(1) + self.sums**2 / ((n - 1) * (n - 2))
                - 2 / (n - 2) * (self.rows * self.rows).sum(1)) / (n * (n - 3))


def batch_cka_map(features_a: Sequence[Tensor], features_b: Sequence[Tensor]) -> Tensor:
    """Debiased linear CKA between every layer pair of ONE batch (L_a × L_b), differentiable: the map a
    loss can be put on (Davari et al. Sec. 4.3)."""
    a, b = BatchTerms(features_a), BatchTerms(features_b)
    return a.hsic_with(b) / torch.outer(a.self_hsic(), b.self_hsic()).sqrt()


class MinibatchCKA(Metric):
    """Layer × layer minibatch CKA (Nguyen et al. 2021) of two networks' features, as a Metric.

    `update(features_a, features_b)` takes one batch's features of each network (lists of (n, ...)
    tensors, n ≥ 4); `compute()` returns the L_a × L_b map (a 0-d tensor when 1 × 1: torchmetrics
    squeezes scalars). The HSIC sums add up across DDP ranks.
    Accumulation is detached (use `batch_cka_map` for gradients).
    """

    full_state_update = False
    higher_is_better = None

    def __init__(self, num_layers_a: int, num_layers_b: int, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.add_state("hsic_ab", torch.zeros(num_layers_a, num_layers_b, dtype=torch.float64),
                       dist_reduce_fx="sum")
        self.add_state("hsic_aa", torch.zeros(num_layers_a, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("hsic_bb", torch.zeros(num_layers_b, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("batches", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, features_a: Sequence[Tensor], features_b: Sequence[Tensor]) -> None:
        with torch.no_grad():
            a, b = BatchTerms(features_a), BatchTerms(features_b)
            self.hsic_ab += a.hsic_with(b)
            self.hsic_aa += a.self_hsic()
            self.hsic_bb += b.self_hsic()
            self.batches += 1

    def compute(self) -> Tensor:
        if self.batches == 0:
            raise ValueError("MinibatchCKA.compute() before any update: the loader was empty")
        return self.hsic_ab / torch.outer(self.hsic_aa, self.hsic_bb).sqrt()


def _named_layers(model: nn.Module, names: Sequence[str]) -> list[nn.Module]:
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        valid = ", ".join(n for n in modules if n)
        raise ValueError(f"no layer named {missing} in {type(model).__name__}; valid names: {valid}")
    return [modules[n] for n in names]


def _capture(model: nn.Module, layers: Sequence[nn.Module], x: Tensor) -> list[Tensor]:
    """The outputs of `layers` when `model` runs on x (forward hooks)."""
    outputs: dict[int, Tensor] = {}
    handles = [layer.register_forward_hook(lambda _m, _i, out, i=i: outputs.__setitem__(i, out))
               for i, layer in enumerate(layers)]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return [outputs[i] for i in range(len(layers))]


def layer_extractor(model: nn.Module, names: Sequence[str], how: str = "hooks"
                    ) -> Callable[[Tensor], list[Tensor]]:
    """x -> the outputs of the named layers of `model` on x, in the order of `names`.

    how="hooks": forward hooks on the named modules (`model.named_modules()` names); how="fx": a
    torch.fx feature extractor (torchvision's `create_feature_extractor`) on graph node names (a module's
    name stands for its last node), which also reaches functional ops (e.g. "add", "flatten") that have no
    module of their own."""
    if how == "hooks":
        modules = _named_layers(model, names)
        return lambda x: _capture(model, modules, x)
    if how == "fx":
        train_nodes, eval_nodes = get_graph_node_names(model)
        valid = eval_nodes if not model.training else train_nodes
        # a module name stands for its last node (torchvision's convention): "blocks.0" -> "blocks.0.2"
        missing = [n for n in names if not any(v == n or v.startswith(n + ".") for v in valid)]
        if missing:
            raise ValueError(f"no graph node named {missing} in {type(model).__name__}; valid names: "
                             f"{', '.join(valid)}")
        extractor = create_feature_extractor(model, return_nodes=list(names))
        return lambda x: list(extractor(x).values())
    raise ValueError(f"unknown extractor '{how}' (hooks | fx)")


@torch.no_grad()
def cka_map(model_a: nn.Module, model_b: nn.Module, dataloader: Iterable, layers_a: Sequence[str],
            layers_b: Sequence[str], extractor: str = "hooks") -> Tensor:
    """Minibatch debiased linear CKA between the named layers of two models (L_a × L_b), one batch at a
    time: activations of one batch are all that is ever held. Batches are x or (x, ...) tuples. Each model
    gets its own extractor (`layer_extractor`: "hooks" on module names or "fx" on graph node names).
    The map is over this loader on this process (no DDP sum: use `MinibatchCKA` in a LightningModule for that)."""
    extract_a, extract_b = layer_extractor(model_a, layers_a, extractor), layer_extractor(model_b, layers_b, extractor)
    metric = MinibatchCKA(len(layers_a), len(layers_b), sync_on_compute=False)
    for batch in dataloader:
        x = batch[0] if isinstance(batch, list | tuple) else batch
        feats_a, feats_b = extract_a(x), extract_b(x)
        for which, names, feats in (("model_a", layers_a, feats_a), ("model_b", layers_b, feats_b)):
            for name, f in zip(names, feats, strict=True):
                if not torch.isfinite(f).all():
                    raise ValueError(f"the activations of layer '{name}' of {which} hold NaN or inf values")
        metric.update(feats_a, feats_b)
    if metric.batches == 0:
        raise ValueError("cka_map got an empty loader: no batch to compare the models on")
    return metric.compute().reshape(len(layers_a), len(layers_b))  # torchmetrics squeezes a 1 × 1 map
