"""Matrix factorisation family: ``mf``, ``mfb``, ``mfbs``.

Layout: ``U[u] = [p_u (k factors), b_u]``, ``I[i] = [q_i (k), b_i]`` (bias columns only when
``spec[1]``). Prediction::

    z = p_u . q_i (+ b_u + b_i)        y_hat = z,  or  y_hat = scale * sigmoid(z) if spec[2]

Backward for the batch mean of (y_hat - y)^2 over n samples::

    d = 2 (y_hat - y) / n  *  (1, or scale * s (1 - s) with s = sigmoid(z))
    dp_u = d q_i,  dq_i = d p_u,  db_u = db_i = d

spec = [k, has_bias, sigmoid]; fspec = [scale].
"""

import numpy as np
from numba import njit

from . import FAST
from .output import output


@njit(cache=True, inline="always", fastmath=FAST)
def _z(U, I, u, i, k, bias):
    z = U[u, 0] * I[i, 0]
    for f in range(1, k):
        z += U[u, f] * I[i, f]
    if bias:
        z += U[u, k] + I[i, k]
    return z


@njit(cache=True, fastmath=FAST)
def forward_backward(spec, fspec, U, I, theta, state, users, items, y, n,
                     GU, GI, gtheta, ws, seed, step, training):
    k, bias, sig = spec[0], spec[1] != 0, spec[2] != 0
    scale = fspec[0]
    sse = 0.0
    two_over_n = 2.0 / n
    for b in range(n):
        u = users[b]
        i = items[b]
        z = _z(U, I, u, i, k, bias)
        p, dz_dp = output(z, sig, scale)
        err = p - y[b]
        sse += err * err
        d = two_over_n * err * dz_dp
        for f in range(k):
            pu = U[u, f]
            GU[b, f] += d * I[i, f]
            GI[b, f] += d * pu
        if bias:
            GU[b, k] += d
            GI[b, k] += d
    return sse


@njit(cache=True, fastmath=FAST)
def predict(spec, fspec, U, I, theta, state, users, items, n, out, ws):
    k, bias, sig = spec[0], spec[1] != 0, spec[2] != 0
    scale = fspec[0]
    for b in range(n):
        z = _z(U, I, users[b], items[b], k, bias)
        out[b] = output(z, sig, scale)[0]


@njit(cache=True, fastmath=FAST)
def sgd_epoch(spec, fspec, U, I, users, items, y, lr, l2u, l2i):
    """Classic per-sample SGD (batch 1) over the (already shuffled) samples, fused.

    Per rating: the gradient of ``(y_hat - y)^2 + l2 (|U[u]|^2 + |I[i]|^2)`` (L2 only on the
    two rows the rating touches, per column coefficients ``l2u``/``l2i``) from the current
    weights, then ``w -= lr * g``. Returns the sum of per-sample losses (with penalty).
    """
    k, bias, sig = spec[0], spec[1] != 0, spec[2] != 0
    scale = fspec[0]
    cols = k + 1 if bias else k
    reg = False
    for c in range(cols):
        reg = reg or l2u[c] != 0 or l2i[c] != 0
    # per-column decay factors: w - lr * (d * x + 2 l2 w) = (1 - 2 lr l2) w - lr d x
    keep_u = np.empty(cols, U.dtype)
    keep_i = np.empty(cols, I.dtype)
    for c in range(cols):
        keep_u[c] = 1.0 - 2.0 * lr * l2u[c]
        keep_i[c] = 1.0 - 2.0 * lr * l2i[c]
    sbuf = np.empty(1, U.dtype)
    total = 0.0
    pen = 0.0
    for j in range(users.size):
        u = users[j]
        i = items[j]
        z = _z(U, I, u, i, k, bias)
        p, dz_dp = output(z, sig, scale)
        err = p - y[j]
        total += err * err
        sbuf[0] = lr * 2.0 * err * dz_dp
        step = sbuf[0]  # in the tables' dtype: float32 arithmetic in the update loop
        if reg:
            for f in range(cols):
                pu = U[u, f]
                qi = I[i, f]
                pen += l2u[f] * pu * pu + l2i[f] * qi * qi
        if reg:
            for f in range(k):
                pu = U[u, f]
                qi = I[i, f]
                U[u, f] = keep_u[f] * pu - step * qi
                I[i, f] = keep_i[f] * qi - step * pu
        else:
            for f in range(k):
                pu = U[u, f]
                qi = I[i, f]
                U[u, f] = pu - step * qi
                I[i, f] = qi - step * pu
        if bias:
            U[u, k] = keep_u[k] * U[u, k] - step
            I[i, k] = keep_i[k] * I[i, k] - step
    return total + pen
