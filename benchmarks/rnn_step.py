"""The adaptive-RNN recurrent loop against torch.nn.RNN (tanh) of the same size: forward + backward per sequence.

Rows (all with N units, one input per step, T steps, batch B, loss = sum of the last state):
- `torch.nn.RNN tanh`: torch's own RNN (one fused ATen op per step on the CPU);
- `ours tanh`: our `RecurrentCore` with a fixed tanh (the same cell as nn.RNN: the loop's own cost);
- `ours γ heterogeneous`: per-neuron learned (n, s) (the γ-RNN of the paper);
- `ours ARU`: the adaptive controller (K = 50 state per neuron, shared weights);
- `ours ARU, compiled`: the same with the controller step and γ wrapped in `torch.compile` (`--compile`; the loop
  stays in Python, so each compiled graph is one step's cell). Its compile time is printed apart, not timed.
Each row: one untimed warm-up, then `--repeats` timed rounds; medians (and minima) of seconds per batch and per
sequence, and the ratio to nn.RNN. Torch threads: `--threads` (default 1: on a busy 2-core machine two threads
made the loop's small kernels several times slower).

    .venv/bin/python benchmarks/rnn_step.py                                  # smoke size: T = 49, N = 64, B = 100
    .venv/bin/python benchmarks/rnn_step.py --steps 784 --width 400 --batch 10 --repeats 3   # the paper's size
    .venv/bin/python benchmarks/rnn_step.py --compile                       # + the ARU with a compiled cell
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from papers.adaptive_rnn.rnn import AdaptiveGains, FixedGains, LearnedGains, RecurrentCore


def torch_rnn(width: int) -> Callable[[torch.Tensor], torch.Tensor]:
    rnn = nn.RNN(1, width, nonlinearity="tanh", batch_first=True)
    return lambda x: rnn(x)[1][0].sum()


def ours(core: RecurrentCore) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda x: core.run(core.input_term(x))[0].sum()


def compiled_aru(width: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The ARU row with its per-step cell (controller step, then γ) compiled by torch.compile."""
    core = RecurrentCore(1, width, "gamma", AdaptiveGains(50, constrained=True))
    core.gains.step = torch.compile(core.gains.step, dynamic=False)
    core.phi = torch.compile(core.phi, dynamic=False)
    return ours(core)


def time_row(step: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, repeats: int) -> list[float]:
    start = time.perf_counter()
    step(x).backward()  # warm-up (and compilation, for a compiled row)
    warm_up = time.perf_counter() - start
    if warm_up > 5:
        print(f"(warm-up took {warm_up:.1f} s)")
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step(x).backward()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=49)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--compile", action="store_true", help="add the ARU row with a torch.compile'd cell")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    n = args.width
    rows = {"torch.nn.RNN tanh": torch_rnn(n),
            "ours tanh": ours(RecurrentCore(1, n, "tanh", FixedGains(1.0, 0.0))),
            "ours γ heterogeneous": ours(RecurrentCore(1, n, "gamma", LearnedGains((n,), constrained=True))),
            "ours ARU": ours(RecurrentCore(1, n, "gamma", AdaptiveGains(50, constrained=True)))}
    if args.compile:
        rows["ours ARU, compiled"] = compiled_aru(n)
    x = torch.rand(args.batch, args.steps, 1)
    info = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), platform.processor())
    print(f"{cpu} | {os.cpu_count()} CPUs | torch {torch.__version__} | {args.threads} thread(s) | "
          f"{time.strftime('%Y-%m-%d %H:%M')} | load {os.getloadavg()[0]:.1f}")
    print(f"T = {args.steps}, N = {n}, B = {args.batch}, {args.repeats} rounds, forward + backward")
    print(f"| {'row':<22} | median s / batch | min s / batch | ms / sequence | vs nn.RNN |")
    print(f"|{'-' * 24}|---:|---:|---:|---:|")
    base = None
    for name, step in rows.items():
        times = time_row(step, x, args.repeats)
        median = statistics.median(times)
        base = base or median
        print(f"| {name:<22} | {median:.4f} | {min(times):.4f} | {1e3 * median / args.batch:.3f} | "
              f"{median / base:.2f}x |")


if __name__ == "__main__":
    main()
