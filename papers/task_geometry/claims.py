"""What Alleman et al. (2024) claim that the suite measures, and which runs measure it.

The claims concern low-dimensional targets (k = 1) at the isotropic end of the knob (c = c_max), input noise σ = 1:
the Tanh − ReLU gap of each geometry metric, paired by seed (a Tanh network and its ReLU pair start from the same
weights), averaged over the seeds of one stacked run (smoke 3, paper 10: the authors' 10 initialisations), with a
Student-t interval on seeds − 1 degrees of freedom (measure.py).

Thresholds, fixed before measuring. The paper states a direction (abstract: Tanh representations "reflect the
structure of the target outputs", ReLU's "retain more information about the structure of the raw inputs", Tanh's are
"more disentangled" for low-dimensional targets); its body and figures could not be read here, so no number of
theirs grounds an effect size: the paper claims are signs (> 0, < 0). Two controls (ours) add the effect-size
floors proposed for the alignments at c_max (target gap > 0.1, input gap < −0.15), unverified against
the paper's figures. Checks: every Tanh and ReLU network at c_max reached training accuracy ≥ 0.9 (chance 0.5; the
floor lies below the 0.96 a linear read-out of the target component alone attains at d = 5, c_max, Φ(√(D/31)/σ),
D = 100, σ = 1), guarding the claims of its run: a network that did not learn the task has no learned geometry.

The gap along the whole knob, for k = d, at other noise levels (σ = 0.5, 2 for d = 3, k = 1), the random-kernel
family and the ε-separable XOR are measured too ("other measured quantities", each run's geometry.json and figure);
no claim is declared for them. The weight-dynamics run (Fig. 1C-D) declares one claim: Tanh weights move along the
inter-class axis more than ReLU's (the share of the weight change along it is our quantification of the figure).
"""

from __future__ import annotations

from common.claims import Claim, Expectation
from common.registry import RunPlan

TASKS = ((3, 1), (3, 3), (5, 1), (5, 5))
NOISES = (0.5, 2.0)  # besides the paper's σ = 1, for d = 3, k = 1
SOURCE = "abstract; Figs 2-3 (figure numbers unchecked); the paper states a direction only"
FLOOR = "ours: an effect-size floor not checked against the paper's figures"
DIRECTION = {"target_alignment": ("higher", ">"), "input_alignment": ("lower", "<"), "ccgp": ("higher", ">"),
             "parallelism": ("higher", ">")}
FLOORS = {"target_alignment": ("larger", ">", 0.1), "input_alignment": ("more negative", "<", -0.15)}
TRAINED = 0.9


def _both(op: str, value: float) -> dict[str, Expectation]:
    return {"smoke": Expectation(op, value), "paper": Expectation(op, value)}


def _task_claims(d: int) -> tuple[Claim, ...]:
    paper = tuple(
        Claim(f"tanh_{word}_{metric}_d{d}k1", "paper", f"d = {d}, k = 1, c = c_max: Tanh has {word} "
              f"{metric.replace('_', ' ')} than ReLU (mean paired gap over seeds)", SOURCE,
              f"d{d}k1s1_gap_{metric}_cmax", _both(op, 0.0))
        for metric, (word, op) in DIRECTION.items())
    controls = tuple(
        Claim(f"{metric}_gap_{word.replace(' ', '_')}_than_floor_d{d}k1", "control", f"d = {d}, k = 1, c = c_max: the "
              f"Tanh − ReLU gap in {metric.replace('_', ' ')} is {word} than {value:g}", FLOOR,
              f"d{d}k1s1_gap_{metric}_cmax", _both(op, value))
        for metric, (word, op, value) in FLOORS.items())
    check = Claim(f"networks_trained_d{d}k1", "check", f"d = {d}, k = 1, c = c_max: every Tanh and ReLU network "
                  "learned the task (smallest training accuracy)", "ours", f"d{d}k1s1_train_acc_min_cmax",
                  _both(">=", TRAINED), guards=tuple(c.id for c in paper + controls))
    return (*paper, *controls, check)


CLAIMS: tuple[Claim, ...] = (
    *_task_claims(3), *_task_claims(5),
    Claim("tanh_weights_move_along_inter_class_axis", "paper",
          "Two bits, one target, isotropic inputs: the input weights of Tanh units move along the inter-class axis, "
          "those of ReLU units more along the intra-class axes (share of the weight change along the inter-class "
          "axis, mean paired Tanh − ReLU gap over seeds)",
          "Fig. 1C-D (learning dynamics in weight space; the share is ours, the figure states a direction)",
          "d2k1s1_gap_inter_fraction_cmax", _both(">", 0.0)),
    Claim("networks_trained_dynamics", "check", "Weight-dynamics run: every Tanh and ReLU network learned the task "
          "(smallest training accuracy)", "ours", "d2k1s1_train_acc_min_cmax", _both(">=", TRAINED),
          guards=("tanh_weights_move_along_inter_class_axis",)),
)


def plan(scale: str) -> list[RunPlan]:
    extra = ("scale=paper",) if scale == "paper" else ()
    return ([RunPlan("sweep", (*extra, f"task.d={d}", f"task.k={k}")) for d, k in TASKS]
            + [RunPlan("sweep", (*extra, "task.d=3", "task.k=1", f"task.noise={s}")) for s in NOISES]
            + [RunPlan("sweep", (*extra, "task.kind=random_kernel", "task.d=3", "task.k=1")),
               RunPlan("xor", extra), RunPlan("dynamics", extra)]
            + ([RunPlan("cnn", extra)] if scale == "paper" else []))
