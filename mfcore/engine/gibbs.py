r"""Bayesian factorization machine by Gibbs sampling (Freudenthaler, Schmidt-Thieme & Rendle
2011, "Bayesian factorization machines"), over feature groups and relation blocks (Rendle
2013, "Scaling factorization machines to relational data"; the algorithm of myFM).

Model
-----
For rating n with features x_n (see :mod:`.fm_design`; p columns, rank k)::

    y_n = w0 + sum_j x_nj w_j + sum_f [ q_nf^2 - s_nf ] / 2 + eps_n,     eps_n ~ N(0, 1/alpha)
    q_nf = sum_j x_nj v_jf,    s_nf = sum_j x_nj^2 v_jf^2

(the last sum is sum_{j<l} x_nj x_nl <v_j, v_l>). Priors, every column j in group g = g(j)::

    w0 ~ N(0, 1/lambda0)
    w_j ~ N(mu_w[g], 1/lambda_w[g]),           v_jf ~ N(mu_v[g,f], 1/lambda_v[g,f])
    (mu, lambda) ~ NormalGamma: lambda ~ Gamma(a0, b0),  mu | lambda ~ N(mu0, 1/(gamma0 lambda))
    alpha ~ Gamma(a0, b0)

Gamma(a, b) has shape a and RATE b (density ∝ x^(a-1) e^(-b x)). The defaults are myFM's:
its alpha_0 = beta_0 = 1 mean Gamma(alpha_0/2, beta_0/2), so a0 = b0 = 1/2; gamma0 = 1,
mu0 = 0 and w0's prior precision lambda0 = reg_0 = 1. Write e_n = y_n - y_hat_n (residual)
and, for a parameter theta, h_n(theta) = d y_hat_n / d theta.

Full conditionals (derivations)
-------------------------------
*One weight (w0, w_j or v_jf).* y_hat_n is affine in any single parameter theta with the
others fixed: y_hat_n = g_n + theta h_n, with h_n not depending on theta (the FM is
multilinear, and the x_nj^2 v_jf^2 term cancels the square of v_jf in q_nf^2). So
y_n - g_n = e_n + theta h_n, and the log joint as a function of theta is::

    -alpha/2 sum_n (e_n + theta_old h_n - theta h_n)^2 - lambda_theta/2 (theta - mu_theta)^2

a quadratic in theta: Normal with

    precision P = alpha sum_n h_n^2 + lambda_theta
    mean        = (alpha sum_n (theta_old h_n + e_n) h_n + lambda_theta mu_theta) / P

where e_n is the residual at theta_old. The h's:

    w0:    h_n = 1                     (lambda_theta = lambda0, mu_theta = 0)
    w_j:   h_n = x_nj
    v_jf:  h_n = x_nj (q_nf - x_nj v_jf)

After a draw theta_new, y_hat_n moves by h_n (theta_new - theta_old): e_n -= h_n delta, and
for v_jf also q_nf += x_nj delta. With e and q cached this costs O(nnz of column j), so a
sweep costs O(nnz k).

*Relation blocks.* Let rating n use row r = r(n) of block B (x_{r l} its entries), and for
factor f split q_nf = c_n + qB_r with qB_r = sum_l x_rl v_lf (the block's part, shared by
all ratings of row r) and c_n the rest (X and the other blocks, fixed while block B is
sampled). For a column l of B, h_n = x_rl (qB_r - x_rl v_lf + c_n) = x_rl (hB_r + c_n), so
with the per-row aggregates over the ratings of row r (cardinality |r|)

    C_r = sum c_n,   CS_r = sum c_n^2,   E_r = sum e_n,   EQ_r = sum e_n c_n

    sum_n h_n^2   = sum_r x_rl^2 (|r| hB_r^2 + 2 hB_r C_r + CS_r)
    sum_n h_n e_n = sum_r x_rl (hB_r E_r + EQ_r)

and after a draw (delta = v_new - v_old): E_r -= x_rl delta (|r| hB_r + C_r),
EQ_r -= x_rl delta (hB_r C_r + CS_r), qB_r += x_rl delta, qSB_r += x_rl^2 (v_new^2 - v_old^2)
(C, CS do not move). So a column costs O(nnz of the block's column), and per factor and
block one pass over the ratings builds the aggregates and one writes the block's change
back: e_n -= c_n dqB + (qB_new^2 - qB_old^2)/2 - (qSB_new - qSB_old)/2, q_n += dqB. A sweep
costs O(k (N * blocks + nnz(X) + nnz(B))), never O(N |N(u)| k). The linear weights of a
block use h_n = x_rl: sum h^2 = sum_r x_rl^2 |r| (constant), sum h e = sum_r x_rl E_r,
E_r -= x_rl delta |r|, and the ratings get e_n -= (change of sum_l x_rl w_l).

*Hyper-parameters of group g* (m_g columns, for w or for one factor f of V; t_j the
weights of the group). The prior Normal-Gamma times the m_g Normal likelihoods::

    lambda^(a0-1) e^(-b0 lambda) (gamma0 lambda)^(1/2) e^(-gamma0 lambda (mu-mu0)^2/2)
        prod_j lambda^(1/2) e^(-lambda (t_j - mu)^2/2)

    lambda | mu, t ~ Gamma(a0 + (m_g + 1)/2,  b0 + (gamma0 (mu - mu0)^2 + sum_j (t_j - mu)^2)/2)
    mu | lambda, t ~ N( (gamma0 mu0 + sum_j t_j) / (gamma0 + m_g),  1 / (lambda (gamma0 + m_g)) )

(myFM drops the "+1" and the gamma0 (mu - mu0)^2 term from lambda's conditional, i.e. it
treats mu's prior as not scaled by lambda; libFM keeps them. With hundreds of columns per
group the difference is negligible; this module samples the exact conditional above.)

*Noise precision*: alpha^(a0-1) e^(-b0 alpha) prod_n alpha^(1/2) e^(-alpha e_n^2/2) gives

    alpha | rest ~ Gamma(a0 + N/2, b0 + SSE/2),     SSE = sum_n e_n^2

*Held columns.* A group whose design flag ``linear`` (``factored``) is False keeps its
w_j (v_j) at 0: they start at 0 and are never drawn, so the conditionals above hold for
the remaining parameters with those at 0 (a bias-only group, e.g. Koren's b_{i,Bin(t)},
or a group of factors without biases). Their groups' hyper-parameters are still drawn
(from all-zero weights) and never used.

Sweep order (myFM's): alpha, w0, (lambda_w, mu_w), w [X's columns, then each block's],
(lambda_v, mu_v), then for f = 0..k-1: v_.f [X's columns, then each block's]. Every
``refresh_every`` sweeps the residuals and the block rows' per-factor (qB, qSB) are
recomputed from scratch (in between they are only updated incrementally; measured drift
after 50 sweeps on ml-100k: 4e-14). Internally the ratings are kept sorted by their first
X column, so that an X column's ratings are contiguous; only the order of sums changes.

Random numbers are counter-based (:mod:`mfcore.kernels.rng`): every draw is a function of
(seed, sweep, parameter), so the same seed gives bit-identical samples, and a parameter
gets the same numbers whether its column sits in X or in a relation block. Normals come from
Box-Muller (for w and each factor of V, both numbers of a pair are used: columns 2m and
2m+1 share one pair), Gammas from Marsaglia & Tsang's method.
"""
from __future__ import annotations

import math
import time
from collections import namedtuple
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from ..kernels import FAST
from ..kernels.rng import uniform
from .fm_design import FMDesign

__all__ = ["GibbsPriors", "GibbsResult", "GibbsHistory", "Conditional", "fit_gibbs", "predict",
           "gibbs_conditional", "fm_predict"]

# ------------------------------------------------------------------------------ packed design

#: A design as the compiled code sees it. Block rows are numbered globally: row r of block b
#: is ``roff[b] + r``; block columns carry their global column number (p0 + ...).
#:   y (N,) f8 | xptr (N+1,) i8, xidx i4, xval f8: X as CSR | xcptr (p0+1,) i8, xcidx i4 (rating),
#:   xcval f8: X as CSC | xcsq (p0,) f8: sum_n x_nj^2 | brows (nb, N) i4: GLOBAL block row of every
#:   rating | roff (nb+1,) i8, coff (nb+1,) i8: global row / column offsets of the blocks |
#:   bptr (R+1,) i8, bidx i4 (global column), bval f8: all blocks' rows as one CSR |
#:   bcptr (pB+1,) i8, bcidx i4 (global row), bcval f8: block columns as CSC (column j - p0) |
#:   card (R,) f8: ratings per block row | bcsq (pB,) f8: sum_r x_rl^2 card_r | groups (p,) i4 |
#:   wfree, vfree (p,) u1: 1 where the column's w (its v) is sampled, 0 where it is held at 0
Packed = namedtuple("Packed", "y xptr xidx xval xcptr xcidx xcval xcsq brows roff coff bptr bidx bval "
                              "bcptr bcidx bcval card bcsq groups wfree vfree")

#: The sampler state: weights, hyper-parameters (first 8 fields), then the caches: e (N,)
#: residuals, q (N,) q_nf of the current factor, RC (R, 8) the block rows' cache while a
#: factor is sampled, QF (k, R, 2) every block row's (qB, qSB) per factor, kept from the
#: factor's last visit (V does not move in between; recomputed at every refresh).
State = namedtuple("State", "w0 w Vt alpha mu_w lam_w mu_v lam_v e q RC QF")

# columns of the per-block-row cache RC (R, 8): one cache line per block row
QB, QS, QB_OLD, QS_OLD, AC, ACS, AE, AEQ = range(8)


def _transpose(indptr, indices, data, n_cols):
    """CSC (as indptr over columns, row indices, values) of a CSR; rows stay sorted."""
    n_rows = len(indptr) - 1
    rows = np.repeat(np.arange(n_rows, dtype=np.int32), np.diff(indptr))
    order = np.argsort(indices, kind="stable")
    cptr = np.zeros(n_cols + 1, np.int64)
    np.cumsum(np.bincount(indices, minlength=n_cols), out=cptr[1:])
    return cptr, np.ascontiguousarray(rows[order]), np.ascontiguousarray(data[order])


def _pack(design: FMDesign, for_fit: bool) -> Packed:
    n, p0 = design.n, design.p0
    y = design.y
    if for_fit and design.X is not None and p0 > 0 and n:
        # The sampler keeps the ratings in its own order: sorted by their first X column, so
        # that sampling an X column (e.g. a day) walks its ratings' e and q contiguously.
        # Only the order of floating-point sums changes.
        X = design.X
        first = np.where(np.diff(X.indptr) > 0, X.indices[np.minimum(X.indptr[:-1], max(X.nnz - 1, 0))], p0)
        order = np.argsort(first, kind="stable")
        design = FMDesign(y[order], X.take_rows(order),
                          tuple(type(b)(b.rows[order], b.table) for b in design.blocks), design.groups,
                          design.linear, design.factored)
        y = design.y
    if design.X is not None:
        xptr, xidx, xval = design.X.indptr, design.X.indices, design.X.data
    else:
        xptr, xidx, xval = np.zeros(n + 1, np.int64), np.zeros(0, np.int32), np.zeros(0)
    nb = len(design.blocks)
    brows = np.zeros((nb, n), np.int32)
    roff = np.zeros(nb + 1, np.int64)
    coff = np.full(nb + 1, p0, np.int64)
    for b, blk in enumerate(design.blocks):
        roff[b + 1] = roff[b] + blk.table.shape[0]
        brows[b] = blk.rows + roff[b]
        coff[b + 1] = coff[b] + blk.width
    if nb:
        nnz_before = np.cumsum([0] + [blk.table.nnz for blk in design.blocks])
        bptr = np.concatenate([np.zeros(1, np.int64)] + [blk.table.indptr[1:] + nnz_before[b]
                                                         for b, blk in enumerate(design.blocks)])
        bidx = np.concatenate([blk.table.indices + np.int32(coff[b]) for b, blk in enumerate(design.blocks)])
        bval = np.concatenate([blk.table.data for blk in design.blocks])
    else:
        bptr, bidx, bval = np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0)
    bidx = bidx.astype(np.int32)
    pB = int(coff[-1] - p0)
    R = int(roff[-1])
    if for_fit:
        xcptr, xcidx, xcval = _transpose(xptr, xidx, xval, p0)
        xcsq = np.bincount(xidx, weights=xval * xval, minlength=p0).astype(np.float64)
        bcptr, bcidx, bcval = _transpose(bptr, (bidx - p0).astype(np.int32), bval, pB)
        card = np.zeros(R)
        for b in range(nb):
            card[roff[b]:roff[b + 1]] = np.bincount(brows[b] - roff[b], minlength=roff[b + 1] - roff[b])
        row_of = np.repeat(np.arange(R), np.diff(bptr))
        bcsq = np.bincount(bidx - p0, weights=bval * bval * card[row_of], minlength=pB).astype(np.float64)
    else:
        xcptr, xcidx, xcval = np.zeros(p0 + 1, np.int64), np.zeros(0, np.int32), np.zeros(0)
        xcsq = np.zeros(p0)
        bcptr, bcidx, bcval = np.zeros(pB + 1, np.int64), np.zeros(0, np.int32), np.zeros(0)
        card, bcsq = np.zeros(R), np.zeros(pB)
    wfree = design.linear[design.groups].astype(np.uint8)
    vfree = design.factored[design.groups].astype(np.uint8)
    return Packed(y, xptr, xidx, xval, xcptr, xcidx, xcval, xcsq, brows, roff, coff, bptr, bidx,
                  bval, bcptr, bcidx, bcval, card, bcsq, design.groups, wfree, vfree)


# --------------------------------------------------------------------------------- random numbers

# draw slots: which parameter a random number belongs to (the counter's second word)
S_ALPHA, S_W0, S_LAMW, S_MUW, S_W, S_LAMV, S_MUV, S_V, S_INIT = range(9)
_TWO_PI = 2.0 * math.pi


@njit(cache=True, inline="always")
def _normal(seed, sweep, slot, idx):
    """A standard normal fixed by (seed, sweep, slot, idx): Box-Muller on two uniforms."""
    u1 = uniform(seed, sweep, slot, 2 * idx)
    u2 = uniform(seed, sweep, slot, 2 * idx + 1)
    return math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(_TWO_PI * u2)


@njit(cache=True, fastmath=FAST)
def _fill_normals(seed, sweep, slot, base, out):
    """out[j] = a standard normal fixed by (seed, sweep, slot, base + j // 2, j % 2): Box-Muller
    on two uniforms gives the pair (j even, j odd) at the cost of one log, one sqrt and one
    sin/cos pair, half of :func:`_normal`'s cost per number."""
    m = out.shape[0]
    for h in range((m + 1) // 2):
        u1 = uniform(seed, sweep, slot, 2 * (base + h))
        u2 = uniform(seed, sweep, slot, 2 * (base + h) + 1)
        r = math.sqrt(-2.0 * math.log(1.0 - u1))
        out[2 * h] = r * math.cos(_TWO_PI * u2)
        if 2 * h + 1 < m:
            out[2 * h + 1] = r * math.sin(_TWO_PI * u2)


@njit(cache=True)
def _gamma(seed, sweep, slot, idx, shape, rate):
    """Gamma(shape, rate) fixed by (seed, sweep, slot, idx): Marsaglia & Tsang (2000), with
    the boost Gamma(a) = Gamma(a + 1) U^(1/a) for a < 1. Candidate t uses counters
    idx * 2^20 + 3t .. + 2 (two for the normal, one for the acceptance uniform)."""
    a = shape
    boost = 1.0
    base = idx * 1048576
    if a < 1.0:
        boost = uniform(seed, sweep, slot, base + 1048575) ** (1.0 / a)
        a += 1.0
    d = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    t = 0
    while True:
        u1 = uniform(seed, sweep, slot, base + 3 * t)
        u2 = uniform(seed, sweep, slot, base + 3 * t + 1)
        x = math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(_TWO_PI * u2)
        u = uniform(seed, sweep, slot, base + 3 * t + 2)
        t += 1
        v = 1.0 + c * x
        if v <= 0.0:
            continue
        v = v * v * v
        if math.log(1.0 - u) < 0.5 * x * x + d - d * v + d * math.log(v):
            return d * v * boost / rate


# ----------------------------------------------------------------------------------- probes
# A probe asks the sweep to record the conditional it is about to draw one parameter from,
# with a snapshot of the state at that moment (the brute-force tests use it).
K_ALPHA, K_W0, K_LAMW, K_MUW, K_W, K_LAMV, K_MUV, K_V = range(8)
_KINDS = {"alpha": K_ALPHA, "w0": K_W0, "lambda_w": K_LAMW, "mu_w": K_MUW, "w": K_W,
          "lambda_v": K_LAMV, "mu_v": K_MUV, "v": K_V}


@njit(cache=True, inline="always")
def _probe_hit(probe, kind, i, f):
    return probe[0] == kind and probe[1] == i and probe[2] == f and probe[3] == 0


@njit(cache=True)
def _probe_record(probe, pout, snap, S, a, b):
    probe[3] = 1
    pout[0] = a
    pout[1] = b
    snap.w0[0] = S.w0[0]
    snap.w[:] = S.w
    snap.Vt[:, :] = S.Vt
    snap.alpha[0] = S.alpha[0]
    snap.mu_w[:] = S.mu_w
    snap.lam_w[:] = S.lam_w
    snap.mu_v[:, :] = S.mu_v
    snap.lam_v[:, :] = S.lam_v


# ------------------------------------------------------------------------------- prediction

@njit(cache=True, fastmath=FAST)
def _predict_into(D, w0, w, V, out, qrow):
    """y_hat for every rating of packed design ``D`` into ``out``, for the FM (w0, w, V (p, k)).
    ``qrow`` (R, k+2) is scratch: per block row its q_f (f < k), sum_l x w_l, and
    sum_f sum_l x^2 v_lf^2 (the s terms of all factors add up, so one number per row)."""
    n = D.y.shape[0]
    k = V.shape[1]
    nb = D.brows.shape[0]
    for gr in range(D.bptr.shape[0] - 1):
        lin = 0.0
        ss = 0.0
        for f in range(k):
            qrow[gr, f] = 0.0
        for t in range(D.bptr[gr], D.bptr[gr + 1]):
            j = D.bidx[t]
            x = D.bval[t]
            lin += x * w[j]
            for f in range(k):
                v = x * V[j, f]
                qrow[gr, f] += v
                ss += v * v
        qrow[gr, k] = lin
        qrow[gr, k + 1] = ss
    q = np.empty(k)
    for i in range(n):
        lin = w0
        ss = 0.0
        for f in range(k):
            q[f] = 0.0
        for t in range(D.xptr[i], D.xptr[i + 1]):
            j = D.xidx[t]
            x = D.xval[t]
            lin += x * w[j]
            for f in range(k):
                v = x * V[j, f]
                q[f] += v
                ss += v * v
        for b in range(nb):
            gr = D.brows[b, i]
            lin += qrow[gr, k]
            ss += qrow[gr, k + 1]
            for f in range(k):
                q[f] += qrow[gr, f]
        acc = 0.0
        for f in range(k):
            acc += q[f] * q[f]
        out[i] = lin + 0.5 * (acc - ss)


def _scratch(D, k):
    return np.empty((int(D.roff[-1]), k + 2)), np.empty((D.groups.shape[0], k))


def fm_predict(design: FMDesign, w0, w, V):
    """y_hat of one FM (w0, w (p,), V (p, k)) on every rating of ``design``."""
    D = _pack(design, for_fit=False)
    V = np.ascontiguousarray(V, np.float64)
    out = np.empty(design.n)
    _predict_into(D, float(w0), np.ascontiguousarray(w, np.float64), V, out, _scratch(D, V.shape[1])[0])
    return out


# ----------------------------------------------------------------------------------- sweep

@njit(cache=True, fastmath=FAST)
def _refresh_e(D, S, qrow, V):
    """e = y - y_hat and the block rows' per-factor (qB, qSB) from scratch (``V``: (p, k) scratch)."""
    k, p = S.Vt.shape
    for f in range(k):
        for j in range(p):
            V[j, f] = S.Vt[f, j]
    _predict_into(D, S.w0[0], S.w, V, S.e, qrow)
    for f in range(k):
        _block_rows(D, S.Vt[f], S.QF[f])
    for i in range(D.y.shape[0]):
        S.e[i] = D.y[i] - S.e[i]


@njit(cache=True)
def _hyper(cf, S, groups, t, mu, lam, cnt, ssum, seed, sweep, f, k, probe, pout, snap, kind_lam, kind_mu):
    """Draw (lambda, mu) of every group for the weights ``t`` (one per column): lambda given
    mu, then mu given lambda (see the module docstring)."""
    a0, b0, gamma0, mu0 = cf[0], cf[1], cf[2], cf[3]
    G = mu.shape[0]
    for g in range(G):
        cnt[g] = 0.0
        ssum[g] = 0.0
    for j in range(t.shape[0]):
        cnt[groups[j]] += 1.0
        ssum[groups[j]] += t[j]
    dev = np.zeros(G)
    for j in range(t.shape[0]):
        d = t[j] - mu[groups[j]]
        dev[groups[j]] += d * d
    for g in range(G):
        dm = mu[g] - mu0
        shape = a0 + 0.5 * (cnt[g] + 1.0)
        rate = b0 + 0.5 * (gamma0 * dm * dm + dev[g])
        if _probe_hit(probe, kind_lam, g, f):
            _probe_record(probe, pout, snap, S, shape, rate)
        idx = g * (k + 1) + f + 1
        lam[g] = _gamma(seed, sweep, S_LAMW if kind_lam == K_LAMW else S_LAMV, idx, shape, rate)
        prec = lam[g] * (gamma0 + cnt[g])
        mean = (gamma0 * mu0 + ssum[g]) / (gamma0 + cnt[g])
        if _probe_hit(probe, kind_mu, g, f):
            _probe_record(probe, pout, snap, S, mean, 1.0 / prec)
        mu[g] = mean + _normal(seed, sweep, S_MUW if kind_mu == K_MUW else S_MUV, idx) / math.sqrt(prec)


@njit(cache=True, fastmath=FAST)
def _sweep(D, S, cf, ci, sweep, probe, pout, snap):
    """One Gibbs sweep over every parameter (order in the module docstring). ``cf`` =
    [a0, b0, gamma0, mu0, lambda0]; ``ci`` = [seed, freeze_alpha, freeze_hyper]."""
    n = D.y.shape[0]
    p = D.groups.shape[0]
    k = S.Vt.shape[0]
    nb = D.brows.shape[0]
    p0 = D.xcptr.shape[0] - 1
    seed = ci[0]
    e = S.e
    G = S.mu_w.shape[0]
    cnt = np.empty(G)
    ssum = np.empty(G)

    # ---- alpha
    if ci[1] == 0:
        sse = 0.0
        for i in range(n):
            sse += e[i] * e[i]
        shape = cf[0] + 0.5 * n
        rate = cf[1] + 0.5 * sse
        if _probe_hit(probe, K_ALPHA, 0, 0):
            _probe_record(probe, pout, snap, S, shape, rate)
        S.alpha[0] = _gamma(seed, sweep, S_ALPHA, 0, shape, rate)
    alpha = S.alpha[0]

    # ---- w0 (h = 1, prior N(0, 1/lambda0))
    es = 0.0
    for i in range(n):
        es += e[i]
    prec = alpha * n + cf[4]
    old = S.w0[0]
    mean = alpha * (es + n * old) / prec
    if _probe_hit(probe, K_W0, 0, 0):
        _probe_record(probe, pout, snap, S, mean, 1.0 / prec)
    new = mean + _normal(seed, sweep, S_W0, 0) / math.sqrt(prec)
    d = new - old
    for i in range(n):
        e[i] -= d
    S.w0[0] = new

    # ---- hyper-parameters of w, then w
    if ci[2] == 0 and p > 0:
        _hyper(cf, S, D.groups, S.w, S.mu_w, S.lam_w, cnt, ssum, seed, sweep, -1, k, probe, pout, snap,
               K_LAMW, K_MUW)
    z = np.empty(p)                                                # this sweep's normals for w
    _fill_normals(seed, sweep, S_W, 0, z)
    for j in range(p0):                                            # X's columns: h = x_nj
        if D.wfree[j] == 0:
            continue
        g = D.groups[j]
        lam, mu = S.lam_w[g], S.mu_w[g]
        old = S.w[j]
        lin = 0.0
        for t in range(D.xcptr[j], D.xcptr[j + 1]):
            lin += D.xcval[t] * e[D.xcidx[t]]
        sq = D.xcsq[j]
        prec = alpha * sq + lam
        mean = (alpha * (lin + old * sq) + lam * mu) / prec
        if _probe_hit(probe, K_W, j, 0):
            _probe_record(probe, pout, snap, S, mean, 1.0 / prec)
        new = mean + z[j] / math.sqrt(prec)
        d = new - old
        if d != 0.0:
            for t in range(D.xcptr[j], D.xcptr[j + 1]):
                e[D.xcidx[t]] -= D.xcval[t] * d
        S.w[j] = new
    RC = S.RC
    for b in range(nb):                                            # block columns: h = x_rl
        r0, r1 = D.roff[b], D.roff[b + 1]
        for gr in range(r0, r1):
            RC[gr, AE] = 0.0
            RC[gr, QB] = 0.0
        for i in range(n):
            RC[D.brows[b, i], AE] += e[i]
        for j in range(D.coff[b], D.coff[b + 1]):
            if D.wfree[j] == 0:
                continue
            g = D.groups[j]
            lam, mu = S.lam_w[g], S.mu_w[g]
            old = S.w[j]
            c = j - p0
            lin = 0.0
            for t in range(D.bcptr[c], D.bcptr[c + 1]):
                lin += D.bcval[t] * RC[D.bcidx[t], AE]
            sq = D.bcsq[c]
            prec = alpha * sq + lam
            mean = (alpha * (lin + old * sq) + lam * mu) / prec
            if _probe_hit(probe, K_W, j, 0):
                _probe_record(probe, pout, snap, S, mean, 1.0 / prec)
            new = mean + z[j] / math.sqrt(prec)
            d = new - old
            for t in range(D.bcptr[c], D.bcptr[c + 1]):
                gr = D.bcidx[t]
                x = D.bcval[t]
                RC[gr, AE] -= x * d * D.card[gr]
                RC[gr, QB] += x * d                                # the row's change of sum_l x w_l
            S.w[j] = new
        for i in range(n):
            e[i] -= RC[D.brows[b, i], QB]

    # ---- hyper-parameters of V (per factor), then V, factor by factor
    if ci[2] == 0 and p > 0:
        for f in range(k):
            _hyper(cf, S, D.groups, S.Vt[f], S.mu_v[:, f], S.lam_v[:, f], cnt, ssum, seed, sweep, f, k,
                   probe, pout, snap, K_LAMV, K_MUV)
    if k == 0:
        return
    # Passes over the ratings are fused: the pass that writes block b's change back into e
    # and q also builds block b+1's aggregates, and the one after the last block also
    # computes q for the next factor (and block 0's aggregates when there is no X).
    agg0 = 0 if (p0 == 0 and nb > 0) else -1
    _pass(D, S, S.Vt[0], S.QF[0], -1, agg0, True)
    for f in range(k):
        vf = S.Vt[f]
        _fill_normals(seed, sweep, S_V, f * ((p + 1) // 2), z)    # the normals for v_.f
        if p0 > 0:
            _sample_x_columns(D, S, f, alpha, z, probe, pout, snap)
            if nb > 0:
                _pass(D, S, vf, S.QF[f], -1, 0, False)
        for b in range(nb):
            _sample_block_columns(D, S, f, b, alpha, z, probe, pout, snap)
            if b + 1 < nb:
                _pass(D, S, vf, S.QF[f], b, b + 1, False)
            else:
                _save_rows(S.RC, S.QF[f])
                if f + 1 < k:
                    _pass(D, S, S.Vt[f + 1], S.QF[f + 1], b, agg0, True)
                else:
                    _pass(D, S, vf, S.QF[f], b, -1, False)
        if nb == 0 and f + 1 < k:
            _pass(D, S, S.Vt[f + 1], S.QF[f + 1], -1, -1, True)


@njit(cache=True)
def _save_rows(RC, QFf):
    for gr in range(RC.shape[0]):
        QFf[gr, 0] = RC[gr, QB]
        QFf[gr, 1] = RC[gr, QS]


@njit(cache=True, fastmath=FAST)
def _block_rows(D, vf, NX):
    """NX[gr] = (qB, qSB) of every block row for the factor column ``vf``."""
    for gr in range(D.bptr.shape[0] - 1):
        a = 0.0
        s2 = 0.0
        for t in range(D.bptr[gr], D.bptr[gr + 1]):
            v = vf[D.bidx[t]]
            x = D.bval[t]
            a += x * v
            s2 += x * x * v * v
        NX[gr, 0] = a
        NX[gr, 1] = s2


@njit(cache=True, fastmath=FAST)
def _pass(D, S, vq, NX, rb, ab, newq):
    """One pass over the ratings, in this order per rating: write block ``rb``'s change
    (RC's qB vs qB_old, qSB vs qSB_old) back into e and q (rb >= 0); with ``newq``,
    recompute q from ``vq`` (X's part) and NX (the blocks' rows, (R, 2)); add the rating to block
    ``ab``'s row aggregates C, CS, E, EQ (ab >= 0, zeroed first). With ``newq`` the block rows
    then take NX as their current and old values (the next factor starts)."""
    n = D.y.shape[0]
    nb = D.brows.shape[0]
    RC, q, e = S.RC, S.q, S.e
    if ab >= 0:
        for gr in range(D.roff[ab], D.roff[ab + 1]):
            RC[gr, AC] = 0.0
            RC[gr, ACS] = 0.0
            RC[gr, AE] = 0.0
            RC[gr, AEQ] = 0.0
            if not newq:
                RC[gr, QB_OLD] = RC[gr, QB]
                RC[gr, QS_OLD] = RC[gr, QS]
    p0 = D.xcptr.shape[0] - 1
    for i in range(n):
        if rb >= 0:
            gr = D.brows[rb, i]
            qo = RC[gr, QB_OLD]
            dq = RC[gr, QB] - qo                                   # c dq + (qn^2 - qo^2)/2 = dq (q + dq/2)
            e[i] -= dq * (q[i] + 0.5 * dq) - 0.5 * (RC[gr, QS] - RC[gr, QS_OLD])
            q[i] += dq
        if newq:                 # (the branches on p0 and nb are loop-invariant: cheap, unlike short loops)
            a = 0.0
            if p0 > 0:
                for t in range(D.xptr[i], D.xptr[i + 1]):
                    a += D.xval[t] * vq[D.xidx[t]]
            if nb == 2:
                a += NX[D.brows[0, i], 0] + NX[D.brows[1, i], 0]
            elif nb == 1:
                a += NX[D.brows[0, i], 0]
            else:
                for b in range(nb):
                    a += NX[D.brows[b, i], 0]
            q[i] = a
        if ab >= 0:
            gr = D.brows[ab, i]
            c = q[i] - (NX[gr, 0] if newq else RC[gr, QB])
            ei = e[i]
            RC[gr, AC] += c
            RC[gr, ACS] += c * c
            RC[gr, AE] += ei
            RC[gr, AEQ] += ei * c
    if newq:
        for gr in range(D.bptr.shape[0] - 1):
            RC[gr, QB] = NX[gr, 0]
            RC[gr, QB_OLD] = NX[gr, 0]
            RC[gr, QS] = NX[gr, 1]
            RC[gr, QS_OLD] = NX[gr, 1]


@njit(cache=True, fastmath=FAST)
def _sample_x_columns(D, S, f, alpha, z, probe, pout, snap):
    """v_jf for X's columns j: h_n = x_nj (q_n - x_nj v_jf) over the column's ratings; ``z``: the
    standard normals of this factor (one per column)."""
    p0 = D.xcptr.shape[0] - 1
    vf, q, e = S.Vt[f], S.q, S.e
    for j in range(p0):
        if D.vfree[j] == 0:
            continue
        g = D.groups[j]
        lam, mu = S.lam_v[g, f], S.mu_v[g, f]
        old = vf[j]
        sq = 0.0
        lin = 0.0
        for t in range(D.xcptr[j], D.xcptr[j + 1]):
            i = D.xcidx[t]
            x = D.xcval[t]
            h = x * (q[i] - x * old)
            sq += h * h
            lin += h * e[i]
        prec = alpha * sq + lam
        mean = (alpha * (lin + old * sq) + lam * mu) / prec
        if _probe_hit(probe, K_V, j, f):
            _probe_record(probe, pout, snap, S, mean, 1.0 / prec)
        new = mean + z[j] / math.sqrt(prec)
        d = new - old
        for t in range(D.xcptr[j], D.xcptr[j + 1]):
            i = D.xcidx[t]
            x = D.xcval[t]
            h = x * (q[i] - x * old)
            q[i] += x * d
            e[i] -= h * d
        vf[j] = new


@njit(cache=True, fastmath=FAST)
def _sample_block_columns(D, S, f, b, alpha, z, probe, pout, snap):
    """v_lf for block ``b``'s columns l, from the row aggregates (module docstring)."""
    p0 = D.xcptr.shape[0] - 1
    vf, RC = S.Vt[f], S.RC
    for j in range(D.coff[b], D.coff[b + 1]):
        if D.vfree[j] == 0:
            continue
        g = D.groups[j]
        lam, mu = S.lam_v[g, f], S.mu_v[g, f]
        old = vf[j]
        cc = j - p0
        sq = 0.0
        lin = 0.0
        for t in range(D.bcptr[cc], D.bcptr[cc + 1]):
            gr = D.bcidx[t]
            x = D.bcval[t]
            hB = RC[gr, QB] - x * old
            C = RC[gr, AC]
            sq += x * x * (D.card[gr] * hB * hB + 2.0 * C * hB + RC[gr, ACS])
            lin += x * (hB * RC[gr, AE] + RC[gr, AEQ])
        prec = alpha * sq + lam
        mean = (alpha * (lin + old * sq) + lam * mu) / prec
        if _probe_hit(probe, K_V, j, f):
            _probe_record(probe, pout, snap, S, mean, 1.0 / prec)
        new = mean + z[j] / math.sqrt(prec)
        d = new - old
        for t in range(D.bcptr[cc], D.bcptr[cc + 1]):
            gr = D.bcidx[t]
            x = D.bcval[t]
            hB = RC[gr, QB] - x * old
            C = RC[gr, AC]
            RC[gr, AE] -= x * d * (D.card[gr] * hB + C)
            RC[gr, AEQ] -= x * d * (hB * C + RC[gr, ACS])
            RC[gr, QB] += x * d
            RC[gr, QS] += x * x * (new * new - old * old)
        vf[j] = new


@njit(cache=True, fastmath=FAST)
def _sse(e):
    s = 0.0
    for i in range(e.shape[0]):
        s += e[i] * e[i]
    return s


# ----------------------------------------------------------------------------------- Python API

@dataclass(frozen=True)
class GibbsPriors:
    """Prior constants (defaults: myFM's). Gamma(a0, b0) is shape a0, rate b0, the prior of
    alpha and of every lambda (myFM's alpha_0 = beta_0 = 1 mean a0 = b0 = 1/2); mu ~
    N(mu0, 1/(gamma0 lambda)); w0 ~ N(0, 1/lambda0) (myFM's reg_0 = 1). ``init_std``: the
    initial w0, w, V are N(0, init_std^2) (myFM's 0.1)."""

    a0: float = 0.5
    b0: float = 0.5
    gamma0: float = 1.0
    mu0: float = 0.0
    lambda0: float = 1.0
    init_std: float = 0.1


@dataclass
class GibbsHistory:
    """Per sweep: ``train_rmse`` (of the current sample, from the cached residuals),
    ``alpha`` (the sample), ``seconds`` (wall time of the sweep, validation excluded),
    ``val_rmse``/``val_mse`` (of the running average of validation predictions over the
    sweeps since burn-in; NaN before and without a validation design)."""

    train_rmse: list = field(default_factory=list)
    alpha: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    val_rmse: list = field(default_factory=list)
    val_mse: list = field(default_factory=list)


@dataclass
class GibbsResult:
    """The kept samples: ``w0`` (m,), ``w`` (m, p), ``V`` (m, p, k), ``alpha`` (m,), the
    ``sweeps`` they come from (m,), the last hyper-parameters (``hyper``: mu_w, lambda_w (G,),
    mu_v, lambda_v (G, k)), the ``history``, and the design's column signature (p0, block
    widths, groups) that prediction checks. ``val_pred``: the running-average validation
    prediction (when fitted with one)."""

    w0: np.ndarray
    w: np.ndarray
    V: np.ndarray
    alpha: np.ndarray
    sweeps: np.ndarray
    hyper: dict
    history: GibbsHistory
    rank: int
    seed: int
    p0: int
    widths: list
    groups: np.ndarray
    val_pred: np.ndarray | None = None

    @property
    def n_kept(self):
        return len(self.w0)


@dataclass
class Conditional:
    """The full conditional of one parameter as the sampler computed it: Normal (mean,
    var) for w0/w/v/mu_*, Gamma (shape, rate; mean = shape/rate, var = shape/rate^2) for
    alpha/lambda_*; ``state``: the parameters at that moment (w0, w, V (p, k), alpha, mu_w,
    lambda_w, mu_v, lambda_v), the point at which the conditional holds."""

    family: str
    a: float
    b: float
    state: dict

    @property
    def mean(self):
        return self.a / self.b if self.family == "gamma" else self.a

    @property
    def var(self):
        return self.a / self.b ** 2 if self.family == "gamma" else self.b


def _init_normals(seed, count, base):
    return _init_normals_nb(np.int64(seed), count, base)


@njit(cache=True)
def _init_normals_nb(seed, count, base):
    out = np.empty(count)
    for i in range(count):
        out[i] = _normal(seed, -1, S_INIT, base + i)
    return out


def _setup(design, rank, seed, priors, fixed_alpha, fixed_hyper):
    if not isinstance(design, FMDesign):
        raise TypeError("design must be an FMDesign")
    rank = int(rank)
    if rank < 0:
        raise ValueError("rank must be >= 0")
    seed = int(seed)
    if not 0 <= seed < 2 ** 63:
        raise ValueError("seed must be a non-negative 63-bit int")
    D = _pack(design, for_fit=True)
    n, p, G = design.n, design.p, design.n_groups
    R = int(D.roff[-1])
    w0 = _init_normals(seed, 1, 0) * priors.init_std
    w = _init_normals(seed, p, 1) * priors.init_std * D.wfree
    Vt = (_init_normals(seed, rank * p, 1 + p) * priors.init_std).reshape(rank, p) * D.vfree
    S = State(w0, w, Vt, np.ones(1), np.zeros(G), np.full(G, 1e-5), np.zeros((G, rank)),
              np.full((G, rank), 1e-5), np.empty(n), np.zeros(n), np.zeros((R, 8)), np.zeros((rank, R, 2)))
    if fixed_alpha is not None:
        S.alpha[0] = float(fixed_alpha)
    if fixed_hyper is not None:
        unknown = set(fixed_hyper) - {"mu_w", "lambda_w", "mu_v", "lambda_v"}
        if unknown:
            raise ValueError(f"fixed_hyper: unknown names {sorted(unknown)}")
        for name, arr, default in (("mu_w", S.mu_w, priors.mu0), ("lambda_w", S.lam_w, 1.0),
                                   ("mu_v", S.mu_v, priors.mu0), ("lambda_v", S.lam_v, 1.0)):
            arr[...] = np.broadcast_to(np.asarray(fixed_hyper.get(name, default), np.float64), arr.shape)
    cf = np.array([priors.a0, priors.b0, priors.gamma0, priors.mu0, priors.lambda0], np.float64)
    ci = np.array([seed, fixed_alpha is not None, fixed_hyper is not None], np.int64)
    scratch = _scratch(D, rank)
    _refresh_e(D, S, *scratch)
    return D, S, cf, ci, scratch


def _no_probe(S):
    return np.array([-1, 0, 0, 0], np.int64), np.zeros(2), State(
        *(np.empty_like(a) for a in S[:8]), np.empty(0), np.empty(0), np.empty((0, 8)), np.empty((0, 0, 2)))


def fit_gibbs(design: FMDesign, rank: int, n_iter: int, burn_in: int = 0, seed: int = 0, n_kept=None,
              callback=None, validation: FMDesign | None = None, priors: GibbsPriors = GibbsPriors(),
              fixed_alpha: float | None = None, fixed_hyper: dict | None = None,
              refresh_every: int = 10) -> GibbsResult:
    """Run ``n_iter`` Gibbs sweeps of a rank-``rank`` Bayesian FM on ``design``.

    Samples of sweeps ``burn_in .. n_iter-1`` are post burn-in; ``n_kept`` of them are kept
    (None: all; else evenly spaced, always including the last) for :func:`predict`.
    ``validation``: a design with the same columns; after burn-in, every sweep adds the
    current sample's prediction to a running average whose RMSE/MSE go to the history
    (myFM's callback would compute the same). ``callback(sweep, info)`` is called after
    every sweep with ``info`` a dict (train_rmse, alpha, seconds, val_rmse, w0, w, Vt (k, p):
    live views, do not modify); returning True stops the run.
    ``fixed_alpha``: hold the noise precision at this value instead of sampling it;
    ``fixed_hyper``: dict of mu_w, lambda_w (G,), mu_v, lambda_v (G, k) (scalars broadcast;
    a missing mu is mu0, a missing lambda 1) held fixed instead of sampled.
    ``refresh_every``: recompute the residuals (and block-row caches) from scratch every that
    many sweeps (between refreshes they drift by ~1e-14). Same seed -> bit-identical samples.
    """
    n_iter, burn_in, refresh_every = int(n_iter), int(burn_in), int(refresh_every)
    if n_iter < 1 or not 0 <= burn_in < n_iter:
        raise ValueError("need n_iter >= 1 and 0 <= burn_in < n_iter")
    if refresh_every < 1:
        raise ValueError("refresh_every must be >= 1")
    m = n_iter - burn_in
    n_kept = m if n_kept is None else int(n_kept)
    if not 1 <= n_kept <= m:
        raise ValueError(f"n_kept must be in 1 .. n_iter - burn_in ({m})")
    keep = np.unique(n_iter - 1 - np.floor(np.arange(n_kept) * (m / n_kept)).astype(np.int64))
    if validation is not None and not design.same_columns(validation):
        raise ValueError("the validation design must have the training design's columns")

    D, S, cf, ci, scratch = _setup(design, rank, seed, priors, fixed_alpha, fixed_hyper)
    probe, pout, snap = _no_probe(S)
    p, k = design.p, int(rank)
    w0s, ws = np.empty(len(keep)), np.empty((len(keep), p))
    Vs, alphas = np.empty((len(keep), p, k)), np.empty(len(keep))
    hist = GibbsHistory()
    if validation is not None:
        Dv = _pack(validation, for_fit=False)
        vscratch = _scratch(Dv, k)
        vcur, vsum = np.empty(validation.n), np.zeros(validation.n)
        n_avg = 0
    slot = 0
    for it in range(n_iter):
        t0 = time.perf_counter()
        if it and it % refresh_every == 0:
            _refresh_e(D, S, *scratch)
        _sweep(D, S, cf, ci, it, probe, pout, snap)
        train_rmse = math.sqrt(_sse(S.e) / max(design.n, 1))
        seconds = time.perf_counter() - t0
        if slot < len(keep) and keep[slot] == it:
            w0s[slot], ws[slot], Vs[slot], alphas[slot] = S.w0[0], S.w, S.Vt.T, S.alpha[0]
            slot += 1
        val_rmse = val_mse = float("nan")
        if validation is not None and it >= burn_in:
            _predict_into(Dv, S.w0[0], S.w, np.ascontiguousarray(S.Vt.T), vcur, vscratch[0])
            vsum += vcur
            n_avg += 1
            val_mse = float(np.mean((vsum / n_avg - validation.y) ** 2))
            val_rmse = math.sqrt(val_mse)
        hist.train_rmse.append(train_rmse)
        hist.alpha.append(float(S.alpha[0]))
        hist.seconds.append(seconds)
        hist.val_rmse.append(val_rmse)
        hist.val_mse.append(val_mse)
        if callback is not None and callback(it, {"train_rmse": train_rmse, "alpha": float(S.alpha[0]),
                                                  "seconds": seconds, "val_rmse": val_rmse,
                                                  "w0": S.w0[0], "w": S.w, "Vt": S.Vt}):
            break
    w0s, ws, Vs, alphas, keep = w0s[:slot], ws[:slot], Vs[:slot], alphas[:slot], keep[:slot]
    hyper = {"mu_w": S.mu_w.copy(), "lambda_w": S.lam_w.copy(), "mu_v": S.mu_v.copy(),
             "lambda_v": S.lam_v.copy()}
    return GibbsResult(w0s, ws, Vs, alphas, keep, hyper, hist, k, int(seed), design.p0,
                       [b.width for b in design.blocks], design.groups.copy(),
                       None if validation is None or n_avg == 0 else vsum / n_avg)


def predict(result: GibbsResult, design: FMDesign, return_std: bool = False):
    """Posterior predictive mean of y on every rating of ``design`` (same columns as the
    training design): the average of y_hat over the kept samples. With ``return_std``
    also the posterior predictive standard deviation of a NEW observation y,
    sqrt(Var_s[y_hat_s] + mean_s[1/alpha_s]): the spread of y_hat over the kept samples
    (parameter uncertainty) plus the noise variance 1/alpha averaged over the samples."""
    if (design.p0 != result.p0 or [b.width for b in design.blocks] != list(result.widths)
            or not np.array_equal(design.groups, result.groups)):
        raise ValueError("the design's columns differ from the training design's")
    if result.n_kept == 0:
        raise ValueError("no kept samples")
    D = _pack(design, for_fit=False)
    scratch = _scratch(D, result.rank)

    def sample_into(s, out):
        _predict_into(D, result.w0[s], result.w[s], result.V[s], out, scratch[0])
    return predictive(design.n, result.n_kept, sample_into, result.alpha, return_std)


def predictive(n: int, n_samples: int, sample_into, alpha, return_std: bool = False):
    """Posterior predictive mean over ``n_samples`` kept samples, ``sample_into(s, out)``
    writing sample s's y_hat (float64, (n,)) into ``out``; with ``return_std`` also the
    predictive standard deviation sqrt(Var_s[y_hat_s] + mean_s[1/alpha_s]) of a new
    observation (``alpha`` (n_samples,) the noise precisions). The one averaging loop of
    the sampler's results, in memory (:func:`predict`) and loaded from a file
    (:class:`mfcore.engine.mcmc.Posterior`)."""
    cur = np.empty(n)
    mean = np.zeros(n)
    m2 = np.zeros(n) if return_std else None
    for s in range(n_samples):
        sample_into(s, cur)
        mean += cur
        if return_std:
            m2 += cur * cur
    mean /= n_samples
    if not return_std:
        return mean
    noise = float(np.mean(1.0 / np.asarray(alpha, np.float64)))
    return mean, np.sqrt(np.maximum(m2 / n_samples - mean * mean, 0.0) + noise)


def gibbs_conditional(design: FMDesign, rank: int, param, seed: int = 0, sweep: int = 0,
                      priors: GibbsPriors = GibbsPriors(), fixed_alpha=None, fixed_hyper=None,
                      refresh_every: int = 10) -> Conditional:
    """The full conditional the sampler draws ``param`` from in sweep ``sweep`` (after
    ``sweep`` complete sweeps from the seeded start), computed by the sampler's own code
    (cached residuals, q's and block aggregates at that moment), with the state it holds at.
    ``param``: ("alpha",), ("w0",), ("w", j), ("v", j, f), ("lambda_w", g), ("mu_w", g),
    ("lambda_v", g, f) or ("mu_v", g, f)."""
    kind = _KINDS[param[0]]
    idx = int(param[1]) if len(param) > 1 else 0
    f = int(param[2]) if len(param) > 2 else (-1 if kind in (K_LAMW, K_MUW) else 0)
    D, S, cf, ci, scratch = _setup(design, rank, seed, priors, fixed_alpha, fixed_hyper)
    _, pout, snap = _no_probe(S)
    none = np.array([-1, 0, 0, 0], np.int64)
    for it in range(sweep):
        if it and it % refresh_every == 0:
            _refresh_e(D, S, *scratch)
        _sweep(D, S, cf, ci, it, none, pout, snap)
    if sweep and sweep % refresh_every == 0:
        _refresh_e(D, S, *scratch)
    probe = np.array([kind, idx, f, 0], np.int64)
    _sweep(D, S, cf, ci, sweep, probe, pout, snap)
    if probe[3] != 1:
        raise ValueError(f"the sampler never drew {param} (frozen, or out of range)")
    state = {"w0": float(snap.w0[0]), "w": snap.w.copy(), "V": snap.Vt.T.copy(),
             "alpha": float(snap.alpha[0]), "mu_w": snap.mu_w.copy(), "lambda_w": snap.lam_w.copy(),
             "mu_v": snap.mu_v.copy(), "lambda_v": snap.lam_v.copy()}
    family = "gamma" if kind in (K_ALPHA, K_LAMW, K_LAMV) else "normal"
    return Conditional(family, float(pout[0]), float(pout[1]), state)
