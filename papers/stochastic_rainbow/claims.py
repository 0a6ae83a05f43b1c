"""What White et al. (2024, "Learning Stochastic Rainbow Networks", NeurIPS Sci4DL workshop) claim, and which runs
measure it. The abstract's findings: "(1) this approach scales to deeper models, which outperform shallow networks
at large widths; (2) ensembling multiple samples from the stochastic model is better than retraining the classifier
head; and (3) low-rank parameterization of the learnable weight covariances can approach the accuracy of full-rank
networks". No numbers were published (the results lived in a private W&B project), so each `paper` claim is a
direction (> 0) fixed before any run; the one size we test ("within 2 points of full rank") is ours, a `control`.

Accuracy of a variant = `sample/acc_mean`: the mean test accuracy of its 10 fixed samples (each with its own running
alignment and BatchNorm statistics); per example, the fraction of the 10 samples that classify it correctly
(`outcomes.npz`). Every difference is paired on the shared test set: two variants of one run (ensemble vs
retrained head), or two runs (full rank vs rank k; ResNet-34 vs ResNet-9), example by example.

Uncertainty. Smoke: one run per setting (4 runs take ~7.5 min of the 10-minute smoke budget on 2 cores, so no
seeds): each claim carries the SE of its paired per-example differences over the 500 test digits, a lower bound
that ignores training noise (`common.stats.ONE_RUN`). Training noise is larger: the same command on another CPU
(another floating-point path) can flip these single-run verdicts.
Paper: every setting with the authors' seeds 0-2 (their exp_20/22 grids): the mean over seeds of the per-seed
paired difference, SE = sd/√3, Student t_2.

Smoke (embedded MNIST digits, ResNet-9 at width scale 0.25, 6 epochs): full-rank channel factors and the
rank-plus-diagonal ("lrdiag") factors at k = 1, 4, 16 (k clipped to each layer's input channels: at k = 16, 5 of
the 12 convs have C_in <= k and are exactly full rank; lrdiag is rank k plus a learned diagonal, a full-rank
covariance). Paper (CIFAR-10, 200 epochs): ResNet-9 / 18 / 34 at width scales 0.5-4, and the low-rank sweep on
ResNet-18 at width 1.
"""

from __future__ import annotations

from common.claims import Claim, Expectation
from common.registry import RunPlan

SMOKE_RANKS = (1, 4, 16)
PAPER_RANKS = (1, 4, 16, 64)
PAPER_DEPTHS = (9, 18, 34)
PAPER_WIDTHS = (0.5, 1.0, 2.0, 4.0)
PAPER_SEEDS = 3  # the authors' seeds 0-2
BATCH_SIZE = {0.5: 256, 1.0: 256, 2.0: 512, 4.0: 1024}  # the note's recipe, lr kept
RANK_GAP = 0.02  # "approaches full rank": the largest k within 2 points of full rank (ours, fixed before any run)
TRAINED_FLOOR = {"smoke": 0.3, "paper": 0.4}  # mean sample accuracy of every run (chance 0.1)
PAPER_CLAIMS = ("deeper_beats_shallower_wide", "ensemble_beats_retrained_head", "largest_rank_beats_smallest",
                "low_rank_approaches_full")


def _at_both(expectation: Expectation) -> dict[str, Expectation]:
    return {"smoke": expectation, "paper": expectation}


CLAIMS: tuple[Claim, ...] = (
    Claim("deeper_beats_shallower_wide", "paper", "At the largest width, the deepest stochastic rainbow ResNet (34) "
          "beats the shallowest (9): mean sample accuracy, ResNet-34 − ResNet-9 (paired on the test set and by seed)",
          "Sci4DL 2024 abstract, finding (1): 'deeper models ... outperform shallow networks at large widths' (no "
          "number: a direction)", "depth34_minus_depth9_widest", {"paper": Expectation(">", 0.0)}),
    Claim("ensemble_beats_retrained_head", "paper", "An ensemble of 10 samples (mean logits) beats sample 1 with "
          "its Linear head retrained: ensemble − retrained, paired on the test set, min over networks",
          "Sci4DL 2024 abstract, finding (2): 'ensembling multiple samples ... is better than retraining the "
          "classifier head' (a direction; our head retraining: lr 0.01, no weight decay)",
          "min_ensemble_minus_retrained", _at_both(Expectation(">", 0.0))),
    Claim("largest_rank_beats_smallest", "paper", "Raising the channel-factor rank brings the samples closer to "
          "full rank: acc(lrdiag k_max) − acc(lrdiag k_min), paired on the test set. The sweep's endpoints only: it "
          "says nothing of the ranks between (at smoke scale k = 4 once scored below k = 1)",
          "Sci4DL 2024 abstract, finding (3): low rank 'can approach the accuracy of full-rank networks' (a "
          "direction)", "largest_minus_smallest_rank", _at_both(Expectation(">", 0.0))),
    Claim("low_rank_approaches_full", "control", f"The largest rank comes within {RANK_GAP:g} of full rank: "
          "acc(full) − acc(lrdiag k_max), paired on the test set", "ours: the abstract's finding (3) gives no "
          "number; 2 points fixed before any run", "full_minus_largest_rank", _at_both(Expectation("<=", RANK_GAP))),
    Claim("stochastic_nets_trained", "check", "Every stochastic rainbow net trained: its mean sample accuracy is "
          "above the floor (min over runs)", "ours: three times chance (0.1) at smoke, where 6 epochs "
          "leave the nets weak; four times chance on CIFAR-10", "min_sample_acc",
          {s: Expectation(">=", floor) for s, floor in TRAINED_FLOOR.items()}, guards=PAPER_CLAIMS),
    Claim("ensemble_beats_its_samples", "check", "The samples differ and ensembling combines them: the ensemble of "
          "10 beats its mean sample (ensemble − mean sample score, paired on the test set, min over networks); an "
          "ensemble of identical samples would tie", "ours (the setup of finding 2)", "min_ensemble_minus_samples",
          _at_both(Expectation(">", 0.0)), guards=("ensemble_beats_retrained_head",)),
)


def seeded(overrides: tuple[str, ...], seed: int) -> tuple[str, ...]:
    """The overrides of a run with `seed` (seed 0, the default, adds nothing: its run dir is the unseeded one)."""
    return (*overrides, f"seed={seed}") if seed else overrides


def _rank_plan(k: int, *scale: str) -> tuple[str, ...]:
    return (*scale, "factconv.channel=lrdiag", f"factconv.rank={k}")


def plan(scale: str) -> list[RunPlan]:
    if scale == "smoke":
        return [RunPlan("resnet")] + [RunPlan("resnet", _rank_plan(k)) for k in SMOKE_RANKS]
    depths = [("scale=paper", f"model.depth={d}", f"model.width_scale={w}", f"data.batch_size={BATCH_SIZE[w]}")
              for w in PAPER_WIDTHS for d in PAPER_DEPTHS]
    ranks = [_rank_plan(k, "scale=paper") for k in PAPER_RANKS]
    return [RunPlan("resnet", seeded(o, s)) for o in depths + ranks for s in range(PAPER_SEEDS)]


# the full-rank run the low-rank sweep is compared with: the sweep's network with channel=full
FULL_RANK = {"smoke": (), "paper": ("scale=paper", "model.depth=18", "model.width_scale=1.0", "data.batch_size=256")}
