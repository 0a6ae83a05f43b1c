"""The translation limit of linear CKA against the estimator at large c (Davari et al. 2023, Thm 1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from common.metrics.cka import cka
from papers.cka_reliability.theory import translation_limit


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


def test_orthogonal_direction_respects_the_floor_and_the_normals() -> None:
    from papers.cka_reliability.translation import orthogonal_direction

    normals = np.random.default_rng(0).normal(size=(5, 40))
    v = orthogonal_direction(normals, floor=0.1)
    assert abs(np.linalg.norm(v) - 1) < 1e-12 and v.min() > 0  # the floor holds before normalising
    assert np.abs(normals @ v).max() < 1e-6 * np.abs(normals).max()  # feasible here: exactly orthogonal


def test_translation_study_keeps_the_svm_and_moves_cka(tmp_path) -> None:
    from omegaconf import OmegaConf

    from papers.cka_reliability.translation import translation_study

    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(300) % 3
    features = torch.relu(torch.randn(300, 30, generator=gen) + 3 * torch.nn.functional.one_hot(labels, 30))
    cfg = OmegaConf.create({"svm_c": 1.0, "svm_max_iter": 5000, "floor": 0.1, "c_values": [1, 100, 10000]})
    m = translation_study(features, labels, cfg, tmp_path)
    assert m["svm_acc_max_change"] == 0.0 and m["cka_all_at_max_c"] == pytest.approx(1.0, abs=1e-12)
    assert m["cka_one_point_at_max_c"] < 0.05 < m["cka_one_class_at_max_c"] < 0.9
    assert (tmp_path / "translation.png").is_file()
