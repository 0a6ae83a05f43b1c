"""Geometry metrics on constructed geometries whose answers are known: factorised (CCGP = PS = 1), random
(chance, with the spread measured over seeds), XOR (decodable but not abstract), one-hot (every dichotomy
separable), against brute force where one exists."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import Tensor

from common.metrics.cka import cka
from common.metrics.geometry import (
    balanced_dichotomies,
    ccgp,
    condition_means,
    decodability,
    kernel_alignment,
    min_distance_pairing,
    parallelism_score,
    shattering_dimension,
)


def latent_bits(d: int) -> Tensor:
    """(2^d, d) 0/1 bits of every condition (condition i = binary digits of i)."""
    i = torch.arange(2**d)
    return ((i[:, None] >> torch.arange(d)) & 1).double()


def orthonormal_rows(rows: int, h: int, seed: int) -> Tensor:
    q, _ = torch.linalg.qr(torch.randn(h, h, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q[:rows]


def draw(centres: Tensor, per_condition: int, noise: float, seed: int) -> tuple[Tensor, Tensor]:
    """Samples = centre of their condition + isotropic Gaussian noise; conditions (N,) ids."""
    conditions = torch.arange(len(centres)).repeat_interleave(per_condition)
    gen = torch.Generator().manual_seed(seed)
    return centres[conditions] + noise * torch.randn(len(conditions), centres.shape[1], generator=gen,
                                                     dtype=torch.float64), conditions


def mean_and_sem(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values)
    return float(a.mean()), float(a.std(ddof=1) / math.sqrt(len(a)))


def gaussian(shape: tuple[int, ...], seed: int) -> Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ---------------------------------------------------------------- factorised, random, XOR


def test_factorised_geometry_is_perfectly_abstract() -> None:
    latents = latent_bits(3)
    centres = (2 * latents - 1) @ orthonormal_rows(3, 16, seed=0)  # z_i = A b_i + c
    samples, conditions = draw(centres, 30, noise=0.1, seed=1)
    for j in range(3):
        assert ccgp(samples, conditions, latents, j) == 1.0
        assert ccgp(samples, conditions, latents, j, protocol="half") == 1.0
        assert parallelism_score(centres, latents[:, j]) == pytest.approx(1.0, abs=1e-12)
        assert parallelism_score(centres, latents[:, j], pairing="max") == pytest.approx(1.0, abs=1e-12)
        assert decodability(samples, conditions, latents[:, j]) == 1.0


def test_random_centres_give_chance_ccgp_when_the_training_sets_ignore_the_data() -> None:
    # the classifier never sees the test conditions, whose centres are independent of it: each test condition
    # is called positive with one probability q, and a balanced test set scores q/2 + (1 − q)/2 = 1/2
    latents = latent_bits(3)
    half, pair = [], []
    for seed in range(40):
        samples, conditions = draw(gaussian((8, 16), seed), 10, noise=0.1, seed=seed)
        half.append(ccgp(samples, conditions, latents, 0, protocol="half"))
        pair.append(ccgp(samples, conditions, latents, 0, centres=gaussian((8, 16), 1000 + seed)))
    for values in (half, pair):
        mean, sem = mean_and_sem(values)
        assert abs(mean - 0.5) < 4 * sem, (mean, sem)


def test_min_distance_pairing_lifts_random_ccgp_above_chance() -> None:
    # pairing by distance on the same centres selects pairs whose coding vectors align a little (≈ 0.57 for
    # 8 conditions, for any h): the pair protocol's chance level is above 1/2, still far below the factorised 1
    latents = latent_bits(3)
    values = []
    for seed in range(150):
        samples, conditions = draw(gaussian((8, 16), seed), 10, noise=0.1, seed=seed)
        values.append(ccgp(samples, conditions, latents, 0))
    mean, sem = mean_and_sem(values)
    assert mean - 4 * sem > 0.5 and mean + 4 * sem < 0.75, (mean, sem)


def test_random_coding_vectors_have_zero_mean_parallelism_with_the_chance_spread() -> None:
    # pair i sits at 50·e_{h+i}, far from the others, so the pairing is fixed in advance and the coding vectors
    # r_p − r_n are iid isotropic in h dims: each cosine has mean 0 and variance 1/h, the 6 pairwise cosines of
    # 4 vectors are uncorrelated, so PS has mean 0 and standard deviation 1/sqrt(6h)
    h, labels = 16, torch.tensor([1, 0] * 4)
    anchors = torch.cat([torch.zeros(8, h, dtype=torch.float64), 50 * torch.eye(4, dtype=torch.float64)
                         .repeat_interleave(2, 0)], 1)
    values = []
    for seed in range(200):
        centres = anchors + torch.cat([gaussian((8, h), seed), torch.zeros(8, 4, dtype=torch.float64)], 1)
        assert min_distance_pairing(centres, labels).tolist() == [1, 3, 5, 7]
        values.append(parallelism_score(centres, labels))
    mean, sem = mean_and_sem(values)
    assert abs(mean) < 4 * sem
    assert np.std(values, ddof=1) == pytest.approx(1 / math.sqrt(6 * h), rel=0.2)


def test_min_distance_pairing_lifts_random_parallelism_within_the_chance_scale() -> None:
    # on plain random centres the pairing depends on the data: PS > 0 on average (≈ 0.3/sqrt(h)), yet below the
    # standard deviation 1/sqrt(h) of a single chance cosine
    h, labels = 32, latent_bits(3)[:, 0]
    mean, sem = mean_and_sem([parallelism_score(gaussian((8, h), seed), labels) for seed in range(200)])
    assert mean - 4 * sem > 0 and mean + 4 * sem < 1 / math.sqrt(h), (mean, sem)


def test_xor_geometry_is_decodable_but_does_not_generalise() -> None:
    # centres ±m1 ± m2 + ε·xor·m3 (a square lifted at the parity-1 corners): the parity is linearly decodable,
    # but a classifier trained on one side of the square reads the other bit, wrong on the other side
    bits = latent_bits(2)
    latents = torch.cat([bits, (bits[:, :1] != bits[:, 1:]).double()], 1)  # (b1, b2, b1 xor b2)
    m = orthonormal_rows(3, 8, seed=2)
    centres = (2 * bits - 1) @ m[:2] + 1.0 * latents[:, 2:] * m[2]
    samples, conditions = draw(centres, 40, noise=0.05, seed=3)
    assert decodability(samples, conditions, latents[:, 2]) == 1.0
    assert ccgp(samples, conditions, latents, 2) < 0.25
    assert ccgp(samples, conditions, latents, 2, protocol="half") < 0.25
    assert ccgp(samples, conditions, latents, 0) == 1.0  # the bits themselves stay abstract


# ---------------------------------------------------------------- kernel alignment, means, pairing


def test_kernel_alignment_is_one_for_a_rotated_scaled_shifted_copy_and_matches_cka() -> None:
    reference = gaussian((8, 5), 0)
    features = 3.5 * reference @ orthonormal_rows(5, 12, seed=1) + 2.0
    assert kernel_alignment(features, reference) == pytest.approx(1.0, abs=1e-12)
    x, y = gaussian((8, 12), 2), latent_bits(3)
    assert kernel_alignment(x, y) == pytest.approx(float(cka(x, y)), abs=1e-14)
    assert 0 < kernel_alignment(x, y) < 1


def test_condition_means_average_each_conditions_samples() -> None:
    samples = torch.tensor([[0.0, 2], [2, 4], [10, 10], [1, 1]])
    means = condition_means(samples, torch.tensor([0, 0, 2, 1]), 3)
    torch.testing.assert_close(means, torch.tensor([[1.0, 3], [1, 1], [10, 10]]))


def test_min_distance_pairing_recovers_translated_partners() -> None:
    negatives = 3 * gaussian((5, 6), 0)
    partner = [3, 0, 4, 1, 2]  # positive i is negative partner[i] moved by a common vector
    positives = negatives[partner] + 0.5 * gaussian((6,), 1)
    order = torch.randperm(10, generator=torch.Generator().manual_seed(2))  # condition id -> row
    centres, labels = torch.cat([positives, negatives])[order], torch.cat([torch.ones(5), torch.zeros(5)])[order]
    row_of = {int(r): i for i, r in enumerate(order)}
    expected = [row_of[5 + partner[i]] for i in sorted(range(5), key=lambda i: row_of[i])]
    assert min_distance_pairing(centres, labels).tolist() == expected


def test_min_distance_pairing_minimises_squared_distance() -> None:
    # positives (2,0), (3,0); negatives (0,3), (1,0). Pairing (2,0)-(0,3), (3,0)-(1,0): squared 13 + 4 = 17,
    # plain √13 + 2 ≈ 5.61; the other pairing: squared 1 + 18 = 19, plain 1 + √18 ≈ 5.24. The authors' code
    # minimises the squared total, so the first.
    centres = torch.tensor([[2.0, 0], [0, 3], [3, 0], [1, 0]])
    assert min_distance_pairing(centres, torch.tensor([1, 0, 1, 0])).tolist() == [1, 3]


def brute_force_parallelism(centres: Tensor, labels: Tensor) -> float:
    """max over bijections of the mean pairwise cosine of the coding vectors, one bijection at a time."""
    pos, neg = torch.nonzero(labels == 1).flatten(), torch.nonzero(labels == 0).flatten()
    best = -math.inf
    for perm in itertools.permutations(neg.tolist()):
        v = torch.nn.functional.normalize(centres[pos] - centres[list(perm)], dim=1)
        best = max(best, float((v @ v.T)[tuple(torch.triu_indices(len(pos), len(pos), 1))].mean()))
    return best


def test_max_pairing_is_the_brute_force_maximum_and_at_least_min_distance() -> None:
    labels = latent_bits(3)[:, 1]
    for seed in range(5):
        centres = gaussian((8, 6), seed)
        best = parallelism_score(centres, labels, pairing="max")
        assert best == pytest.approx(brute_force_parallelism(centres, labels), abs=1e-12)
        assert best >= parallelism_score(centres, labels)


def test_max_pairing_search_beyond_the_exhaustive_limit_finds_the_parallel_pairing() -> None:
    # 10 positives: negative i at (−i, ξ_i), positive i at (−i + 1 + 3i, ξ_i). Pairing i with i gives parallel
    # coding vectors (PS = 1); the min-distance pairing matches along the first axis instead.
    k = 10
    i = torch.arange(k, dtype=torch.float64)
    negatives = torch.cat([-i[:, None], 0.5 * gaussian((k, 5), 0)], 1)
    positives = negatives + torch.cat([(1 + 3 * i)[:, None], torch.zeros(k, 5, dtype=torch.float64)], 1)
    centres, labels = torch.cat([positives, negatives]), torch.cat([torch.ones(k), torch.zeros(k)])
    assert parallelism_score(centres, labels) < 0.999
    assert parallelism_score(centres, labels, pairing="max", seed=3) == pytest.approx(1.0, abs=1e-12)


# ---------------------------------------------------------------- shattering dimension


def test_balanced_dichotomies_lists_each_dichotomy_once() -> None:
    labels = balanced_dichotomies(8)
    assert labels.shape == (35, 8)  # C(8, 4) / 2
    assert (labels.sum(1) == 4).all() and (labels[:, 0] == 1).all()
    rows = {tuple(r) for r in labels.tolist()}
    assert len(rows) == 35 and not any(tuple(1 - np.array(r)) in rows for r in rows)


@pytest.mark.parametrize(("n", "wanted"), [(8, 10), (20, 12)])  # a subset of the list; rejection sampling
def test_balanced_dichotomies_subset_is_distinct_and_seeded(n: int, wanted: int) -> None:
    labels = balanced_dichotomies(n, max_dichotomies=wanted, seed=4)
    assert labels.shape == (wanted, n) and (labels.sum(1) == n // 2).all() and (labels[:, 0] == 1).all()
    assert len({tuple(r) for r in labels.tolist()}) == wanted
    assert torch.equal(labels, balanced_dichotomies(n, max_dichotomies=wanted, seed=4))
    assert not torch.equal(labels, balanced_dichotomies(n, max_dichotomies=wanted, seed=5))


def test_shattering_dimension_is_one_for_points_in_general_position() -> None:
    samples, conditions = draw(torch.eye(8, dtype=torch.float64), 10, noise=0.05, seed=0)
    assert shattering_dimension(samples, conditions, 8) == 1.0
    assert shattering_dimension(samples, conditions, 8, max_dichotomies=5) == 1.0


# ---------------------------------------------------------------- bad input


def bad_calls() -> list[tuple[str, Callable[[], object]]]:
    latents, centres = latent_bits(3), gaussian((8, 4), 0)
    samples, conditions = draw(centres, 2, noise=0.1, seed=0)
    with_and = torch.cat([latents, latents[:, :2].prod(1, keepdim=True)], 1)  # b1 AND b2: 2 of 8 positive
    return [
        ("one id per sample", lambda: condition_means(samples, conditions[:-1], 8)),
        ("integer condition ids", lambda: condition_means(samples, conditions.double(), 8)),
        (r"must lie in \[0, 4\)", lambda: condition_means(samples, conditions, 4)),
        ("have no samples", lambda: condition_means(samples[:4], conditions[:4], 8)),
        ("same n", lambda: kernel_alignment(centres, latents[:6])),
        ("balanced dichotomy", lambda: min_distance_pairing(centres, torch.tensor([1, 1, 1, 1, 1, 0, 0, 0]))),
        ("balanced dichotomy", lambda: parallelism_score(centres, torch.tensor([1, 1, 1, 0, 0, 0, 0, 0]))),
        ("only 0 and 1", lambda: parallelism_score(centres, 2 * latents[:, 0])),
        ("8 conditions", lambda: min_distance_pairing(centres, latents[:6, 0])),
        ("unknown pairing", lambda: parallelism_score(centres, latents[:, 0], pairing="best")),
        ("target 3 out of range", lambda: ccgp(samples, conditions, latents, 3)),
        ("unknown protocol", lambda: ccgp(samples, conditions, latents, 0, protocol="quarter")),
        ("besides the target", lambda: ccgp(samples, conditions, latents[:, :1], 0, protocol="half")),
        ("balanced dichotomy", lambda: ccgp(samples, conditions, with_and, 3)),
        ("centres has 6 rows", lambda: ccgp(samples, conditions, latents, 0, centres=centres[:6])),
        ("test_fraction", lambda: decodability(samples, conditions, latents[:, 0], test_fraction=1.0)),
        ("one class only", lambda: decodability(samples, conditions, torch.zeros(8))),
        ("even number of conditions", lambda: shattering_dimension(samples[:14], conditions[:14], 7)),
    ]


@pytest.mark.parametrize(("match", "call"), bad_calls(), ids=[match for match, _ in bad_calls()])
def test_bad_input_is_refused_with_a_message_naming_the_problem(match: str, call: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match=match):
        call()
