"""The matrix-factorisation family of the notebook: ``mf``, ``mfb`` and ``mfbs``."""
from __future__ import annotations

import numpy as np

from ..errors import ModelError
from ..kernels import mf as kernel
from ..kernels.dispatch import KIND_MF
from .base import RatingModel

L2_MODES = ("keras", "per-sample")
INITS = ("uniform", "normal")


def init_table(rng, rows, cols, init, scale):
    """A (rows, cols) float32 table: Keras' uniform(-scale, scale) or normal(0, scale)."""
    if init == "uniform":
        return rng.uniform(-scale, scale, size=(rows, cols)).astype(np.float32)
    return rng.normal(0.0, scale, size=(rows, cols)).astype(np.float32)


def check_l2(l2, l2_mode):
    if not (isinstance(l2, (int, float, np.floating)) and l2 >= 0 and np.isfinite(l2)):
        raise ModelError(f"l2 must be a non-negative number, got {l2!r}")
    if l2_mode not in L2_MODES:
        raise ModelError(f"l2_mode must be one of {L2_MODES}, got {l2_mode!r}")


def check_init(init, init_scale):
    if init not in INITS:
        raise ModelError(f"init must be one of {INITS}, got {init!r}")
    if not (init_scale > 0 and np.isfinite(init_scale)):
        raise ModelError(f"init_scale must be a positive number, got {init_scale!r}")


def check_factors(factors, what="factors"):
    if not (isinstance(factors, (int, np.integer)) and factors >= 1):
        raise ModelError(f"{what} must be a positive integer, got {factors!r}")


class MF(RatingModel):
    """Matrix factorisation ``y_hat = p_u . q_i`` (the notebook's "MF model").

    factors: k, the embedding size (default 10). use_bias: add ``b_u + b_i`` (``mfb``).
    sigmoid: output ``scale * sigmoid(z)`` (default scale 5.0: ratings in (0, 5)).
    l2: L2 coefficient on the factor columns (not the biases), 0 = off; l2_mode: ``"keras"``
    (Keras' ``embeddings_regularizer=l2(c)``: ``c * sum(W**2)`` over the whole matrix added
    to every batch's loss, so every row decays at every step) or ``"per-sample"`` (classic
    SGD MF: ``c * (|p_u|^2 + |q_i|^2)`` per rating, only the touched rows).
    init: ``"uniform"`` (Keras' Embedding default, ``U(-init_scale, init_scale)``,
    init_scale 0.05) or ``"normal"`` (``N(0, init_scale)``). seed: initialisation, shuffling
    and dropout seed.
    """

    name = "mf"
    kind = KIND_MF
    _default_bias = False
    _default_sigmoid = False

    def __init__(self, factors=10, *, use_bias=None, sigmoid=None, scale=5.0, l2=0.0,
                 l2_mode="keras", init="uniform", init_scale=0.05, seed=0):
        self.factors = factors
        self.use_bias = self._default_bias if use_bias is None else bool(use_bias)
        self.sigmoid = self._default_sigmoid if sigmoid is None else bool(sigmoid)
        self.scale = scale
        self.l2 = l2
        self.l2_mode = l2_mode
        self.init = init
        self.init_scale = init_scale
        self.seed = seed
        self._validate()
        self._reset()

    def _validate(self):
        check_factors(self.factors)
        check_l2(self.l2, self.l2_mode)
        check_init(self.init, self.init_scale)
        if not (self.scale > 0 and np.isfinite(self.scale)):
            raise ModelError(f"scale must be a positive number, got {self.scale!r}")

    @property
    def _cols(self):
        return self.factors + (1 if self.use_bias else 0)

    def _build(self, n_users, n_items, rng):
        U = init_table(rng, n_users, self._cols, self.init, self.init_scale)
        I = init_table(rng, n_items, self._cols, self.init, self.init_scale)
        spec = np.array([self.factors, int(self.use_bias), int(self.sigmoid)], np.int64)
        fspec = np.array([float(self.scale)], np.float64)
        return U, I, np.zeros(0, np.float32), np.zeros(0, np.float32), spec, fspec

    def _l2_columns(self):
        col = np.zeros(self._cols, np.float32)
        col[:self.factors] = self.l2
        zero = np.zeros(self._cols, np.float32)
        if self.l2_mode == "keras":
            return col, col.copy(), zero, zero.copy()
        return zero, zero.copy(), col, col.copy()

    @property
    def _fused_sgd(self):
        def run(users, items, y, lr, l2u, l2i):
            return kernel.sgd_epoch(self.spec_, self.fspec_, self.U_, self.I_, users, items, y,
                                    float(lr), l2u, l2i)
        return run

    @classmethod
    def gradcheck_configs(cls):
        base = {"factors": 3}
        return [base, {**base, "sigmoid": not cls._default_sigmoid},
                {**base, "l2": 0.05, "l2_mode": "keras"},
                {**base, "l2": 0.05, "l2_mode": "per-sample"}]

    def item_embeddings(self):
        self._require_fitted()
        return self.I_[:, :self.factors]

    def user_embeddings(self):
        self._require_fitted()
        return self.U_[:, :self.factors]

    @property
    def user_factors_(self):
        return self.U_[:, :self.factors]

    @property
    def item_factors_(self):
        return self.I_[:, :self.factors]

    @property
    def user_bias_(self):
        return self.U_[:, self.factors] if self.use_bias else None

    @property
    def item_bias_(self):
        return self.I_[:, self.factors] if self.use_bias else None


class MFB(MF):
    """Matrix factorisation with biases ``y_hat = p_u . q_i + b_u + b_i`` (``mfb``).
    ``sigmoid=True`` gives ``5 * sigmoid(...)``; ``l2`` the notebook's regularised variant."""

    name = "mfb"
    _default_bias = True


class MFBS(MFB):
    """The notebook's "MF + bias + sigmoid": ``y_hat = 5 * sigmoid(p_u . q_i + b_u + b_i)``."""

    name = "mfbs"
    _default_sigmoid = True
