"""Update rules, compiled with Numba, over a model's parameter tables and dense weights.

Tables (:mod:`mfcore.engine.tables`) are row-indexed: a batch touches a few rows. The
dense weights ``theta`` (MLP layers) are one flat vector every batch touches. Optimizers
(names and codes in :mod:`mfcore.registry`):

``sgd``
    ``w -= lr * lr_scale[c] * g`` on the rows a batch touched (batch size 1 is classic
    per-sample SGD matrix factorisation).
``adam``
    Keras' Adam, with Keras' *dense* semantics: every row of every table moves at every
    step, rows a batch did not touch through their decaying first and second moments.
    It is computed lazily: a row is brought up to date only when a batch touches it (and
    every row at the end of every epoch), with a closed form for the skipped
    zero-gradient steps (:func:`_catch_up_row`). Equal to the step-by-step dense update
    up to float rounding (a relative ``(eps/sqrt(v))**2`` term). ``adam-dense`` runs the
    literal per-step update of whole tables (:func:`_dense_table_step`), which is also
    what a table with Keras' whole-matrix L2 needs (every row's gradient is non-zero).
``sparse-adam``
    "Lazy" Adam: only the rows a batch touched update their moments and weights (bias
    correction uses the global step). A different, faster optimizer than Keras'.

Adam follows Keras: ``m = b1 m + (1-b1) g``, ``v = b2 v + (1-b2) g^2``,
``alpha_t = lr sqrt(1-b2^t) / (1-b1^t)``, ``w -= alpha_t m / (sqrt(v) + eps)``.

Embedding rows and Keras: the gradient of an embedding lookup reaches Keras 3's Adam (on
TensorFlow) as ``IndexedSlices`` with one slice per occurrence of the row in the batch.
``ops.square`` squares those slices one by one and they are summed only when combined with
the dense ``v``, so a row that occurs several times in a batch gets ``g2 = sum_k g_k^2``
instead of ``(sum_k g_k)^2`` (``m`` does get the summed gradient). Row updates read ``G``
(summed row gradients) and ``G2`` (the second-moment input; see
:mod:`mfcore.engine.contract` for how it is filled). With a Keras L2 regulariser the
gradient becomes dense and the square is of the sum again.

State (:data:`OptArrays`): ``M``, ``V`` shaped like the arena; ``last`` (one int64 per
global row: the step it was last brought up to date); ``m_theta``, ``v_theta``; ``step``
(a 1-element box); ``dense`` (per table: step every row every step); ``tables`` (the
closed-form catch-up tables of the current epoch); ``coef`` (6 scratch values in the
tables' dtype, so that the row update runs in float32 for float32 tables). Settings (:data:`OptConfig`): the
optimizer code, ``lr``, ``b1``, ``b2``, ``eps``, ``t_base`` (the step count when the
catch-up tables were made), ``batch_size`` and ``seed``.
"""
import math
from collections import namedtuple

import numpy as np
from numba import njit

from ..kernels import CORE, FAST
from ..registry import ADAM, SGD, SPARSE_ADAM
from .contract import G2_SUM
from .tables import start, view

OptArrays = namedtuple("OptArrays", "M V last m_theta v_theta step dense tables coef")
OptConfig = namedtuple("OptConfig", "opt lr b1 b2 eps t_base batch_size seed")

# Steps beyond which a skipped step's contribution, weighted by (b1/sqrt(b2))^j, is below
# 1e-18 of the first one: the closed-form tables extend this far past the epoch's end.
CATCH_UP_HORIZON = 400


@njit(**CORE)
def adam_alpha(lr, b1, b2, t):
    """Keras' bias-corrected step size at step ``t`` (1-based)."""
    return lr * math.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t)


@njit(**CORE, inline="always")
def adam_coefficients(coef, cfg, t):
    """Fill ``coef`` (6 values in the tables' dtype) with the constants of an Adam row step
    at step ``t``: ``[alpha_t, b1, b2, eps, 1-b1, 1-b2]``; returns it."""
    coef[0] = adam_alpha(cfg.lr, cfg.b1, cfg.b2, t)
    coef[1] = cfg.b1
    coef[2] = cfg.b2
    coef[3] = cfg.eps
    coef[4] = 1.0 - cfg.b1
    coef[5] = 1.0 - cfg.b2
    return coef


@njit(cache=True)
def catch_up_tables(t_base, n_steps, lr, b1, b2):
    """Tables for the closed-form catch-up over steps ``t_base+1 .. t_base+n_steps``.

    Returns a float64 array of shape (6, n_steps + HORIZON + 2). Rows 0 and 1 are backward
    sums indexed by ``step - t_base``: ``s_x[i] = alpha_i + x * s_x[i+1]`` for
    ``x = r = b1/sqrt(b2)`` and ``x = q = b1/b2``. Rows 2 to 5 are the powers
    ``b1^k, b2^k, r^k, q^k`` indexed by ``k``.
    """
    n = n_steps + CATCH_UP_HORIZON + 2
    tab = np.zeros((6, n))
    r = b1 / math.sqrt(b2)
    q = b1 / b2
    for i in range(n - 2, 0, -1):
        a = adam_alpha(lr, b1, b2, t_base + i)
        tab[0, i] = a + r * tab[0, i + 1]
        tab[1, i] = a + q * tab[1, i + 1]
    tab[2, 0] = tab[3, 0] = tab[4, 0] = tab[5, 0] = 1.0
    for k in range(1, n):
        tab[2, k] = tab[2, k - 1] * b1
        tab[3, k] = tab[3, k - 1] * b2
        tab[4, k] = tab[4, k - 1] * r
        tab[5, k] = tab[5, k - 1] * q
    return tab


@njit(**CORE, inline="always")
def catch_up_coefficients(tau, k, t_base, tables, b1, b2):
    """``(d0, d1, b1^k, b2^k)`` of ``k`` zero-gradient Adam steps ``tau+1 .. tau+k`` (see
    :func:`_catch_up_row`), from the epoch's backward tables (:func:`catch_up_tables`)."""
    r = b1 / math.sqrt(b2)
    q = b1 / b2
    i0 = tau + 1 - t_base
    i1 = tau + k + 1 - t_base
    d0 = r * (tables[0, i0] - tables[4, k] * tables[0, i1])
    d1 = q * (tables[1, i0] - tables[5, k] * tables[1, i1]) - d0
    return d0, d1, tables[2, k], tables[3, k]


@njit(**CORE, inline="always", fastmath=FAST)
def _catch_up_row(W, M, V, s, cols, tau, k, t_base, tables, b1, b2, eps):
    """Apply ``k`` zero-gradient Adam steps (``tau+1 .. tau+k``) to the row of ``cols``
    columns starting at (unsigned) ``s``, in O(columns).

    With g = 0, ``m_j = b1^j m``, ``v_j = b2^j v`` and the weight moves by
    ``sum_j alpha_{tau+j} b1^j m / (b2^{j/2} s + eps)``, ``s = sqrt(v)``. Writing
    ``r = b1/sqrt(b2)``, ``c_j = b2^{-j/2}`` and expanding ``1/(s + eps c_j)`` to first order
    around ``c_j = 1`` gives ``m/(s+eps) (D0 - eps/(s+eps) D1)`` with
    ``D0 = sum alpha r^j`` and ``D1 = sum alpha (q^j - r^j)``, ``q = b1/b2``; both sums come
    from the backward tables in O(1). The neglected term is
    ``(eps/(s+eps))^2 sum alpha r^j (c_j-1)^2``, below float32 resolution unless ``v`` is
    essentially zero, when ``m`` is too.
    """
    d0, d1, b1k, b2k = catch_up_coefficients(tau, k, t_base, tables, b1, b2)
    # no branch on m == 0 (then W moves by exactly 0): the loop vectorises
    for c in range(cols):
        j = s + np.uint64(c)
        m = M[j]
        inv = 1.0 / (math.sqrt(V[j]) + eps)
        W[j] -= m * inv * (d0 - eps * inv * d1)
        M[j] = m * b1k
        V[j] = V[j] * b2k


@njit(**CORE, inline="always")
def _catch_up(T, O, cfg, t_idx, r, t):
    """Bring row ``r`` of table ``t_idx`` to step ``t``."""
    g = T.gid[t_idx] + r
    k = t - O.last[g]
    if k > 0:
        _catch_up_row(T.W, O.M, O.V, start(T, t_idx, r), T.cols[t_idx], O.last[g], k,
                      cfg.t_base, O.tables, cfg.b1, cfg.b2, cfg.eps)
        O.last[g] = t


@njit(**CORE)
def catch_up_touched(T, O, K, cfg, t):
    """Bring the rows the batch touches (``K``) to step ``t``. The engine calls it with
    ``t - 1`` BEFORE the forward pass, so that the batch sees the same weights as Keras'
    dense update would have produced."""
    for j in range(K.count[0]):
        t_idx = K.tab[j]
        if not O.dense[t_idx]:
            _catch_up(T, O, cfg, t_idx, K.rows[j], t)


@njit(**CORE)
def catch_up_all(T, O, cfg, t):
    """Bring every row of every table to step ``t`` (end of epoch, before validation)."""
    for t_idx in range(T.off.size):
        g0 = T.gid[t_idx]
        if O.dense[t_idx]:
            for r in range(T.rows[t_idx]):
                O.last[g0 + r] = t
            continue
        for r in range(T.rows[t_idx]):
            _catch_up(T, O, cfg, t_idx, r, t)


@njit(**CORE, inline="always", fastmath=FAST)
def _adam_row(W, M, V, s, G, G2, coef, squared):
    """One Adam step of the row starting at (unsigned) ``s`` whose gradient slot is ``G``;
    the second-moment input is ``G2`` (Keras' per-occurrence squares), or ``G**2`` with
    ``squared`` (textbook); the slots are zeroed. ``coef = [alpha, b1, b2, eps, 1-b1,
    1-b2]`` in W's dtype (float32 arithmetic for float32 tables, as Keras)."""
    alpha, b1, b2, eps, c1, c2 = coef[0], coef[1], coef[2], coef[3], coef[4], coef[5]
    for c in range(G.size):
        j = s + np.uint64(c)
        g = G[c]
        m = b1 * M[j] + c1 * g
        v = b2 * V[j] + c2 * (g * g if squared else G2[c])
        M[j] = m
        V[j] = v
        W[j] -= alpha * m / (np.sqrt(v) + eps)  # float32 sqrt for float32 tables
        G[c] = 0.0
        G2[c] = 0.0


@njit(**CORE, fastmath=FAST)
def rows_step(T, R, O, K, cfg, t):
    """Update the touched rows (``K``) of every table not stepped densely, at step ``t``,
    and zero their gradient slots."""
    W = T.W
    n = K.count[0]
    if cfg.opt == SGD:
        for j in range(n):
            t_idx = K.tab[j]
            if O.dense[t_idx]:
                continue
            s = start(T, t_idx, K.rows[j])
            c0 = np.uint64(T.coff[t_idx])
            G, G2 = R.G[j], R.G2[j]
            for c in range(T.cols[t_idx]):
                W[s + np.uint64(c)] -= cfg.lr * T.lr_scale[c0 + np.uint64(c)] * G[c]
                G[c] = 0.0
                G2[c] = 0.0
        return
    if cfg.opt != ADAM and cfg.opt != SPARSE_ADAM:
        raise ValueError("unknown optimizer code")
    coef = adam_coefficients(O.coef, cfg, t)
    for j in range(n):
        t_idx = K.tab[j]
        if O.dense[t_idx]:
            continue
        r = K.rows[j]
        if cfg.opt == ADAM:
            _catch_up(T, O, cfg, t_idx, r, t - 1)
            O.last[T.gid[t_idx] + r] = t
        cols = T.cols[t_idx]
        _adam_row(W, O.M, O.V, start(T, t_idx, r), R.G[j, :cols], R.G2[j, :cols], coef,
                  R.g2_mode == G2_SUM)


@njit(**CORE)
def dense_table_step(T, R, O, K, cfg, t_idx, t):
    """Step EVERY row of table ``t_idx`` (the literal Keras update), adding Keras'
    whole-matrix L2 gradient ``2 l2[c] W`` to every row (a row the batch did not touch has
    no other gradient); zeroes the touched rows' slots. Adam's second-moment input is
    ``G2`` without L2, the square of the (dense) gradient with it, as Keras. Returns the
    penalty ``sum_c l2[c] sum W[:, c]^2`` at the weights before the step (Keras adds it to
    the batch loss)."""
    W = view(T.W, T, t_idx)
    G, G2 = R.G, R.G2
    rows, cols = W.shape
    g0 = T.gid[t_idx]
    step = K.step[0]
    nowhere = G.shape[0] - 1  # an always-zero slot for untouched rows
    c0 = T.coff[t_idx]
    l2k = T.l2k[c0:c0 + cols]
    lr_scale = T.lr_scale[c0:c0 + cols]
    penalty = 0.0
    if cfg.opt == SGD:
        for i in range(rows):
            j = R.slot[g0 + i] if K.mark[g0 + i] == step else nowhere
            for c in range(cols):
                w = W[i, c]
                l2 = l2k[c]
                penalty += l2 * w * w
                W[i, c] = w - cfg.lr * lr_scale[c] * (G[j, c] + 2.0 * l2 * w)
                G[j, c] = 0.0
                G2[j, c] = 0.0
        return penalty
    dense = R.g2_mode == G2_SUM  # the textbook rule squares the summed gradient
    for c in range(cols):
        dense = dense or l2k[c] != 0
    alpha = adam_alpha(cfg.lr, cfg.b1, cfg.b2, t)
    b1, b2, eps = cfg.b1, cfg.b2, cfg.eps
    c1 = 1.0 - b1
    c2 = 1.0 - b2
    M, V = view(O.M, T, t_idx), view(O.V, T, t_idx)
    for i in range(rows):
        j = R.slot[g0 + i] if K.mark[g0 + i] == step else nowhere
        for c in range(cols):
            w = W[i, c]
            l2 = l2k[c]
            g = G[j, c] + 2.0 * l2 * w
            penalty += l2 * w * w
            m = b1 * M[i, c] + c1 * g
            v = b2 * V[i, c] + c2 * (g * g if dense else G2[j, c])
            M[i, c] = m
            V[i, c] = v
            W[i, c] = w - alpha * m / (math.sqrt(v) + eps)
            G[j, c] = 0.0
            G2[j, c] = 0.0
    return penalty


@njit(**CORE)
def vector_step(cfg, w, m, v, g, t):
    """Update the dense parameter vector ``w`` (all of it, every step); zeroes ``g``."""
    if cfg.opt == SGD:
        for i in range(w.size):
            w[i] -= cfg.lr * g[i]
            g[i] = 0.0
        return
    if cfg.opt != ADAM and cfg.opt != SPARSE_ADAM:
        raise ValueError("unknown optimizer code")
    alpha = adam_alpha(cfg.lr, cfg.b1, cfg.b2, t)
    b1, b2, eps = cfg.b1, cfg.b2, cfg.eps
    c1 = 1.0 - b1
    c2 = 1.0 - b2
    for i in range(w.size):
        gi = g[i]
        mi = b1 * m[i] + c1 * gi
        vi = b2 * v[i] + c2 * gi * gi
        m[i] = mi
        v[i] = vi
        w[i] -= alpha * mi / (math.sqrt(vi) + eps)
        g[i] = 0.0


@njit(**CORE)
def apply_step(T, P, R, O, K, cfg, t):
    """One optimizer step at step ``t`` after the batch's gradients are in ``R``: touched
    rows, densely stepped tables, then the dense weights. Returns Keras' L2 penalty of the
    densely stepped tables (part of the batch loss)."""
    rows_step(T, R, O, K, cfg, t)
    penalty = 0.0
    for t_idx in range(T.off.size):
        if O.dense[t_idx]:
            penalty += dense_table_step(T, R, O, K, cfg, t_idx, t)
    if P.theta.size:
        vector_step(cfg, P.theta, O.m_theta, O.v_theta, R.gtheta, t)
    return penalty
