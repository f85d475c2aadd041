# mylib.py: the helper of Azure ML's "train-on-local" example, unchanged.

import numpy as np


def get_alphas():
    # list of numbers from 0.0 to 1.0 with a 0.05 interval
    return np.arange(0.0, 1.0, 0.05)
