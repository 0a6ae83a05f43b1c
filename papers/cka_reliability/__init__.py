"""Reliability of CKA (Davari et al., ICLR 2023, arXiv 2210.16156): the translation theorem and the
synthetic studies. Not yet registered as a runnable paper: its experiments are still to come."""
