"""The one place that maps a model's kernel code to its compiled kernels.

Numba cannot cache a function that receives another jitted function as an argument, so
the shared epoch loop calls :func:`forward_backward` / :func:`predict` with an integer
``kind`` and this module branches once per batch. Adding a model family means adding its
kernel module and one branch in each function below.
"""
from numba import njit

from . import mf, nn

KIND_MF = 0
KIND_NN = 1


@njit(cache=True, inline="always")
def forward_backward(kind, spec, fspec, U, I, theta, state, users, items, y, n,
                     GU, GI, gtheta, ws, seed, step, training):
    """Add the batch's mean-squared-error gradients; return its sum of squared errors."""
    if kind == KIND_MF:
        return mf.forward_backward(spec, fspec, U, I, theta, state, users, items, y, n,
                                   GU, GI, gtheta, ws, seed, step, training)
    if kind == KIND_NN:
        return nn.forward_backward(spec, fspec, U, I, theta, state, users, items, y, n,
                                   GU, GI, gtheta, ws, seed, step, training)
    return -1.0


@njit(cache=True)
def predict(kind, spec, fspec, U, I, theta, state, users, items, n, out, ws):
    """Write the predictions for the first ``n`` (user, item) pairs into ``out``."""
    if kind == KIND_MF:
        mf.predict(spec, fspec, U, I, theta, state, users, items, n, out, ws)
    elif kind == KIND_NN:
        nn.predict(spec, fspec, U, I, theta, state, users, items, n, out, ws)
