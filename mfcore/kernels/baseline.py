"""Baseline predictor (what Surprise calls BaselineOnly): ``y_hat = mu + b_u + b_i``.

Tables: ``users`` (t=0) rows ``[b_u]``, ``items`` (t=1) rows ``[b_i]``; ``mu``, the training
mean, is fixed (``fspec = [mu]``). Backward for the batch mean of (y_hat - y)^2 over n
samples: ``d = 2 (y_hat - y) / n``, ``db_u = db_i = d``. Workspace: 2 floats.
"""
from numba import njit

from ..engine.contract import emit, touch as touch_row
from ..engine.samples import ITEM, RATING, USER
from ..engine.tables import view
from . import CORE

USERS, ITEMS = 0, 1


@njit(**CORE)
def touch(T, P, S, start, n, K):
    for j in range(start, start + n):
        touch_row(T, K, USERS, S.X[j, USER])
        touch_row(T, K, ITEMS, S.X[j, ITEM])


@njit(**CORE, inline="always")
def _predict_one(U, I, P, S, j):
    return P.fspec[0] + U[S.X[j, USER], 0] + I[S.X[j, ITEM], 0]


@njit(**CORE)
def forward_backward(T, P, S, start, n, R, ws, seed, step, training):
    U, I = view(T.W, T, USERS), view(T.W, T, ITEMS)
    g = ws[0:1]
    sse = 0.0
    for j in range(start, start + n):
        err = _predict_one(U, I, P, S, j) - S.Xf[j, RATING]
        sse += err * err
        d = 2.0 / n * err
        g[0] = d
        emit(T, R, USERS, S.X[j, USER], g)
        g[0] = d
        emit(T, R, ITEMS, S.X[j, ITEM], g)
    return sse


@njit(**CORE)
def predict(T, P, S, start, n, out, ws):
    U, I = view(T.W, T, USERS), view(T.W, T, ITEMS)
    for b in range(n):
        out[b] = _predict_one(U, I, P, S, start + b)
