"""Adaptive-activation RNNs: Geadah, Horoi, Kerg, Wolf, Lajoie, "Goal-driven optimization of single-neuron
properties in artificial networks reveals regularization role of neural diversity and adaptation in the brain"
(PLOS Comp. Biol. 2024; bioRxiv 10.1101/2022.04.29.489963), and its precursor "Advantages of biologically-inspired
adaptive neural activation in RNNs during learning" (arXiv 2006.12253). RNNs whose units share the γ(x; n, s)
activation family, with (n, s) fixed, learned per layer, learned per neuron, or adapted online by a small
controller (ARU), on sequential and permuted sequential MNIST; robustness to test-time perturbations, gain
scaling, fractional-order dynamics and Lyapunov exponents.
"""

from common.registry import PaperSpec, register
from papers.adaptive_rnn.claims import CLAIMS, RESULT_COLUMNS, plan
from papers.adaptive_rnn.measure import measure
from papers.adaptive_rnn.module import build_module

PAPER = register(PaperSpec(
    name="adaptive_rnn",
    title="Neural diversity and adaptation in RNNs with learned single-neuron nonlinearities "
          "(Geadah et al., PLOS CB 2024)",
    claims=CLAIMS, plan=plan, measure=measure, build_module=build_module, result_columns=RESULT_COLUMNS))
