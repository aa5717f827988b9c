"""Shared test helper: float64 central differences, the oracle for gradients."""
import numpy as np


def central_difference(f, x, eps=1e-6):
    """d sum(f(x)) / dx at the float64 array x, by central differences."""
    out = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += eps
        down[i] -= eps
        out[i] = (np.sum(f(up)) - np.sum(f(down))) / (2 * eps)
    return out
