"""Per-sample SGD epochs: the orders in which a model's fused kernel (``sgd_block``) sees
the training records. A model's design picks one (``Design.sgd_order``).

**Grid of blocks** (``"grid"``; DSGD: Gemulla et al., KDD 2011; FPSGD: Chin et al., 2015),
for models whose rating touches only rows of its own user and its own item. The training
records are arranged once per fit into a ``B x B`` grid: user ``u`` belongs to
user block ``ub[u]``, item ``i`` to item block ``ib[i]`` (runs of consecutive ids with
about equal numbers of ratings, so that blocks hold similar work and a block's rows sit
together in memory), and the records of block ``(a, b)`` sit together,
``ptr[a*B + b] : ptr[a*B + b + 1]``.

One epoch is ``B`` sub-epochs. Sub-epoch ``s`` trains the stratum
``{(a, pair[(a + off[s]) % B]) for every a}``: its ``B`` blocks share no user and no item,
so they run on different threads with no locks, in any order, with the same result. Each
epoch draws the order of the strata (``off``) and the pairing of item blocks (``pair``)
from (seed, epoch), and every block is trained in a fresh random order that moves no
record: each block's records are put in a uniformly random order once, when the grid is
made (Fisher-Yates), and each epoch the kernel visits block ``(start, m records)`` in the
order ``start + (first + stride * j) % m``, with ``first`` and ``stride`` (coprime with
``m``) drawn from (seed, epoch, block) (:func:`affine_order`). For any one epoch that is a
uniformly random order of the block (a fixed stride over a uniformly random arrangement);
two epochs' orders are related only through the arrangement, which two strides mix
differently. It costs no pass over the records and no memory traffic of its own: an
in-place Fisher-Yates of every block every epoch took a quarter of an ``mfb`` k=10 epoch.

Determinism: every draw depends only on (seed, epoch, block) and the blocks of a stratum
touch disjoint rows, so the numbers are bit-identical whatever the number of threads and
their timing: ``threads=2`` gives exactly the numbers of ``threads=1``.

A block of ``B`` is also what makes one thread fast: its users' and items' rows stay in
cache while its records are trained. ``B`` depends on the data only (about 2,000 records
per block, at most 128 a side), never on the number of threads.

**User runs** (``"user"``), for models with an implicit-feedback term (SVD++): a rating
of user ``u`` updates the factors of every item ``u`` rated, so blocks would overlap. The
records are grouped by user; each epoch visits the users in a random order and each
user's ratings in a random order (the run arranged once at random, then visited with a
random stride as the blocks are), and the kernel gets one user's run per call: it keeps
the user's implicit sum up to date in O(k) per rating and writes the implicit factors
back once per run (exactly the per-sample updates, see :mod:`mfcore.kernels.timesvdpp`;
the flipped term's user factors of N(i) move at every rating). One thread.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ..kernels import CORE, dispatch
from ..kernels.rng import epoch_state, mix64, xorshift
from .samples import ITEM, USER, shuffle_range

RECORDS_PER_BLOCK = 2048
# The cap binds above 2048 * 128**2 = 33.5M records. On 80M training ratings
# (benchmarks/big_sgd.py, 1 / 2 threads, s per epoch with validation): 32 blocks a side
# 1.72 / 1.08, 64 1.54 / 0.85, 128 1.39 / 0.70, 198 (no cap) 1.89 / 1.15.
MAX_GRID = 128


def grid_size(n_records, n_users, n_items) -> int:
    """``B`` for a training set: about RECORDS_PER_BLOCK records per block, at most
    MAX_GRID, and no more blocks than users or items."""
    b = int(round(math.sqrt(max(1, n_records) / RECORDS_PER_BLOCK)))
    return max(1, min(b, MAX_GRID, n_users, n_items))


def _block_of(ids, n, B):
    """Block of each of ``n`` ids: ``B`` runs of consecutive ids holding about equal
    numbers of the records (``ids``: each record's id). Consecutive ids keep a block's
    rows together in memory: with ids scattered over blocks, rows of two threads' blocks
    shared cache lines, and two threads ran an epoch barely faster than one."""
    counts = np.bincount(ids, minlength=n).astype(np.int64)
    before = np.cumsum(counts) - counts
    return np.minimum(before * B // max(1, int(counts.sum())), B - 1).astype(np.int64)


@njit(cache=True)
def _arrange(X, ub, ib, B, out, ptr):
    """Counting sort of the records of ``X`` by block into ``out``; block starts in ``ptr``
    (length B*B + 1). Records keep their relative order inside a block."""
    n, w = X.shape
    counts = np.zeros(B * B, np.int64)
    for j in range(n):
        counts[ub[X[j, USER]] * B + ib[X[j, ITEM]]] += 1
    ptr[0] = 0
    for b in range(B * B):
        ptr[b + 1] = ptr[b] + counts[b]
    fill = ptr[:-1].copy()
    for j in range(n):
        b = ub[X[j, USER]] * B + ib[X[j, ITEM]]
        d = fill[b]
        for c in range(w):
            out[d, c] = X[j, c]
        fill[b] = d + 1


class Grid:
    """The training records arranged by block (see the module docstring).

    ``E``: the records (:class:`~mfcore.engine.samples.Samples`), block by block; ``ptr``:
    block starts; ``B``: the grid's side. Built from the records ``S``; ``seed`` draws the
    arrangement inside each block.
    """

    def __init__(self, S, n_users, n_items, seed):
        from .samples import empty_like
        n = S.X.shape[0]
        self.B = B = grid_size(n, n_users, n_items)
        self.ub = _block_of(S.X[:, USER], n_users, B)
        self.ib = _block_of(S.X[:, ITEM], n_items, B)
        self.E = empty_like(S)
        self.ptr = np.zeros(B * B + 1, np.int64)
        _arrange(S.X, self.ub, self.ib, B, self.E.X, self.ptr)
        _shuffle_runs(self.E.X, self.ptr, seed)
        self.losses = np.zeros(B * B)

    def scratch(self, size, dtype):
        """One row of ``size`` scratch values per block of a stratum."""
        return np.zeros((self.B, max(1, size)), dtype)


@njit(cache=True, inline="always")
def _random_permutation(arr, s):
    """Fill ``arr`` with a uniformly random permutation of 0 .. arr.size-1 (Fisher-Yates
    from the xorshift64 state ``s``); returns the advanced state."""
    for j in range(arr.size):
        arr[j] = j
    for i in range(arr.size - 1, 0, -1):
        s = xorshift(s)
        r = np.int64(((s >> np.uint64(32)) * np.uint64(i + 1)) >> np.uint64(32))
        t = arr[i]
        arr[i] = arr[r]
        arr[r] = t
    return s


@njit(cache=True, inline="always")
def _draw_orders(seed, epoch, B, off, pair):
    """The strata order and the item-block pairing of an epoch."""
    s = _random_permutation(off, epoch_state(seed, epoch))
    _random_permutation(pair, s)


@njit(cache=True, inline="always")
def block_state(seed, epoch, block):
    """The generator state that orders block ``block`` in epoch ``epoch`` (``epoch`` -1:
    the arrangement made once per grid)."""
    s = mix64(epoch_state(seed, epoch) ^ (np.uint64(block + 1) * np.uint64(0xD6E8FEB86659FD93)))
    return s if s != 0 else np.uint64(1)


@njit(cache=True)
def _shuffle_runs(X, ptr, seed):
    """Put the records of every run ``ptr[b] : ptr[b+1]`` in a uniformly random order
    drawn from (seed, b): the arrangement the epochs' strided orders visit."""
    for b in range(ptr.size - 1):
        shuffle_range(X, ptr[b], ptr[b + 1], block_state(seed, -1, b))


@njit(cache=True, inline="always")
def _gcd(a, b):
    while b:
        a, b = b, a % b
    return a


@njit(cache=True, inline="always")
def affine_order(m, state):
    """``(stride, first)`` of a run of ``m`` records, drawn from the generator ``state``:
    ``first`` uniform in ``0 .. m-1``, ``stride`` the first number coprime with ``m`` at or
    after a uniform draw from ``1 .. m-1`` (1 when ``m`` is 1 or 2), so that
    ``(first + stride * j) % m`` visits every record once."""
    state = xorshift(state)
    first = np.int64(((state >> np.uint64(32)) * np.uint64(m)) >> np.uint64(32))
    if m <= 2:
        return np.int64(1), first
    state = xorshift(state)
    stride = 1 + np.int64(((state >> np.uint64(32)) * np.uint64(m - 1)) >> np.uint64(32))
    while _gcd(stride, m) != 1:
        stride = stride + 1 if stride + 1 < m else np.int64(1)
    return stride, first


@njit(cache=True, inline="always")
def _in_cache(X, lo, hi):
    """Read records ``lo .. hi-1`` in their stored order, one word per cache line, so that
    the hardware prefetcher streams them in before a strided order visits them (that order
    alone missed the cache once per record: a third of an ``mfb`` k=10 epoch). Returns
    False only for a negative user index, which never occurs: the result keeps the reads."""
    total = 0
    for q in range(lo, hi, 4):
        total += X[q, USER]
    return total >= 0


def load_kernel(fam, T, P, E, lr, ws):
    """Have family ``fam``'s ``sgd_block`` compiled, or loaded from Numba's disk cache, on
    its own in this process before an epoch loop below calls it (a no-op call: an empty
    range, with the argument types the loops pass).

    Numba links a copy of a jitted callee into each caller's code and optimises it again
    there. A process that compiles the loop has the callee's own compilation defined first,
    and the loop's calls go to it; a process that loads the loop from the disk cache had
    nothing defined before, so the calls went to the loop's re-optimised copy, which under
    fast-math can round differently (seen: ``svdpp`` weights differing in the 9th digit,
    and ``mfcore tune``'s workers disagreeing with their parent on a cold cache). Defining
    the callee's own first makes every process run the same code."""
    mod = dispatch.FAMILIES[fam.name]
    mod.sgd_block(T, P, E, np.int64(0), np.int64(0), float(lr), ws, np.int64(1),
                  np.int64(0))


@njit(cache=True, parallel=True)
def grid_epoch(fam, T, P, E, ptr, B, lr, seed, epoch, losses, ws):
    """One epoch of per-sample SGD over the grid (module docstring); returns the sum of
    per-sample losses, added in block order (deterministic). ``ws``: (B, n) scratch, one
    row per block of a stratum."""
    off = np.empty(B, np.int64)
    pair = np.empty(B, np.int64)
    _draw_orders(seed, epoch, B, off, pair)
    for s in range(B):
        o = off[s]
        for a in prange(B):
            blk = a * B + pair[(a + o) % B]
            lo, hi = ptr[blk], ptr[blk + 1]
            stride, first = affine_order(hi - lo, block_state(seed, epoch, blk))
            loss = math.nan
            if _in_cache(E.X, lo, hi):
                loss = dispatch.sgd_block(fam, T, P, E, lo, hi, lr, ws[a], stride, first)
            losses[blk] = loss
    total = 0.0
    for b in range(B * B):
        total += losses[b]
    return total


class UserRuns:
    """The training records grouped by user: user ``u``'s run is records
    ``ptr[u] : ptr[u + 1]`` of ``E``; ``perm`` is scratch for the epoch's user order."""

    def __init__(self, S, n_users, seed):
        from .samples import Samples
        order = np.argsort(S.X[:, USER], kind="stable")
        X = np.ascontiguousarray(S.X[order])
        self.E = Samples(X, X.view(np.float32))
        self.ptr = np.concatenate([[0], np.cumsum(np.bincount(S.X[:, USER],
                                                              minlength=n_users))])
        self.ptr = self.ptr.astype(np.int64)
        _shuffle_runs(self.E.X, self.ptr, seed)
        self.perm = np.zeros(n_users, np.int64)


@njit(**CORE)
def user_runs_epoch(fam, T, P, E, ptr, perm, lr, seed, epoch, ws):
    """One epoch of per-sample SGD by user runs (module docstring): users in an order
    drawn from (seed, epoch), each run trained by one kernel call in a shuffled order. Returns
    the sum of per-sample losses."""
    n_users = perm.size
    _random_permutation(perm, epoch_state(seed, epoch))
    total = 0.0
    for j in range(n_users):
        u = perm[j]
        a, b = ptr[u], ptr[u + 1]
        if b > a and _in_cache(E.X, a, b):
            stride, first = affine_order(b - a, block_state(seed, epoch, u))
            total += dispatch.sgd_block(fam, T, P, E, a, b, lr, ws, stride, first)
    return total


@njit(cache=True)
def sequential_epoch(fam, T, P, S, lr, ws):
    """Per-sample SGD over every record of ``S`` in its order (one thread)."""
    return dispatch.sgd_block(fam, T, P, S, 0, S.X.shape[0], lr, ws, np.int64(1), np.int64(0))
