"""The feature container of the Bayesian factorization machine (:mod:`.gibbs`): per-rating
sparse features plus relation blocks, with a prior group for every column.

Rating ``n`` (0 <= n < N) has the feature vector

    x_n = [ X[n, :] | B_0[rows_0[n], :] | B_1[rows_1[n], :] | ... ]

so the columns are numbered X's first (0 .. p0-1), then each block's in order. A relation
block (Rendle 2013, "Scaling factorization machines to relational data"; myFM's
``RelationBlock``) stores a feature pattern shared by many ratings once: the user block has
one row per user holding, e.g., [one-hot user | N(u)/sqrt|N(u)|] and ``rows[n]`` is the
user of rating ``n``, so a user's implicit-feedback row is stored once, not once per rating.

Shapes and dtypes (what :class:`FMDesign` holds after validation):

    y               float64 (N,)          targets (zeros for a design built only to predict)
    X               CSR or None           N x p0 per-rating features (e.g. a day one-hot):
                                          X.indptr int64 (N+1,), X.indices int32 (nnz,),
                                          X.data float64 (nnz,)
    blocks[b]       RelationBlock         rows int32 (N,) in [0, R_b); indptr int64 (R_b+1,),
                                          indices int32, data float64: the R_b x p_b matrix B_b
    groups          int32 (p,)            prior group of every column, p = p0 + sum p_b;
                                          groups are 0 .. G-1
    linear          bool (G,)             whether the group's columns have a linear weight w_j
                                          (False: w_j is held at 0; default all True)
    factored        bool (G,)             whether they have factors v_j (False: v_j = 0, the
                                          column interacts with nothing; default all True)

``linear``/``factored`` let a group be a plain bias (Koren's b_{i,Bin(t)}: linear only) or
factors without a bias of its own, within one sampler.

A design built for test pairs must have the same columns (same p0, same block widths, same
groups) as the training design; its blocks may have other rows (e.g. R_b = all users,
``rows`` = the test users). mfcore itself never needs scipy: :func:`csr_from_triplets` and
:func:`one_hot` build CSR from plain arrays (tests and benchmarks convert scipy matrices
with :meth:`CSR.from_scipy`, which only reads ``indptr``/``indices``/``data``/``shape``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["CSR", "RelationBlock", "FMDesign", "csr_from_triplets", "one_hot", "row_normalised", "hstack",
           "feature_set", "FEATURE_SETS"]


@dataclass(frozen=True)
class CSR:
    """A compressed-sparse-row matrix: ``indptr`` int64 (rows+1,), ``indices`` int32,
    ``data`` float64, ``shape`` (rows, cols). Column indices within a row need not be sorted;
    a (row, column) pair must not repeat."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    shape: tuple

    def __post_init__(self):
        indptr = np.ascontiguousarray(self.indptr, dtype=np.int64)
        indices = np.ascontiguousarray(self.indices, dtype=np.int32)
        data = np.ascontiguousarray(self.data, dtype=np.float64)
        rows, cols = (int(s) for s in self.shape)
        if indptr.ndim != 1 or len(indptr) != rows + 1 or indptr[0] != 0 or np.any(np.diff(indptr) < 0):
            raise ValueError(f"CSR indptr must be non-decreasing, start at 0 and have {rows + 1} entries")
        if len(indices) != indptr[-1] or len(data) != indptr[-1]:
            raise ValueError("CSR indices and data must have indptr[-1] entries")
        if len(indices) and (indices.min() < 0 or indices.max() >= cols):
            raise ValueError(f"CSR column indices must lie in [0, {cols})")
        if not np.all(np.isfinite(data)):
            raise ValueError("CSR data must be finite")
        object.__setattr__(self, "indptr", indptr)
        object.__setattr__(self, "indices", indices)
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "shape", (rows, cols))

    @property
    def nnz(self):
        return len(self.indices)

    @classmethod
    def from_scipy(cls, m):
        """From anything with ``tocsr()`` (a scipy sparse matrix); duplicates are summed."""
        m = m.tocsr()
        m.sum_duplicates()
        return cls(m.indptr, m.indices, m.data, m.shape)

    def take_rows(self, rows):
        """The CSR of ``self[rows]`` (rows an int array)."""
        rows = np.asarray(rows, dtype=np.int64)
        counts = np.diff(self.indptr)[rows]
        indptr = np.zeros(len(rows) + 1, np.int64)
        np.cumsum(counts, out=indptr[1:])
        src = np.repeat(self.indptr[rows] - indptr[:-1], counts) + np.arange(indptr[-1])
        return CSR(indptr, self.indices[src], self.data[src], (len(rows), self.shape[1]))

    def toarray(self):
        out = np.zeros(self.shape)
        r = np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))
        out[r, self.indices] = self.data
        return out


def csr_from_triplets(rows, cols, data, shape, sum_duplicates=True):
    """CSR from (row, column, value) triplets (any order). Repeated pairs are summed
    (``sum_duplicates=True``) or rejected."""
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    data = np.broadcast_to(np.asarray(data, dtype=np.float64), rows.shape)
    n_rows, n_cols = (int(s) for s in shape)
    if rows.shape != cols.shape or rows.ndim != 1:
        raise ValueError("rows and cols must be 1-D and the same length")
    if len(rows) and (rows.min() < 0 or rows.max() >= n_rows or cols.min() < 0 or cols.max() >= n_cols):
        raise ValueError("a triplet lies outside the shape")
    order = np.lexsort((cols, rows))
    rows, cols, data = rows[order], cols[order], data[order]
    if len(rows):
        new = np.ones(len(rows), bool)
        new[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
        if not new.all():
            if not sum_duplicates:
                raise ValueError("repeated (row, column) pairs")
            starts = np.flatnonzero(new)
            data = np.add.reduceat(data, starts)
            rows, cols = rows[starts], cols[starts]
    indptr = np.zeros(n_rows + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return CSR(indptr, cols.astype(np.int32), data, (n_rows, n_cols))


def one_hot(index, n_cols):
    """CSR with a single 1 per row at ``index[row]``; a negative index gives an empty row
    (e.g. a test day never seen in training)."""
    index = np.asarray(index, dtype=np.int64)
    keep = index >= 0
    if np.any(index >= n_cols):
        raise ValueError(f"one_hot index must be < {n_cols}")
    indptr = np.zeros(len(index) + 1, np.int64)
    np.cumsum(keep, out=indptr[1:])
    return CSR(indptr, index[keep].astype(np.int32), np.ones(int(keep.sum())), (len(index), n_cols))


def row_normalised(rows, cols, shape):
    """The 0/1 pattern of the (row, column) pairs (duplicates count once), each row scaled
    by 1/sqrt(its number of entries): the N(u)/sqrt|N(u)| of SVD++."""
    m = csr_from_triplets(rows, cols, 1.0, shape)
    counts = np.diff(m.indptr)
    data = np.repeat(1.0 / np.sqrt(np.maximum(counts, 1)), counts)
    return CSR(m.indptr, m.indices, data, m.shape)


def hstack(parts):
    """Columns of several CSR matrices with the same rows, side by side."""
    n = parts[0].shape[0]
    if any(p.shape[0] != n for p in parts):
        raise ValueError("hstack: every part needs the same number of rows")
    counts = sum(np.diff(p.indptr) for p in parts)
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    indices = np.empty(indptr[-1], np.int32)
    data = np.empty(indptr[-1], np.float64)
    fill = indptr[:-1].copy()
    off = 0
    for p in parts:
        c = np.diff(p.indptr)
        dst = np.repeat(fill - p.indptr[:-1], c) + np.arange(p.nnz)
        indices[dst] = p.indices + off
        data[dst] = p.data
        fill += c
        off += p.shape[1]
    return CSR(indptr, indices, data, (n, off))


@dataclass(frozen=True)
class RelationBlock:
    """Rating ``n`` uses row ``rows[n]`` (int32, length N) of ``table`` (R_b x p_b CSR)."""

    rows: np.ndarray
    table: CSR

    def __post_init__(self):
        rows = np.ascontiguousarray(self.rows, dtype=np.int32)
        if rows.ndim != 1:
            raise ValueError("block rows must be 1-D")
        if len(rows) and (rows.min() < 0 or rows.max() >= self.table.shape[0]):
            raise ValueError(f"block rows must lie in [0, {self.table.shape[0]})")
        object.__setattr__(self, "rows", rows)

    @property
    def width(self):
        return self.table.shape[1]


@dataclass(frozen=True)
class FMDesign:
    """Targets, per-rating features ``X`` (CSR or None), relation ``blocks`` and the prior
    ``groups`` of the columns (default: one group per part, i.e. X's columns group 0 and
    block b's columns group b+1 ... (or b if there is no X)); per group, whether its columns
    have a ``linear`` weight and ``factored`` factors (default: both). See the module
    docstring."""

    y: np.ndarray
    X: CSR | None = None
    blocks: tuple = ()
    groups: np.ndarray | None = field(default=None)
    linear: np.ndarray | None = field(default=None)
    factored: np.ndarray | None = field(default=None)

    def __post_init__(self):
        y = np.ascontiguousarray(self.y, dtype=np.float64)
        if y.ndim != 1:
            raise ValueError("y must be 1-D")
        n = len(y)
        if self.X is not None and self.X.shape[0] != n:
            raise ValueError(f"X has {self.X.shape[0]} rows, y has {n}")
        blocks = tuple(self.blocks)
        for b in blocks:
            if not isinstance(b, RelationBlock):
                raise TypeError("blocks must be RelationBlock objects")
            if len(b.rows) != n:
                raise ValueError(f"a block maps {len(b.rows)} ratings, y has {n}")
        widths = self.widths_of(self.X, blocks)
        p = sum(widths)
        if self.groups is None:
            groups = np.repeat(np.arange(len(widths)), widths)
            # drop empty parts' numbers so groups are 0 .. G-1
            groups = np.unique(groups, return_inverse=True)[1] if p else groups
        else:
            groups = np.asarray(self.groups)
        groups = np.ascontiguousarray(groups, dtype=np.int32)
        if groups.shape != (p,):
            raise ValueError(f"groups needs one entry per column ({p}), got {groups.shape}")
        if p and (groups.min() < 0 or not np.array_equal(np.unique(groups), np.arange(groups.max() + 1))):
            raise ValueError("groups must be 0 .. G-1, every group used")
        if not np.all(np.isfinite(y)):
            raise ValueError("y must be finite")
        n_groups = int(groups.max()) + 1 if p else 0
        for name in ("linear", "factored"):
            flags = getattr(self, name)
            flags = np.ones(n_groups, bool) if flags is None else np.asarray(flags)
            if flags.shape != (n_groups,) or flags.dtype != bool:
                raise ValueError(f"{name} needs one bool per group ({n_groups}), got "
                                 f"{flags.shape} {flags.dtype}")
            object.__setattr__(self, name, np.ascontiguousarray(flags))
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "blocks", blocks)
        object.__setattr__(self, "groups", groups)

    @staticmethod
    def widths_of(X, blocks):
        return [0 if X is None else X.shape[1]] + [b.width for b in blocks]

    @property
    def n(self):
        return len(self.y)

    @property
    def p0(self):
        return 0 if self.X is None else self.X.shape[1]

    @property
    def p(self):
        return len(self.groups)

    @property
    def n_groups(self):
        return int(self.groups.max()) + 1 if self.p else 0

    def same_columns(self, other):
        """True when ``other`` has this design's columns (what prediction needs)."""
        return (self.p0 == other.p0 and [b.width for b in self.blocks] == [b.width for b in other.blocks]
                and np.array_equal(self.groups, other.groups) and np.array_equal(self.linear, other.linear)
                and np.array_equal(self.factored, other.factored))

    def with_y(self, y):
        return FMDesign(y, self.X, self.blocks, self.groups, self.linear, self.factored)

    def expanded(self):
        """The same features with every block written out per rating in ``X`` (no blocks):
        the reference the block algorithm must agree with. Memory N x (sum of row lengths)."""
        parts = [self.X if self.X is not None else CSR(np.zeros(self.n + 1, np.int64), [], [], (self.n, 0))]
        parts += [b.table.take_rows(b.rows) for b in self.blocks]
        return FMDesign(self.y, hstack(parts), (), self.groups, self.linear, self.factored)


FEATURE_SETS = ("mf", "svdpp", "timesvdpp-flipped")


def feature_set(name, train, test, n_users=None, n_items=None):
    """Training and test designs of myFM's MovieLens feature sets, from plain arrays (the
    scipy-free twin of ``mfcore.peers._myfm_features``; same columns, same groups):

        mf:                user one-hot | item one-hot
        svdpp:             user one-hot, N(u) | item one-hot
        timesvdpp-flipped: day one-hot | user one-hot, N(u) | item one-hot, N(i)

    ``train``/``test``: (users, items, ratings[, timestamps]) with dense 0-based indices.
    N(u) = the items u rated in TRAIN, N(i) = the users who rated i in TRAIN, each row
    weighted 1/sqrt(its size). Users and items are relation blocks over ALL users (items):
    ``rows`` is the user (item) index itself. Day = timestamp // 86400, one-hot over the days
    seen in train (a test day absent from train gets an empty row). Groups: one per part
    (day; user; N(u); item; N(i)), as myFM's ``group_shapes``."""
    if name not in FEATURE_SETS:
        raise ValueError(f"feature set must be one of {FEATURE_SETS}")
    tr_u, tr_i = (np.asarray(a, np.int64) for a in train[:2])
    te_u, te_i = (np.asarray(a, np.int64) for a in test[:2])
    n_users = int(max(tr_u.max(initial=-1), te_u.max(initial=-1)) + 1) if n_users is None else int(n_users)
    n_items = int(max(tr_i.max(initial=-1), te_i.max(initial=-1)) + 1) if n_items is None else int(n_items)
    user_parts, item_parts = [one_hot(np.arange(n_users), n_users)], [one_hot(np.arange(n_items), n_items)]
    if name in ("svdpp", "timesvdpp-flipped"):
        user_parts.append(row_normalised(tr_u, tr_i, (n_users, n_items)))
    if name == "timesvdpp-flipped":
        item_parts.append(row_normalised(tr_i, tr_u, (n_items, n_users)))
    widths = [p.shape[1] for p in user_parts + item_parts]
    utab, itab = hstack(user_parts), hstack(item_parts)
    X_tr = X_te = None
    if name == "timesvdpp-flipped":
        if len(train) < 4 or len(test) < 4 or train[3] is None or test[3] is None:
            raise ValueError("timesvdpp-flipped needs timestamps in train and test")
        days = np.unique(np.asarray(train[3], np.int64) // 86400)

        def day_onehot(ts):
            d = np.asarray(ts, np.int64) // 86400
            pos = np.clip(np.searchsorted(days, d), 0, max(len(days) - 1, 0))
            known = (days[pos] == d) if len(days) else np.zeros(len(d), bool)
            return one_hot(np.where(known, pos, -1), len(days))

        X_tr, X_te = day_onehot(train[3]), day_onehot(test[3])
        widths = [len(days)] + widths
    groups = np.repeat(np.arange(len(widths)), widths)

    def design(split, X, u, i):
        return FMDesign(np.asarray(split[2], np.float64), X, (RelationBlock(u, utab), RelationBlock(i, itab)),
                        groups)
    return design(train, X_tr, tr_u, tr_i), design(test, X_te, te_u, te_i)
