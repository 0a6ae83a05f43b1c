"""Reliability of CKA as a Similarity Measure in Deep Learning (Davari, Horoi, Natik, Lajoie, Wolf,
Belilovsky, ICLR 2023, arXiv 2210.16156): CKA is sensitive to simple transformations that leave a
network's function unchanged. Implemented: the translation theorem (`theory`), the synthetic studies
(Fig. 4a, b), the trained-network translation (Fig. 4c), early-layer CKA of generalising, memorising and
random nets (Sec. 4.1, Fig. 2) and the manipulation of a net's CKA map (Sec. 4.3, Figs 5-7).
"""

from common.models import register_model
from common.registry import PaperSpec, register
from papers.cka_reliability.claims import CLAIMS, RESULT_COLUMNS, plan
from papers.cka_reliability.measure import measure
from papers.cka_reliability.module import build_module
from papers.cka_reliability.nets import VGG3X3, VGG7, BlockCNN, CifarResNet34
from papers.cka_reliability.synthetic import run_synthetic

register_model("vgg7", lambda m, shape, k: BlockCNN(VGG7, shape[0], k, m.width_mult))
register_model("vgg3x3", lambda m, shape, k: BlockCNN(VGG3X3, shape[0], k, m.width_mult))
register_model("resnet34_cifar", lambda m, shape, k: CifarResNet34(shape[0], k, m.width_mult))

PAPER = register(PaperSpec(
    name="cka_reliability",
    title="Reliability of CKA as a Similarity Measure in Deep Learning (Davari et al., ICLR 2023)",
    claims=CLAIMS, plan=plan, measure=measure, build_module=build_module,
    computations={"synthetic": run_synthetic}, result_columns=RESULT_COLUMNS))
