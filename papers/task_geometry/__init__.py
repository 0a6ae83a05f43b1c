"""Task structure and nonlinearity jointly determine learned representational geometry (Alleman, Lindsey,
Fusi, ICLR 2024, arXiv 2401.13558): one-hidden-layer Tanh networks take on the structure of their targets,
ReLU networks keep more of their inputs'. Implemented: the main task family and its batched sweep over the
input-target alignment c, with kernel alignment, CCGP and parallelism of the hidden layer.
"""

from common.registry import PaperSpec, register
from papers.task_geometry.claims import CLAIMS, measure, plan
from papers.task_geometry.module import build_module
from papers.task_geometry.tasks import TaskDataModule

PAPER = register(PaperSpec(
    name="task_geometry",
    title="Task structure and nonlinearity jointly determine learned representational geometry "
          "(Alleman et al., ICLR 2024)",
    claims=CLAIMS, plan=plan, measure=measure, build_module=build_module, build_datamodule=TaskDataModule))
