"""matplotlib with its file-only backend (Agg), chosen once for every module that draws: `from common.plotting
import plt` instead of `matplotlib.use("Agg")` before each pyplot import."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["plt"]
