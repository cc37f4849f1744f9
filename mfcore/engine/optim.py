"""Optimizers shared by every model, compiled with Numba.

Parameters come in two shapes: embedding *tables* (rows indexed by user or item; a batch
touches a few rows) and a flat *dense* vector (MLP weights; every batch touches all of it).

Optimizer codes (``OPT_*``):

``OPT_SGD``
    ``w -= lr * g`` on the rows a batch touched (with batch size 1 this is classic
    per-sample SGD matrix factorisation).
``OPT_ADAM``
    Keras' Adam, with Keras' *dense* semantics: every row of every table moves at every
    step, rows a batch did not touch through their decaying first and second moments.
    It is computed lazily: a row is brought up to date only when a batch touches it (and
    all rows at the end of every epoch), using a closed form for the skipped zero-gradient
    steps (see :func:`_catch_up_row`). Equal to the step-by-step dense update up to float
    rounding (a relative ``(eps/sqrt(v))**2`` term); :func:`adam_dense_tables_step` is the
    literal per-step version, used when Keras' whole-matrix L2 makes every row's gradient
    non-zero at every step, and by the tests as the reference.
``OPT_SPARSE_ADAM``
    "Lazy" Adam: only the rows a batch touched update their moments and weights (bias
    correction uses the global step). A different, faster optimizer than Keras'.

Adam follows Keras: ``m = b1 m + (1-b1) g``, ``v = b2 v + (1-b2) g^2``,
``alpha_t = lr sqrt(1-b2^t) / (1-b1^t)``, ``w -= alpha_t m / (sqrt(v) + eps)``.

Embedding rows and Keras: the gradient of an embedding lookup reaches Keras 3's Adam (on
TensorFlow) as ``IndexedSlices`` with one slice per occurrence of the row in the batch.
``ops.square`` squares those slices one by one and they are summed only when combined with
the dense ``v``, so a row that occurs several times in a batch gets ``g2 = sum_k g_k^2``
instead of ``(sum_k g_k)^2`` (``m`` does get the summed gradient). The table updates here
take ``G`` (summed row gradients) and ``G2`` (the per-row sum of squared per-occurrence
gradients) so that both conventions can be followed; the trainer passes ``G2 = G^2`` for
the textbook one. With a Keras L2 regulariser the gradient becomes dense and the square is
of the sum again.
"""
import math

import numpy as np
from numba import njit

from ..kernels import FAST

OPT_SGD = 0
OPT_ADAM = 1
OPT_SPARSE_ADAM = 2

#: CLI/API names. "adam-dense" is the literal step-by-step Keras update of whole tables:
#: the same numbers as "adam" (up to rounding), much slower; kept as the reference.
OPTIMIZERS = {"sgd": OPT_SGD, "adam": OPT_ADAM, "sparse-adam": OPT_SPARSE_ADAM,
              "adam-dense": OPT_ADAM}

# Steps beyond which a skipped step's contribution, weighted by (b1/sqrt(b2))^j, is below
# 1e-18 of the first one: the closed-form tables extend this far past the epoch's end.
CATCH_UP_HORIZON = 400


@njit(cache=True)
def adam_alpha(lr, b1, b2, t):
    """Keras' bias-corrected step size at step ``t`` (1-based)."""
    return lr * math.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t)


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


@njit(cache=True, inline="always", fastmath=FAST)
def _catch_up_row(W, M, V, row, tau, k, t_base, tables, b1, b2, eps):
    """Apply ``k`` zero-gradient Adam steps (``tau+1 .. tau+k``) to one row, in O(columns).

    With g = 0, ``m_j = b1^j m``, ``v_j = b2^j v`` and the weight moves by
    ``sum_j alpha_{tau+j} b1^j m / (b2^{j/2} s + eps)``, ``s = sqrt(v)``. Writing
    ``r = b1/sqrt(b2)``, ``c_j = b2^{-j/2}`` and expanding ``1/(s + eps c_j)`` to first order
    around ``c_j = 1`` gives ``m/(s+eps) (D0 - eps/(s+eps) D1)`` with
    ``D0 = sum alpha r^j`` and ``D1 = sum alpha (q^j - r^j)``, ``q = b1/b2``; both sums come
    from the backward tables in O(1). The neglected term is
    ``(eps/(s+eps))^2 sum alpha r^j (c_j-1)^2``, below float32 resolution unless ``v`` is
    essentially zero, when ``m`` is too.
    """
    r = b1 / math.sqrt(b2)
    q = b1 / b2
    i0 = tau + 1 - t_base
    i1 = tau + k + 1 - t_base
    d0 = r * (tables[0, i0] - tables[4, k] * tables[0, i1])
    d1 = q * (tables[1, i0] - tables[5, k] * tables[1, i1]) - d0
    b1k = tables[2, k]
    b2k = tables[3, k]
    for c in range(W.shape[1]):
        m = M[row, c]
        if m == 0.0:
            V[row, c] = V[row, c] * b2k
            continue
        s = math.sqrt(V[row, c])
        inv = 1.0 / (s + eps)
        W[row, c] -= m * inv * (d0 - eps * inv * d1)
        M[row, c] = m * b1k
        V[row, c] = V[row, c] * b2k


@njit(cache=True)
def adam_catch_up_rows(W, M, V, last, rows, n_rows, t, t_base, tables, b1, b2, eps):
    """Bring the ``n_rows`` given rows to step ``t``. The trainer calls it with ``t - 1``
    for the rows a batch touches BEFORE the forward pass, so that the batch sees the same
    weights as Keras' dense update would have produced."""
    for j in range(n_rows):
        row = rows[j]
        k = t - last[row]
        if k > 0:
            _catch_up_row(W, M, V, row, last[row], k, t_base, tables, b1, b2, eps)
            last[row] = t


@njit(cache=True)
def adam_catch_up_all(W, M, V, last, t, t_base, tables, b1, b2, eps):
    """Bring every row of a table to step ``t`` (end of epoch, before validation)."""
    for row in range(W.shape[0]):
        k = t - last[row]
        if k > 0:
            _catch_up_row(W, M, V, row, last[row], k, t_base, tables, b1, b2, eps)
            last[row] = t


@njit(cache=True, inline="always", fastmath=FAST)
def _adam_row(W, M, V, G, G2, row, coef):
    """One Adam step of one row; ``coef = [alpha, b1, b2, eps, 1-b1, 1-b2]`` in W's dtype
    (float32 arithmetic for float32 tables, as Keras). ``G2`` is the second-moment input."""
    alpha, b1, b2, eps, c1, c2 = coef[0], coef[1], coef[2], coef[3], coef[4], coef[5]
    for c in range(W.shape[1]):
        m = b1 * M[row, c] + c1 * G[row, c]
        v = b2 * V[row, c] + c2 * G2[row, c]
        M[row, c] = m
        V[row, c] = v
        W[row, c] -= alpha * m / (np.sqrt(v) + eps)  # float32 sqrt for float32 tables
        G[row, c] = 0.0
        G2[row, c] = 0.0


@njit(cache=True, fastmath=FAST, inline="always")
def table_step(opt, W, M, V, G, G2, last, rows, n_rows, t, lr, b1, b2, eps, t_base, tables):
    """Update the ``n_rows`` touched ``rows`` of table ``W`` at step ``t`` and zero their
    rows in ``G`` and ``G2`` (Adam's first- and second-moment inputs, see the module doc).
    ``last[row]`` is the step a row was last brought up to date."""
    if opt == OPT_SGD:
        for j in range(n_rows):
            row = rows[j]
            for c in range(W.shape[1]):
                W[row, c] -= lr * G[row, c]
                G[row, c] = 0.0
                G2[row, c] = 0.0
        return
    coef = np.empty(6, W.dtype)
    coef[0] = adam_alpha(lr, b1, b2, t)
    coef[1] = b1
    coef[2] = b2
    coef[3] = eps
    coef[4] = 1.0 - b1
    coef[5] = 1.0 - b2
    for j in range(n_rows):
        row = rows[j]
        if opt == OPT_ADAM:
            k = t - 1 - last[row]
            if k > 0:
                _catch_up_row(W, M, V, row, last[row], k, t_base, tables, b1, b2, eps)
            last[row] = t
        _adam_row(W, M, V, G, G2, row, coef)


@njit(cache=True)
def adam_dense_tables_step(W, M, V, G, G2, l2, t, lr, b1, b2, eps):
    """Literal Keras Adam step over a whole table, adding Keras' whole-matrix L2 gradient
    ``2 l2[c] W`` to every row. Zeroes ``G`` and ``G2``. Without L2 (all ``l2`` zero) the
    second-moment input is ``G2``; with it the gradient is dense and its square is used, as
    in Keras. Returns the penalty ``sum_c l2[c] sum W[:, c]^2`` at the weights before the
    step (Keras adds it to the batch loss)."""
    dense = False
    for c in range(W.shape[1]):
        dense = dense or l2[c] != 0
    alpha = adam_alpha(lr, b1, b2, t)
    c1 = 1.0 - b1
    c2 = 1.0 - b2
    penalty = 0.0
    for row in range(W.shape[0]):
        for c in range(W.shape[1]):
            w = W[row, c]
            g = G[row, c] + 2.0 * l2[c] * w
            penalty += l2[c] * w * w
            m = b1 * M[row, c] + c1 * g
            v = b2 * V[row, c] + c2 * (g * g if dense else G2[row, c])
            M[row, c] = m
            V[row, c] = v
            W[row, c] = w - alpha * m / (math.sqrt(v) + eps)
            G[row, c] = 0.0
            G2[row, c] = 0.0
    return penalty


@njit(cache=True)
def sgd_dense_tables_step(W, G, G2, l2, lr):
    """SGD over a whole table with Keras' whole-matrix L2 (``2 l2[c] W`` on every row).
    Zeroes ``G`` and ``G2``; returns the penalty at the weights before the step."""
    penalty = 0.0
    for row in range(W.shape[0]):
        for c in range(W.shape[1]):
            w = W[row, c]
            penalty += l2[c] * w * w
            W[row, c] = w - lr * (G[row, c] + 2.0 * l2[c] * w)
            G[row, c] = 0.0
            G2[row, c] = 0.0
    return penalty


@njit(cache=True)
def vector_step(opt, w, m, v, g, t, lr, b1, b2, eps):
    """Update the dense parameter vector ``w`` (all of it, every step); zeroes ``g``."""
    if opt == OPT_SGD:
        for i in range(w.size):
            w[i] -= lr * g[i]
            g[i] = 0.0
        return
    alpha = adam_alpha(lr, b1, b2, t)
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
