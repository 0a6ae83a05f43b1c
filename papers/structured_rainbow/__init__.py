"""Structured random-feature networks: White, Chaudhary, Wolf, Lajoie, Harris, "Learning and Aligning Structured
Random Feature Networks" (ICLR 2024 Re-Align workshop). Convolutions whose weights are fixed noise times learned
channel and spatial covariance factors (FactConv2d); resampling the noise with weight and activation alignment;
the table of fixed random-feature networks (V1-like, uniform, Gaussian kernels) and its scattering row.
"""

from common.models import register_model
from common.registry import PaperSpec, register
from papers.structured_rainbow.claims import CLAIMS, plan
from papers.structured_rainbow.features import FEATURES, RandomFeatureNet, ScatteringFeatureNet
from papers.structured_rainbow.measure import measure
from papers.structured_rainbow.module import build_module

for _kind in FEATURES:  # the feature table's networks: model.name = rf_v1 | rf_uniform | rf_gaussian
    register_model(f"rf_{_kind}", lambda m, shape, k, kind=_kind: RandomFeatureNet(shape, k, kind, width=m.width))
register_model("rf_scattering", lambda m, shape, k: ScatteringFeatureNet(shape, k))  # the table's scattering row

# trained, none, wa, aca, both, retrained (the mean over draws; not their _std) and the WA cosine
RESAMPLING_COLUMNS = ("resample/*_acc", "resample/wa_cosine_narrow_mean")

PAPER = register(PaperSpec(
    name="structured_rainbow",
    title="Learning and Aligning Structured Random Feature Networks (White et al., ICLR 2024 Re-Align workshop)",
    build_module=build_module, claims=CLAIMS, plan=plan, measure=measure,
    result_columns={"cnn": RESAMPLING_COLUMNS, "resnet": RESAMPLING_COLUMNS, "features": ("train/acc", "test/acc")}))
