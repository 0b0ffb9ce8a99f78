"""The log-odds of probabilities, kept within 1e-6 of 0 and 1: what the stacked genre heads and the heatmaps read.
Its own module, free of scikit-learn and SciPy, because the app's heatmaps use it (model.explain)."""

from __future__ import annotations

import numpy as np


def logit(probabilities: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)), with p kept within 1e-6 of 0 and 1."""
    clipped = np.clip(probabilities, 1e-6, 1 - 1e-6)
    return np.log(clipped / (1 - clipped))
