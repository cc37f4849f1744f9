"""The output unit every model ends with: identity or ``scale * sigmoid``."""
import math

from numba import njit

from . import CORE


@njit(**CORE, inline="always")
def output(z, sigmoid, scale):
    """``(y_hat, d y_hat / d z)`` for the pre-activation ``z``: ``(z, 1)``, or
    ``(scale * s, scale * s * (1 - s))`` with ``s = sigmoid(z)``."""
    if sigmoid:
        s = 1.0 / (1.0 + math.exp(-z))
        return scale * s, scale * s * (1.0 - s)
    return z, 1.0
