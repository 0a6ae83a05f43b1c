"""Structured rainbow resampling (White et al. 2024): weight alignment, the resampling limit identity, the study."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from common.layerwise import reestimate_norm_stats
from common.linalg import procrustes, procrustes_rows
from common.models.convnet import ConvNet
from common.models.factconv import FactConv2d, factorize_convs, v1_covariance
from common.models.resnet import resnet18
from common.models.wavelets import FirstOrderScattering, reflect_pad
from common.registry import RunPlan
from papers.structured_rainbow.claims import ABLATIONS, CLAIMS, COLUMNS, measure, plan
from papers.structured_rainbow.features import RandomFeatureNet, ScatteringFeatureNet, random_kernels
from papers.structured_rainbow.resample import fresh_noise, resample_factconv
from tests.datafiles import write_cifar10_batches, write_cifar100_files


@pytest.mark.parametrize(("n", "d"), [(5, 12), (12, 5), (8, 8)])
def test_procrustes_rows_is_the_polar_factor_of_the_weight_cross_covariance(n: int, d: int) -> None:
    gen = torch.Generator().manual_seed(n * d)
    source, target = (torch.randn(n, d, generator=gen, dtype=torch.float64) for _ in range(2))
    aligned = procrustes_rows(source, target)
    torch.testing.assert_close(aligned, source @ procrustes(source.T @ target))
    torch.testing.assert_close(aligned @ aligned.T, source @ source.T)  # a rotation of the rows' space
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=torch.float64))
    torch.testing.assert_close(procrustes_rows(source, source @ q), source @ q)  # a known rotation is found


def test_weight_alignment_restores_the_noise_only_when_c_out_is_below_fan_in() -> None:
    gen = torch.Generator().manual_seed(0)
    narrow, wide = FactConv2d(64, 16, 3), FactConv2d(2, 64, 3)  # C_out / D = 16/576 and 64/18
    _, stats = fresh_noise(narrow, gen, weight_align=True)
    assert stats["wa_cosine"] > 0.9 and abs(stats["fresh_cosine"]) < 0.1
    _, stats = fresh_noise(wide, gen, weight_align=True)
    assert stats["wa_cosine"] < 0.8


@pytest.mark.parametrize("make", [
    lambda: ConvNet((1, 8, 8), 10, width=6, depth=2, norm="batch", kernel_size=3),
    lambda: resnet18(1, 10, width_scale=0.0625),
])
def test_resampling_with_the_reference_noise_reproduces_the_reference(make) -> None:
    """Limit identity: when the fresh noise IS the reference noise, WA and ACA are the identity and the new
    network computes what the reference does."""
    torch.manual_seed(0)
    net = factorize_convs(make()).double()
    for layer in [m for m in net.modules() if isinstance(m, FactConv2d)]:  # random factors, noise from seed 7
        with torch.no_grad():
            for p in layer.parameters():
                p.normal_(0, 0.2)
    gen = torch.Generator().manual_seed(7)
    for layer in net.weight_layers()[:-1]:
        layer.resample_noise(gen)
    x = torch.randn(64, 1, 8, 8, dtype=torch.float64)

    def batches() -> tuple[torch.Tensor, ...]:
        return x.split(32)

    reestimate_norm_stats(net, batches)  # the reference's statistics, estimated like the copy's
    copy, records = resample_factconv(net, batches, torch.Generator().manual_seed(7))
    torch.testing.assert_close(copy(x), net(x), atol=1e-7, rtol=1e-6)
    assert len(records) == len(net.weight_layers()) - 1
    assert all(r["wa_cosine"] == pytest.approx(1) for r in records)
    assert not any(isinstance(m, FactConv2d) for m in copy.modules())  # the sample is a plain network
    assert all(isinstance(m, nn.Conv2d | nn.Linear) for m in copy.weight_layers())


def test_fresh_noise_without_alignment_reports_no_wa_cosine() -> None:
    net = factorize_convs(ConvNet((1, 8, 8), 10, width=4, depth=2, norm="batch", kernel_size=3)).eval()
    x = torch.randn(16, 1, 8, 8)
    copy, records = resample_factconv(net, lambda: [x], torch.Generator().manual_seed(0), weight_align=False,
                                      activation_align=False)
    assert "wa_cosine" not in records[0]
    assert not torch.equal(copy.weight_layers()[0].weight, net.weight_layers()[0].weight)
    assert copy(x).shape == (16, 10)


def _metrics(none: float, wa: float, aca: float, both: float, retrained: float, trained: float) -> dict:
    return {"resample/none_acc": none, "resample/wa_acc": wa, "resample/aca_acc": aca, "resample/both_acc": both,
            "resample/retrained_acc": retrained, "resample/trained_acc": trained,
            "resample/wa_cosine_narrow_mean": 0.97}


def test_measure_reads_the_ablations(tmp_path: Path) -> None:
    plans = plan("smoke")
    assert [p.overrides for p in plans[:len(ABLATIONS)]] == list(ABLATIONS.values())
    results = {RunPlan("cnn"): _metrics(0.1, 0.7, 0.6, 0.9, 0.92, 0.95),
               RunPlan("cnn", ABLATIONS["spatial_frozen"]): _metrics(0.1, 0.7, 0.6, 0.9, 0.9, 0.94),
               RunPlan("cnn", ABLATIONS["channel_frozen"]): _metrics(0.12, 0.7, 0.6, 0.8, 0.81, 0.90)}
    out = measure(results, "smoke", tmp_path)
    assert out["spatial_frozen_minus_channel_frozen"] == pytest.approx(0.04)
    assert out["both_minus_best_single"] == pytest.approx(0.2)
    assert out["max_none_acc"] == 0.12 and out["min_retrain_gain"] == pytest.approx(0.0)
    assert (tmp_path / "ablations.png").stat().st_size > 0
    assert {p.experiment for p in plan("paper")} == {"resnet", "features"}


def test_run_trains_resamples_and_reports_cosines(repro, run_root: Path) -> None:
    args = ["trainer.max_epochs=1", "data.limit_train=300", "model.width=8", "resample.samples=1",
            "resample.align_examples=100", "resample.retrain_epochs=1"]
    assert repro("run", "structured_rainbow/cnn", *args) == 0
    [run_dir] = (run_root / "structured_rainbow/cnn").iterdir()
    metrics = json.loads((run_dir / "summary.json").read_text())["metrics"]
    for variant in ("none", "wa", "aca", "both", "retrained"):
        assert 0 <= metrics[f"resample/{variant}_acc"] <= 1
    assert metrics["resample/wa_cosine_narrow_mean"] > 0.9  # 8 -> 8 3x3 convs: C_out = 8 < D = 72
    layers = json.loads((run_dir / "alignment.json").read_text())
    assert [r["c_out"] for r in layers] == [8, 8, 8]
    assert (run_dir / "figures/resampling.png").stat().st_size > 0


def test_the_cifar100_and_50_per_class_columns_train_from_real_format_files(repro, run_root: Path,
                                                                              tmp_path: Path) -> None:
    """The paper-scale columns on tiny CIFAR-100 / CIFAR-10 pickles: a 100-way readout, a balanced subset."""
    write_cifar100_files(tmp_path, n_train=300, n_test=100)
    write_cifar10_batches(tmp_path, n_per_batch=40)
    small = ["scale=paper", f"data.root={tmp_path}", "data.val_size=20", "trainer.max_epochs=1", "model.width=4"]
    for column in ("data.name=cifar100", "data.per_class=3"):
        assert repro("run", "structured_rainbow/features", *small, column, "model.name=rf_uniform") == 0
    runs = {d.name: d for d in (run_root / "structured_rainbow/features").iterdir()}
    [c100] = [d for name, d in runs.items() if "cifar100" in name]
    [few] = [d for name, d in runs.items() if "per_class" in name]
    weights = torch.load(c100 / "checkpoints/last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    assert next(w for k, w in weights.items() if k.endswith("classifier.weight")).shape[0] == 100
    assert json.loads((c100 / "summary.json").read_text())["status"] == "finished"
    # 3 images of each of the 10 classes: one epoch of the 30, in one batch of 128
    assert json.loads((few / "summary.json").read_text())["steps"] == 1


@pytest.mark.parametrize(("kind", "variance"), [("uniform", 1 / 3), ("gaussian", 1.0), ("v1", 1.0)])
def test_random_kernels_have_the_stated_variance(kind: str, variance: float) -> None:
    """Per-tap variance × fan_in: 1/3 for U(±1/√fan_in), 1 for N(0, 1/fan_in) and for V1 (trace-normalised)."""
    c_out, c_in, k = 200, 10, 7
    w = random_kernels(kind, c_out, c_in, k, torch.Generator().manual_seed(0)).double()
    n = w.numel()
    # 5 standard errors of a variance estimate (kurtosis <= 3 for these laws; V1's taps are a scale mixture: 9)
    se = variance * (2 / n) ** 0.5 * (3 if kind == "v1" else 1)
    assert abs(w.square().mean().item() * c_in * k * k - variance) < 5 * se


def test_v1_kernels_are_localised_around_random_centres() -> None:
    w = random_kernels("v1", 50, 4, 7, torch.Generator().manual_seed(1)).square()  # (50, 4, 7, 7)
    energy_at = w.flatten(2).argmax(-1)  # the strongest tap of each kernel
    assert len(energy_at.unique()) > 10  # centres differ from kernel to kernel
    cov = v1_covariance(7, center=torch.tensor([[0.0, 0.0], [6.0, 6.0]]))
    assert cov[0].diagonal().argmax() == 0 and cov[1].diagonal().argmax() == 48
    torch.testing.assert_close(cov.diagonal(dim1=-2, dim2=-1).sum(-1), torch.full((2,), 49.0, dtype=torch.float64))


def test_random_feature_net_trains_only_norms_and_readout() -> None:
    net = RandomFeatureNet((3, 32, 32), 10, "v1", width=6)
    assert net.classifier.in_features == (3 + 2 * 6) * 8 * 8  # the 8 x 8 x 203 features at width 100
    assert {n.split(".")[0] for n, p in net.named_parameters() if p.requires_grad} == {"bn_in", "norms",
                                                                                         "classifier"}
    assert net(torch.randn(4, 3, 32, 32)).shape == (4, 10)


def test_feature_table_is_measured_per_cell_with_its_sem() -> None:
    mnist, few = COLUMNS["paper"]["mnist"], COLUMNS["paper"]["cifar10_50"]
    results = {RunPlan("features", ("scale=paper", f"model.name=rf_{kind}", f"seed={s}")): {"test/acc": acc + s / 100}
               for kind, acc in (("v1", 0.65), ("uniform", 0.64)) for s in range(3)}
    results[RunPlan("features", ("scale=paper", "model.name=rf_v1", *mnist, "seed=0"))] = {"test/acc": 0.99}
    results[RunPlan("features", ("scale=paper", "model.name=rf_scattering", *mnist, "seed=0"))] = {"test/acc": 0.97}
    for kind, acc in (("v1", 0.42), ("gaussian", 0.41), ("scattering", 0.45)):
        results[RunPlan("features", ("scale=paper", f"model.name=rf_{kind}", *few, "seed=0"))] = {"test/acc": acc}
    out = measure(results, "paper", Path("unused"))
    assert out["rf_v1_cifar10_acc"] == pytest.approx(0.66) and out["rf_v1_cifar10_sem"] == pytest.approx(
        0.01 / 3**0.5)
    assert out["rf_v1_minus_uniform_cifar10"] == pytest.approx(0.01)
    assert out["rf_v1_cifar10_50_acc"] == 0.42 and out["rf_scattering_cifar10_50_acc"] == 0.45
    # scattering is not a random-feature net, and the few-image column has its own claim: neither is in the minimum
    assert out["rf_v1_mnist_acc"] == 0.99 and out["min_rf_acc"] == pytest.approx(0.64)
    assert out["min_rf_minus_scattering"] == pytest.approx(0.02)  # MNIST only: no CIFAR-10 scattering run here
    assert out["min_scattering_minus_rf_few"] == pytest.approx(0.03)  # 0.45 − 0.42, the best random row
    assert sum(p.experiment == "features" for p in plan("paper")) == 4 * 4 * 3
    claims = {c.id: c for c in CLAIMS}
    assert claims["table_scattering_cifar10_50"].expected["paper"].value == 0.4825


def test_smoke_feature_table_names_its_columns_after_the_digits() -> None:
    runs = [p for p in plan("smoke") if p.experiment == "features"]
    assert len(runs) == 4 * 2
    out = measure({p: {"test/acc": 0.9 + 0.01 * i} for i, p in enumerate(runs)}, "smoke", Path("unused"))
    assert {"rf_v1_mnist5k_acc", "rf_v1_mnist5k_50_acc", "min_scattering_minus_rf_few"} <= out.keys()
    assert not any("cifar" in key for key in out)


def test_first_order_scattering_shapes_and_constant_images() -> None:
    """51 channels of 8 × 8 for an RGB 32 × 32 image (kymatio's J = 2, L = 8); the wavelets have zero mean, so a
    constant image has no first-order energy, and the unit-sum low-pass keeps its value in S0."""
    scattering = FirstOrderScattering(32)
    x = torch.randn(2, 3, 32, 32)
    assert scattering(x).shape == (2, 51, 8, 8)
    constant = scattering(torch.full((1, 3, 32, 32), 2.5)).view(1, 3, 17, 8, 8)
    torch.testing.assert_close(constant[:, :, 0], torch.full((1, 3, 8, 8), 2.5), atol=1e-5, rtol=0)
    assert constant[:, :, 1:].abs().max() < 1e-5
    assert FirstOrderScattering(28)(torch.randn(1, 1, 28, 28)).shape == (1, 17, 7, 7)


def test_first_order_scattering_is_the_direct_circular_convolution() -> None:
    """S1 at one (j, θ) against an independent computation: |x ⋆ ψ| and ⋆ φ as sums over the periodised filter
    taps (torch.roll), on the reflect-padded image, then cropped and subsampled."""
    scattering = FirstOrderScattering(12, scales=2, angles=4)
    x = torch.randn(1, 1, 12, 12, dtype=torch.float64)
    size, pad = 12 + 8, 4
    filters = torch.fft.ifft2(scattering.filters_hat.to(torch.complex128))  # (1 + J L, S, S) spatial, centred at 0
    padded = reflect_pad(x, pad)[0, 0].to(torch.complex128)

    def circular(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        return sum(kernel[u, v] * torch.roll(image, (u, v), (0, 1)) for u in range(size) for v in range(size))

    k = 1 + 1 * 4 + 2  # j = 1, the third angle
    expected = circular(circular(padded, filters[k]).abs().to(torch.complex128), filters[0]).real
    expected = expected[pad : pad + 12 : 4, pad : pad + 12 : 4]
    torch.testing.assert_close(scattering(x)[0, k].double(), expected, atol=1e-4, rtol=1e-4)


def test_scattering_net_trains_only_norm_and_readout() -> None:
    net = ScatteringFeatureNet((1, 28, 28), 10)
    assert {n.split(".")[0] for n, p in net.named_parameters() if p.requires_grad} == {"norm", "classifier"}
    assert net.classifier.in_features == 17 * 7 * 7 and net(torch.randn(3, 1, 28, 28)).shape == (3, 10)
