"""From the finished runs to every claim metric as a `Measured` (value, SE, n), plus the other quantities.

Which SE each rests on:
- synthetic (one run, `synthetic.seeds` draws of the cubes, v and the maps): the mean over seeds (`mean_over`,
  Student t), the per-seed values being the run's `outcomes.npz`; a difference between two map cells is paired
  per seed (the same cubes); the lowest cell carries the conservative interval of `min_of`.
- trained studies with several seeds: the mean over seeds of each run's value (the spread over training runs).
  With one run: Fig. 4c's CKA values carry the SE over the classes / points moved (of one net: training noise
  is not in it), a CKA between two trained nets has no SE (NaN: inconclusive), and accuracies and paired
  accuracy drops carry the test set's SE (`ONE_RUN`: a lower bound).
- "the net trained" checks: the lowest test accuracy over seeds (`min_of`), each a mean over test examples;
  identities and by-construction quantities (global shift, SVM change): exact, SE 0.
- at paper scale the VGG and the ResNet-34 manipulation measure the same metrics: the worse network counts
  (`max_of` of the drops and distance ratios, `min_of` of the accuracies).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from common.outcomes import RunResult
from common.registry import RunPlan
from common.stats import (
    ONE_RUN,
    Measured,
    exact,
    max_of,
    mean_of_scores,
    mean_over,
    min_of,
    paired_difference,
    proportion,
)
from papers.cka_reliability.manipulation import TARGETS

ONE_NET = "one trained net: the SE is over the instances moved, not over training runs"
ONE_PAIR = "one network pair: no estimate of the training noise (SE unknown)"
ONE_FINE_TUNING = "one fine-tuning run: no estimate of the training noise (SE unknown)"
ONE_RUN_TRAIN = "one training run: the SE is over its training examples alone, a lower bound ignoring training noise"
CELL = re.compile(r"map_cka_mu(?P<mu>[^_]+)_sigma(?P<sigma>.+)")


def absolute(m: Measured) -> Measured:
    """|m|, with the 95 % interval of |x| for x in m's interval: [0, max(|lo|, |hi|)] when it straddles 0."""
    low, high = m.interval
    if math.isnan(low):
        return replace(m, value=abs(m.value), bounds=(math.nan, math.nan))
    ends = sorted((abs(low), abs(high)))
    return replace(m, value=abs(m.value), bounds=(0.0 if low <= 0 <= high else ends[0], ends[1]))


def lowest(items: Sequence[Measured], what: str) -> Measured:
    """The lowest of per-run values (`min_of`), or the only one."""
    return items[0] if len(items) == 1 else min_of(items, what)


def highest(items: Sequence[Measured], what: str) -> Measured:
    return items[0] if len(items) == 1 else max_of(items, what)


def over_seeds(runs: Sequence[Measured], n_of: str = "seeds") -> Measured:
    """Mean over seeds of per-run values (each run's own SE set aside: the spread over seeds holds it), or the
    single run's value with its own SE."""
    return runs[0] if len(runs) == 1 else mean_over([m.value for m in runs], n_of)


def synthetic(run: RunResult) -> dict[str, Measured]:
    """Fig. 4a, b from one run's per-seed values."""
    per_seed = run.outcomes
    out = {name: mean_over(values, "seeds (cube draws)") for name, values in per_seed.items()}
    cells = {name: m for name, m in out.items() if CELL.fullmatch(name)}
    out["map_cka_min"] = min_of(list(cells.values()), "grid cells (μ, σ)")
    out["map_cka_max"] = max_of(list(cells.values()), "grid cells (μ, σ)")
    by_ratio: dict[float, list[str]] = {}
    for name in cells:
        mu, sigma = (float(v) for v in CELL.fullmatch(name).groups())
        by_ratio.setdefault(round(math.log10(sigma / mu), 9), []).append(name)
    gaps = [absolute(mean_over(per_seed[a] - per_seed[b], "seeds (paired: the same cubes)"))
            for names in by_ratio.values() for a, b in itertools.combinations(names, 2)]
    if gaps:
        out["map_cka_gap_at_equal_ratio"] = max_of(gaps, "cell pairs of equal σ/μ")
    return out


def translation(runs: Sequence[RunResult]) -> dict[str, Measured]:
    """Fig. 4c: the net's test accuracy, the by-construction quantities, CKA after moving one class / one point."""
    out = {
        "translation_net_test_acc": lowest([mean_of_scores(r.outcomes["net"], note=ONE_RUN) for r in runs], "seeds"),
        "svm_acc_max_change": exact(max(r.metrics["svm_acc_max_change"] for r in runs), len(runs),
                                    "trained nets (deterministic: the SVM is scored on the features it was fit on)"),
        "cka_all_at_max_c": exact(min(r.metrics["cka_all_at_max_c"] for r in runs), len(runs),
                                  "trained nets (an identity: no sampling error)"),
        "normals_dot_v_max": exact(max(r.metrics["normals_dot_v_max"] for r in runs), len(runs), "trained nets"),
        "svm_acc": mean_over([r.metrics["svm_acc"] for r in runs], "seeds"),
    }
    for case, what in (("one_point", "random points moved"), ("one_class", "classes moved")):
        if len(runs) > 1:
            out[f"cka_{case}_at_max_c"] = mean_over([r.metrics[f"cka_{case}_at_max_c"] for r in runs],
                                                    f"seeds (each the mean over its {what})")
        else:
            m = runs[0].metrics
            k = int(m[f"{case}_cases"])
            out[f"cka_{case}_at_max_c"] = Measured(m[f"cka_{case}_at_max_c"], m[f"cka_{case}_at_max_c_sd"] / k ** 0.5,
                                                   k, what, df=k - 1 if k > 1 else None, note=ONE_NET)
        out[f"limit_{case}"] = mean_over([r.metrics[f"limit_{case}"] for r in runs], "seeds")
    return out


def early_layers(runs: Sequence[RunResult]) -> dict[str, Measured]:
    """Sec. 4.1: the two trained nets' checks and the CKA values between the three nets, over seeds."""
    memorised = [proportion(round(r.metrics["train_acc_memorising_shuffled"] * r.metrics["train_examples"]),
                            int(r.metrics["train_examples"]), "training examples (shuffled labels)",
                            note=ONE_RUN_TRAIN)
                 for r in runs]
    out = {
        "train_acc_memorising_shuffled": lowest(memorised, "seeds"),
        "generalising_test_acc": lowest([mean_of_scores(r.outcomes["generalising"], note=ONE_RUN) for r in runs],
                                        "seeds"),
        "memorising_test_acc": over_seeds([mean_of_scores(r.outcomes["memorising"], note=ONE_RUN) for r in runs]),
    }
    keys = [k for k in runs[0].metrics if k.startswith(("cka_linear_", "cka_rbf")) and
            (k.endswith(("_block0", "_first_minus_last")) or k.startswith("cka_linear_gen_mem"))]
    for key in keys:
        out[key] = mean_over([r.metrics[key] for r in runs], "seeds (network pairs)",
                             note=ONE_PAIR if len(runs) == 1 else "")
    return out


def manipulation(runs: Sequence[RunResult]) -> dict[str, Measured]:
    """Sec. 4.3 for one network: per target the paired test-set accuracy drop and the map distance ratio."""
    out = {"manipulated_net_test_acc": lowest([mean_of_scores(r.outcomes["original"], note=ONE_RUN) for r in runs],
                                              "seeds")}
    for target in TARGETS:
        drops = [paired_difference(r.outcomes["original"], r.outcomes[target], note=ONE_RUN) for r in runs]
        out[f"acc_drop_{target}"] = over_seeds(drops, "seeds (each a paired test-set difference)")
        out[f"map_distance_ratio_{target}"] = mean_over([r.metrics[f"map_distance_ratio_{target}"] for r in runs],
                                                        "seeds", note=ONE_FINE_TUNING if len(runs) == 1 else "")
    out["map_distance_ratio_max"] = max_of([out[f"map_distance_ratio_{t}"] for t in TARGETS], "targets")
    return out


def measure(results: dict[RunPlan, RunResult], scale: str, figure_dir: Path) -> dict[str, Measured]:
    """Every claim metric whose runs finished (module docstring)."""
    runs: dict[str, list[RunResult]] = {}
    for plan, result in results.items():
        runs.setdefault(plan.experiment, []).append(result)
    out: dict[str, Measured] = {}
    if "synthetic" in runs:
        out |= synthetic(runs["synthetic"][0])
    if "translation" in runs:
        out |= translation(runs["translation"])
    if "early_layers" in runs:
        out |= early_layers(runs["early_layers"])
    networks = [manipulation(runs[e]) for e in ("manipulation", "manipulation_resnet") if e in runs]
    for key in networks[0] if networks else ():
        parts = [n[key] for n in networks]
        out[key] = (lowest if key.endswith("test_acc") else highest)(parts, "networks (VGG, ResNet-34)")
    return out
