"""Fused batched Adam (``adam`` and ``sparse-adam``) for models whose rating reads only its
user's row and its item's row (``mf``, ``mfb``, ``mfbs``), over *packed rows*.

The general batch loop (:mod:`mfcore.engine.loop`) is right for every model but pays for
its generality: row gradients go through slots, and the Adam update of a row of
``cols`` columns is a loop whose length LLVM does not know. For ``mfb`` with k = 10
(11 columns) that loop never reaches its vector body, so every Adam step of a row is
eleven scalar square roots and divisions: two thirds of an epoch.

This path trains on a working copy of the user and item tables made at the start of each
epoch and written back at its end (:func:`pack`, :func:`unpack`): one array whose row
``g`` is global row ``g`` of the model (the users, then the items), in which a row's
weights, summed gradient and Adam moments sit side by side, each block padded to a
multiple of 16 columns (:mod:`mfcore.kernels.packed_layout`). The Adam step of a row is
then one loop over a padded block, which LLVM vectorises without a scalar remainder, over
a few adjacent cache lines; the touched rows are found without the general path's slots.
On ``mfb``, 800k ratings, batch 64, it more than halves an epoch
(``benchmarks/test_bench_mf.py``).

The numbers are those of the general path: the same records in the same batches, the
gradients in the same order (Keras' per-occurrence second moment for ``adam``, the square
of the summed gradient for ``sparse-adam`` and for ``adam`` with ``keras_moments=False``;
per-sample L2; the lazy catch-up of Keras' ``adam``), the same arithmetic in float64;
in float32 each occurrence's gradient is computed in float32 before it is added (the
general path rounds it from float64), which moves results by float32 rounding. A test
holds the two paths together batch by batch.

A kernel family opts in with ``packed_forward_backward`` (see
:func:`mfcore.kernels.dispatch.has_fused_adam`): for records ``start .. start+n-1`` it adds
each rating's gradients into the ``g`` (and ``g2``) blocks of its two packed rows.
"""
from __future__ import annotations

import math
from collections import namedtuple

import numpy as np
from numba import njit

from ..kernels import CORE, FAST, dispatch
from ..kernels.packed_layout import (ALIGN, Mode, block_count, block_offsets, padded_width,
                                     switches)
from ..registry import ADAM
from .loop import STATUS_NONFINITE, STATUS_OK, batch_span
from .optim import adam_coefficients, catch_up_coefficients
from .samples import ITEM, USER
from .tables import view

__all__ = ["Packed", "packed_rows", "packed_bytes", "pack", "unpack", "adam_batches"]

#: the user and item tables in the packed layout: ``A`` (rows of both, blocks * width) the
#: packed rows, row ``g`` holding global row ``g``; ``mark`` (rows,) the step that last
#: touched each row; ``touched`` (2 x batch size,) the rows the current step touched;
#: ``mode``: the layout's :class:`~mfcore.kernels.packed_layout.Mode`; ``first_item``: the
#: packed row of item 0 (the number of users)
Packed = namedtuple("Packed", "A mark touched mode first_item")

USERS, ITEMS = 0, 1


def _aligned_zeros(shape, dtype, align=64):
    """Zeros whose first element sits on an ``align``-byte boundary (a cache line), so
    that every 16-column block of a float32 packed row is one cache line."""
    n = int(np.prod(shape))
    itemsize = np.dtype(dtype).itemsize
    raw = np.zeros(n + align // itemsize, dtype)
    skip = (-raw.ctypes.data % align) // itemsize
    return raw[skip:skip + n].reshape(shape)


def packed_rows(tables, batch_size, occurrences, per_sample) -> Packed:
    """An empty :class:`Packed` for the ``users`` and ``items`` tables (the first two, of
    one width) of a :class:`ParameterTables`."""
    a = tables.arena
    if int(a.cols[USERS]) != int(a.cols[ITEMS]) or int(a.gid[ITEMS]) != int(a.rows[USERS]):
        raise ValueError("packed rows need users and items first, of one width")
    width = padded_width(int(a.cols[USERS]))
    mode = Mode(occurrences, per_sample, width == ALIGN)
    rows = int(a.rows[USERS] + a.rows[ITEMS])
    return Packed(_aligned_zeros((rows, width * mode.blocks), a.W.dtype),
                  np.full(rows, -1, np.int64), np.zeros(2 * max(1, batch_size), np.int64),
                  mode, int(a.gid[ITEMS]))


def packed_bytes(rows, cols, batch_size, occurrences, per_sample, itemsize=4) -> int:
    """Memory of :func:`packed_rows` for tables of ``rows`` rows in all and ``cols``
    columns (the memory estimate's share)."""
    width = padded_width(cols) * Mode(occurrences, per_sample, False).blocks
    return int(rows) * (width * itemsize + 8) + 16 * int(batch_size) + 64


@njit(**CORE)
def pack(T, Mo, Vo, PK):
    """Copy the user and item tables' weights and moments (arena-shaped ``T.W``, ``Mo``,
    ``Vo``) into the packed rows, gradients zeroed, and with per-sample L2 each column's
    coefficient and centre."""
    _, per_sample, _ = switches(PK.mode)
    A = PK.A
    A[:] = 0.0
    _, _, m, v, _, l2, center = block_offsets(PK.mode, A.shape[1] // block_count(PK.mode))
    for t_idx in (USERS, ITEMS):
        W2, M2, V2 = view(T.W, T, t_idx), view(Mo, T, t_idx), view(Vo, T, t_idx)
        rows, cols = W2.shape
        g0, c0 = T.gid[t_idx], T.coff[t_idx]
        for r in range(rows):
            a = A[g0 + r]
            for c in range(np.uint64(cols)):
                a[c] = W2[r, c]
                a[m + c] = M2[r, c]
                a[v + c] = V2[r, c]
                if per_sample:
                    a[l2 + c] = T.l2s[c0 + c]
                    a[center + c] = T.center[c0 + c]


@njit(**CORE)
def unpack(PK, T, Mo, Vo):
    """Write the packed rows back into the user and item tables' weights and moments."""
    _, _, m, v, _, _, _ = block_offsets(PK.mode, PK.A.shape[1] // block_count(PK.mode))
    for t_idx in (USERS, ITEMS):
        W2, M2, V2 = view(T.W, T, t_idx), view(Mo, T, t_idx), view(Vo, T, t_idx)
        rows, cols = W2.shape
        g0 = T.gid[t_idx]
        for r in range(rows):
            a = PK.A[g0 + r]
            for c in range(np.uint64(cols)):
                W2[r, c] = a[c]
                M2[r, c] = a[m + c]
                V2[r, c] = a[v + c]


@njit(**CORE, inline="always")
def _mark(PK, r, t, count):
    """Record packed row ``r`` as touched in step ``t`` (once); the new count."""
    if PK.mark[r] == t:
        return count
    PK.mark[r] = t
    PK.touched[count] = r
    return count + 1


@njit(**CORE, inline="always")
def _touch(PK, X, start, n, first_item, t):
    """Record the distinct rows records ``start .. start+n-1`` read in step ``t`` (users
    and items, as packed rows) in ``PK.touched``; returns how many."""
    count = 0
    for j in range(start, start + n):
        count = _mark(PK, X[j, USER], t, count)
        count = _mark(PK, first_item + X[j, ITEM], t, count)
    return count


@njit(**CORE, inline="always", fastmath=FAST)
def _step_rows(PK, count, coef, width):
    """Adam step of the first ``width`` columns of the ``count`` rows the step touched,
    the second moment from Keras' per-occurrence squares ``g2`` or from the summed
    gradient; zeroes ``g`` and ``g2``."""
    occurrences, _, _ = switches(PK.mode)
    _, g, m, v, g2, _, _ = block_offsets(PK.mode, width)
    alpha, b1, b2, eps, c1, c2 = coef[0], coef[1], coef[2], coef[3], coef[4], coef[5]
    # the trip count ``width`` is a run-time value even for narrow rows: a constant 16
    # gets unrolled into scalar code (Numba runs no SLP vectoriser)
    for s in range(count):
        a = PK.A[PK.touched[s]]
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
def _catch_up_rows(PK, count, last, t, cfg, tables, width):
    """Bring the ``count`` touched rows to step ``t`` (Keras' Adam, lazily: the closed
    form of :func:`mfcore.engine.optim.catch_up_coefficients` for the zero-gradient steps
    a row missed); ``last``: each global row's last step."""
    _, _, m, v, _, _, _ = block_offsets(PK.mode, width)
    eps = cfg.eps
    for s in range(count):
        r = PK.touched[s]
        k = t - last[r]
        if k <= 0:
            continue
        d0, d1, b1k, b2k = catch_up_coefficients(last[r], k, cfg.t_base, tables, cfg.b1,
                                                 cfg.b2)
        a = PK.A[r]
        for c in range(np.uint64(width)):
            mc = a[m + c]
            inv = 1.0 / (math.sqrt(a[v + c]) + eps)
            a[c] -= mc * inv * (d0 - eps * inv * d1)
            a[m + c] = mc * b1k
            a[v + c] = a[v + c] * b2k
        last[r] = t


@njit(**CORE, fastmath=FAST)
def adam_batches(fam, P, S, PK, O, cfg, b_first, b_last, ws, loss0):
    """Train batches ``b_first .. b_last-1`` of the epoch whose records, in epoch order, are
    ``S``, on the packed rows ``PK``, with Adam (``cfg.opt``: Keras' ``adam``, lazily caught
    up, or ``sparse-adam``). ``O.step[0]`` is the global step count (advanced), ``O.coef``
    the step's constants, ``O.last`` and ``O.tables`` Keras' lazy catch-up state. Returns
    what :func:`mfcore.engine.loop.run_batches` returns (``loss0`` as there).

    The loop is compiled once per packed :class:`~mfcore.kernels.packed_layout.Mode` (its
    switches are constants in it), and every function it calls, the kernel's included,
    is inlined into it: with the row step compiled on its own, a process that compiled
    this loop called that standalone copy and a process that loaded the loop from Numba's
    disk cache the copy linked into the loop's object, and the two (fast-math)
    compilations gave numbers that differed in the 9th digit; a test runs both."""
    _, per_sample, _ = switches(PK.mode)
    X = S.X
    n_total = X.shape[0]
    width = PK.A.shape[1] // block_count(PK.mode)
    first_item = PK.first_item
    keras = cfg.opt == ADAM
    coef = O.coef
    loss_sum = loss0
    seen = 0
    for bi in range(b_first, b_last):
        t, start, n = batch_span(O, cfg, bi, n_total)
        count = _touch(PK, X, start, n, first_item, t)
        if keras:
            _catch_up_rows(PK, count, O.last, t - 1, cfg, O.tables, width)
        sse, pen = dispatch.packed_forward_backward(fam, P, S, start, n, PK, first_item,
                                                    width, ws)
        loss = sse / n
        if per_sample:
            loss += pen / n
        if not math.isfinite(loss):
            return loss_sum, seen, STATUS_NONFINITE
        _step_rows(PK, count, adam_coefficients(coef, cfg, t), width)
        if keras:
            for s in range(count):
                O.last[PK.touched[s]] = t
        O.step[0] = t
        loss_sum += loss * n
        seen += n
    return loss_sum, seen, STATUS_OK
