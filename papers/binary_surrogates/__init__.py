"""Critical initialisation in continuous approximations of binary neural networks (Stamatescu, Gerace,
Lucibello, Fuss, White, ICLR 2020, arXiv 1902.00177): surrogates of stochastic binary networks trained by
backpropagation, and their signal propagation at initialisation. Implemented so far: the mean-field theory of
the deterministic and LRT surrogates (theory.py, on the Gaussian expectations of gaussian.py) and the models
(layers.py): the surrogate layers and networks, with a leading cell axis for batched grids, and the
stochastic and deterministic binary networks taken from a surrogate. Experiments and claims are not yet
registered.
"""
