"""A measured value with its uncertainty: what every claim metric is.

A `Measured` carries the value, its standard error, the n it rests on and what that n is (seeds, test examples,
cells), and its 95 % interval. The interval is value ± q·se with q the normal quantile 1.96, or Student's
t_{0.975, df} when the SE comes from few replicates (seeds: df = k − 1); a minimum or maximum over several
measured values carries the conservative interval of its parts (`min_of`, `max_of`), a proportion its Wilson
interval (`proportion`).

Which SE a claim uses (DESIGN, Claims):
- differences between variants on the same test set: the paired per-example difference (`paired_difference`);
- across training runs scored on one test set: the spread over seeds plus the test set's own noise
  (`over_seeds`, Student t); replicates with no shared test set: the spread over seeds alone (`mean_over`);
- a claim resting on one training run: the test-set SE, a lower bound that ignores training noise (`ONE_RUN`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats as _scipy_stats

Z95 = 1.959963984540054  # the normal 0.975 quantile
ONE_RUN = "one training run: the SE is the test set's alone, a lower bound that ignores training noise"


@dataclass(frozen=True)
class Measured:
    """value ± se (n n_of); `df`: Student-t degrees of freedom of the interval (None: normal); `bounds`: an
    explicit 95 % interval (minima, maxima, proportions), used instead of value ± q·se; `note`: what the reader
    must know to read the number (e.g. `ONE_RUN`)."""

    value: float
    se: float
    n: int
    n_of: str
    df: int | None = None
    bounds: tuple[float, float] | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.n < 0 or not self.n_of:
            raise ValueError(f"Measured needs n >= 0 and what n counts (n_of); got n={self.n}, n_of={self.n_of!r}")
        if self.se < 0:
            raise ValueError(f"a standard error cannot be negative: {self.se}")

    @property
    def interval(self) -> tuple[float, float]:
        """The 95 % interval (NaN, NaN when the value or its SE is unknown)."""
        if self.bounds is not None:
            return self.bounds
        if not (math.isfinite(self.value) and math.isfinite(self.se)):
            return (math.nan, math.nan)
        q = float(_scipy_stats.t.ppf(0.975, self.df)) if self.df else Z95
        return (self.value - q * self.se, self.value + q * self.se)

    def __str__(self) -> str:
        return f"{self.value:.4g} ± {self.se:.2g} (n = {self.n} {self.n_of})"


def exact(value: float, n: int = 1, n_of: str = "closed-form computation", note: str = "") -> Measured:
    """A value computed without sampling error (a closed form, a deterministic count): SE 0."""
    return Measured(float(value), 0.0, n, n_of, note=note)


def mean_over(values: Sequence[float], n_of: str = "seeds", note: str = "") -> Measured:
    """Mean of k independent replicates (seeds): SE = sd/√k, interval with Student's t_{k−1}. One replicate
    has no spread: its SE is unknown (NaN) and any claim on it is inconclusive."""
    x = np.asarray(values, dtype=float)
    k = len(x)
    if k == 0:
        raise ValueError("mean_over needs at least one value")
    se = float(x.std(ddof=1) / math.sqrt(k)) if k > 1 else math.nan
    return Measured(float(x.mean()), se, k, n_of, df=k - 1 if k > 1 else None, note=note)


def mean_of_scores(scores: Iterable[float] | np.ndarray, n_of: str = "test examples", note: str = "") -> Measured:
    """Mean of per-example scores (1/0 correct, or the fraction of samples that got the example right):
    SE = sd/√n over examples."""
    x = np.asarray(scores, dtype=float).ravel()
    if len(x) < 2:
        raise ValueError("mean_of_scores needs at least two examples")
    return Measured(float(x.mean()), float(x.std(ddof=1) / math.sqrt(len(x))), len(x), n_of, note=note)


def paired_difference(a: np.ndarray, b: np.ndarray, n_of: str = "test examples (paired)",
                      note: str = "") -> Measured:
    """mean(a − b) over the same examples, SE = sd(a_i − b_i)/√n: two variants scored on one test set."""
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired_difference needs scores of the same examples: {a.shape} vs {b.shape}")
    return mean_of_scores(a - b, n_of, note)


def over_seeds(plus: Sequence[np.ndarray], minus: Sequence[np.ndarray] = ()) -> Measured:
    """A per-example quantity over training runs that share one test set: each array (n,) holds run s's score of
    every test example (or a paired difference of two variants of that run). With d_i = mean_s plus_{s,i} −
    mean_s minus_{s,i},

        value = mean_i d_i,
        SE²   = Var_s(mean_i plus_s)/k₊ + Var_s(mean_i minus_s)/k₋   training noise: the spread over seeds
              + Var_i(d_i)/n                                         test-set noise, common to every run, which
                                                                     the spread over seeds cannot see,

    with a Student-t interval whose degrees of freedom come from Welch–Satterthwaite (k − 1 per seed term, n − 1
    for the test term). A group with a single run has no seed spread: the test-set SE alone, note `ONE_RUN`."""
    groups = [np.stack([np.asarray(x, dtype=float).ravel() for x in g]) for g in (plus, minus) if len(g)]  # (k, n)
    if not groups:
        raise ValueError("over_seeds needs at least one run")
    contrast = groups[0].mean(0) - (groups[1].mean(0) if len(groups) > 1 else 0.0)  # (n,)
    test = mean_of_scores(contrast, "test examples" if len(groups) == 1 else "test examples (paired)")
    runs = [len(g) for g in groups]
    if min(runs) < 2:
        return replace(test, note=ONE_RUN)
    parts = [(g.mean(1).var(ddof=1) / len(g), len(g) - 1) for g in groups] + [(test.se ** 2, len(contrast) - 1)]
    var = sum(v for v, _ in parts)
    df = max(1, int(var ** 2 / sum(v ** 2 / d for v, d in parts if v > 0))) if var > 0 else None
    return Measured(test.value, math.sqrt(var), min(runs), f"seeds × {len(contrast)} test examples", df=df)


def difference(a: Measured, b: Measured, note: str = "") -> Measured:
    """a − b for independent estimates: SE = √(se_a² + se_b²); t degrees of freedom by Welch–Satterthwaite
    when both have them."""
    se = math.sqrt(a.se ** 2 + b.se ** 2)
    df = None
    if a.df and b.df and se > 0:
        df = int((a.se ** 2 + b.se ** 2) ** 2 / (a.se ** 4 / a.df + b.se ** 4 / b.df))
    n_of = a.n_of if a.n_of == b.n_of else f"{a.n_of} / {b.n_of}"
    return Measured(a.value - b.value, se, min(a.n, b.n), n_of, df=max(df, 1) if df is not None else None,
                    note=note or "; ".join(dict.fromkeys(x for x in (a.note, b.note) if x)))


def proportion(successes: int, n: int, n_of: str, note: str = "") -> Measured:
    """k successes of n: p = k/n, SE = √(p(1−p)/n), and Wilson's 95 % interval (honest at p = 0 or 1)."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"proportion needs 0 <= successes <= n, n > 0; got {successes} of {n}")
    p = successes / n
    centre = (p + Z95 ** 2 / (2 * n)) / (1 + Z95 ** 2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95 ** 2 / (4 * n * n)) / (1 + Z95 ** 2 / n)
    return Measured(p, math.sqrt(p * (1 - p) / n), n, n_of, bounds=(centre - half, centre + half), note=note)


def _extreme(items: Sequence[Measured], pick: Callable, what: str) -> Measured:
    if not items:
        raise ValueError(f"{pick.__name__}_of needs at least one measured value")
    chosen = pick(items, key=lambda m: m.value)
    lows, highs = zip(*(m.interval for m in items), strict=True)
    bounds = (pick(lows), pick(highs))
    if any(math.isnan(v) for v in bounds):
        bounds = (math.nan, math.nan)
    note = "; ".join(dict.fromkeys(m.note for m in items if m.note))
    return replace(chosen, bounds=bounds, n_of=f"{chosen.n_of}; {pick.__name__} over {len(items)} {what}",
                   note=note)


def min_of(items: Sequence[Measured], what: str) -> Measured:
    """The smallest of several measured values ("holds at every width"): the interval [min lo, min hi], so that
    it lies above a threshold only when every part's does, and below it as soon as one part's does."""
    return _extreme(items, min, what)


def max_of(items: Sequence[Measured], what: str) -> Measured:
    """The largest of several measured values: the interval [max lo, max hi] (see `min_of`)."""
    return _extreme(items, max, what)
