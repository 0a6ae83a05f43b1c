"""Our CKA toolkit (``common.metrics.cka``) against the CKA packages researchers install from PyPI.

Peers (optional bench dependencies, never runtime ones; a row whose import fails says "not installed"):
``pytorch-cka`` (imports as ``cka``), ``ckatorch``, ``torch-cka``, ``cka-pytorch``, each called as its README
documents: model + DataLoader routines get two ``nn.Sequential`` nets and a loader, functions get features.

(a) linear CKA of two (10000, 2048) float32 matrices, x ~ N(0, 1), y = relu(x W) + 0.5 noise, and again with
    +10 added to both (CKA is invariant to it; debiased estimators on raw Gram matrices in float32 are not).
    Ours: ``cka`` biased and debiased; routines that only do minibatches get batches of 500 and are compared
    with ``MinibatchCKA``.
(b) 8 x 8 layer map over 5,000 samples in batches of 500: the ReLU outputs of two random He-initialised
    bias-free MLPs (input 128, widths 64 ... 512). Ours: ``MinibatchCKA(8, 8)`` fed each batch's precomputed
    features, and ``cka_map`` over nets + loader (forward passes included, as in the peers' routines; the
    ``forward only`` row is their cost).

Each row runs in its own subprocess: seeded data, one untimed warm-up call, ``--repeats`` timed calls
(median); a row whose warm-up took over ``--slow`` s reports that one cold call (and skips the +10 run unless
``--full``). Peak MB = peak RSS (VmHWM, reset via /proc/self/clear_refs once the data exists; else the
``ru_maxrss`` delta) minus the RSS before the first call. Errors: max |value - reference|, the reference being
our code on float64 copies of the same float32 inputs, same estimator and batches; the +10 column is one
call on the shifted data against the same (shift-invariant) reference.

    .venv/bin/python benchmarks/cka.py [--repeats 3] [--slow 8] [--full] [--only REGEX]
    /tmp/cka-peers-venv/bin/python benchmarks/cka.py      # a venv with the peers installed
"""

from __future__ import annotations

import argparse
import copy
import importlib
import itertools
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from common.metrics.cka import MinibatchCKA, cka, cka_map

N_A, D_A, N_B, BATCH, D_IN, OFFSET, TOL = 10_000, 2048, 5_000, 500, 128, 10.0, 1e-5
WIDTHS = [64, 96, 128, 192, 256, 320, 384, 512]
LAYERS = [str(2 * i + 1) for i in range(len(WIDTHS))]  # the ReLU modules of the nets


def data_a() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N_A, D_A, generator=g)
    y = torch.relu(x @ (torch.randn(D_A, D_A, generator=g) / D_A**0.5))
    return x, y.add_(torch.randn(N_A, D_A, generator=g), alpha=0.5)


def nets_b() -> tuple[nn.Sequential, nn.Sequential, torch.Tensor]:
    nets = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        mods, d = [], D_IN
        for w in WIDTHS:
            lin = nn.Linear(d, w, bias=False)
            nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
            mods += [lin, nn.ReLU()]
            d = w
        nets.append(nn.Sequential(*mods).eval())
    return nets[0], nets[1], torch.randn(N_B, D_IN, generator=torch.Generator().manual_seed(3))


@torch.no_grad()
def relu_outputs(net: nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
    return list(itertools.accumulate(net, lambda h, m: m(h), initial=x))[2::2]  # after each ReLU


class Cols(nn.Module):
    """Columns [lo, hi) of the input: lets model + loader routines see x and y of workload (a)."""

    def __init__(self, lo: int, hi: int) -> None:
        super().__init__()
        self.lo, self.hi = lo, hi

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z[:, self.lo:self.hi]


def ours_minibatch(feats_a: list[list[torch.Tensor]], feats_b: list[list[torch.Tensor]]) -> torch.Tensor:
    metric = MinibatchCKA(len(feats_a[0]), len(feats_b[0]))
    for fa, fb in zip(feats_a, feats_b, strict=True):
        metric.update(fa, fb)
    return metric.compute()


def build(key: str, module: str | None) -> tuple:
    """(call, models, shift): call(m) is timed, m = models() (fresh copies: peers' hooks pile up) is not;
    shift: the input tensors to add OFFSET to in place (None: no offset run)."""
    wl, impl, kind = key.split(":")
    mod = importlib.import_module(module) if module else None
    models = None
    if wl == "a":
        x, y = data_a()
        shift = [x, y]
        if impl in ("torch-cka", "cka-pytorch"):  # model + loader routines: x and y are columns of one input
            z = torch.cat([x, y], 1)
            shift, models = [z], lambda: (nn.Sequential(Cols(0, D_A)), nn.Sequential(Cols(D_A, 2 * D_A)), ["0"])
            loader = DataLoader(TensorDataset(z, torch.zeros(N_A)), batch_size=BATCH, shuffle=False)
    else:
        net_a, net_b, inputs = nets_b()
        # ckatorch's CKA passes a batch's tensors as the forward()'s arguments: the batch is (inputs,)
        data = (inputs,) if impl == "ckatorch" else (inputs, torch.zeros(N_B))
        loader = DataLoader(TensorDataset(*data), batch_size=BATCH, shuffle=False)
        shift, models = None, lambda: (copy.deepcopy(net_a), copy.deepcopy(net_b), LAYERS)
        fa = [relu_outputs(net_a, b) for b in inputs.split(BATCH)]
        fb = [relu_outputs(net_b, b) for b in inputs.split(BATCH)]
    calls = {
        "a:ours:biased": lambda m: cka(x, y),
        "a:ours:debiased": lambda m: cka(x, y, debiased=True),
        "a:ours:mb": lambda m: ours_minibatch([[b] for b in x.split(BATCH)], [[b] for b in y.split(BATCH)]),
        "a:pytorch-cka:debiased": lambda m: mod.cka_from_features(x, y),
        "a:ckatorch:biased": lambda m: mod.cka_base(x, y),
        "a:ckatorch:debiased": lambda m: mod.cka_base(x, y, unbiased=True),
        "a:ckatorch:mb": lambda m: mod.cka_batch(x.view(-1, BATCH, D_A), y.view(-1, BATCH, D_A)),
        "b:forward:only": lambda m: [(relu_outputs(m[0], b), relu_outputs(m[1], b)) for b, _ in loader],
        "b:ours:features": lambda m: ours_minibatch(fa, fb),
        "b:ours:cka_map": lambda m: cka_map(m[0], m[1], loader, m[2], m[2]),
        "b:pytorch-cka:compute_cka": lambda m: mod.compute_cka(m[0], m[1], loader, layers=m[2], model2_layers=m[2],
                                                               device="cpu", progress=False)[0],
        "b:ckatorch:CKA": lambda m: mod.CKA(m[0], m[1], layers=m[2], second_layers=m[2])(loader, epochs=1),
        "b:ckatorch:cka_batch": lambda m: torch.stack([torch.stack([mod.cka_batch(a, b) for b in stack(fb)])
                                                       for a in stack(fa)]),
        "b:torch-cka:compare": lambda m: torch_cka_compare(mod, m, loader),
        "b:cka-pytorch:CKACalculator": lambda m: mod.CKACalculator(m[0], m[1], m[2], m[2], device=torch.device(
            "cpu"), verbose=False).calculate_cka_matrix(loader, num_epochs=1),
    }
    calls["a:torch-cka:mb"], calls["a:cka-pytorch:mb"] = (calls["b:torch-cka:compare"],
                                                          calls["b:cka-pytorch:CKACalculator"])
    return calls[key], models, shift


def stack(feats: list[list[torch.Tensor]]) -> list[torch.Tensor]:
    """Per layer, the batches stacked: (batches, BATCH, width), the input of ckatorch's cka_batch."""
    return [torch.stack([f[i] for f in feats]) for i in range(len(feats[0]))]


def torch_cka_compare(mod: object, m: tuple, loader: DataLoader) -> torch.Tensor:
    c = mod.CKA(m[0], m[1], model1_name="A", model2_name="B", model1_layers=m[2], model2_layers=m[2])
    c.compare(loader, loader)
    return c.export()["CKA"]


# key -> (module to import, estimator, reference key); key = workload:implementation:variant
RAW, F64 = "minibatch, raw Gram", "minibatch (float64)"
ROWS = {
    "a:ours:biased": (None, "biased", "a_biased"), "a:ours:debiased": (None, "debiased", "a_debiased"),
    "a:ours:mb": (None, "minibatch", "a_mb"),
    "a:pytorch-cka:debiased": ("cka", "debiased, raw Gram, clamped", "a_debiased"),
    "a:ckatorch:biased": ("ckatorch", "biased (float64)", "a_biased"),
    "a:ckatorch:debiased": ("ckatorch", "debiased (float64)", "a_debiased"),
    "a:ckatorch:mb": ("ckatorch", F64, "a_mb"),
    "a:torch-cka:mb": ("torch_cka", RAW, "a_mb"), "a:cka-pytorch:mb": ("cka_pytorch", RAW, "a_mb"),
    "b:forward:only": (None, "(forward passes only)", None),
    "b:ours:features": (None, "minibatch", "b_map"), "b:ours:cka_map": (None, "minibatch", "b_map"),
    "b:pytorch-cka:compute_cka": ("cka", RAW + ", clamped", "b_map"),
    "b:ckatorch:CKA": ("ckatorch", F64, "b_map"), "b:ckatorch:cka_batch": ("ckatorch", F64, "b_map"),
    "b:torch-cka:compare": ("torch_cka", RAW, "b_map"), "b:cka-pytorch:CKACalculator": ("cka_pytorch", RAW, "b_map"),
}


def status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def worker(key: str, repeats: int, slow: float, full: bool) -> dict:
    module = ROWS[key][0]
    here = os.path.dirname(os.path.abspath(__file__))  # pytorch-cka imports as `cka`, like this file's name
    sys.path[:] = [q for q in sys.path if os.path.abspath(q or ".") != here]
    try:
        call, models, shift = build(key, module)
    except ImportError as e:
        return {"status": f"not installed ({e.name})"}
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak RSS (VmHWM) to the current RSS
        base, peak = status_kb("VmRSS"), lambda: status_kb("VmHWM")
    except OSError:
        peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # noqa: E731
        base = peak()
    times, value = [], None
    for i in range(repeats + 1):  # the first call is the warm-up
        m = models() if models else None
        t0 = time.perf_counter()
        value = call(m)
        times.append(time.perf_counter() - t0)
        if i == 0 and times[0] > slow:
            break
    out = {"status": "ok", "times": times[1:] or times, "warm": len(times) > 1}
    if isinstance(value, torch.Tensor):
        out["value"] = value.double().tolist()
    if shift is not None and (full or len(times) > 1):
        for t in shift:
            t.add_(OFFSET)
        try:
            out["value_offset"] = torch.as_tensor(call(models() if models else None)).double().tolist()
        except Exception as e:  # the peer's failure on shifted data is a result
            out["offset_status"] = f"crashed: {type(e).__name__}: {str(e).splitlines()[0][:50]}"
    elif shift is not None:
        out["offset_status"] = "not run (slow; --full)"
    out["peak_mb"] = (peak() - base) / 1024
    return out


def references() -> dict:
    x, y = (t.double() for t in data_a())
    net_a, net_b, inputs = nets_b()
    fa = [[f.double() for f in relu_outputs(net_a, b)] for b in inputs.split(BATCH)]
    fb = [[f.double() for f in relu_outputs(net_b, b)] for b in inputs.split(BATCH)]
    return {"a_biased": cka(x, y).item(), "a_debiased": cka(x, y, debiased=True).item(),
            "a_mb": ours_minibatch([[b] for b in x.split(BATCH)], [[b] for b in y.split(BATCH)]).item(),
            "b_map": ours_minibatch(fa, fb).tolist()}


def run_child(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, timeout=900)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"status": f"crashed: {err[:110]}"}
    return json.loads(lines[-1][7:])


def max_err(value: object, ref: object) -> float:
    return (torch.as_tensor(value, dtype=torch.float64).reshape(-1)
            - torch.as_tensor(ref, dtype=torch.float64).reshape(-1)).abs().max().item()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--slow", type=float, default=8.0, help="a call slower than this (s) is timed once only")
    p.add_argument("--full", action="store_true", help="run the +10 offset case of slow rows too")
    p.add_argument("--only", default="", help="regex: run only the rows whose key it matches, e.g. '^b:'")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--refs", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.refs or a.worker:
        try:
            result = references() if a.refs else worker(a.worker, a.repeats, a.slow, a.full)
        except Exception as e:  # a peer that crashes is a result, not a failure of the benchmark
            result = {"status": f"crashed: {type(e).__name__}: {str(e).splitlines()[0][:100]}"}
        print("RESULT " + json.dumps(result))
        return
    with open("/proc/cpuinfo") as f:
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "?")
    print(f"# {cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"Python {platform.python_version()}, {sys.executable}", flush=True)
    t_start = time.perf_counter()
    refs = run_child(["--refs"])
    if "status" in refs:
        sys.exit(f"reference run failed: {refs['status']}")
    print(f"# float64 references: (a) biased {refs['a_biased']:.6f}, debiased {refs['a_debiased']:.6f}, minibatch "
          f"{refs['a_mb']:.6f}; (b) map diagonal " + " ".join(f"{r[i]:.3f}" for i, r in enumerate(refs["b_map"])))
    print(f"| {'case':28} | {'estimator':28} | median s | n | peak MB | max abs err | err, +10 offset | status |")
    print("|---|---|---:|---:|---:|---:|---:|---|", flush=True)
    done = {}
    for key, (_, estimator, ref_key) in ROWS.items():
        if not re.search(a.only, key):
            continue
        r = done[key] = run_child(["--worker", key, "--repeats", str(a.repeats), "--slow", str(a.slow)]
                                  + ["--full"] * a.full)
        cells = ["", "", "", "", "", r["status"]]
        if r["status"] == "ok":
            r["t"] = statistics.median(r["times"])
            r["err"] = max_err(r["value"], refs[ref_key]) if ref_key else None
            r["off"] = max_err(r["value_offset"], refs[ref_key]) if "value_offset" in r else None
            cells = [f"{r['t']:.3f}", f"{len(r['times'])}{'' if r['warm'] else ' cold'}", f"{r['peak_mb']:.0f}",
                     "" if r["err"] is None else f"{r['err']:.1e}",
                     r.get("offset_status", "") if r["off"] is None else f"{r['off']:.1e}", "ok"]
        print(f"| {key:28} | {estimator:28} | " + " | ".join(cells) + " |", flush=True)
    for ref_key in ("a_biased", "a_debiased", "a_mb", "b_map"):  # ours against the fastest (correct) peer
        rows = [(k, r) for k, r in done.items() if ROWS[k][2] == ref_key and r["status"] == "ok"]
        peers = sorted(((r["t"], k, r) for k, r in rows if ":ours:" not in k), key=lambda e: e[0])
        # correct: err <= TOL, also on the +10 data where that ran (a crash there counts as wrong)
        good = [e for e in peers if e[2]["err"] <= TOL and (e[2]["off"] or 0) <= TOL
                and not e[2].get("offset_status", "").startswith("crashed")]
        for k, r in ((k, r) for k, r in rows if ":ours:" in k):
            print(f"# {k} {r['t']:.3f} s: " + "; ".join(
                f"{label} {e[1]} {e[0]:.3f} s (speed-up {e[0] / r['t']:.2f}x)" for label, e in
                (("fastest peer", peers[0] if peers else None), (f"fastest correct (<= {TOL:g})", (good or [None])[0]))
                if e is not None) or "no peer ran")
    print(f"# total {time.perf_counter() - t_start:.0f} s; 1-min load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
