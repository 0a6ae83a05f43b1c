"""Representational geometry of a layer over a set of task conditions: kernel alignment, CCGP, parallelism
score, linear decodability, shattering dimension.

Definitions follow Bernardi et al. (Cell 2020, "The geometry of abstraction in the hippocampus and prefrontal
cortex", STAR Methods) as used by Alleman, Lindsey & Fusi (ICLR 2024, "Task structure and nonlinearity jointly
determine learned representational geometry") and their code (Kelarion/repler, src/dichotomies.py). Notation:
n conditions with centres z_1..z_n (rows of `centres`, e.g. the noise-free hidden activity of each condition),
samples x (N, h) with condition ids c (N,), a dichotomy y ∈ {0,1}^n splitting the conditions into k = n/2
positives P_1 < … < P_k (y = 1) and k negatives.

Every classifier is a linear SVM, sklearn's `LinearSVC()` with its defaults (squared hinge, C = 1, intercept):
the classifier of the authors' analysis (`svm.LinearSVC()` in repler's scripts), and a fit on a few thousand
128-d samples takes tens of milliseconds. Accuracies are fractions of test samples classified correctly.

Chance levels: pairing conditions by distance selects pairs whose coding vectors align a little, so on random
centres the min-distance parallelism score is ≈ 0.3/√h rather than 0, and the pair-protocol CCGP of 8 conditions
is ≈ 0.57 rather than 0.5 (for any h); with a pairing independent of the data both are exactly at chance in
expectation (tests/test_geometry.py measures all four).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.svm import LinearSVC
from torch import Tensor

from common.metrics.cka import cka

EXHAUSTIVE_MAX_POSITIVES = 8  # 8! = 40,320 bijections: the largest exhaustive "max" pairing
SEARCH_RESTARTS = 16  # random starting bijections of the "max" pairing search beyond that
PROTOCOLS = ("pair", "half")
PAIRINGS = ("min_distance", "max")


# ---------------------------------------------------------------- validation


def _matrix(x: Tensor, name: str) -> np.ndarray:
    """(n, h) tensor -> float64 numpy, checked: 2-D, at least one row, finite."""
    if x.dim() != 2 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty (n, h) matrix, got shape {tuple(x.shape)}")
    out = x.detach().cpu().double().numpy()
    if not np.isfinite(out).all():
        raise ValueError(f"{name} holds NaN or inf values")
    return out


def _check_samples(samples: Tensor, conditions: Tensor, n_conditions: int) -> None:
    """samples (N, h) and (N,) integer condition ids in [0, n_conditions)."""
    if samples.dim() != 2 or samples.shape[0] == 0:
        raise ValueError(f"samples must be a non-empty (N, h) matrix, got shape {tuple(samples.shape)}")
    if conditions.dim() != 1 or conditions.shape[0] != samples.shape[0]:
        raise ValueError(f"conditions must be (N,) with one id per sample: got shape {tuple(conditions.shape)} "
                         f"for {samples.shape[0]} samples")
    if conditions.dtype.is_floating_point or conditions.dtype.is_complex or conditions.dtype == torch.bool:
        raise ValueError(f"conditions must hold integer condition ids, got dtype {conditions.dtype}")
    low, high = int(conditions.min()), int(conditions.max())
    if low < 0 or high >= n_conditions:
        raise ValueError(f"condition ids must lie in [0, {n_conditions}), got {low}..{high}")


def _samples(samples: Tensor, conditions: Tensor, n_conditions: int) -> tuple[np.ndarray, np.ndarray]:
    """Checked samples (N, h) float64 and condition ids (N,) int64, as numpy."""
    _check_samples(samples, conditions, n_conditions)
    return _matrix(samples, "samples"), conditions.detach().cpu().numpy().astype(np.int64)


def _binary(labels: Tensor, name: str) -> np.ndarray:
    """(n,) 0/1 vector (any dtype) -> int64 numpy."""
    if labels.dim() != 1:
        raise ValueError(f"{name} must be a (n,) vector over conditions, got shape {tuple(labels.shape)}")
    y = labels.detach().cpu().double().numpy()
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"{name} must hold only 0 and 1, got values {np.unique(y).tolist()}")
    return y.astype(np.int64)


def _balanced(y: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Positive and negative condition ids of a balanced 0/1 dichotomy (n/2 of each)."""
    if 2 * y.sum() != len(y) or len(y) < 2:
        raise ValueError(f"{name} must be a balanced dichotomy (n/2 positives, n ≥ 2): {y.sum()} of {len(y)} "
                         f"conditions are positive")
    return np.flatnonzero(y == 1), np.flatnonzero(y == 0)


def _dichotomy(labels: Tensor, n_conditions: int) -> tuple[np.ndarray, np.ndarray]:
    """Positive and negative ids of the balanced dichotomy `labels` over n_conditions conditions."""
    y = _binary(labels, "labels")
    if len(y) != n_conditions:
        raise ValueError(f"labels has {len(y)} entries but there are {n_conditions} conditions (centres rows)")
    return _balanced(y, "labels")


# ---------------------------------------------------------------- kernel alignment and centres


def kernel_alignment(features: Tensor, reference: Tensor) -> float:
    """Centred linear kernel alignment CKA(K_z, K_r) = HSIC(K_z, K_r) / sqrt(HSIC(K_z, K_z) HSIC(K_r, K_r)),
    K_z = Z Zᵀ, K_r = R Rᵀ, biased HSIC (`common.metrics.cka.cka`), between (n, h) features and an (n, r)
    reference of the same n conditions: e.g. the hidden centres against the input embedding of the centres
    ("input alignment") or against the 0/1 targets ("target alignment"; Alleman et al.). 1 when the
    features are an orthogonal transform × scale (plus a shift) of the reference; NaN when either is constant."""
    z, r = _matrix(features, "features"), _matrix(reference, "reference")
    if len(z) != len(r) or len(z) < 2:
        raise ValueError(f"features and reference must hold the same n ≥ 2 conditions: {len(z)} vs {len(r)} rows")
    return float(cka(torch.from_numpy(z), torch.from_numpy(r)))


def condition_means(samples: Tensor, conditions: Tensor, n_conditions: int) -> Tensor:
    """(n_conditions, h) centres z_i = mean of the samples x_s with c_s = i (float64 unless samples are floating)."""
    _check_samples(samples, conditions, n_conditions)
    x = samples if samples.dtype.is_floating_point else samples.double()
    conditions = conditions.long().to(x.device)
    counts = torch.bincount(conditions, minlength=n_conditions)
    if (counts == 0).any():
        missing = torch.nonzero(counts == 0).flatten().tolist()
        raise ValueError(f"conditions {missing} have no samples: their means are undefined")
    sums = torch.zeros(n_conditions, x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, conditions, x)
    return sums / counts.to(x)[:, None]


# ---------------------------------------------------------------- pairing and parallelism


def _pairing(z: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """Negative condition paired with each positive: argmin_π Σ_i ‖z_{P_i} − z_{π(i)}‖² (Hungarian)."""
    cost = ((z[pos, None, :] - z[None, neg, :]) ** 2).sum(-1)  # (k, k) squared distances
    _, cols = linear_sum_assignment(cost)  # rows come back as 0..k-1
    return neg[cols]


def min_distance_pairing(centres: Tensor, labels: Tensor) -> Tensor:
    """Minimum-distance pairing of a balanced dichotomy: the (k,) ids of the negative condition paired with
    each positive condition (positives in increasing id order), π = argmin over bijections of
    Σ_i ‖z_{P_i} − z_{π(i)}‖², solved exactly by the Hungarian algorithm.

    The cost is the SQUARED Euclidean distance, as in the authors' code (repler src/dichotomies.py,
    `efficient_ccgp` and `parallelism`: the assignment runs on norms_i + norms_j − 2 K_ij). Since the squared
    norms add up to the same total under every bijection, this is also the pairing of maximal Σ_i ⟨z_{P_i},
    z_{π(i)}⟩; it can differ from the pairing of minimal total (unsquared) distance."""
    z = _matrix(centres, "centres")
    pos, neg = _dichotomy(labels, len(z))
    return torch.from_numpy(_pairing(z, pos, neg))


def _pair_cosines(z: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """cos[i, a, j, b] = cosine between the coding vectors z_{P_i} − z_{N_a} and z_{P_j} − z_{N_b}
    (a zero coding vector has cosine 0 with everything)."""
    coding = z[pos, None, :] - z[None, neg, :]  # (k, k, h): every positive minus every negative
    norms = np.linalg.norm(coding, axis=-1, keepdims=True)
    unit = coding / np.where(norms > 0, norms, 1.0)
    return np.einsum("iah,jbh->iajb", unit, unit)


def _mean_cosines(cos: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """(B,) parallelism score of B bijections (B, k) (perms[:, i] = the negative paired with positive i)."""
    i, j = np.triu_indices(perms.shape[1], 1)
    return cos[i, perms[:, i], j, perms[:, j]].mean(1)


def _climb(cos: np.ndarray, perm: np.ndarray) -> float:
    """Steepest ascent over the swaps of two positives' partners, from `perm` to a local maximum."""
    a, b = np.triu_indices(len(perm), 1)
    rows = np.arange(len(a))
    score = _mean_cosines(cos, perm[None])[0]
    while True:
        swaps = np.repeat(perm[None], len(a), 0)  # (k(k-1)/2, k): perm with one pair of partners swapped
        swaps[rows, a], swaps[rows, b] = perm[b], perm[a]
        scores = _mean_cosines(cos, swaps)
        best = int(scores.argmax())
        if scores[best] <= score + 1e-12:
            return float(score)
        perm, score = swaps[best], scores[best]


def _max_over_pairings(cos: np.ndarray, start: np.ndarray, seed: int) -> float:
    """max_π PS(π): every bijection for k ≤ 8, else hill climbing from `start` and seeded random bijections."""
    k = len(start)
    if k <= EXHAUSTIVE_MAX_POSITIVES:
        return float(_mean_cosines(cos, np.array(list(itertools.permutations(range(k))))).max())
    rng = np.random.default_rng(seed)
    starts = [start] + [rng.permutation(k) for _ in range(SEARCH_RESTARTS)]
    return max(_climb(cos, s) for s in starts)


def parallelism_score(centres: Tensor, labels: Tensor, pairing: str = "min_distance", seed: int = 0) -> float:
    """Parallelism score of a balanced dichotomy (Bernardi et al. 2020, STAR Methods):

        PS = (2 / (k (k−1))) Σ_{i<j} cos(v_i, v_j),   v_i = z_{P_i} − z_{π(i)},

    the mean pairwise cosine of the k = n/2 coding vectors. pairing "min_distance": π from
    `min_distance_pairing` (Alleman et al.'s code); "max": the maximum of PS over all k! bijections π (Bernardi
    et al.), exhaustive for k ≤ 8; for k > 8 a search: steepest ascent over swaps of two positives' partners,
    started from the min-distance pairing and from 16 random bijections drawn with `seed` (a lower bound on the
    maximum, never below the min-distance score, deterministic given the seed). PS = 1 for a factorised
    geometry (z_i = A b_i + c, b_i the latent bits). On random centres PS is ≈ 0 for a pairing fixed in advance,
    but ≈ 0.3/√h with the min-distance pairing and larger still with "max" (both select aligned pairs)."""
    if pairing not in PAIRINGS:
        raise ValueError(f"unknown pairing '{pairing}' ({' | '.join(PAIRINGS)})")
    z = _matrix(centres, "centres")
    pos, neg = _dichotomy(labels, len(z))
    if len(pos) < 2:
        raise ValueError(f"the parallelism score needs at least 2 positive conditions, got {len(pos)}")
    cos = _pair_cosines(z, pos, neg)
    start = np.searchsorted(neg, _pairing(z, pos, neg))  # partner of each positive, as an index into neg
    if pairing == "min_distance":
        return float(_mean_cosines(cos, start[None])[0])
    return _max_over_pairings(cos, start, seed)


# ---------------------------------------------------------------- linear classifiers


def _fit_score(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> float:
    """Accuracy on the `test` samples of a LinearSVC fitted on the `train` samples (boolean masks)."""
    if len(np.unique(y[train])) < 2:
        raise ValueError(f"the training samples hold one class only ({np.unique(y[train]).tolist()}): "
                         f"a classifier needs both sides of the dichotomy")
    if not test.any():
        raise ValueError("no test samples: every sample went to training")
    classifier = LinearSVC(random_state=0).fit(x[train], y[train])
    return float(classifier.score(x[test], y[test]))


def _latents(latents: Tensor, target: int) -> np.ndarray:
    """(n_conditions, d) 0/1 latent bits, checked against the target index."""
    if latents.dim() != 2:
        raise ValueError(f"latents must be (n_conditions, d), got shape {tuple(latents.shape)}")
    bits = np.stack([_binary(column, "latents") for column in latents.unbind(1)], 1)
    if not 0 <= target < bits.shape[1]:
        raise ValueError(f"target {target} out of range: latents has {bits.shape[1]} columns (0..{bits.shape[1] - 1})")
    return bits


def _pair_splits(z: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """Training conditions of the pair protocol: each positive with its min-distance negative."""
    pos, neg = _balanced(y, "the target latent (pair protocol)")
    return [np.array(pair) for pair in zip(pos, _pairing(z, pos, neg), strict=True)]


def _half_splits(bits: np.ndarray, target: int) -> list[np.ndarray]:
    """Training conditions of the half protocol: {i: b_im = v} for every other latent m and value v."""
    others = [m for m in range(bits.shape[1]) if m != target]
    if not others:
        raise ValueError("the 'half' protocol needs at least one latent besides the target")
    return [np.flatnonzero(bits[:, m] == v) for m in others for v in (0, 1)]


def ccgp(samples: Tensor, conditions: Tensor, latents: Tensor, target: int, protocol: str = "pair",
         centres: Tensor | None = None) -> float:
    """Cross-condition generalisation performance of the dichotomy y = latents[:, target] (Bernardi et al. 2020):
    train a linear classifier of y on the samples of some conditions, test it on the samples of conditions it
    never saw, and average the test accuracy over the training sets S:

        CCGP = (1/|𝒮|) Σ_{S ∈ 𝒮} acc(SVM fitted on {x_s: c_s ∈ S}, tested on {x_s: c_s ∉ S}).

    protocol "pair" (Alleman et al.'s code, repler src/dichotomies.py `efficient_ccgp` with one pair): pair each
    positive condition with a negative one by `min_distance_pairing` of `centres` (default: the condition means
    of the samples); 𝒮 = the k pairs, each tested on all n − 2 other conditions. Needs a balanced target.
    protocol "half" (train in one context, test in the other: Bernardi et al.'s CCGP with the other latents as
    contexts): for every other latent m ≠ target and v ∈ {0, 1}, S = {i: latents[i, m] = v}, tested on the
    conditions with latents[i, m] = 1 − v (all 2(d − 1) sets averaged).
    CCGP = 1 for a factorised geometry with small noise. On random centres "half" is at chance (0.5); "pair" is
    ≈ 0.57 for 8 conditions, because the min-distance pairing selects pairs whose coding vectors align (with
    `centres` independent of the samples it is at 0.5)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol '{protocol}' ({' | '.join(PROTOCOLS)})")
    bits = _latents(latents, target)
    x, ids = _samples(samples, conditions, len(bits))
    y = bits[:, target]
    if protocol == "half":
        splits = _half_splits(bits, target)
    else:
        z = _matrix(condition_means(samples, conditions, len(bits)) if centres is None else centres, "centres")
        if len(z) != len(bits):
            raise ValueError(f"centres has {len(z)} rows but latents has {len(bits)} conditions")
        splits = _pair_splits(z, y)
    trained_on = [np.isin(ids, train_conditions) for train_conditions in splits]  # boolean (N,) masks
    return float(np.mean([_fit_score(x, y[ids], train, ~train) for train in trained_on]))


def _split(ids: np.ndarray, test_fraction: float, seed: int) -> np.ndarray:
    """Boolean test mask: a random floor(test_fraction · count) of the samples of each condition."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    order = np.random.default_rng(seed).permutation(len(ids))
    order = order[np.argsort(ids[order], kind="stable")]  # grouped by condition, shuffled within
    counts = np.bincount(ids)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    rank = np.arange(len(ids)) - starts  # position of each sample within its condition's shuffled group
    test = np.zeros(len(ids), dtype=bool)
    test[order] = rank < np.floor(test_fraction * counts)[ids[order]]
    return test


def decodability(samples: Tensor, conditions: Tensor, labels: Tensor, test_fraction: float = 0.5,
                 seed: int = 0) -> float:
    """Held-out accuracy of a linear classifier of the condition labels y_{c_s} (labels: (n_conditions,) class
    ids, e.g. one latent bit) from the samples x_s. The split is random and stratified by condition: a
    floor(test_fraction · count) of each condition's samples, drawn with `seed`, are held out for testing."""
    if labels.dim() != 1 or labels.dtype.is_complex:
        raise ValueError(f"labels must be a (n_conditions,) vector of class ids, got shape {tuple(labels.shape)}")
    x, ids = _samples(samples, conditions, len(labels))
    y = labels.detach().cpu().numpy()[ids]
    test = _split(ids, test_fraction, seed)
    return _fit_score(x, y, ~test, test)


# ---------------------------------------------------------------- shattering dimension


def balanced_dichotomies(n_conditions: int, max_dichotomies: int | None = None, seed: int = 0) -> Tensor:
    """(m, n) 0/1 labels of the balanced dichotomies of n conditions, each once: condition 0 is always positive,
    so a dichotomy and its complement are not both listed; m = C(n, n/2) / 2 (35 for n = 8). When that is more
    than `max_dichotomies`, a uniform random subset of that many distinct dichotomies drawn with `seed`."""
    if n_conditions < 2 or n_conditions % 2:
        raise ValueError(f"balanced dichotomies need an even number of conditions ≥ 2, got {n_conditions}")
    if max_dichotomies is not None and max_dichotomies < 1:
        raise ValueError(f"max_dichotomies must be ≥ 1, got {max_dichotomies}")
    half, total = n_conditions // 2, math.comb(n_conditions - 1, n_conditions // 2 - 1)
    rng = np.random.default_rng(seed)
    wanted = total if max_dichotomies is None else min(total, max_dichotomies)
    if total <= 4 * wanted:  # small enough to list: take all, or a random subset of them
        chosen = list(itertools.combinations(range(1, n_conditions), half - 1))
        if wanted < total:
            chosen = [chosen[i] for i in np.sort(rng.choice(total, wanted, replace=False))]
    else:  # too many to list: rejection-sample distinct ones (acceptance ≥ 3/4)
        found: dict[tuple[int, ...], None] = {}
        while len(found) < wanted:
            draws = np.sort(rng.random((wanted, n_conditions - 1)).argsort(1)[:, : half - 1] + 1, axis=1)
            for row in draws:
                found.setdefault(tuple(row.tolist()))
                if len(found) == wanted:
                    break
        chosen = list(found)
    labels = torch.zeros(len(chosen), n_conditions, dtype=torch.int64)
    labels[:, 0] = 1
    for row, members in enumerate(chosen):
        labels[row, list(members)] = 1
    return labels


def shattering_dimension(samples: Tensor, conditions: Tensor, n_conditions: int, max_dichotomies: int | None = None,
                         seed: int = 0) -> float:
    """Shattering dimension (Bernardi et al. 2020; Rigotti et al. 2013): the mean held-out accuracy of a linear
    classifier over the balanced dichotomies of the conditions (`balanced_dichotomies`: each once, or a random
    subset of `max_dichotomies` drawn with `seed`),

        SD = (1/|𝒟|) Σ_{y ∈ 𝒟} acc(SVM of y_{c_s} from x_s),

    all dichotomies on one random split stratified by condition (half of each condition's samples held out,
    drawn with `seed`). SD = 1 when every dichotomy is linearly separable (e.g. n centres in general
    position in ≥ n − 1 dimensions, with small noise)."""
    x, ids = _samples(samples, conditions, n_conditions)
    test = _split(ids, 0.5, seed)
    dichotomies = balanced_dichotomies(n_conditions, max_dichotomies, seed).numpy()
    return float(np.mean([_fit_score(x, y[ids], ~test, test) for y in dichotomies]))
