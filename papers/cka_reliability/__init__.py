"""Reliability of CKA as a Similarity Measure in Deep Learning (Davari, Horoi, Natik, Lajoie, Wolf,
Belilovsky, ICLR 2023, arXiv 2210.16156): CKA is sensitive to simple transformations that leave a
network's function unchanged. Implemented so far: the translation theorem, the synthetic studies and
the trained-network translation (Fig. 4c).
"""

from common.registry import PaperSpec, register
from papers.cka_reliability.claims import CLAIMS, measure, plan
from papers.cka_reliability.module import build_module
from papers.cka_reliability.synthetic import run_synthetic

PAPER = register(PaperSpec(
    name="cka_reliability",
    title="Reliability of CKA as a Similarity Measure in Deep Learning (Davari et al., ICLR 2023)",
    claims=CLAIMS, plan=plan, measure=measure, build_module=build_module,
    computations={"synthetic": run_synthetic}))
