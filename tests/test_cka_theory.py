"""The translation limit of linear CKA against the estimator at large c (Davari et al. 2023, Thm 1), and the two
closed forms of the synthetic cubes (Fig. 4a's limit, Fig. 4b's rank-one limit) against Monte Carlo."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from common.config import compose
from common.metrics.cka import cka
from papers.cka_reliability.claims import CUBES
from papers.cka_reliability.synthetic import two_cubes
from papers.cka_reliability.theory import rank_one_map_limit, translation_limit, two_cubes_limit


def moved(x: torch.Tensor, mask: torch.Tensor, v: torch.Tensor, c: float) -> torch.Tensor:
    return x + c * mask[:, None].double() * v


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.5])
def test_estimator_converges_to_the_limit_for_any_direction(fraction: float) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(400, 20, generator=gen, dtype=torch.float64) @ torch.randn(20, 20, generator=gen,
                                                                               dtype=torch.float64)
    mask = torch.zeros(400, dtype=torch.bool)
    mask[torch.randperm(400, generator=gen)[: int(400 * fraction)]] = True
    limit = translation_limit(x, mask)
    for seed in range(3):  # several directions, the same limit
        v = torch.randn(20, generator=torch.Generator().manual_seed(10 + seed), dtype=torch.float64)
        near, far = (abs(cka(x, moved(x, mask, v, c)).item() - limit) for c in (1e4, 1e6))
        assert far < 1e-4 * limit  # close at large c ...
        assert far < near / 10  # ... and converging (the correction is O(1/c)), not merely close


def test_one_far_point_drives_cka_to_a_small_value() -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(1000, 50, generator=gen, dtype=torch.float64)
    mask = torch.zeros(1000, dtype=torch.bool)
    mask[0] = True
    assert translation_limit(x, mask) < 0.05


def test_limit_is_zero_when_the_moved_mean_is_the_global_mean() -> None:
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]], dtype=torch.float64)
    mask = torch.tensor([True, True, False, False])
    assert translation_limit(x, mask) == 0.0
    v = torch.tensor([0.3, 1.0], dtype=torch.float64)
    assert cka(x, moved(x, mask, v, 1e4)).item() < 1e-6


def test_global_shift_and_bad_masks() -> None:
    x = torch.randn(10, 3, dtype=torch.float64)
    assert translation_limit(x, torch.ones(10, dtype=torch.bool)) == 1.0
    with pytest.raises(ValueError, match="selects no row"):
        translation_limit(x, torch.zeros(10, dtype=torch.bool))
    with pytest.raises(ValueError, match="moved_mask must be"):
        translation_limit(x, torch.ones(9, dtype=torch.bool))


@pytest.mark.parametrize(("points", "dim"), [(500, 50), (500, 100), (50, 10)])
def test_two_cube_closed_forms_match_monte_carlo(points: int, dim: int) -> None:
    """Mean over 40 draws of the cubes of the Theorem 1 limit and of CKA(X, X1) (the rank-one map): within 4 SEs
    plus the first-order expansion's own error (≈ 1/n relative: 3 % at n = 50, 2 % here at n = 500)."""
    limits, rank_one = [], []
    for seed in range(40):
        x = two_cubes(points, dim, torch.Generator().manual_seed(seed))
        limits.append(translation_limit(x, torch.arange(2 * points) >= points))
        rank_one.append(cka(x, x.sum(1, keepdim=True)).item())
    for values, closed in ((limits, two_cubes_limit(points, dim)), (rank_one, rank_one_map_limit(points, dim))):
        values = np.array(values)
        assert abs(values.mean() - closed) < 4 * values.std(ddof=1) / 40 ** 0.5 + 0.025 * closed


def test_two_cube_closed_forms_in_their_limits() -> None:
    """n → ∞: the population forms (g²/4)/√(a² + (d−1)b²) and √(a² + (d−1)b²)/(a + (d−1)b); d = 1: CKA of one
    feature with itself, 1; the rank-one limit falls like 1/√d."""
    a, b = 1 / 12 + 1.1 ** 2 / 4, 1 / 12
    for d in (1, 10, 1000):
        norm = (a ** 2 + (d - 1) * b ** 2) ** 0.5
        assert two_cubes_limit(10 ** 12, d) == pytest.approx(1.1 ** 2 / 4 / norm, rel=1e-9)
        assert rank_one_map_limit(10 ** 12, d) == pytest.approx(norm / (a + (d - 1) * b), rel=1e-9)
    assert rank_one_map_limit(10 ** 12, 1) == pytest.approx(1.0)
    assert rank_one_map_limit(10 ** 12, 10_000) * 10_000 ** 0.5 == pytest.approx(1.0, rel=0.01)


def test_fig4_sizes_of_the_claims_are_the_configured_ones() -> None:
    """The claims' bars are closed forms of `CUBES`: they must be the sizes the synthetic run uses at each scale.
    At the paper's sizes they give the paper's Fig. 4 numbers (limit 0.112 against CKA ≈ 0.117 at c = 50, 0.046
    against its smallest map cell, 0.05)."""
    for scale, (points, dim, map_dim) in CUBES.items():
        study = compose("cka_reliability", "synthetic", [f"scale={scale}"]).synthetic
        assert (study.points, study.dim, study.map_dim) == (points, dim, map_dim), scale
    assert two_cubes_limit(10_000, 1_000) == pytest.approx(0.1125, abs=5e-4)
    assert rank_one_map_limit(10_000, 500) == pytest.approx(0.0458, abs=5e-4)


def test_orthogonal_direction_respects_the_floor_and_the_normals() -> None:
    from papers.cka_reliability.translation import orthogonal_direction

    normals = np.random.default_rng(0).normal(size=(5, 40))
    v = orthogonal_direction(normals, floor=0.1)
    assert abs(np.linalg.norm(v) - 1) < 1e-12 and v.min() > 0  # the floor holds before normalising
    assert np.abs(normals @ v).max() < 1e-6 * np.abs(normals).max()  # feasible here: exactly orthogonal


def test_orthogonal_direction_converges_where_2000_steps_did_not() -> None:
    """The old fixed 2,000 projected-gradient steps left |wᵀv| / ‖w‖ = 7e-7 here (and 6e-4 on a smoke run's
    SVM, whose accuracy then moved by 0.41 at c = 2·10⁴): the solver now iterates to convergence."""
    from papers.cka_reliability.translation import orthogonal_direction

    normals = np.random.default_rng(4).normal(size=(10, 30))
    v = orthogonal_direction(normals, floor=0.1)
    assert np.abs(normals @ v).max() < 1e-11 * np.linalg.norm(normals, axis=1).max()
    assert v.min() > 0 and abs(np.linalg.norm(v) - 1) < 1e-12


def test_translation_study_keeps_the_svm_and_moves_cka(tmp_path) -> None:
    """Every class and `points` random points are moved in turn (not one instance each)."""
    from omegaconf import OmegaConf

    from papers.cka_reliability.translation import translation_study

    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(300) % 3
    features = torch.relu(torch.randn(300, 30, generator=gen) + 3 * torch.nn.functional.one_hot(labels, 30))
    cfg = OmegaConf.create({"svm_c": 1.0, "svm_max_iter": 5000, "floor": 0.1, "c_values": [1, 100, 10000],
                            "points": 4})
    m = translation_study(features, labels, cfg, tmp_path, point_seed=0)
    assert m["svm_acc_max_change"] == 0.0 and m["cka_all_at_max_c"] == pytest.approx(1.0, abs=1e-12)
    assert m["one_class_cases"] == 3 and m["one_point_cases"] == 4 and m["train_examples"] == 300
    assert m["cka_one_point_at_max_c"] < 0.05 < m["cka_one_class_at_max_c"] < 0.9
    assert m["cka_one_point_at_max_c_sd"] > 0 and m["cka_one_class_at_max_c_sd"] > 0
    # at c = 10⁴ the estimator sits on the Theorem 1 limit of each case, so their means agree
    assert m["cka_one_class_at_max_c"] == pytest.approx(m["limit_one_class"], rel=1e-3)
    assert (tmp_path / "translation.png").is_file()


def test_translation_cases_move_every_class_and_distinct_points() -> None:
    from papers.cka_reliability.translation import translation_cases

    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    cases = translation_cases(labels, points=5, point_seed=3)
    assert [int(m.sum()) for m in cases["all"]] == [8]
    assert [m.nonzero().flatten().tolist() for m in cases["one class"]] == [[0, 3, 6], [1, 4, 7], [2, 5]]
    rows = [int(m.nonzero()) for m in cases["one point"]]
    assert len(set(rows)) == 5 and rows == [int(m.nonzero()) for m in translation_cases(labels, 5, 3)["one point"]]
