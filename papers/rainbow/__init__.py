"""Rainbow networks: Guth, Ménard, Rochette, Mallat, "A Rainbow in Deep Network Black Boxes",
JMLR 2024 (arXiv 2305.18512). Trained weights behave like correlated random features: sampling
each layer from the trained covariance, with layer-by-layer alignment, gives a working network.
"""

from common.models import register_model
from common.registry import PaperSpec, register
from papers.rainbow.claims import CLAIMS, plan
from papers.rainbow.measure import measure
from papers.rainbow.module import build_module
from papers.rainbow.scattering import LearnedScatteringNet

register_model("scattering", lambda m, shape, k: LearnedScatteringNet(
    width_scale=m.width_scale, num_blocks=m.blocks, in_channels=shape[0], num_classes=k, image_size=shape[-1]))

PAPER = register(PaperSpec(
    name="rainbow",
    title="A Rainbow in Deep Network Black Boxes (Guth et al., JMLR 2024)",
    build_module=build_module, claims=CLAIMS, plan=plan, measure=measure,
    result_columns={"mlp": ("test/acc", "resample/*_acc", "resample/rank90_frac_layer1"),
                    "cnn": ("test/acc", "resample/*_acc"), "scattering": ("test/acc", "resample/*_acc")}))
