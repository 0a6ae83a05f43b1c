"""What the rainbow paper claims, which runs measure it, and the thresholds, fixed before measuring.

Smoke scale: bias-free MLPs and CNNs on the embedded 5,000 MNIST digits at three widths each, three training
seeds per width (seed = 0, 1, 2). Paper scale: the learned scattering network on CIFAR-10 at the six width scales
of Table 1, one training run per scale: Table 1 gives single numbers (no seeds, no spread), so every paper-scale
claim rests on one run and carries the test-set SE with the note `ONE_RUN`.

Grounding (Guth et al. 2024, Table 1, CIFAR-10 top-1 at s = 1/8, 1/4, 1/2, 1, 2, 4):
- trained − rainbow gap 33.2, 22.5, 14.8, 10.2, 7.9, 7.2 points: `rainbow_close_to_trained` asks the widest net
  to be within the s = 1 gap (10.2 points); `gap_shrinks_with_width` asks at paper scale for at least half of
  the paper's drop of 26.0 points from s = 1/8 to s = 4;
- retrained − rainbow +12.35, +9.93, +5.38, +4.12, +3.55, +4.02 points: `head_retraining_helps` measures
  retrained − full (the retraining starts from the fully sampled net, which samples P_J too, so full <= rainbow
  and retrained − full >= retrained − rainbow) and asks at paper scale for at least half the paper's smallest
  gain, 3.55 points;
- trained − retrained 20.85, 12.57, 9.42, 6.08, 4.35, 3.18 points: retraining recovers part of the gap, not all
  of it (`retrained_below_trained`, at least half of 3.18 points at paper scale);
- rainbow row 54.8 % at its lowest (s = 1/8): `rainbow_far_above_chance` >= 50 % (chance 10 %).
At smoke scale (MNIST digits, 1–20 point gaps) the CIFAR sizes do not transfer: the paper's orderings are asked
with their sign, strictly (> 0, a tie never passes), each at every width (`min_of` over widths).
`trained_nets_train` (a check) guards every claim that compares with, or samples from, a trained network.
"""

from __future__ import annotations

from common.claims import Claim, Expectation
from common.registry import RunPlan

SMOKE_WIDTHS = {"mlp": (64, 256, 1024), "cnn": (8, 32, 64)}
SMOKE_SEEDS = (0, 1, 2)
PAPER_SCALES = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0)
# Guth et al. 2024, Table 1 (CIFAR-10 top-1, learned scattering net, "skip" variant), one run per cell
TABLE1_TRAINED = dict(zip(PAPER_SCALES, (0.880, 0.897, 0.911, 0.916, 0.919, 0.919), strict=True))
TABLE1_RAINBOW = dict(zip(PAPER_SCALES, (0.548, 0.672, 0.763, 0.814, 0.840, 0.847), strict=True))
TABLE1_RETRAINED = dict(zip(PAPER_SCALES, (0.6715, 0.7713, 0.8168, 0.8552, 0.8755, 0.8872), strict=True))
# the paper reports no spread: ± 2 points is ours, about twice the run-to-run spread we assume for one CIFAR-10
# training run at this accuracy, plus the test-set SE (≈ 0.3 points on 10,000 images)
TABLE_TOL = 0.02
TABLE1_GAP = {s: TABLE1_TRAINED[s] - TABLE1_RAINBOW[s] for s in PAPER_SCALES}
TABLE1_RETRAIN_GAIN = {s: TABLE1_RETRAINED[s] - TABLE1_RAINBOW[s] for s in PAPER_SCALES}
TABLE1_RETRAIN_SHORTFALL = {s: TABLE1_TRAINED[s] - TABLE1_RETRAINED[s] for s in PAPER_SCALES}
CHANCE = 0.1

RAINBOW_FLOOR = 0.50  # Table 1's lowest rainbow accuracy, 54.8 % at s = 1/8, less TABLE_TOL, rounded down
CLOSE_GAP = round(TABLE1_GAP[1.0], 4)  # 0.102: the paper's gap at s = 1
SHRINK_FLOOR = round((TABLE1_GAP[min(PAPER_SCALES)] - TABLE1_GAP[max(PAPER_SCALES)]) / 2, 4)  # 0.13
RETRAIN_GAIN_FLOOR = round(min(TABLE1_RETRAIN_GAIN.values()) / 2, 4)  # ≈ 0.018
RETRAIN_SHORTFALL_FLOOR = round(min(TABLE1_RETRAIN_SHORTFALL.values()) / 2, 4)  # 0.0159
TRAINED_FLOOR = {"smoke": 0.90, "paper": round(min(TABLE1_TRAINED.values()) - 0.03, 4)}  # 0.85 on CIFAR-10

_COMPARES_WITH_TRAINED = ("rainbow_far_above_chance", "rainbow_close_to_trained", "gap_shrinks_with_width",
                          "head_retraining_helps", "retrained_below_trained", "alignment_necessary",
                          "covariance_structure_matters", "mlp_layer1_low_effective_rank")

CLAIMS: tuple[Claim, ...] = (
    Claim("trained_nets_train", "check", "Every trained network trained: its test accuracy is at or above a floor "
          "(no claim on rainbow networks sampled from it is scored otherwise)",
          f"ours; smoke: {TRAINED_FLOOR['smoke']:g} on 10-class MNIST digits; paper: Table 1 trained row "
          f"(88.0–91.9 %) less 3 points", "min_trained_acc",
          {scale: Expectation(">=", floor) for scale, floor in TRAINED_FLOOR.items()},
          guards=(*_COMPARES_WITH_TRAINED, *(f"table1_{row}_s{s:g}" for row in ("rainbow", "retrained")
                                             for s in PAPER_SCALES))),
    Claim("rainbow_far_above_chance", "paper", "Rainbow networks (sampled, aligned, untrained) are far above "
          "chance (10 %) at every width", "Table 1, rainbow row (54.8 % at s = 1/8 to 84.7 % at s = 4)",
          "min_rainbow_acc", {"smoke": Expectation(">=", RAINBOW_FLOOR), "paper": Expectation(">=", RAINBOW_FLOOR)}),
    Claim("rainbow_close_to_trained", "paper", "At the widest width of each architecture the rainbow network is "
          f"within {100 * CLOSE_GAP:.1f} points of its trained network (worst architecture)",
          "Table 1 (trained − rainbow 10.2 points at s = 1, 7.9 at s = 2, 7.2 at s = 4)", "widest_gap",
          {"smoke": Expectation("<=", CLOSE_GAP), "paper": Expectation("<=", CLOSE_GAP)}),
    Claim("gap_shrinks_with_width", "paper", "The trained − rainbow gap shrinks with width: narrowest minus widest "
          "gap, worst of MLP and CNN at smoke; s = 1/8 minus s = 4 at paper scale",
          "Table 1 (gap 33.2 -> 7.2 points from s = 1/8 to 4, a drop of 26.0)", "gap_narrow_minus_wide",
          {"smoke": Expectation(">", 0.0), "paper": Expectation(">=", SHRINK_FLOOR)}),
    Claim("head_retraining_helps", "paper", "Retraining the last hidden layer and the classifier of the fully "
          "sampled network raises its accuracy (retrained − full, paired on the test set, at every width)",
          "Table 1, last row (+3.55 to +12.35 points over the rainbow row)", "min_retrain_gain",
          {"smoke": Expectation(">", 0.0), "paper": Expectation(">=", RETRAIN_GAIN_FLOOR)}),
    Claim("retrained_below_trained", "paper", "The retrained network recovers part of the gap, not all of it: "
          "trained − retrained > 0 at every width", "Table 1, last row (3.18 to 20.85 points below the trained row)",
          "min_trained_minus_retrained",
          {"smoke": Expectation(">", 0.0), "paper": Expectation(">=", RETRAIN_SHORTFALL_FLOOR)}),
    Claim("alignment_necessary", "control", "Sampled weights without layer alignment collapse toward chance: "
          "at most 2 × chance (20 %) at every width", "ours (Sec. 3.2 motivates the alignment)", "max_noalign_acc",
          {"smoke": Expectation("<=", 2 * CHANCE), "paper": Expectation("<=", 2 * CHANCE)}),
    Claim("covariance_structure_matters", "control", "Isotropic sampling with matched variance, tr(C)/D · I, is "
          "worse than sampling from C (full − iid, paired, at every width)", "ours", "min_full_minus_iid",
          {"smoke": Expectation(">", 0.0), "paper": Expectation(">", 0.0)}),
    Claim("mlp_layer1_low_effective_rank", "control", "The widest MLP's first-layer weight covariance holds 90 % of "
          "its trace in fewer than half of its D = 784 eigen-directions (a spectral proxy, ours: the paper's "
          "evidence is a clipping test, not implemented yet; meaningful only where N >= D)",
          "ours, after Sec. 4 (low-rank covariances)", "widest_mlp_rank90_frac_layer1",
          {"smoke": Expectation("<=", 0.5)}),
    *(Claim(f"table1_{row}_s{s:g}", "paper", f"{name} accuracy at width scale {s:g}", f"Table 1, {row} row "
            f"({100 * table[s]:.2f} %)", f"{row}_acc_s{s:g}", {"paper": Expectation("≈", table[s], TABLE_TOL)})
      for row, name, table in (("trained", "Trained", TABLE1_TRAINED), ("rainbow", "Rainbow", TABLE1_RAINBOW),
                               ("retrained", "Rainbow + retrained P8 and classifier", TABLE1_RETRAINED))
      for s in PAPER_SCALES),
)


def plan(scale: str) -> list[RunPlan]:
    """Smoke: every MLP / CNN width × 3 training seeds. Paper: one scattering run per Table 1 width scale."""
    if scale == "smoke":
        return [RunPlan(exp, (f"model.width={w}", f"seed={seed}"))
                for exp, widths in SMOKE_WIDTHS.items() for w in widths for seed in SMOKE_SEEDS]
    return [RunPlan("scattering", ("scale=paper", f"model.width_scale={s}")) for s in PAPER_SCALES]
