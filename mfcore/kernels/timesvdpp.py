"""The timeSVD++ family: ``svdpp``, ``timesvd``, ``timesvdpp`` (Koren, KDD 2008 and 2009),
optionally "flipped" (Rendle, Zhang & Koren 2019): one kernel, its terms switched by
``spec`` (:data:`SPEC`).

Prediction for user ``u``, item ``i`` at day ``t`` (``dev = dev_u(t)``, ``b = Bin(t)``,
``ud`` = the (u, t) row of the user-day tables, or none)::

    pu = p_u + ap_u dev + |N(u)|^-1/2 sum_{j in N(u)} y_j        (factor drift, implicit)
    qi = q_i + |N(i)|^-1/2 sum_{v in N(i)} z_v                    (flipped)
    c  = c_u + c_{u,t}                                            (scale; 1 when off)
    y_hat = mu + b_u + a_u dev + b_{u,t} + (b_i + b_{i,b}) c + qi . pu

Tables (t index): ``users`` 0, rows ``[p_u (k), b_u, a_u, c_u, ap_u (k)]``; ``items`` 1,
``[q_i (k), b_i]``; ``item_bins`` 2, row ``i * n_bins + b``: ``[b_{i,b}]``; ``user_days``
3: ``[b_{u,t}, c_{u,t}]``; ``implicit`` 4 (n_items x k): ``y_j``; ``implicit_users`` 5
(n_users x k): ``z_v``. A switched-off term's table has no rows, its columns stay 0.

Backward of the batch mean of (y_hat - y)^2, with ``d = 2 (y_hat - y) / n`` and
``bi = b_i + b_{i,b}``::

    p_u: d qi    b_u: d    a_u: d dev    c_u: d bi    ap_u: d dev qi
    q_i: d pu    b_i: d c  b_{i,b}: d c  b_{u,t}: d   c_{u,t}: d bi
    y_j: d |N(u)|^-1/2 qi (each j in N(u))     z_v: d |N(i)|^-1/2 pu (each v in N(i))

Records: user, item, rating, then (time terms only) ``BIN``, ``UD`` (int) and ``DEV``
(float). Side data ``aux_i``: N(u) and N(i) as CSR, at the offsets in ``spec``;
``fspec = [mu]``.

Per-sample SGD (``sgd_block``) takes one user's ratings per call when the implicit term is
on (the engine's user runs): all ``y_j`` of the user then move by the same affine map per
rating, ``y <- a * y - delta`` column-wise (``a = 1 - 2 lr l2``), so the kernel keeps the
user's implicit sum ``S = sum_j y_j`` exact in O(k) per rating (``S <- a S - |N(u)|
delta``), composes the maps, and writes every ``y_j`` once at the end of the run: the
numbers of per-sample SGD in that order, at O(k) per rating instead of O(|N(u)| k).
Without the implicit term any order works (the grid of blocks).
"""
import math

from numba import njit

from ..engine.contract import emit, touch as touch_row
from ..engine.samples import FIRST_CONTEXT, ITEM, RATING, USER
from ..engine.tables import view
from ..layout import fields
from . import CORE, FAST

USERS, ITEMS, BINS, UDAYS, IMPL, IMPL_USERS = 0, 1, 2, 3, 4, 5
BIN, UD, DEV = FIRST_CONTEXT, FIRST_CONTEXT + 1, FIRST_CONTEXT + 2
SPEC = fields("TimeSVDppSpec", "k drift user_day item_bins scale factor_drift implicit "
                               "flipped time n_bins nu_ptr nu_idx ni_ptr ni_idx")


@njit(**CORE, inline="always")
def _cols(k):
    """Column positions of the user row: b_u, a_u, c_u, first of ap_u."""
    return k, k + 1, k + 2, k + 3


@njit(**CORE)
def touch(T, P, S, start, n, K):
    spec, aux = P.spec, P.aux_i
    nb = spec[SPEC.n_bins]
    for j in range(start, start + n):
        u = S.X[j, USER]
        i = S.X[j, ITEM]
        touch_row(T, K, USERS, u)
        touch_row(T, K, ITEMS, i)
        if spec[SPEC.item_bins]:
            touch_row(T, K, BINS, i * nb + S.X[j, BIN])
        if spec[SPEC.user_day] and S.X[j, UD] >= 0:
            touch_row(T, K, UDAYS, S.X[j, UD])
        if spec[SPEC.implicit]:
            p0 = spec[SPEC.nu_ptr]
            q0 = spec[SPEC.nu_idx]
            for a in range(aux[p0 + u], aux[p0 + u + 1]):
                touch_row(T, K, IMPL, aux[q0 + a])
        if spec[SPEC.flipped]:
            p0 = spec[SPEC.ni_ptr]
            q0 = spec[SPEC.ni_idx]
            for a in range(aux[p0 + i], aux[p0 + i + 1]):
                touch_row(T, K, IMPL_USERS, aux[q0 + a])


@njit(**CORE, inline="always", fastmath=FAST)
def _forward(T, P, S, j, su, sz, pu, qi):
    """Fill ``pu``, ``qi`` (k each; ``su``/``sz`` receive the implicit sums) for record
    ``j``; return ``(y_hat, dev, c, bi, norm_u, norm_i)``."""
    spec, aux = P.spec, P.aux_i
    k = spec[SPEC.k]
    U, I = view(T.W, T, USERS), view(T.W, T, ITEMS)
    u = S.X[j, USER]
    i = S.X[j, ITEM]
    cb, ca, cc, cap = _cols(k)
    dev = S.Xf[j, DEV] if spec[SPEC.time] else 0.0
    norm_u = 0.0
    for f in range(k):
        su[f] = 0.0
        sz[f] = 0.0
    if spec[SPEC.implicit]:
        Y = view(T.W, T, IMPL)
        p0 = spec[SPEC.nu_ptr]
        q0 = spec[SPEC.nu_idx]
        lo, hi = aux[p0 + u], aux[p0 + u + 1]
        for a in range(lo, hi):
            y = aux[q0 + a]
            for f in range(k):
                su[f] += Y[y, f]
        if hi > lo:
            norm_u = 1.0 / math.sqrt(hi - lo)
    norm_i = 0.0
    if spec[SPEC.flipped]:
        Z = view(T.W, T, IMPL_USERS)
        p0 = spec[SPEC.ni_ptr]
        q0 = spec[SPEC.ni_idx]
        lo, hi = aux[p0 + i], aux[p0 + i + 1]
        for a in range(lo, hi):
            v = aux[q0 + a]
            for f in range(k):
                sz[f] += Z[v, f]
        if hi > lo:
            norm_i = 1.0 / math.sqrt(hi - lo)
    z = P.fspec[0] + U[u, cb]
    for f in range(k):
        pu[f] = U[u, f] + norm_u * su[f]
        qi[f] = I[i, f] + norm_i * sz[f]
    if spec[SPEC.factor_drift]:
        for f in range(k):
            pu[f] += U[u, cap + f] * dev
    if spec[SPEC.drift]:
        z += U[u, ca] * dev
    ud = S.X[j, UD] if spec[SPEC.user_day] else -1
    D = view(T.W, T, UDAYS)
    if ud >= 0:
        z += D[ud, 0]
    bi = I[i, k]
    if spec[SPEC.item_bins]:
        bi += view(T.W, T, BINS)[i * spec[SPEC.n_bins] + S.X[j, BIN], 0]
    c = 1.0
    if spec[SPEC.scale]:
        c = U[u, cc]
        if ud >= 0:
            c += D[ud, 1]
    z += bi * c
    for f in range(k):
        z += qi[f] * pu[f]
    return z, dev, c, bi, norm_u, norm_i


@njit(**CORE, fastmath=FAST)
def forward_backward(T, P, S, start, n, R, ws, seed, step, training):
    spec, aux = P.spec, P.aux_i
    k = spec[SPEC.k]
    cu, ci = T.cols[USERS], T.cols[ITEMS]
    cb, ca, cc, cap = _cols(k)
    gu = ws[0:cu]
    gi = ws[cu:cu + ci]
    g1 = ws[cu + ci:cu + ci + 1]
    g2 = ws[cu + ci + 1:cu + ci + 3]
    o = cu + ci + 3
    gk = ws[o:o + k]
    su, sz, pu, qi = ws[o + k:o + 2 * k], ws[o + 2 * k:o + 3 * k], ws[o + 3 * k:o + 4 * k], \
        ws[o + 4 * k:o + 5 * k]
    sse = 0.0
    two_over_n = 2.0 / n
    for j in range(start, start + n):
        u = S.X[j, USER]
        i = S.X[j, ITEM]
        yhat, dev, c, bi, norm_u, norm_i = _forward(T, P, S, j, su, sz, pu, qi)
        err = yhat - S.Xf[j, RATING]
        sse += err * err
        d = two_over_n * err
        for f in range(k):
            gu[f] = d * qi[f]
            gi[f] = d * pu[f]
        gu[cb] = d
        if spec[SPEC.drift]:
            gu[ca] = d * dev
        if spec[SPEC.scale]:
            gu[cc] = d * bi
        if spec[SPEC.factor_drift]:
            for f in range(k):
                gu[cap + f] = d * dev * qi[f]
        gi[k] = d * c
        emit(T, R, USERS, u, gu)
        emit(T, R, ITEMS, i, gi)
        if spec[SPEC.item_bins]:
            g1[0] = d * c
            emit(T, R, BINS, i * spec[SPEC.n_bins] + S.X[j, BIN], g1)
        ud = S.X[j, UD] if spec[SPEC.user_day] else -1
        if ud >= 0:
            g2[0] = d
            g2[1] = d * bi if spec[SPEC.scale] else 0.0
            emit(T, R, UDAYS, ud, g2)
        if spec[SPEC.implicit]:
            p0 = spec[SPEC.nu_ptr]
            q0 = spec[SPEC.nu_idx]
            for a in range(aux[p0 + u], aux[p0 + u + 1]):
                for f in range(k):
                    gk[f] = d * norm_u * qi[f]
                emit(T, R, IMPL, aux[q0 + a], gk)
        if spec[SPEC.flipped]:
            p0 = spec[SPEC.ni_ptr]
            q0 = spec[SPEC.ni_idx]
            for a in range(aux[p0 + i], aux[p0 + i + 1]):
                for f in range(k):
                    gk[f] = d * norm_i * pu[f]
                emit(T, R, IMPL_USERS, aux[q0 + a], gk)
    return sse


@njit(**CORE, fastmath=FAST)
def predict(T, P, S, start, n, out, ws):
    k = P.spec[SPEC.k]
    su, sz, pu, qi = ws[0:k], ws[k:2 * k], ws[2 * k:3 * k], ws[3 * k:4 * k]
    for b in range(n):
        out[b] = _forward(T, P, S, start + b, su, sz, pu, qi)[0]


@njit(**CORE, fastmath=FAST)
def sgd_block(T, P, S, start, end, lr, ws):
    """Per-sample SGD over records ``start .. end-1`` in their order (with the implicit
    term: all of one user, see the module docstring). Per rating: the gradient of
    ``(y_hat - y)^2`` plus per-sample L2 ``l2 |w - center|^2`` of every row the rating
    touches (per-column coefficients, centres and learning-rate multipliers of the
    tables), then ``w -= lr lr_scale g``. Returns the sum of per-sample losses with their
    penalties (float64); arithmetic in float64 per rating, stored in the tables' dtype.
    Scratch: ``ws`` of ``4 k`` + columns values."""
    spec, aux = P.spec, P.aux_i
    k = spec[SPEC.k]
    U, I = view(T.W, T, USERS), view(T.W, T, ITEMS)
    cb, ca, cc, cap = _cols(k)
    pu, qi = ws[2 * k:3 * k], ws[3 * k:4 * k]
    total = 0.0
    if end <= start:
        return total
    # the implicit term: this call holds one user's run; S = sum_j y_j kept exactly,
    # the maps y <- A y - D composed and applied at the end
    impl = spec[SPEC.implicit] != 0
    Y = view(T.W, T, IMPL)
    Acc = ws[4 * k:5 * k]
    Dacc = ws[5 * k:6 * k]
    ssum = ws[6 * k:7 * k]
    sq = ws[7 * k:8 * k]
    ny = 0
    yc0 = T.coff[IMPL]
    u0 = S.X[start, USER]
    if impl:
        p0 = spec[SPEC.nu_ptr]
        q0 = spec[SPEC.nu_idx]
        lo, hi = aux[p0 + u0], aux[p0 + u0 + 1]
        ny = hi - lo
        for f in range(k):
            Acc[f] = 1.0
            Dacc[f] = 0.0
            ssum[f] = 0.0
            sq[f] = 0.0
        for a in range(lo, hi):
            y = aux[q0 + a]
            for f in range(k):
                w = Y[y, f]
                ssum[f] += w
                sq[f] += w * w
    norm_u = 1.0 / math.sqrt(ny) if ny > 0 else 0.0
    ucol0, icol0 = T.coff[USERS], T.coff[ITEMS]
    for j in range(start, end):
        u = S.X[j, USER]
        i = S.X[j, ITEM]
        dev = S.Xf[j, DEV] if spec[SPEC.time] else 0.0
        # forward, with the exact implicit sum
        z = P.fspec[0] + U[u, cb]
        for f in range(k):
            pu[f] = U[u, f] + norm_u * ssum[f]
            qi[f] = I[i, f]
        if spec[SPEC.factor_drift]:
            for f in range(k):
                pu[f] += U[u, cap + f] * dev
        if spec[SPEC.drift]:
            z += U[u, ca] * dev
        ud = S.X[j, UD] if spec[SPEC.user_day] else -1
        D = view(T.W, T, UDAYS)
        if ud >= 0:
            z += D[ud, 0]
        bin_row = i * spec[SPEC.n_bins] + S.X[j, BIN] if spec[SPEC.item_bins] else 0
        B = view(T.W, T, BINS)
        bi = I[i, k]
        if spec[SPEC.item_bins]:
            bi += B[bin_row, 0]
        c = 1.0
        if spec[SPEC.scale]:
            c = U[u, cc]
            if ud >= 0:
                c += D[ud, 1]
        z += bi * c
        for f in range(k):
            z += qi[f] * pu[f]
        e = z - S.Xf[j, RATING]
        total += e * e
        g = 2.0 * e
        # per-sample penalties and updates, user row first (from pre-update values)
        for f in range(k):
            total += _sgd(U, u, f, g * qi[f], lr, T, ucol0)
            total += _sgd(I, i, f, g * pu[f], lr, T, icol0)
        total += _sgd(U, u, cb, g, lr, T, ucol0)
        total += _sgd(I, i, k, g * c, lr, T, icol0)
        if spec[SPEC.drift]:
            total += _sgd(U, u, ca, g * dev, lr, T, ucol0)
        if spec[SPEC.scale]:
            total += _sgd(U, u, cc, g * bi, lr, T, ucol0)
        if spec[SPEC.factor_drift]:
            for f in range(k):
                total += _sgd(U, u, cap + f, g * dev * qi[f], lr, T, ucol0)
        if spec[SPEC.item_bins]:
            total += _sgd(B, bin_row, 0, g * c, lr, T, T.coff[BINS])
        if ud >= 0:
            total += _sgd(D, ud, 0, g, lr, T, T.coff[UDAYS])
            if spec[SPEC.scale]:
                total += _sgd(D, ud, 1, g * bi, lr, T, T.coff[UDAYS])
        if impl and ny > 0:
            for f in range(k):
                rate = lr * T.lr_scale[yc0 + f]
                l2 = T.l2s[yc0 + f]
                cen = T.center[yc0 + f]
                a = 1.0 - 2.0 * rate * l2
                delta = rate * (g * norm_u * qi[f] - 2.0 * l2 * cen)
                # penalty of this rating on every y_j: l2 sum_j (y_j - c)^2
                total += l2 * (sq[f] - 2.0 * cen * ssum[f] + ny * cen * cen)
                sq[f] = a * a * sq[f] - 2.0 * a * delta * ssum[f] + ny * delta * delta
                ssum[f] = a * ssum[f] - ny * delta
                Acc[f] = a * Acc[f]
                Dacc[f] = a * Dacc[f] + delta
    if impl and ny > 0:
        for a_ in range(aux[spec[SPEC.nu_ptr] + u0], aux[spec[SPEC.nu_ptr] + u0 + 1]):
            y = aux[spec[SPEC.nu_idx] + a_]
            for f in range(k):
                Y[y, f] = Acc[f] * Y[y, f] - Dacc[f]
    return total


@njit(**CORE, inline="always", fastmath=FAST)
def _sgd(W, r, c, grad, lr, T, col0):
    """``w -= lr lr_scale (grad + 2 l2 (w - center))`` for column ``c`` of row ``r``;
    returns the penalty ``l2 (w - center)^2`` at the value before the step."""
    rate = lr * T.lr_scale[col0 + c]
    l2 = T.l2s[col0 + c]
    w = W[r, c]
    x = w - T.center[col0 + c]
    W[r, c] = w - rate * (grad + 2.0 * l2 * x)
    return l2 * x * x
