"""What the CKA-reliability paper claims that the suite measures, and which runs measure it.

Smoke scale: the synthetic studies with fewer points and dims, and the trained-network studies on the
embedded MNIST digits (an MLP for Fig. 4c, the paper's VGG7 for Sec. 4.1, a half-width 3×3 VGG for
Sec. 4.3). Paper scale: the paper's synthetic settings and CIFAR-10 networks under `data.root`.
The paper publishes no numbers for Sec. 4.1 and 4.3; "high" CKA is read as ≥ 0.8, "moves to the target"
as at least halving the mean distance between the test-set map and the target.
"""

from __future__ import annotations

from pathlib import Path

from common.claims import Claim, Expectation
from common.registry import RunPlan

BOTH = ("smoke", "paper")


def _at(op: str, value: float, scales: tuple[str, ...] = BOTH) -> dict[str, Expectation]:
    return {scale: Expectation(op, value) for scale in scales}


CLAIMS: tuple[Claim, ...] = (
    Claim("translation_limit", "Translating a subset by c·v drives linear CKA to the closed-form limit of "
          "Theorem 1 (relative gap at c = 50)", "Theorem 1, Fig. 4a", "limit_gap_at_max_c", _at("<=", 0.05)),
    Claim("translation_lowers_cka", "Translating one of two linearly separable cubes lowers linear CKA far "
          "below 1 while a linear classifier is unaffected", "Fig. 4a", "linear_cka_at_max_c", _at("<=", 0.5)),
    Claim("invertible_map_lowers_cka", "An invertible linear map (no information lost) can give CKA far "
          "from 1 (paper: 0.05-0.72 over the grid)", "Fig. 4b", "map_cka_min",
          {"smoke": Expectation("<=", 0.5), "paper": Expectation("<=", 0.2)}),
    Claim("map_cka_depends_on_ratio", "CKA(X, XM) depends on σ/μ only (largest spread among grid points of "
          "equal σ/μ; sampling noise of M with few seeds)", "Fig. 4b", "map_cka_spread_at_equal_ratio",
          _at("<=", 0.05)),
    Claim("svm_unchanged_by_translation", "Translating trained features orthogonally to the linear SVM's "
          "normals leaves its accuracy unchanged (largest change over c ≤ 2·10⁴ and the three cases)",
          "Fig. 4c", "svm_acc_max_change", _at("<=", 0.01)),
    Claim("one_point_collapses_cka", "Translating a single point drives CKA(F, F') toward 0", "Fig. 4c",
          "cka_one_point_at_max_c", _at("<=", 0.1)),
    Claim("one_class_lowers_cka", "Translating one class lowers CKA(F, F') far below 1", "Fig. 4c",
          "cka_one_class_at_max_c", _at("<=", 0.5)),
    Claim("global_shift_keeps_cka", "Translating every point (a global shift) leaves CKA at 1 (sanity check)",
          "Fig. 4c", "cka_all_at_max_c", _at(">=", 0.999)),
    Claim("memorising_net_memorises", "The memorising net fits the shuffled training labels (setup of the "
          "comparison; last-epoch training accuracy)", "Sec. 4.1", "train/acc_memorising", _at(">=", 0.9)),
    Claim("early_blocks_similar_memorising", "The first blocks of a generalising and a memorising net have high "
          "linear CKA although one generalises and the other does not", "Sec. 4.1, Fig. 2",
          "cka_linear_gen_mem_block0", _at(">=", 0.8)),
    Claim("early_blocks_similar_random", "The first block of a generalising net has high linear CKA with the "
          "same block of a random (untrained) net", "Sec. 4.1, Fig. 2", "cka_linear_gen_ran_block0",
          _at(">=", 0.8)),
    Claim("similarity_falls_with_depth", "CKA(generalising, memorising) falls from the first to the last block "
          "(first minus last)", "Sec. 4.1, Fig. 2", "cka_linear_gen_mem_first_minus_last", _at(">=", 0.1)),
    Claim("map_moves_to_target", "Fine-tuning with the map loss moves the test-set CKA map to every target "
          "(ones, identity, another net's map): largest ratio of final to initial mean distance",
          "Sec. 4.3, Figs 5-7", "map_distance_ratio_max", _at("<=", 0.5)),
    Claim("accuracy_kept_ones", "Pushing every pair of blocks to CKA 1 keeps test accuracy within ≈ 1 point",
          "Sec. 4.3, Fig. 5", "acc_drop_ones", _at("<=", 0.01)),
    Claim("accuracy_kept_identity", "Pushing every pair of distinct blocks to CKA 0 keeps test accuracy within "
          "≈ 1 point", "Sec. 4.3, Fig. 5", "acc_drop_identity", _at("<=", 0.01)),
    Claim("accuracy_kept_other_net", "Matching another net's CKA map keeps test accuracy within ≈ 1 point",
          "Sec. 4.3, Fig. 7", "acc_drop_random_net", _at("<=", 0.01)),
)

SMOKE_PLAN = [RunPlan("synthetic"), RunPlan("translation"), RunPlan("early_layers"), RunPlan("manipulation")]


def plan(scale: str) -> list[RunPlan]:
    if scale == "paper":
        return [RunPlan(p.experiment, ("scale=paper",)) for p in SMOKE_PLAN] + [
            RunPlan("manipulation_resnet", ("scale=paper",))]
    return SMOKE_PLAN


def measure(results: dict[RunPlan, dict[str, float]], scale: str, figure_dir: Path) -> dict[str, float]:
    """Every claim metric is a metric of one run: merge them (at paper scale the VGG manipulation run and the
    ResNet-34 one measure the same metrics: the worse of the two counts)."""
    merged: dict[str, float] = {}
    for metrics in results.values():
        for key, value in metrics.items():
            if key in merged and (key.startswith("acc_drop") or key.startswith("map_distance_ratio")):
                value = max(value, merged[key])
            merged[key] = value
    return merged
