"""Stochastic rainbow networks: White, Chaudhary, Wolf, Lajoie, Harris, "Learning Stochastic Rainbow Networks"
(NeurIPS 2024 Sci4DL workshop). FactConv ResNets whose noise is redrawn before every training step, each layer's
generated features aligned to a fixed reference noise's on the batch, so that the learned covariance factors
define a distribution of networks: single samples, head retraining, ensembles, low-rank channel covariances.
"""

from common.registry import PaperSpec, register
from papers.stochastic_rainbow.claims import CLAIMS, plan
from papers.stochastic_rainbow.measure import measure
from papers.stochastic_rainbow.module import build_module

PAPER = register(PaperSpec(
    name="stochastic_rainbow",
    title="Learning Stochastic Rainbow Networks (White et al., NeurIPS 2024 Sci4DL workshop)",
    build_module=build_module, claims=CLAIMS, plan=plan, measure=measure,
    result_columns={"resnet": ("train/acc", "sample/acc_mean", "sample/retrained_acc", "ensemble/acc",
                               "sample/align_residual_mean")}))
