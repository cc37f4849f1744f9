"""Matrix factorisation family: ``mf``, ``mfb``, ``mfbs``.

Tables: ``users`` (t=0) rows ``[p_u (k factors), b_u]``, ``items`` (t=1) rows
``[q_i (k), b_i]`` (bias columns only with ``bias``). Prediction::

    z = p_u . q_i (+ b_u + b_i)        y_hat = z,  or  y_hat = scale * sigmoid(z) if sigmoid

Backward for the batch mean of (y_hat - y)^2 over n samples::

    d = 2 (y_hat - y) / n  *  (1, or scale * s (1 - s) with s = sigmoid(z))
    dp_u = d q_i,  dq_i = d p_u,  db_u = db_i = d

Settings: ``spec`` laid out by :data:`SPEC`, ``fspec = [scale]``; workspace: the fused SGD
kernel's constants (``3 + 6 * columns`` floats); ``forward_backward`` needs none (it emits
``d * q_i`` and ``d * p_u`` straight from the rows, :func:`~mfcore.engine.contract.emit_scaled`).
"""

import math

import numpy as np
from numba import njit

from ..engine.contract import emit_scaled, touch as touch_row
from ..engine.samples import ITEM, RATING, USER
from ..engine.tables import view
from ..layout import fields
from . import CORE, FAST
from .packed_layout import block_offsets, switches
from .output import output

USERS, ITEMS = 0, 1
SPEC = fields("MFSpec", "k bias sigmoid")


@njit(**CORE, inline="always", fastmath=FAST)
def _z(U, I, u, i, k, bias):
    z = U[u, 0] * I[i, 0]
    for f in range(1, k):
        z += U[u, f] * I[i, f]
    if bias:
        z += U[u, k] + I[i, k]
    return z


@njit(**CORE, inline="always", fastmath=FAST)
def _z1(p, q, k, bias):
    """:func:`_z` of two rows given as 1-D weight vectors."""
    z = p[0] * q[0]
    for f in range(1, k):
        z += p[f] * q[f]
    if bias:
        z += p[k] + q[k]
    return z


@njit(**CORE)
def touch(T, P, S, start, n, K):
    for j in range(start, start + n):
        touch_row(T, K, USERS, S.X[j, USER])
        touch_row(T, K, ITEMS, S.X[j, ITEM])


@njit(**CORE, fastmath=FAST)
def forward_backward(T, P, S, start, n, R, ws, seed, step, training):
    k, bias, sig = P.spec[SPEC.k], P.spec[SPEC.bias] != 0, P.spec[SPEC.sigmoid] != 0
    scale = P.fspec[0]
    U, I = view(T.W, T, USERS), view(T.W, T, ITEMS)
    sse = 0.0
    two_over_n = 2.0 / n
    for b in range(n):
        j = start + b
        u = S.X[j, USER]
        i = S.X[j, ITEM]
        z = _z(U, I, u, i, k, bias)
        p, dz_dp = output(z, sig, scale)
        err = p - S.Xf[j, RATING]
        sse += err * err
        d = two_over_n * err * dz_dp
        emit_scaled(T, R, USERS, u, d, I[i], k)
        emit_scaled(T, R, ITEMS, i, d, U[u], k)
    return sse


@njit(**CORE, fastmath=FAST)
def predict(T, P, S, start, n, out, ws):
    k, bias, sig = P.spec[SPEC.k], P.spec[SPEC.bias] != 0, P.spec[SPEC.sigmoid] != 0
    scale = P.fspec[0]
    U, I = view(T.W, T, USERS), view(T.W, T, ITEMS)
    for b in range(n):
        j = start + b
        z = _z(U, I, S.X[j, USER], S.X[j, ITEM], k, bias)
        out[b] = output(z, sig, scale)[0]


@njit(**CORE, fastmath=FAST)
def sgd_block(T, P, S, start, end, lr, ws, stride, first):
    """Per-sample SGD (batch 1) over the ``m = end - start`` records from ``start``, fused,
    visited in the order ``start + (first + stride * j) % m`` for ``j = 0 .. m-1``
    (``stride`` coprime with ``m``; 1 and 0: their stored order). Per rating: the
    gradient of ``(y_hat - y)^2 + l2 (|U[u] - c|^2 + |I[i] - c|^2)`` (per-sample L2 of the
    two rows, per-column coefficients and centres of the tables) at the current weights,
    then ``w -= lr * g``. Arithmetic in the tables' dtype (float32 in training, float64
    under the tests' step-by-step check); the loss sum (with penalty) in float64. ``ws``:
    scratch of the tables' dtype, ``3 + 6 * columns`` values.
    """
    k, bias, sig = P.spec[SPEC.k], P.spec[SPEC.bias] != 0, P.spec[SPEC.sigmoid] != 0
    U, I = view(T.W, T, USERS), view(T.W, T, ITEMS)
    cols = k + 1 if bias else k
    # constants in the tables' dtype: 2 lr, the output scale, 1, and per column the L2
    # factor 2 lr l2, the L2 centre, and l2 (for the penalty), of users and of items
    ws[0] = 2.0 * lr
    ws[1] = P.fspec[0]
    ws[2] = 1.0
    reg = False
    cu0, ci0 = T.coff[USERS], T.coff[ITEMS]
    for c in range(cols):
        lu, li = T.l2s[cu0 + c], T.l2s[ci0 + c]
        reg = reg or lu != 0 or li != 0
        ws[3 + c] = 2.0 * lr * lu
        ws[3 + cols + c] = 2.0 * lr * li
        ws[3 + 2 * cols + c] = T.center[cu0 + c]
        ws[3 + 3 * cols + c] = T.center[ci0 + c]
        ws[3 + 4 * cols + c] = lu
        ws[3 + 5 * cols + c] = li
    c3 = ws[3:3 + 6 * cols]
    args = (U, I, S.X, S.Xf, start, end, k, bias, ws[0], ws[1], ws[2], c3, stride, first)
    # the flags become compile-time constants of the inlined loop: a third faster than
    # testing them per rating
    if sig:
        return _sgd_loop(args, True, True) if reg else _sgd_loop(args, True, False)
    return _sgd_loop(args, False, True) if reg else _sgd_loop(args, False, False)


@njit(**CORE, inline="always", fastmath=FAST)
def _error(z, y, sig, two_lr, scale, one):
    """``(e, g)`` of one rating: its error and the step factor ``2 lr e dy/dz``."""
    if sig:
        sz = one / (one + math.exp(-z))
        p = scale * sz
        e = p - y
        return e, two_lr * e * (p * (one - sz))
    e = z - y
    return e, two_lr * e


@njit(**CORE, inline="always", fastmath=FAST)
def _update(U, I, u, i, g, k, bias, reg, c3):
    """One rating's SGD step on rows ``U[u]``, ``I[i]`` with step factor ``g`` (and, with
    ``reg``, per-sample L2 from the constants ``c3``); returns the L2 penalty at the
    weights before the step."""
    pen = 0.0
    if reg:
        cols = k + 1 if bias else k
        du, di = c3[0:cols], c3[cols:2 * cols]
        cu, ci = c3[2 * cols:3 * cols], c3[3 * cols:4 * cols]
        l2u, l2i = c3[4 * cols:5 * cols], c3[5 * cols:6 * cols]
        for f in range(cols):
            pu = U[u, f] - cu[f]
            qi = I[i, f] - ci[f]
            pen += l2u[f] * pu * pu + l2i[f] * qi * qi
        for f in range(k):
            pu = U[u, f]
            qi = I[i, f]
            U[u, f] = pu - g * qi - du[f] * (pu - cu[f])
            I[i, f] = qi - g * pu - di[f] * (qi - ci[f])
        if bias:
            bu = U[u, k]
            bi = I[i, k]
            U[u, k] = bu - g - du[k] * (bu - cu[k])
            I[i, k] = bi - g - di[k] * (bi - ci[k])
        return pen
    for f in range(k):
        pu = U[u, f]
        qi = I[i, f]
        U[u, f] = pu - g * qi
        I[i, f] = qi - g * pu
    if bias:
        U[u, k] -= g
        I[i, k] -= g
    return pen


@njit(**CORE, inline="always", fastmath=FAST)
def _sgd_loop(args, sig, reg):
    """The ratings in their order, two at a time where two in a row share no user and no
    item: their updates then touch disjoint rows, so computing both predictions before
    either update gives the numbers of one-at-a-time SGD, and the two dependency chains
    (read rows, dot product, error, write rows) overlap (15% faster measured)."""
    U, I, X, Xf, start, end, k, bias, two_lr, scale, one, c3, stride, first = args
    total = 0.0
    pen = 0.0
    m = end - start
    at = first
    left = m
    while left > 0:
        j = start + at
        at += stride
        if at >= m:
            at -= m
        u = X[j, USER]
        i = X[j, ITEM]
        if left >= 2:
            j2 = start + at
            u2 = X[j2, USER]
            i2 = X[j2, ITEM]
            if u2 != u and i2 != i:
                at += stride
                if at >= m:
                    at -= m
                z = _z(U, I, u, i, k, bias)
                z2 = _z(U, I, u2, i2, k, bias)
                e, g = _error(z, Xf[j, RATING], sig, two_lr, scale, one)
                e2, g2 = _error(z2, Xf[j2, RATING], sig, two_lr, scale, one)
                total += e * e
                total += e2 * e2
                pen += _update(U, I, u, i, g, k, bias, reg, c3)
                pen += _update(U, I, u2, i2, g2, k, bias, reg, c3)
                left -= 2
                continue
        e, g = _error(_z(U, I, u, i, k, bias), Xf[j, RATING], sig, two_lr, scale, one)
        total += e * e
        pen += _update(U, I, u, i, g, k, bias, reg, c3)
        left -= 1
    return total + pen


# ---- fused batched Adam over packed rows (mfcore.engine.packed) ---------------------------
@njit(**CORE, inline="always", fastmath=FAST)
def _packed_add(a, c, v, offsets, scale, occurrences, per_sample):
    """Add column ``c``'s gradient ``v`` of one occurrence, with its per-sample L2 term,
    into the ``g`` block of packed row ``a`` (its square into ``g2``); returns the L2
    penalty."""
    _, g, _, _, g2, l2, center = offsets
    pen = 0.0
    if per_sample:
        w = a[c] - a[center + c]
        pen = a[l2 + c] * w * w
        v += scale * a[l2 + c] * w
    a[g + c] += v
    if occurrences:
        a[g2 + c] += v * v
    return pen


@njit(**CORE, inline="always", fastmath=FAST)
def _packed_emit(a, x, d, k, bias, mode, width, two_over_n):
    """:func:`~mfcore.engine.contract.emit_scaled` into the packed row ``a``: the gradient
    ``d * x[c]`` on the factor columns (``x``: the other packed row) and ``d`` on the bias
    column, plus per-sample L2, added into the ``g`` block (its square into ``g2``), in
    the tables' dtype. Returns the L2 penalty."""
    occurrences, per_sample, _ = switches(mode)
    offsets = block_offsets(mode, width)
    t = a.dtype.type
    dt, scale = t(d), t(two_over_n)
    pen = 0.0
    for c in range(np.uint64(k)):
        pen += _packed_add(a, c, dt * x[c], offsets, scale, occurrences, per_sample)
    if bias:
        pen += _packed_add(a, np.uint64(k), dt, offsets, scale, occurrences, per_sample)
    return pen


@njit(**CORE, inline="always", fastmath=FAST)
def packed_forward_backward(P, S, start, n, PK, first_item, width, ws):
    """Records ``start .. start+n-1``: each rating's gradient of the batch's mean squared
    error (plus per-sample L2) added into its user's and item's packed rows (``PK``;
    item ``i`` at row ``first_item + i``, see :mod:`mfcore.kernels.packed_layout`), at the
    weights before the step. Returns (sum of squared errors, per-sample L2 penalty)."""
    k, bias, sig = P.spec[SPEC.k], P.spec[SPEC.bias] != 0, P.spec[SPEC.sigmoid] != 0
    scale = P.fspec[0]
    A, mode = PK.A, PK.mode
    two_over_n = 2.0 / n
    sse = 0.0
    pen = 0.0
    for j in range(start, start + n):
        pu = A[S.X[j, USER]]
        qi = A[first_item + S.X[j, ITEM]]
        p, dz_dp = output(_z1(pu, qi, k, bias), sig, scale)
        err = p - S.Xf[j, RATING]
        sse += err * err
        d = two_over_n * err * dz_dp
        pen += _packed_emit(pu, qi, d, k, bias, mode, width, two_over_n)
        pen += _packed_emit(qi, pu, d, k, bias, mode, width, two_over_n)
    return sse, pen
