"""Fused batched Adam (``adam`` and ``sparse-adam``) for models whose rating reads only its
user's row and its item's row (``mf``, ``mfb``, ``mfbs``), over *packed rows*.

The general batch loop (:mod:`mfcore.engine.loop`) is right for every model but pays for
its generality: row gradients go through slots, and the Adam update of a row of
``cols`` columns is a loop whose length LLVM does not know. For ``mfb`` with k = 10
(11 columns) that loop never reaches its vector body, so every Adam step of a row is
eleven scalar square roots and divisions: two thirds of an epoch.

This path trains on a working copy of the user and item tables made at the start of each
epoch and written back at its end (:func:`pack`, :func:`unpack`), in which a row's
weights, summed gradient and Adam moments sit side by side, each block padded to a
multiple of 16 columns (:mod:`mfcore.kernels.packed_layout`). The Adam step of a row is
then one loop over a padded block, which LLVM vectorises without a scalar remainder, over
a few adjacent cache lines; the touched rows are found without the general path's slots.
On ``mfb``, 800k ratings, batch 64, it halves an epoch (``benchmarks/test_bench_mf.py``).

The numbers are those of the general path: the same records in the same batches, the
gradients in the same order (Keras' per-occurrence second moment for ``adam``, the square
of the summed gradient for ``sparse-adam`` and for ``adam`` with ``keras_moments=False``;
per-sample L2; the lazy catch-up of Keras' ``adam``), the same arithmetic in float64;
in float32 each occurrence's gradient is computed in float32 before it is added (the
general path rounds it from float64), which moves results by float32 rounding. A test
holds the two paths together batch by batch.

A kernel family opts in with ``packed_forward_backward`` (see
:func:`mfcore.kernels.dispatch.has_fused_adam`): for records ``start .. start+n-1`` it adds
each rating's gradients into the ``g`` (and ``g2``) blocks of the two packed rows.
"""
from __future__ import annotations

import math
from collections import namedtuple

import numpy as np
from numba import njit

from ..kernels import CORE, FAST, dispatch
from ..kernels.packed_layout import ALIGN, block_count, block_offsets, padded_width
from ..registry import ADAM
from .loop import STATUS_NONFINITE, STATUS_OK
from .optim import adam_alpha, catch_up_coefficients
from .samples import ITEM, USER
from .tables import view

__all__ = ["Packed", "packed_table", "packed_bytes", "settings", "pack", "unpack",
           "adam_batches"]

#: one table in the packed layout: ``A`` (rows, blocks * width) the packed rows;
#: ``mark`` (rows,) the step that last touched each row; ``touched`` (batch size,) the rows
#: the current step touched; ``gid``: the table's first global row (Keras' Adam keeps its
#: last-update step per global row)
Packed = namedtuple("Packed", "A mark touched gid")


def _aligned_zeros(shape, dtype, align=64):
    """Zeros whose first element sits on an ``align``-byte boundary (a cache line), so
    that every 16-lane block of a float32 packed row is one cache line."""
    n = int(np.prod(shape))
    itemsize = np.dtype(dtype).itemsize
    raw = np.zeros(n + align // itemsize, dtype)
    skip = (-raw.ctypes.data % align) // itemsize
    return raw[skip:skip + n].reshape(shape)


def packed_table(tables, t_idx, batch_size, occurrences, per_sample) -> Packed:
    """An empty :class:`Packed` for table ``t_idx`` of a :class:`ParameterTables`."""
    a = tables.arena
    rows, cols = int(a.rows[t_idx]), int(a.cols[t_idx])
    shape = (rows, padded_width.py_func(cols) * block_count.py_func(occurrences, per_sample))
    return Packed(_aligned_zeros(shape, a.W.dtype), np.full(rows, -1, np.int64),
                  np.zeros(max(1, batch_size), np.int64), int(a.gid[t_idx]))


def packed_bytes(rows, cols, batch_size, occurrences, per_sample, itemsize=4) -> int:
    """Memory of one :func:`packed_table` (the memory estimate's share)."""
    width = padded_width.py_func(int(cols)) * block_count.py_func(occurrences, per_sample)
    return (int(rows) * (width * itemsize + 8)
            + 8 * int(batch_size) + 64)


def settings(table: Packed, occurrences, per_sample) -> tuple:
    """The ``settings`` of :func:`adam_batches` for tables packed like ``table``."""
    width = table.A.shape[1] // block_count.py_func(occurrences, per_sample)
    return bool(occurrences), bool(per_sample), width == ALIGN


@njit(**CORE)
def pack(T, Mo, Vo, t_idx, A, settings):
    """Copy table ``t_idx``'s weights and moments (arena-shaped ``T.W``, ``Mo``, ``Vo``)
    into the packed rows ``A`` (``settings``: see :func:`adam_batches`), gradients
    zeroed, and with per-sample L2 each column's coefficient and centre."""
    occurrences, per_sample, _ = settings
    W2, M2, V2 = view(T.W, T, t_idx), view(Mo, T, t_idx), view(Vo, T, t_idx)
    rows, cols = W2.shape
    g, m, v, _, l2, center = block_offsets(padded_width(cols), occurrences, per_sample)
    c0 = T.coff[t_idx]
    A[:] = 0.0
    for r in range(rows):
        a = A[r]
        for c in range(np.uint64(cols)):
            a[c] = W2[r, c]
            a[m + c] = M2[r, c]
            a[v + c] = V2[r, c]
            if per_sample:
                a[l2 + c] = T.l2s[c0 + c]
                a[center + c] = T.center[c0 + c]


@njit(**CORE)
def unpack(A, T, Mo, Vo, t_idx):
    """Write the packed rows ``A`` back into table ``t_idx``'s weights and moments."""
    W2, M2, V2 = view(T.W, T, t_idx), view(Mo, T, t_idx), view(Vo, T, t_idx)
    rows, cols = W2.shape
    _, m, v, _, _, _ = block_offsets(padded_width(cols), False, False)
    for r in range(rows):
        a = A[r]
        for c in range(np.uint64(cols)):
            W2[r, c] = a[c]
            M2[r, c] = a[m + c]
            V2[r, c] = a[v + c]


@njit(**CORE, inline="always")
def _touch(Pk, X, col, start, n, t):
    """Record the distinct rows (column ``col`` of records ``start .. start+n-1``) of step
    ``t`` in ``Pk.touched``, in order of first occurrence; returns how many."""
    count = 0
    for j in range(start, start + n):
        r = X[j, col]
        if Pk.mark[r] != t:
            Pk.mark[r] = t
            Pk.touched[count] = r
            count += 1
    return count


@njit(**CORE, inline="always", fastmath=FAST)
def _step_rows_of(Pk, count, coef, block, width, occurrences):
    """Adam step of the first ``width`` columns of the ``count`` rows the step touched,
    the second moment from Keras' per-occurrence squares ``g2`` or from the summed
    gradient; zeroes ``g`` and ``g2``."""
    g, m, v, g2, _, _ = block_offsets(block, occurrences, False)
    alpha, b1, b2, eps, c1, c2 = coef[0], coef[1], coef[2], coef[3], coef[4], coef[5]
    for s in range(count):
        a = Pk.A[Pk.touched[s]]
        for c in range(np.uint64(width)):
            gc = a[g + c]
            mc = b1 * a[m + c] + c1 * gc
            vc = b2 * a[v + c] + c2 * (a[g2 + c] if occurrences else gc * gc)
            a[m + c] = mc
            a[v + c] = vc
            a[c] -= alpha * mc / (np.sqrt(vc) + eps)  # float32 sqrt for float32 tables
            a[g + c] = 0.0
            if occurrences:
                a[g2 + c] = 0.0


@njit(**CORE, inline="always", fastmath=FAST)
def _step_rows(Pk, count, coef, width, occurrences, narrow):
    """Adam step of the ``count`` rows the step touched (see :func:`adam_batches` for
    ``narrow``)."""
    if narrow:
        if occurrences:
            _step_rows_of(Pk, count, coef, ALIGN, width, True)
        else:
            _step_rows_of(Pk, count, coef, ALIGN, width, False)
    elif occurrences:
        _step_rows_of(Pk, count, coef, width, width, True)
    else:
        _step_rows_of(Pk, count, coef, width, width, False)


@njit(**CORE, inline="always", fastmath=FAST)
def _catch_up_rows_of(Pk, count, last, t, cfg, tables, block, width):
    _, m, v, _, _, _ = block_offsets(block, False, False)
    eps = cfg.eps
    for s in range(count):
        r = Pk.touched[s]
        gid = Pk.gid + r
        k = t - last[gid]
        if k <= 0:
            continue
        d0, d1, b1k, b2k = catch_up_coefficients(last[gid], k, cfg.t_base, tables, cfg.b1,
                                                 cfg.b2)
        a = Pk.A[r]
        for c in range(np.uint64(width)):
            mc = a[m + c]
            inv = 1.0 / (math.sqrt(a[v + c]) + eps)
            a[c] -= mc * inv * (d0 - eps * inv * d1)
            a[m + c] = mc * b1k
            a[v + c] = a[v + c] * b2k
        last[gid] = t


@njit(**CORE, inline="always", fastmath=FAST)
def _catch_up_rows(Pk, count, last, t, cfg, tables, width, narrow):
    """Bring the ``count`` touched rows to step ``t`` (Keras' Adam, lazily: the closed
    form of :func:`mfcore.engine.optim.catch_up_coefficients` for the zero-gradient steps
    a row missed)."""
    if narrow:
        _catch_up_rows_of(Pk, count, last, t, cfg, tables, ALIGN, width)
    else:
        _catch_up_rows_of(Pk, count, last, t, cfg, tables, width, width)


@njit(**CORE, fastmath=FAST)
def adam_batches(fam, P, S, PU, PI, O, cfg, settings, b_first, b_last, ws):
    """Train batches ``b_first .. b_last-1`` of the epoch whose records, in epoch order, are
    ``S``, on the packed user and item tables ``PU`` and ``PI``, with Adam (``cfg.opt``:
    Keras' ``adam``, lazily caught up, or ``sparse-adam``). ``settings = (occurrences,
    per_sample, narrow)``: Keras' per-occurrence second moment; per-sample L2 on; the
    blocks are one ``ALIGN`` wide (tables of at most 16 columns, e.g. ``mfb`` with
    k < 16). ``narrow`` selects a copy of the loops in which the blocks' offsets are
    constants, so that LLVM's vector code needs no run-time test that the blocks do not
    overlap; it comes from Python (LLVM must not learn the width itself: a constant trip
    count of 16 gets unrolled into scalar code, since Numba runs no SLP vectoriser).
    ``O.step[0]``
    is the global step count (advanced), ``O.coef`` the step's constants, ``O.last`` and
    ``O.tables`` Keras' lazy catch-up state. Returns what
    :func:`mfcore.engine.loop.run_batches` returns.

    Every function this loop calls is inlined into it: with ``_step_rows`` compiled on its
    own, the numbers of a process that compiled the loop differed (in the 9th digit) from
    those of a process that loaded it from Numba's disk cache; a test runs both."""
    occurrences, per_sample, narrow = settings
    X = S.X
    n_total = X.shape[0]
    width = PU.A.shape[1] // block_count(occurrences, per_sample)
    keras = cfg.opt == ADAM
    coef = O.coef
    loss_sum = 0.0
    seen = 0
    for bi in range(b_first, b_last):
        t = O.step[0] + 1
        start = bi * cfg.batch_size
        n = min(cfg.batch_size, n_total - start)
        nu = _touch(PU, X, USER, start, n, t)
        ni = _touch(PI, X, ITEM, start, n, t)
        if keras:
            _catch_up_rows(PU, nu, O.last, t - 1, cfg, O.tables, width, narrow)
            _catch_up_rows(PI, ni, O.last, t - 1, cfg, O.tables, width, narrow)
        sse, pen = dispatch.packed_forward_backward(fam, P, S, start, n, PU, PI, width,
                                                    settings, ws)
        loss = sse / n
        if per_sample:
            loss += pen / n
        if not math.isfinite(loss):
            return loss_sum, seen, STATUS_NONFINITE
        coef[0] = adam_alpha(cfg.lr, cfg.b1, cfg.b2, t)
        coef[1] = cfg.b1
        coef[2] = cfg.b2
        coef[3] = cfg.eps
        coef[4] = 1.0 - cfg.b1
        coef[5] = 1.0 - cfg.b2
        _step_rows(PU, nu, coef, width, occurrences, narrow)
        _step_rows(PI, ni, coef, width, occurrences, narrow)
        if keras:
            for s in range(nu):
                O.last[PU.gid + PU.touched[s]] = t
            for s in range(ni):
                O.last[PI.gid + PI.touched[s]] = t
        O.step[0] = t
        loss_sum += loss * n
        seen += n
    return loss_sum, seen, STATUS_OK
