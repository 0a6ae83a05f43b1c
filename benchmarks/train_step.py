"""Training-step overhead of our LightningModule + Lightning's Trainer against a plain PyTorch loop.

The rainbow MLP (``compose("rainbow", "mlp", ["model.width=W"])``: depth 3, bias-free, mnist5k, batch
size 128) is trained for the same number of optimizer steps in several ways, side by side in one process:

* ``plain``: a hand-written loop over the datamodule's train tensors. Per epoch it draws a permutation
  from a ``torch.Generator`` seeded exactly as ``TensorBatches`` seeds it (``epoch_seed(seed, epoch)``), so
  it sees the same batches in the same order; per batch: gather, forward, cross-entropy, the accuracy the
  module logs (argmax compare), zero_grad, backward, SGD step (``common.optim.build_optimizer``, the
  optimizer the module configures). Loss and accuracy are accumulated on the device into batch-size
  weighted epoch sums, as ``self.log(..., on_epoch=True)`` does; nothing calls ``.item()`` per step.
* ``lightning``: ``trainer.fit(RainbowModule, TensorDataModule)``. The module sums loss and accuracy on
  the device, logs them once per epoch, and logs the step loss every ``log_every_n_steps`` steps: that is
  part of what is measured, the cost of OUR module, not only of Lightning's loop.
* ``+RunGuard``: the same plus the project's ``common.train.RunGuard`` callback, which records the first
  non-finite loss on the device and reads it every ``log_every_n_steps`` steps.
* ``no-log`` (only with ``--diagnose``): the same Trainer with a RainbowModule whose training_step does the
  same maths (loss and accuracy) but calls no ``self.log``, to separate the logging cost from the loop's.

The Trainer is built here with ``L.Trainer`` directly, not with ``common.train.build_trainer``:
``build_trainer`` leaves ``enable_checkpointing`` at Lightning's default (True), which adds a default
``ModelCheckpoint`` that writes a checkpoint every epoch, and it has no switch for that; we want the
overhead of our module + Lightning's loop, not checkpoint I/O. So ``make_trainer`` passes every argument
``build_trainer`` passes for this config (accelerator/devices/strategy/precision, ``deterministic``,
``gradient_clip_val``, ``log_every_n_steps``, ``num_sanity_val_steps=0``, ``enable_model_summary=False``)
and adds ``enable_checkpointing=False``, ``logger=False``, ``enable_progress_bar=False`` and
``limit_val_batches=0`` (no validation: the plain loop has none). ``deterministic: true`` makes Lightning
call ``torch.use_deterministic_algorithms(True)`` for the whole process, so it is set before the plain
loop runs too.

Every variant starts from the same initial weights (one seeded init whose state dict is copied), and as a
check that plain and Lightning do the same work the script prints the largest difference between their
final weights (0 on the CPU).

Timing: one untimed warm-up epoch of each variant, then ``--repeats`` rounds that run each variant once
(the order is reversed every other round to cancel drift); medians and minima are reported. The main
number is the wall time of ``trainer.fit`` (its setup, ``configure_optimizers`` and teardown included;
the plain time likewise includes building the optimizer); ``L.Trainer(...)`` construction is timed
separately. Torch's thread count is left alone unless ``--threads`` is given, and printed. On a small
shared machine, intra-op threads that compete with other processes for the cores make single runs many
times slower; the 1-minute load average before each round is printed so that such runs can be spotted.

``--profile`` also runs cProfile over one ``trainer.fit`` of the first width and prints the top functions.

    .venv/bin/python benchmarks/train_step.py [--width 256 1024] [--epochs 5] [--repeats 3]
        [--threads N] [--diagnose] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import platform
import pstats
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from common.classifier import accuracy
from common.config import compose
from common.data import build_datamodule
from common.data.batches import epoch_seed
from common.models import build_model
from common.optim import build_optimizer
from common.train import RunGuard  # importing common.train also quiets Lightning's info messages
from papers.rainbow.module import RainbowModule, build_module

warnings.filterwarnings("ignore", message=r".*`limit_val_batches=0`.*")
warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")

LABELS = {"plain": "plain", "lightning": "lightning", "guard": "+RunGuard", "nolog": "no-log"}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"date {datetime.now(UTC):%Y-%m-%d %H:%M} UTC | CPU {cpu_model()} | {cores} cores usable | "
            f"torch {torch.__version__} ({torch.get_num_threads()} intra-op threads, "
            f"{torch.get_num_interop_threads()} inter-op) | lightning {L.__version__} | "
            f"python {platform.python_version()}")


def load_average() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")


# ---------------------------------------------------------------------------------------------- plain loop


def train_plain(cfg: Any, net: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int) -> int:
    """The plain PyTorch equivalent of one ``trainer.fit``; returns the number of optimizer steps."""
    optimizer = build_optimizer(cfg.optim, net.parameters(), epochs)["optimizer"]
    net.train()
    batch_size, steps = cfg.data.batch_size, 0
    for epoch in range(epochs):
        generator = torch.Generator(device=x.device).manual_seed(epoch_seed(cfg.seed, epoch))
        order = torch.randperm(len(y), generator=generator, device=x.device)
        loss_sum = torch.zeros((), device=x.device)
        acc_sum = torch.zeros((), device=x.device)
        for index in order.split(batch_size):
            xb, yb = x[index], y[index]
            logits = net(xb)
            loss = F.cross_entropy(logits, yb)
            acc = (logits.argmax(-1) == yb).float().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(yb)  # what on_epoch=True accumulates: a batch-size weighted sum
            acc_sum += acc * len(yb)
            steps += 1
        _epoch_means = (loss_sum / len(y), acc_sum / len(y))
    return steps


# ---------------------------------------------------------------------------------------------- Lightning


class NoLogModule(RainbowModule):
    """Diagnostic: the module's training maths (loss and accuracy) without any ``self.log``."""

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = self.net(x)
        loss = F.cross_entropy(logits, y)
        accuracy(logits, y)
        return loss


def make_trainer(cfg: Any, epochs: int, callbacks: list[L.Callback], root: str) -> L.Trainer:
    """``build_trainer``'s arguments minus checkpointing, logging, progress bar and validation."""
    t = cfg.trainer
    return L.Trainer(
        default_root_dir=root, max_epochs=epochs, accelerator=t.accelerator, devices=t.devices,
        num_nodes=t.num_nodes, strategy=t.strategy, precision=t.precision, deterministic=t.deterministic,
        gradient_clip_val=t.gradient_clip_val, log_every_n_steps=t.log_every_n_steps,
        limit_train_batches=t.limit_train_batches, limit_val_batches=0, enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, num_sanity_val_steps=0, callbacks=callbacks,
        logger=False)


class Bench:
    """Everything for one width: config, data, initial weights; ``run`` times one training of a variant."""

    def __init__(self, width: int, root: str) -> None:
        self.cfg = compose("rainbow", "mlp", [f"model.width={width}"])
        self.root = root
        self.dm = build_datamodule(self.cfg.data, self.cfg.seed)
        self.dm.prepare_data()
        self.dm.setup("fit")
        # the plain loop runs where Lightning's strategy puts the model (the CPU here; a GPU if there is one)
        self.device = make_trainer(self.cfg, 1, [], root).strategy.root_device
        self.x, self.y = (t.to(self.device) for t in self.dm.train_tensors())
        L.seed_everything(self.cfg.seed, verbose=False)
        self.init = {k: v.clone() for k, v in build_module(self.cfg, self.dm).net.state_dict().items()}
        self.steps_per_epoch = len(self.dm.train_dataloader())

    def fresh_net(self) -> nn.Module:
        net = build_model(self.cfg.model, self.dm.input_shape, self.dm.num_classes)
        net.load_state_dict(self.init)
        return net

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def run(self, variant: str, epochs: int, wrap: Callable[[Callable[[], Any]], Any] | None = None
            ) -> tuple[float, float, dict[str, torch.Tensor]]:
        """(Trainer construction seconds (0 for plain), training seconds, final weights)."""
        wrap = wrap or (lambda fn: fn())
        if variant == "plain":
            net = self.fresh_net().to(self.device)
            gc.collect()
            self.sync()
            start = time.perf_counter()
            steps = wrap(lambda: train_plain(self.cfg, net, self.x, self.y, epochs))
            self.sync()
            elapsed = time.perf_counter() - start
            assert steps == epochs * self.steps_per_epoch, steps
            return 0.0, elapsed, {k: v.cpu() for k, v in net.state_dict().items()}
        if variant == "nolog":
            module: RainbowModule = NoLogModule(self.cfg, self.fresh_net())
        else:
            module = build_module(self.cfg, self.dm)
            module.net.load_state_dict(self.init)
        callbacks: list[L.Callback] = []
        if variant == "guard":
            stamp = {"paper": "rainbow", "experiment": "mlp", "format": 1}
            callbacks.append(RunGuard(stamp, Path(self.root) / "checkpoints" / "last.ckpt"))
        gc.collect()
        self.sync()
        start = time.perf_counter()
        trainer = make_trainer(self.cfg, epochs, callbacks, self.root)
        built = time.perf_counter()
        wrap(lambda: trainer.fit(module, datamodule=self.dm))
        self.sync()
        done = time.perf_counter()
        assert trainer.global_step == epochs * self.steps_per_epoch, trainer.global_step
        return built - start, done - built, {k: v.cpu() for k, v in module.net.state_dict().items()}


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Largest elementwise difference between two state dicts."""
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def profile_fit(bench: Bench, epochs: int, top: int = 20) -> str:
    profiler = cProfile.Profile()

    def wrap(fit: Callable[[], Any]) -> Any:
        profiler.enable()
        try:
            return fit()
        finally:
            profiler.disable()

    _, fit_s, _ = bench.run("lightning", epochs, wrap=wrap)
    out = io.StringIO()
    out.write(f"cProfile of one trainer.fit, width {bench.cfg.model.width}, {epochs} epochs "
              f"({fit_s:.2f} s with the profiler on)\n")
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def print_table(title: str, rows: list[dict[str, Any]], variants: list[str],
                stat: Callable[[list[float]], float]) -> None:
    others = variants[1:]
    cells = ([("width", 5), ("steps", 5)] + [(f"{LABELS[v]} s", 11) for v in variants]
             + [(f"{LABELS[v]}/plain", 15) for v in others] + [(f"{LABELS[v]} st/s", 14) for v in variants]
             + [("Trainer() s", 11)])
    print(f"\n{title}")
    header = " ".join(f"{name:>{w}}" for name, w in cells)
    print(header)
    print("-" * len(header))
    for row in rows:
        t = {k: stat(v) for k, v in row["times"].items()}
        steps = row["steps"]
        values = ([f"{row['width']:>5}", f"{steps:>5}"] + [f"{t[v]:>11.3f}" for v in variants]
                  + [f"{t[v] / t['plain']:>15.3f}" for v in others]
                  + [f"{steps / t[v]:>14.1f}" for v in variants] + [f"{t['build']:>11.4f}"])
        print(" ".join(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, nargs="+", default=[256, 1024], help="model.width values")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per timed run (32 steps each)")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per width")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads (default: left as torch sets it)")
    parser.add_argument("--diagnose", action="store_true", help="also time the no-log module")
    parser.add_argument("--profile", action="store_true", help="also cProfile one trainer.fit")
    args = parser.parse_args()

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(machine_info())
    torch.use_deterministic_algorithms(True)  # what Trainer(deterministic=True) sets for the whole process
    variants = ["plain", "lightning", "guard"] + (["nolog"] if args.diagnose else [])
    rows: list[dict[str, Any]] = []
    profile_text = ""
    with tempfile.TemporaryDirectory(prefix="bench-train-step-") as root:
        for width in args.width:
            bench = Bench(width, root)
            for variant in variants:  # warm-up: one untimed epoch of each
                bench.run(variant, 1)
            times: dict[str, list[float]] = {v: [] for v in variants} | {"build": []}
            loads, diff = [], None
            for r in range(args.repeats):
                loads.append(load_average())
                weights = {}
                for variant in variants if r % 2 == 0 else variants[::-1]:
                    build_s, seconds, weights[variant] = bench.run(variant, args.epochs)
                    times[variant].append(seconds)
                    if variant != "plain":
                        times["build"].append(build_s)
                if diff is None:
                    diff = max_diff(weights["plain"], weights["lightning"])
            rows.append({"width": width, "steps": args.epochs * bench.steps_per_epoch, "times": times})
            print(f"width {width}: max |w_plain - w_lightning| after training = {diff:.1e}; "
                  f"1-min load average before each round: {loads}")
            for variant in variants:
                print(f"  {LABELS[variant]:>10} runs (s): {', '.join(f'{s:.3f}' for s in times[variant])}")
            ratios = [a / b for a, b in zip(times["lightning"], times["plain"], strict=True)]
            print(f"  lightning/plain per round: {', '.join(f'{q:.3f}' for q in ratios)}", flush=True)
        if args.profile:
            profile_text = profile_fit(Bench(args.width[0], root), args.epochs)

    setting = (f"{args.epochs} epochs, batch size 128, depth 3, mnist5k (4000 train examples), "
               f"{torch.get_num_threads()} threads")
    print_table(f"median of {args.repeats} rounds; {setting}", rows, variants, statistics.median)
    print_table(f"min of {args.repeats} rounds (the least disturbed by other processes)", rows, variants, min)
    median = statistics.median
    worst = max(median(r["times"]["lightning"]) / median(r["times"]["plain"]) for r in rows)
    print(f"\ngoal lightning <= 1.10x plain (medians): {'met' if worst <= 1.10 else 'NOT met'} "
          f"(worst ratio {worst:.3f})")
    if profile_text:
        print("\n" + profile_text)


if __name__ == "__main__":
    main()
