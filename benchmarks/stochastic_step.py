"""One training step of the stochastic rainbow pre-BN ResNet against the same ResNet with fixed weights.

Rows (the same `papers/stochastic_rainbow/resnet.py: StochasticResNet`, CIFAR-shaped input (3, 32, 32), 10 classes,
one step = forward, cross-entropy, backward, SGD step (momentum 0.9, wd 5e-4)):
- `plain Conv2d`: conv="conv" (nn.Conv2d, no alignment): the reference cost;
- `FactConv, fixed noise`: conv="factconv" (the weight W0 (R_c ⊗ R_s) rebuilt every step, no alignment);
- `stochastic rainbow`: conv="stochastic" (every W_gen redrawn, the generated path on the whole batch and the
  reference path on all of it, K = X_genᵀ X_ref and its polar factor (SVD) at every alignment, backward through
  both): the paper's step;
- `stochastic, f = F` for each F of `--fractions` (default 0.5 0.25): the reference path on the first ⌈F B⌉
  examples only (`model.reference_fraction`, our cheaper estimate of K);
- with `--compile`, `plain Conv2d, compiled` and `stochastic rainbow, compiled`: the same nets through
  `torch.compile(net, dynamic=False)` (with torch's default automatic dynamic shapes inductor fails on the
  stochastic net: "cannot determine truth value of Relational"); the compilation happens in the warm-up steps.
Each row: two untimed warm-up steps, then `--repeats` timed steps; medians (and minima) and the ratio to plain.
Torch threads: `--threads` (default: torch's). The 1-minute load average is printed: on a shared machine
absolute times carry that noise, the ratios less so.

    .venv/bin/python benchmarks/stochastic_step.py                           # ResNet-18, width 1, batch 32
    .venv/bin/python benchmarks/stochastic_step.py --width 0.25 --batch 128 --depth 9
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from papers.stochastic_rainbow.layers import redraw_all
from papers.stochastic_rainbow.resnet import StochasticResNet

ROWS = {"plain Conv2d": ("conv", 1.0), "FactConv, fixed noise": ("factconv", 1.0),
        "stochastic rainbow": ("stochastic", 1.0)}


def time_steps(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, repeats: int,
               redraw: bool) -> tuple[list[float], float]:
    """Step times after two warm-up steps, and the last loss (a diverged net would time NaN arithmetic)."""
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    times = []
    for i in range(repeats + 2):
        start = time.perf_counter()
        if redraw:
            redraw_all(net)
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        if i >= 2:  # two warm-up steps
            times.append(time.perf_counter() - start)
    return times, loss.item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depth", type=int, default=18)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--compile", action="store_true", help="add torch.compile'd plain and stochastic rows")
    parser.add_argument("--fractions", type=float, nargs="*", default=[0.5, 0.25],
                        help="reference fractions below 1 to time as extra stochastic rows")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    info = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), platform.processor())
    print(f"{cpu} | {os.cpu_count()} CPUs | torch {torch.__version__} | {torch.get_num_threads()} thread(s) | "
          f"{time.strftime('%Y-%m-%d %H:%M')} | load {os.getloadavg()[0]:.1f}")
    print(f"ResNet-{args.depth}, width scale {args.width}, batch {args.batch}, {args.repeats} timed steps")
    print("| row | median s / step | min s / step | vs plain | last loss |")
    print("|---|---:|---:|---:|---:|")
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(args.batch, 3, 32, 32, generator=gen), torch.randint(0, 10, (args.batch,), generator=gen)
    base = None
    rows = ROWS | {f"stochastic, f = {f:g}": ("stochastic", f) for f in args.fractions}
    if args.compile:
        rows |= {"plain Conv2d, compiled": ("conv", 1.0), "stochastic rainbow, compiled": ("stochastic", 1.0)}
    for name, (conv, fraction) in rows.items():
        torch.manual_seed(0)
        net = StochasticResNet(3, 10, depth=args.depth, width_scale=args.width, conv=conv,
                               reference_fraction=fraction).train()
        if name.endswith("compiled"):
            net = torch.compile(net, dynamic=False)
        times, loss = time_steps(net, x, y, args.repeats, redraw=conv == "stochastic")
        median = statistics.median(times)
        base = base or median
        print(f"| {name} | {median:.3f} | {min(times):.3f} | {median / base:.2f}x | {loss:.3g} |", flush=True)
    print(f"load after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
