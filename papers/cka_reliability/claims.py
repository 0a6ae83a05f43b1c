"""What the CKA-reliability paper claims that the suite measures, and which runs measure it.

Smoke scale: the synthetic studies with fewer points and dims (5 seeds), and the trained-network studies on the
embedded MNIST digits: 3 training seeds of an MLP on 4,000 digits for Fig. 4c and of the paper's VGG7 on 500 for
Sec. 4.1, one run of a half-width padded 3×3 VGG on 4,000 for Sec. 4.3 (a run costs 150 s of the 10-minute
budget: its accuracy drops carry the paired test-set SE of one run, its map distance no SE). Paper scale: the
paper's synthetic settings (10 seeds) and CIFAR-10 networks under `data.root`; the paper trains one network per
study (a fixed seed) and publishes no spread for them, so the early-layer and VGG manipulation studies run 3
seeds (their SE is the spread over seeds), Fig. 4c and the ResNet-34 manipulation one (Fig. 4c's SE is then the
spread over the classes / points moved, of one net).

Thresholds, fixed before measuring:
- Fig. 4a, b: the paper's numbers are for its sizes (≈ 0.117 at c = 50 for 10,000 points per cube in 1,000 dims;
  0.05-0.72 over the map grid in 500 dims). Both ends are closed forms of the sizes (`theory.two_cubes_limit`,
  `theory.rank_one_map_limit`: 0.112 and 0.046 at the paper's sizes), so each scale's bar is 1.1 × the closed
  form at its own sizes (`CUBES`): CKA must fall to within 10 % of where the theory sends it (c = 50 is finite:
  the paper's 0.117 sits 4 % above its limit).
- Fig. 4c, Sec. 4.1, Sec. 4.3: the paper publishes no numbers. "Collapses toward 0" is read as ≤ 0.1, "far
  below 1" as ≤ 0.5, "high" CKA as ≥ 0.8, "falls with depth" as ≥ 0.1, "moves to the target" as at least
  halving the mean distance between the test-set map and the target: ours, said in each source. "Within ≈ 1
  point" is the paper's (Algorithm 1's tolerance).
- Checks that a network trained: test accuracy ≥ 0.8 on MNIST digits, ≥ 0.6 on CIFAR-10 (chance 0.1; ours),
  every seed (the minimum over seeds); they guard every claim measured on that network.
"""

from __future__ import annotations

from common.claims import Claim, Expectation
from common.registry import RunPlan
from papers.cka_reliability.theory import rank_one_map_limit, two_cubes_limit

BOTH = ("smoke", "paper")
# (points per cube, dims of the translation study, dims of the map study) of synthetic.yaml / synthetic.paper.yaml
CUBES = {"smoke": (500, 100, 50), "paper": (10_000, 1_000, 500)}
TRAINED_FLOOR = {"smoke": 0.8, "paper": 0.6}  # MNIST digits / CIFAR-10 test accuracy of a net that trained
SEEDS = (0, 1, 2)


def _at(op: str, value: float, scales: tuple[str, ...] = BOTH) -> dict[str, Expectation]:
    return {scale: Expectation(op, value) for scale in scales}


# 1.1 × the closed form at each scale's sizes: Fig. 4a's limit and Fig. 4b's rank-one limit
TRANSLATION_BAR = {scale: Expectation("<=", round(1.1 * two_cubes_limit(points, dim), 3))
                   for scale, (points, dim, _) in CUBES.items()}
MAP_BAR = {scale: Expectation("<=", round(1.1 * rank_one_map_limit(points, map_dim), 3))
           for scale, (points, _, map_dim) in CUBES.items()}
TRAINED = {scale: Expectation(">=", floor) for scale, floor in TRAINED_FLOOR.items()}
EARLY = ("early_blocks_similar_memorising", "early_blocks_similar_random", "similarity_falls_with_depth")
MANIPULATED = ("map_moves_to_target", "accuracy_kept_ones", "accuracy_kept_identity", "accuracy_kept_other_net")

CLAIMS: tuple[Claim, ...] = (
    # Sec. 4.2, Fig. 4a, b: synthetic cubes
    Claim("translation_lowers_cka", "paper", "Translating one of two unit cubes (1.1 apart along e₁) by c·v, c = 50, "
          "lowers linear CKA(X, X') from 1 to within 10 % of Theorem 1's limit (mean over seeds)",
          "Fig. 4a: ≈ 0.117 at c = 50 at 10,000 points per cube in 1,000 dims; bar 1.1 × the limit expected at the "
          "configured sizes (theory.two_cubes_limit: 0.326 smoke, 0.112 paper)", "linear_cka_at_max_c",
          TRANSLATION_BAR),
    Claim("invertible_map_lowers_cka", "paper", "An invertible linear map X ↦ XM (no information lost) lowers CKA to "
          "within 10 % of the rank-one limit (σ/μ → 0): lowest grid cell, mean over seeds",
          "Fig. 4b: 0.05-0.72 over the grid in 500 dims; bar 1.1 × the rank-one limit at the configured sizes "
          "(theory.rank_one_map_limit: 0.160 smoke, 0.046 paper)", "map_cka_min",
          MAP_BAR),
    # Sec. 4.2, Fig. 4c: trained features
    Claim("one_point_collapses_cka", "paper", "Translating a single training point by c = 2·10⁴ along v (⟂ the SVM "
          "normals) drives CKA(F, F') toward 0: mean over the random points moved",
          "Fig. 4c (no number published; bar 0.1 ours)", "cka_one_point_at_max_c", _at("<=", 0.1)),
    Claim("one_class_lowers_cka", "paper", "Translating one class by c = 2·10⁴ along v lowers CKA(F, F') far below 1: "
          "mean over the classes", "Fig. 4c (no number published; bar 0.5 ours)", "cka_one_class_at_max_c",
          _at("<=", 0.5)),
    # Sec. 4.1, Fig. 2
    Claim("early_blocks_similar_memorising", "paper", "The first blocks of a generalising and a memorising net have "
          "high linear CKA although one generalises and the other does not (block 1, mean over seeds)",
          "Sec. 4.1, Fig. 2 (no number published; 'high' read as ≥ 0.8, ours)", "cka_linear_gen_mem_block0",
          _at(">=", 0.8)),
    Claim("early_blocks_similar_random", "paper", "The first block of a generalising net has high linear CKA with the "
          "same block of a random (untrained) net (mean over seeds)",
          "Sec. 4.1, Fig. 2 (no number published; 'high' read as ≥ 0.8, ours)", "cka_linear_gen_ran_block0",
          _at(">=", 0.8)),
    Claim("similarity_falls_with_depth", "paper", "CKA(generalising, memorising) falls from the first to the last "
          "block (first minus last, mean over seeds)", "Sec. 4.1, Fig. 2 (no number published; bar 0.1 ours)",
          "cka_linear_gen_mem_first_minus_last", _at(">=", 0.1)),
    # Sec. 4.3, Figs 5-7
    Claim("map_moves_to_target", "paper", "Fine-tuning with the map loss moves the test-set CKA map to every target "
          "(ones, identity, an untrained net's map): final / initial mean distance (mean over seeds where several), "
          "the largest over the targets",
          "Sec. 4.3, Figs 5-7 (no number published; 'moves to' read as halving the distance, ours)",
          "map_distance_ratio_max", _at("<=", 0.5)),
    Claim("accuracy_kept_ones", "paper", "Pushing every pair of blocks to CKA 1 keeps test accuracy within 1 point "
          "(paired test-set drop; mean over seeds where several)",
          "Sec. 4.3, Fig. 5: within ≈ 1 point (Algorithm 1's tolerance)", "acc_drop_ones", _at("<=", 0.01)),
    Claim("accuracy_kept_identity", "paper", "Pushing every pair of distinct blocks to CKA 0 keeps test accuracy "
          "within 1 point (paired test-set drop; mean over seeds where several)",
          "Sec. 4.3, Fig. 5: within ≈ 1 point (Algorithm 1's tolerance)", "acc_drop_identity", _at("<=", 0.01)),
    Claim("accuracy_kept_other_net", "paper", "Matching another net's CKA map keeps test accuracy within 1 point "
          "(paired test-set drop; mean over seeds where several); the other net is untrained here, trained in "
          "Fig. 7", "Sec. 4.3, Fig. 7: within ≈ 1 point (Algorithm 1's tolerance)", "acc_drop_random_net",
          _at("<=", 0.01)),
    # checks
    Claim("translation_limit", "check", "At c = 50 the linear CKA estimator is within 5 % of Theorem 1's closed-form "
          "limit (relative gap, mean over seeds): c = 50 is large enough for the limit to describe Fig. 4a",
          "Theorem 1, Fig. 4a (ours: 5 %)", "limit_gap_at_max_c", _at("<=", 0.05)),
    Claim("map_cka_depends_on_ratio", "check", "Grid cells of equal σ/μ give the same CKA(X, XM) (largest |paired "
          "difference| over seeds): CKA ignores isotropic scaling and M/μ depends on σ/μ only",
          "Fig. 4b (ours: within 0.05)", "map_cka_gap_at_equal_ratio", _at("<=", 0.05)),
    Claim("global_shift_keeps_cka", "check", "Translating every point (a global shift) leaves CKA at 1: an identity "
          "of centred CKA", "Fig. 4c", "cka_all_at_max_c", _at(">=", 0.999)),
    Claim("svm_unchanged_by_translation", "check", "Translating the features along v (⟂ the SVM normals) leaves the "
          "linear SVM's accuracy unchanged: largest change over c ≤ 2·10⁴, every case, every net (holds by "
          "construction of v)", "Fig. 4c (ours: 0.01)", "svm_acc_max_change", _at("<=", 0.01),
          guards=("one_point_collapses_cka", "one_class_lowers_cka")),
    Claim("translation_net_trained", "check", "The net whose features Fig. 4c translates trained: test accuracy, "
          "the lowest over seeds", "ours (chance 0.1)", "translation_net_test_acc", TRAINED,
          guards=("one_point_collapses_cka", "one_class_lowers_cka")),
    Claim("generalising_net_trained", "check", "The generalising net of Sec. 4.1 trained: test accuracy, the lowest "
          "over seeds", "ours (chance 0.1)", "generalising_test_acc", TRAINED, guards=EARLY),
    Claim("memorising_net_memorises", "check", "The memorising net fits its shuffled training labels: accuracy on them "
          "after training (eval mode), the lowest over seeds", "Sec. 4.1 (ours: 0.9)",
          "train_acc_memorising_shuffled", _at(">=", 0.9),
          guards=("early_blocks_similar_memorising", "similarity_falls_with_depth")),
    Claim("manipulated_net_trained", "check", "The net whose CKA map Sec. 4.3 manipulates trained: the original "
          "net's test accuracy, the lowest over seeds (and networks)", "ours (chance 0.1)",
          "manipulated_net_test_acc", TRAINED, guards=MANIPULATED),
)

RESULT_COLUMNS = {
    "synthetic": ("linear_cka_at_max_c", "linear_limit", "limit_gap_at_max_c", "rbf0.2_cka_at_max_c", "map_cka_min",
                  "map_cka_max"),
    "translation": ("test/acc", "svm_acc", "svm_acc_max_change", "cka_one_point_at_max_c", "cka_one_class_at_max_c",
                    "cka_all_at_max_c"),
    "early_layers": ("test/acc", "test/acc_memorising", "train_acc_memorising_shuffled", "cka_linear_gen_mem_block0",
                     "cka_linear_gen_ran_block0", "cka_linear_gen_mem_first_minus_last"),
    "manipulation": ("test_acc_original", "acc_drop_*", "map_distance_ratio_*"),
    "manipulation_resnet": ("test_acc_original", "acc_drop_*", "map_distance_ratio_*"),
}


def plan(scale: str) -> list[RunPlan]:
    """The synthetic run, 3 seeds of the studies whose claims rest on CKA between trained nets, one run of the
    others (module docstring)."""
    at = ("scale=paper",) if scale == "paper" else ()
    seeded, single = (("early_layers", "manipulation"), ("translation", "manipulation_resnet")) if scale == "paper" \
        else (("translation", "early_layers"), ("manipulation",))
    return [RunPlan("synthetic", at)] + [RunPlan(e, (*at, f"seed={s}")) for e in seeded for s in SEEDS] + [
        RunPlan(e, at) for e in single]
