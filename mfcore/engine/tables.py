"""Named parameter tables: what a model declares, and the one flat arena that holds them.

A model declares its trainable row-indexed parameters as :class:`TableSpec` s: ``users``
and ``items`` always, and any others it needs (time-bin biases, user-day biases, implicit
item factors ...). Each table is ``rows x cols`` float32 with, per column, an L2
coefficient (Keras' whole-matrix form or per sample), an L2 centre (the value L2 pulls
towards, e.g. 1 for a multiplicative scale) and a learning-rate multiplier (SGD).

All tables live in ONE flat array, so the compiled engine needs a single signature
whatever the number of tables, and a snapshot is one copy::

    W[off[t] + r * cols[t] + c]      weight (row r, column c) of table t
    gid[t] + r                       the row's global number (per-row optimizer state)
    l2k / l2s / center / lr_scale[coff[t] + c]   per-column settings

:class:`Tables` is that arena as a namedtuple of arrays, what kernels receive;
:class:`ParameterTables` wraps it for Python (2-D views by name, build, copy).
"""
from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from ..errors import ModelError
from ..kernels import CORE
from ..registry import L2_MODES

__all__ = ["TableSpec", "Tables", "ParameterTables", "INITS", "L2_MODES"]

INITS = ("uniform", "normal", "zeros", "constant")

#: the arena as the compiled code sees it (see the module docstring)
Tables = namedtuple("Tables", "W off rows cols gid coff l2k l2s center lr_scale")


def _per_column(value, cols, what, name):
    arr = np.broadcast_to(np.asarray(value, np.float64), (cols,)) if np.ndim(value) == 0 \
        else np.asarray(value, np.float64)
    if arr.shape != (cols,):
        raise ModelError(f"table {name}: {what} needs one value or {cols}, got {arr.shape[0]}")
    if not np.all(np.isfinite(arr)):
        raise ModelError(f"table {name}: {what} must be finite")
    return arr.astype(np.float32)


@dataclass
class TableSpec:
    """One parameter table of a model.

    name: how it is addressed (``users``, ``items``, ...); rows x cols: its shape.
    init: ``"uniform"`` (U(-scale, scale), Keras' Embedding default with 0.05),
    ``"normal"`` (N(0, scale)), ``"zeros"`` or ``"constant"`` (every weight = ``scale``).
    l2: per-column L2 coefficients (one value for all columns, or ``cols`` values);
    l2_mode: ``"keras"`` (``l2 * sum(W**2)`` over the whole table added to every batch's
    loss) or ``"per-sample"`` (``l2 * |w_row - center|^2`` for every rating touching the
    row). center: per-column value L2 pulls towards (default 0). lr_scale: per-column
    multiplier of the SGD learning rate (default 1). constant_columns: ``{column: value}``
    set after the random draw (e.g. biases at 0, a multiplicative scale at 1).
    """

    name: str
    rows: int
    cols: int
    init: str = "uniform"
    scale: float = 0.05
    l2: object = 0.0
    l2_mode: str = "keras"
    center: object = 0.0
    lr_scale: object = 1.0
    constant_columns: dict = field(default_factory=dict)
    _cols: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if self.init not in INITS:
            raise ModelError(f"table {self.name}: init must be one of {INITS}")
        if self.l2_mode not in L2_MODES:
            raise ModelError(f"table {self.name}: l2_mode must be one of {L2_MODES}")
        self.rows, self.cols = int(self.rows), int(self.cols)
        for what in ("l2", "center", "lr_scale"):
            self._cols[what] = _per_column(getattr(self, what), self.cols, what, self.name)
        if np.any(self._cols["l2"] < 0):
            raise ModelError(f"table {self.name}: l2 must be non-negative")

    def column(self, what) -> np.ndarray:
        """Per-column float32 values of ``l2``, ``center`` or ``lr_scale``."""
        return self._cols[what]

    @property
    def l2_keras(self) -> np.ndarray:
        return self._cols["l2"] if self.l2_mode == "keras" else np.zeros(self.cols, np.float32)

    @property
    def l2_sample(self) -> np.ndarray:
        return self._cols["l2"] if self.l2_mode == "per-sample" else np.zeros(self.cols,
                                                                                np.float32)

    def initial(self, rng) -> np.ndarray:
        """Freshly initialised (rows, cols) float32 weights (draws from ``rng`` for the
        random inits, in the order Keras' Embedding does: row-major)."""
        shape = (self.rows, self.cols)
        # a scale beyond float32 gives inf weights: fit reports it, naming the init scale
        if self.init == "uniform":
            with np.errstate(over="ignore"):
                out = rng.uniform(-self.scale, self.scale, size=shape).astype(np.float32)
        elif self.init == "normal":
            with np.errstate(over="ignore"):
                out = rng.normal(0.0, self.scale, size=shape).astype(np.float32)
        else:
            out = np.full(shape, 0.0 if self.init == "zeros" else self.scale, np.float32)
        for col, value in self.constant_columns.items():
            out[:, col] = value
        return out


class ParameterTables:
    """A model's tables in one arena (:class:`Tables`), addressed by name.

    ``arena``: the namedtuple the kernels get; ``specs``: the TableSpecs in arena order;
    ``view(name)``: a writable (rows, cols) view of one table; ``index(name)``: its
    position ``t``.
    """

    def __init__(self, specs, weights=None, dtype=np.float32):
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ModelError(f"table names must be unique, got {names}")
        self.specs = list(specs)
        self._index = {s.name: t for t, s in enumerate(self.specs)}
        sizes = np.array([s.rows * s.cols for s in self.specs], np.int64)
        off = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        rows = np.array([s.rows for s in self.specs], np.int64)
        cols = np.array([s.cols for s in self.specs], np.int64)
        gid = np.concatenate([[0], np.cumsum(rows)[:-1]]).astype(np.int64)
        coff = np.concatenate([[0], np.cumsum(cols)[:-1]]).astype(np.int64)
        W = np.zeros(int(sizes.sum()), dtype)
        if weights is not None:
            for s, o, n in zip(self.specs, off, sizes):
                W[o:o + n] = np.asarray(weights[s.name], dtype).reshape(-1)

        def cat(what):
            return np.concatenate([s.column(what) for s in self.specs] or
                                  [np.zeros(0, np.float32)]).astype(np.float32)

        l2k = np.concatenate([s.l2_keras for s in self.specs]).astype(np.float32)
        l2s = np.concatenate([s.l2_sample for s in self.specs]).astype(np.float32)
        self.arena = Tables(W, off, rows, cols, gid, coff, l2k, l2s, cat("center"),
                            cat("lr_scale"))

    @classmethod
    def initialise(cls, specs, rng):
        """Tables freshly initialised in declaration order from ``rng``."""
        return cls(specs, {s.name: s.initial(rng) for s in specs})

    # ---- addressing ---------------------------------------------------------------------
    @property
    def names(self) -> list:
        return [s.name for s in self.specs]

    def index(self, name) -> int:
        try:
            return self._index[name]
        except KeyError:
            raise ModelError(f"no table {name!r}; this model has {', '.join(self.names)}") \
                from None

    def spec(self, name) -> TableSpec:
        return self.specs[self.index(name)]

    def view(self, name) -> np.ndarray:
        """Table ``name`` as a writable (rows, cols) view into the arena."""
        t = self.index(name)
        a = self.arena
        n = int(a.rows[t] * a.cols[t])
        return a.W[a.off[t]:a.off[t] + n].reshape(int(a.rows[t]), int(a.cols[t]))

    def __contains__(self, name) -> bool:
        return name in self._index

    @property
    def n_rows(self) -> int:
        """Rows of all tables together (the size of per-row optimizer state)."""
        return int(self.arena.rows.sum())

    @property
    def size(self) -> int:
        return int(self.arena.W.size)

    def any_l2(self, mode) -> bool:
        a = self.arena
        return bool(np.any((a.l2k if mode == "keras" else a.l2s) > 0))

    def table_has_keras_l2(self) -> np.ndarray:
        """Per table: does it carry Keras' whole-matrix L2 (so every row moves every step)?"""
        return np.array([bool(np.any(s.l2_keras > 0)) for s in self.specs], np.bool_)

    def keras_penalty(self) -> float:
        """Keras' regularisation term ``sum_t sum_c l2[c] sum W_t[:, c]^2`` (float64)."""
        pen = 0.0
        for s in self.specs:
            if np.any(s.l2_keras > 0):
                W = self.view(s.name).astype(np.float64)
                pen += float(np.sum(s.l2_keras.astype(np.float64) * np.sum(W ** 2, axis=0)))
        return pen

    def as_dict(self) -> dict:
        """``{name: (rows, cols) copy}``."""
        return {name: self.view(name).copy() for name in self.names}

    def with_dtype(self, dtype) -> "ParameterTables":
        """A copy whose arena has another dtype (float64 for gradient checks)."""
        return ParameterTables(self.specs, self.as_dict(), dtype=dtype)


# ---- compiled access ---------------------------------------------------------------------
# Numba turns a SIGNED computed index (``W[base + c]``) into a wrap-around check per access,
# which keeps LLVM from vectorising and doubled the cost of the MF kernels; a slice per row
# costs two reference-count updates. So kernels index a table through a 2-D view made once
# per call (``view``), and per-row engine code through an UNSIGNED start (``start``):
# ``A[s + np.uint64(c)]`` compiles to plain address arithmetic.


@njit(**CORE, inline="always")
def view(A, T, t):
    """The part of an arena-shaped array ``A`` (``T.W`` itself, gradients, moments) that
    belongs to table ``t``, as a (rows, cols) view."""
    o = T.off[t]
    return A[o:o + T.rows[t] * T.cols[t]].reshape((T.rows[t], T.cols[t]))


@njit(**CORE, inline="always")
def start(T, t, r):
    """Where row ``r`` of table ``t`` starts in arena-shaped arrays, as an unsigned index."""
    return np.uint64(T.off[t] + r * T.cols[t])
