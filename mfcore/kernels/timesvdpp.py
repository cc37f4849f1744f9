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
rating, ``y <- a * y - delta`` (``a = 1 - 2 lr l2``, one number since the k columns share
lr and l2; ``delta`` a k-vector), so after ``t`` ratings
``y_j = A y_j0 - D`` with ``A = a^t`` and ``D`` composed in O(k) per rating. With the
run's starting sums ``S0 = sum_j y_j0`` and ``Q0 = sum_j y_j0^2`` (one pass over N(u)),
the implicit sum is ``A S0 - |N(u)| D`` and the penalty ``sum_j (y_j - c)^2`` is
``A^2 Q0 - 2 A (D + c) S0 + |N(u)| (D + c)^2``, exactly; every ``y_j`` is written once at
the end of the run: the numbers of per-sample SGD in that order, at O(k) per rating
instead of O(|N(u)| k). Without the implicit term any order works (the grid of blocks).
With the flipped term each rating also sums the ``z_v`` of ``N(i)`` and moves every one of
them, O(|N(i)| k) per rating: they are shared by every item a user rated, so no per-run
shortcut holds, but it is the same loop as the general path's without its per-row
bookkeeping (about 30 times faster on ml-100k).
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
def _implicit_sums(T, P, u, i, su, sz):
    """``su = sum_{j in N(u)} y_j`` and ``sz = sum_{v in N(i)} z_v`` (zeros for a term
    that is off)."""
    spec, aux = P.spec, P.aux_i
    k = spec[SPEC.k]
    for f in range(k):
        su[f] = 0.0
        sz[f] = 0.0
    if spec[SPEC.implicit]:
        Y = view(T.W, T, IMPL)
        q0 = spec[SPEC.nu_idx]
        for a in range(aux[spec[SPEC.nu_ptr] + u], aux[spec[SPEC.nu_ptr] + u + 1]):
            y = aux[q0 + a]
            for f in range(k):
                su[f] += Y[y, f]
    if spec[SPEC.flipped]:
        Z = view(T.W, T, IMPL_USERS)
        q0 = spec[SPEC.ni_idx]
        for a in range(aux[spec[SPEC.ni_ptr] + i], aux[spec[SPEC.ni_ptr] + i + 1]):
            v = aux[q0 + a]
            for f in range(k):
                sz[f] += Z[v, f]


def predict_scratch(k, n_users, n_items, implicit, flipped):
    """Scratch :func:`predict` needs beyond its 4 k values to keep each user's and
    item's implicit sum once computed (a chunk of predictions then costs O(k) per record
    plus O(|N(u)| k) once per user, instead of O(|N(u)| k) per record)."""
    return (k + 1) * ((n_users if implicit else 0) + (n_items if flipped else 0))


@njit(**CORE, inline="always", fastmath=FAST)
def _forward(T, P, S, j, su, sz, pu, qi, have_sums=False):
    """Fill ``pu``, ``qi`` (k each; ``su``/``sz`` receive the implicit sums, or already
    hold them with ``have_sums``) for record ``j``; return ``(y_hat, dev, c, bi, norm_u,
    norm_i)``."""
    spec, aux = P.spec, P.aux_i
    k = spec[SPEC.k]
    U, I = view(T.W, T, USERS), view(T.W, T, ITEMS)
    u = S.X[j, USER]
    i = S.X[j, ITEM]
    cb, ca, cc, cap = _cols(k)
    dev = S.Xf[j, DEV] if spec[SPEC.time] else 0.0
    norm_u = 0.0
    norm_i = 0.0
    if not have_sums:
        _implicit_sums(T, P, u, i, su, sz)
    if spec[SPEC.implicit]:
        lo, hi = aux[spec[SPEC.nu_ptr] + u], aux[spec[SPEC.nu_ptr] + u + 1]
        if hi > lo:
            norm_u = 1.0 / math.sqrt(hi - lo)
    if spec[SPEC.flipped]:
        lo, hi = aux[spec[SPEC.ni_ptr] + i], aux[spec[SPEC.ni_ptr] + i + 1]
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
    spec = P.spec
    k = spec[SPEC.k]
    su, sz, pu, qi = ws[0:k], ws[k:2 * k], ws[2 * k:3 * k], ws[3 * k:4 * k]
    impl, flip = spec[SPEC.implicit] != 0, spec[SPEC.flipped] != 0
    nu = T.rows[USERS] if impl else 0
    ni = T.rows[ITEMS] if flip else 0
    w = k + 1
    cached = (impl or flip) and ws.size >= 4 * k + w * (nu + ni)
    if not cached:
        for b in range(n):
            out[b] = _forward(T, P, S, start + b, su, sz, pu, qi)[0]
        return
    # per user (then per item) k sums and a "computed in this call" flag
    cache = ws[4 * k:4 * k + w * (nu + ni)]
    for r in range(nu + ni):
        cache[r * w + k] = 0.0
    for b in range(n):
        j = start + b
        u = S.X[j, USER]
        i = S.X[j, ITEM]
        cu_ = cache[u * w:u * w + w] if impl else su
        ci_ = cache[(nu + i) * w:(nu + i) * w + w] if flip else sz
        if (impl and cu_[k] == 0.0) or (flip and ci_[k] == 0.0):
            _implicit_sums(T, P, u, i, su, sz)
            if impl:
                for f in range(k):
                    cu_[f] = su[f]
                cu_[k] = 1.0
            if flip:
                for f in range(k):
                    ci_[f] = sz[f]
                ci_[k] = 1.0
        out[b] = _forward(T, P, S, j, cu_[:k], ci_[:k], pu, qi, True)[0]


#: per-column constants of a table in the fused kernel's scratch: the rate
#: ``lr * lr_scale``, ``l2``, ``2 l2`` and the L2 centre
N_CONST = 4


def sgd_scratch(k, user_cols, item_cols):
    """Scratch values :func:`sgd_block` needs (``k`` factors, the widths of the user and
    item rows)."""
    return 6 * k + N_CONST * (user_cols + item_cols + 2 * k + 1 + 2) + 9


@njit(**CORE, inline="always")
def _consts(T, t_idx, cols, lr, out):
    """Fill ``out`` (N_CONST x cols, flattened) with table ``t_idx``'s per-column rate,
    l2, 2 l2 and centre, in ``out``'s dtype; return the four as separate slices.

    Separate slices, indexed by the column alone, matter for speed: an index like
    ``3 * cols + c`` with ``cols`` known only at run time gets Numba's negative-index
    wrap-around test on every access, which kept LLVM from vectorising the update loops:
    ``svdpp``'s SGD epoch on 800k ratings at k=20 went from 115 to 69 ms with this alone."""
    c0 = T.coff[t_idx]
    for c in range(cols):
        l2 = T.l2s[c0 + c]
        out[c] = lr * T.lr_scale[c0 + c]
        out[cols + c] = l2
        out[2 * cols + c] = 2.0 * l2
        out[3 * cols + c] = T.center[c0 + c]
    return out[0:cols], out[cols:2 * cols], out[2 * cols:3 * cols], out[3 * cols:4 * cols]


@njit(**CORE, inline="always", fastmath=FAST)
def _step(row, c, grad, K):
    """``w -= rate (grad + 2 l2 (w - centre))`` for entry ``c`` of ``row`` with the
    constants ``K = (rate, l2, 2 l2, centre)`` (slices from :func:`_consts`, indexed like
    ``row``); returns the penalty ``l2 (w - centre)^2`` at the value before the step."""
    rate, l2, l2x2, cen = K
    w = row[c]
    x = w - cen[c]
    row[c] = w - rate[c] * (grad + l2x2[c] * x)
    return l2[c] * x * x


@njit(**CORE, fastmath=FAST)
def sgd_block(T, P, S, start, end, lr, ws, stride, first):
    """Per-sample SGD over the ``m = end - start`` records from ``start`` (with the
    implicit term: all of one user, see the module docstring), visited in the order
    ``start + (first + stride * j) % m`` (``stride`` coprime with ``m``; 1 and 0: their
    stored order). Per rating: the gradient of
    ``(y_hat - y)^2`` plus per-sample L2 ``l2 |w - center|^2`` of every row the rating
    touches (per-column coefficients, centres and learning-rate multipliers of the
    tables, one set for all k columns of a factor block: see :func:`_sgd_run`), then
    ``w -= lr lr_scale g``. Arithmetic in the tables' dtype (float32 in
    training, float64 under the tests' step-by-step check), the loss sum in float64; the
    factor blocks' penalties are summed per column over up to :data:`PEN_FLUSH` ratings
    first (a horizontal sum per rating cost a tenth of the epoch). Scratch: ``ws`` of
    :func:`sgd_scratch` values."""
    spec, aux = P.spec, P.aux_i
    total = 0.0
    if end <= start:
        return total
    k = spec[SPEC.k]
    # the switches, read once: the loop below then tests locals
    timed = spec[SPEC.time] != 0
    drift = spec[SPEC.drift] != 0
    fdrift = spec[SPEC.factor_drift] != 0
    uday = spec[SPEC.user_day] != 0
    ibins = spec[SPEC.item_bins] != 0
    scaled = spec[SPEC.scale] != 0
    impl = spec[SPEC.implicit] != 0
    flipped = spec[SPEC.flipped] != 0
    n_bins = spec[SPEC.n_bins]
    U, I = view(T.W, T, USERS), view(T.W, T, ITEMS)
    B, D, Y = view(T.W, T, BINS), view(T.W, T, UDAYS), view(T.W, T, IMPL)
    Z = view(T.W, T, IMPL_USERS)
    cu, ci = U.shape[1], I.shape[1]
    pu, Dacc, ssum, penv = ws[0:k], ws[k:2 * k], ws[2 * k:3 * k], ws[3 * k:4 * k]
    zsum, qf = ws[4 * k:5 * k], ws[5 * k:6 * k]
    o = 6 * k
    Ku = _consts(T, USERS, cu, lr, ws[o:o + N_CONST * cu])
    o += N_CONST * cu
    Ki = _consts(T, ITEMS, ci, lr, ws[o:o + N_CONST * ci])
    o += N_CONST * ci
    Ky = _consts(T, IMPL, k if impl else 0, lr, ws[o:o + N_CONST * k])
    o += N_CONST * k
    Kb = _consts(T, BINS, 1 if ibins else 0, lr, ws[o:o + N_CONST])
    o += N_CONST
    Kd = _consts(T, UDAYS, 2 if uday else 0, lr, ws[o:o + 2 * N_CONST])
    o += 2 * N_CONST
    Kz = _consts(T, IMPL_USERS, k if flipped else 0, lr, ws[o:o + N_CONST * k])
    o += N_CONST * k
    sc = ws[o:o + 9]  # scalars in the tables' dtype
    sc[5] = 0.0
    # the implicit term: this call holds one user's run; the starting sums S0 (ssum) and
    # Q0 (sum of squares, all columns) of its y_j; the composed map y <- A y - D is
    # applied at the end (module docstring)
    ny = 0
    u0 = S.X[start, USER]
    lo = hi = 0
    q_sum = 0.0
    for f in range(k):
        Dacc[f] = 0.0
        ssum[f] = 0.0
        penv[f] = 0.0
    if impl:
        lo, hi = aux[spec[SPEC.nu_ptr] + u0], aux[spec[SPEC.nu_ptr] + u0 + 1]
        ny = hi - lo
        q0 = spec[SPEC.nu_idx]
        # two rows per pass of the column loop: its overhead is most of a short row's
        # cost; the squares summed per column (in penv) and across columns once
        a = lo
        while a + 1 < hi:
            y1, y2 = Y[aux[q0 + a]], Y[aux[q0 + a + 1]]
            for f in range(k):
                w1, w2 = y1[f], y2[f]
                ssum[f] += w1 + w2
                penv[f] += w1 * w1 + w2 * w2
            a += 2
        if a < hi:
            y1 = Y[aux[q0 + a]]
            for f in range(k):
                w1 = y1[f]
                ssum[f] += w1
                penv[f] += w1 * w1
        q_sum = _flush(penv, k)
    sc[0] = P.fspec[0]
    sc[1] = 1.0 / math.sqrt(ny) if ny > 0 else 0.0
    sc[2] = 2.0
    sc[3] = 1.0
    sc[4] = ny
    sc[6] = q_sum
    sc[7] = 1.0  # A, the implicit factors' scale; _sgd_run leaves its final value here
    # N(i) (flipped): the item's users, aux[ni_idx + ni_ptr[i] .. ni_idx + ni_ptr[i + 1]]
    ni_at = (aux, spec[SPEC.ni_ptr], spec[SPEC.ni_idx])
    args = ((U, I, B, D, Z), S.X, S.Xf, start, end, stride, first, k, n_bins, ny, ni_at,
            (Ku, Ki, Ky, Kb, Kd, Kz), (pu, Dacc, ssum, penv, zsum, qf), sc)
    if timed or drift or fdrift or uday or ibins or scaled or flipped:
        total = _sgd_run(args, timed, drift, fdrift, uday, ibins, scaled, flipped)
    else:
        # svdpp: a copy of the loop in which LLVM sees the time terms' switches as
        # constants and drops their code (about 10% of the epoch)
        total = _sgd_run(args, False, False, False, False, False, False, False)
    if ny > 0:
        A = sc[7]
        q0 = spec[SPEC.nu_idx]
        a = lo
        while a + 1 < hi:
            y1, y2 = Y[aux[q0 + a]], Y[aux[q0 + a + 1]]
            for f in range(k):
                d = Dacc[f]
                y1[f] = A * y1[f] - d
                y2[f] = A * y2[f] - d
            a += 2
        if a < hi:
            y1 = Y[aux[q0 + a]]
            for f in range(k):
                y1[f] = A * y1[f] - Dacc[f]
    return total


#: ratings whose factor-block penalties :func:`_sgd_run` sums per column (in the tables'
#: dtype, without a horizontal sum per rating) before adding them to its float64 total
PEN_FLUSH = 32


@njit(**CORE, inline="always")
def _flush(penv, k):
    """Sum and zero the per-column penalty sums ``penv`` (float64)."""
    s = 0.0
    for f in range(k):
        s += float(penv[f])
        penv[f] = 0.0
    return s


@njit(**CORE, inline="always", fastmath=FAST)
def _sgd_run(args, timed, drift, fdrift, uday, ibins, scaled, flipped):
    """The rating loop of :func:`sgd_block`; returns the records' loss sum.

    :func:`sgd_block` inlines it twice: with its run-time switches, and with all of them
    False for ``svdpp``. That copy once gave numbers differing in the 10th digit between a
    process that compiled the epoch loop and one that loaded it from Numba's disk cache;
    the cause was the kernel's two compilations (its own, and the copy linked into the
    loop), and :func:`mfcore.engine.sgd.load_kernel` now makes every process run its own.

    The k columns of each factor block (p_u, ap_u, q_i, y_j) share one rate, l2 and
    centre, as the models build them: the loops below take those as scalars (with a
    per-column load each, they ran a third slower). Any other column has its own."""
    rows, X, Xf, start, end, stride, first, k, n_bins, ny, ni_at, consts, vecs, sc = args
    U, I, B, D, Z = rows
    Ku, Ki, Ky, Kb, Kd, Kz = consts
    pu, Dacc, ssum, penv, zsum, qf = vecs
    aux, ni_ptr, ni_idx = ni_at
    mu, norm_u, two, one, nyf, zero, q_sum, A = sc[0], sc[1], sc[2], sc[3], sc[4], sc[5], \
        sc[6], sc[7]
    cb, ca, cc, cap = _cols(k)
    # the factor blocks' constants: rate, l2, 2 l2, centre
    rp, lp, l2p, cp = Ku[0][0], Ku[1][0], Ku[2][0], Ku[3][0]
    rq, lq, l2q, cq = Ki[0][0], Ki[1][0], Ki[2][0], Ki[3][0]
    ra, la, l2a, ca_ = Ku[0][cap], Ku[1][cap], Ku[2][cap], Ku[3][cap]
    # and the two biases'
    rbu, lbu, l2bu, cbu = Ku[0][cb], Ku[1][cb], Ku[2][cb], Ku[3][cb]
    rbi, lbi, l2bi, cbi = Ki[0][k], Ki[1][k], Ki[2][k], Ki[3][k]
    ry = ly = l2y = cy = zero
    if ny > 0:
        ry, ly, l2y, cy = Ky[0][0], Ky[1][0], Ky[2][0], Ky[3][0]
    ay = one - ry * l2y            # each rating's scale of the y_j
    yoff = ry * l2y * cy           # and its shift towards the centre
    rz = lz = l2z = cz = zero
    if flipped:
        rz, lz, l2z, cz = Kz[0][0], Kz[1][0], Kz[2][0], Kz[3][0]
    total = 0.0
    n_pen = 0
    m = end - start
    at = first
    for _ in range(m):
        j = start + at
        at += stride
        if at >= m:
            at -= m
        u = X[j, USER]
        i = X[j, ITEM]
        dev = Xf[j, DEV] if timed else zero
        # forward, with the exact implicit sum A S0 - |N(u)| D
        urow, irow = U[u], I[i]
        aprow = urow[cap:cap + k]
        # q_i as the prediction sees it: the item row, or (flipped) the row plus
        # |N(i)|^-1/2 sum_{v in N(i)} z_v, summed afresh (the z_v move at every rating)
        qv = irow
        zlo = zhi = 0
        norm_i = zero
        if flipped:
            zlo, zhi = aux[ni_ptr + i], aux[ni_ptr + i + 1]
            for f in range(k):
                zsum[f] = zero
            for a in range(zlo, zhi):
                zr = Z[aux[ni_idx + a]]
                for f in range(k):
                    zsum[f] += zr[f]
            if zhi > zlo:
                sc[8] = 1.0 / math.sqrt(zhi - zlo)  # in the tables' dtype
                norm_i = sc[8]
            for f in range(k):
                qf[f] = irow[f] + norm_i * zsum[f]
            qv = qf
        z = mu + urow[cb]
        if fdrift:
            for f in range(k):
                pu[f] = urow[f] + norm_u * (A * ssum[f] - nyf * Dacc[f]) + aprow[f] * dev
        else:
            dot = zero
            for f in range(k):
                v = urow[f] + norm_u * (A * ssum[f] - nyf * Dacc[f])
                pu[f] = v
                dot += qv[f] * v
            z += dot
        if drift:
            z += urow[ca] * dev
        ud = X[j, UD] if uday else -1
        if ud >= 0:
            z += D[ud, 0]
        bin_row = i * n_bins + X[j, BIN] if ibins else 0
        bi = irow[k]
        if ibins:
            bi += B[bin_row, 0]
        c = one
        if scaled:
            c = urow[cc]
            if ud >= 0:
                c += D[ud, 1]
        z += bi * c
        if fdrift:
            for f in range(k):
                z += qv[f] * pu[f]
        e = z - Xf[j, RATING]
        total += float(e) * float(e)
        g = two * e
        # per-sample penalties and updates, each gradient from the values before the
        # step: the loops that need q_i run before the item row's update, which needs
        # p_u (kept in pu); one row per loop, so that each vectorises
        pen = zero
        for f in range(k):
            w = urow[f]
            x = w - cp
            urow[f] = w - rp * (g * qv[f] + l2p * x)
            penv[f] += lp * x * x
        if fdrift:
            for f in range(k):
                w = aprow[f]
                x = w - ca_
                aprow[f] = w - ra * (g * dev * qv[f] + l2a * x)
                penv[f] += la * x * x
        if ny > 0:
            # this rating's penalty on every y_j, l2 sum_j |y_j - c|^2 =
            # l2 (A^2 Q0 - 2 A sum_f (D_f + c) S0_f + |N(u)| sum_f (D_f + c)^2), then
            # y <- ay y - delta composed into (A, D)
            gn = g * norm_u * ry
            lyn, lya = ly * nyf, two * ly * A
            for f in range(k):
                dc = Dacc[f] + cy
                penv[f] += dc * (lyn * dc - lya * ssum[f])
                Dacc[f] = ay * Dacc[f] + gn * qv[f] - yoff
            pen += ly * A * A * q_sum
            A = ay * A
        for f in range(k):
            w = irow[f]
            x = w - cq
            irow[f] = w - rq * (g * pu[f] + l2q * x)
            penv[f] += lq * x * x
        if flipped:
            # every z_v of N(i): gradient g |N(i)|^-1/2 p_u, and its per-sample L2
            gz = g * norm_i
            for a in range(zlo, zhi):
                zr = Z[aux[ni_idx + a]]
                for f in range(k):
                    w = zr[f]
                    x = w - cz
                    zr[f] = w - rz * (gz * pu[f] + l2z * x)
                    penv[f] += lz * x * x
        w = urow[cb]
        x = w - cbu
        urow[cb] = w - rbu * (g + l2bu * x)
        pen += lbu * x * x
        w = irow[k]
        x = w - cbi
        irow[k] = w - rbi * (g * c + l2bi * x)
        pen += lbi * x * x
        if drift:
            pen += _step(urow, ca, g * dev, Ku)
        if scaled:
            pen += _step(urow, cc, g * bi, Ku)
        if ibins:
            pen += _step(B[bin_row], 0, g * c, Kb)
        if ud >= 0:
            pen += _step(D[ud], 0, g, Kd)
            if scaled:
                pen += _step(D[ud], 1, g * bi, Kd)
        total += float(pen)
        n_pen += 1
        if n_pen == PEN_FLUSH:
            total += _flush(penv, k)
            n_pen = 0
    sc[7] = A
    return total + _flush(penv, k)
