"""Task structure and nonlinearity jointly determine learned representational geometry (Alleman, Lindsey,
Fusi, ICLR 2024, arXiv 2401.13558): one-hidden-layer Tanh networks take on the structure of their targets,
ReLU networks keep more of their inputs'. Implemented: the main task family, its random-kernel and XOR variants
and their batched sweeps over the input-target alignment, with kernel alignment, CCGP and parallelism of the hidden
layer; the weight-dynamics view (Fig. 1); a small CNN on images (`task.kind: images`).
"""

from typing import Any

from omegaconf import DictConfig

from common.data import build_datamodule as image_datamodule
from common.registry import PaperSpec, register
from papers.task_geometry.claims import CLAIMS, plan
from papers.task_geometry.cnn import CNNGeometryModule
from papers.task_geometry.measure import measure
from papers.task_geometry.module import GeometrySweepModule
from papers.task_geometry.tasks import TaskDataModule

GAPS = ("gap_target_alignment_cmax", "gap_input_alignment_cmax", "gap_ccgp_cmax", "gap_parallelism_cmax")


def build_datamodule(cfg: DictConfig) -> Any:
    return image_datamodule(cfg.data, cfg.seed) if cfg.task.kind == "images" else TaskDataModule(cfg)


def build_module(cfg: DictConfig, datamodule: Any) -> Any:
    return (CNNGeometryModule if cfg.task.kind == "images" else GeometrySweepModule)(cfg, datamodule)


PAPER = register(PaperSpec(
    name="task_geometry",
    title="Task structure and nonlinearity jointly determine learned representational geometry "
          "(Alleman et al., ICLR 2024)",
    claims=CLAIMS, plan=plan, measure=measure, build_module=build_module, build_datamodule=build_datamodule,
    result_columns={**dict.fromkeys(("sweep", "xor"), (*GAPS, "train_acc_tanh_cmax", "train_acc_relu_cmax")),
                    "dynamics": ("gap_inter_fraction_cmax", "inter_fraction_tanh_cmax", "inter_fraction_relu_cmax",
                                 "train_acc_tanh_cmax", "train_acc_relu_cmax"),
                    "cnn": ("test/acc", "cnn_fc2_gap_*")}))
