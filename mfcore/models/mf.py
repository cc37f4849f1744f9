"""The matrix-factorisation family of the notebook: ``mf``, ``mfb`` and ``mfbs``."""
from __future__ import annotations

import numbers

import numpy as np

from .. import bounds
from ..bounds import MAX_FACTORS
from ..engine.tables import TableSpec
from ..registry import EMBEDDING_INITS, L2_MODES
from ..errors import ModelError
from ..kernels import mf as kernel
from ..layout import pack
from .base import Design, RatingModel


def check_l2(l2, l2_mode, what="l2"):
    """ModelError unless ``l2`` is a number in [0, MAX_L2] and ``l2_mode`` a known mode."""
    if isinstance(l2, bool) or not isinstance(l2, numbers.Real) \
            or not 0 <= l2 <= bounds.MAX_L2:
        raise ModelError(f"{what} must be a number from 0 to {bounds.MAX_L2:,g}, got {l2!r}")
    if l2_mode not in L2_MODES:
        raise ModelError(f"l2_mode must be one of {L2_MODES}, got {l2_mode!r}")


def check_init(init, init_scale):
    if init not in EMBEDDING_INITS:
        raise ModelError(f"init must be one of {EMBEDDING_INITS}, got {init!r}")
    if isinstance(init_scale, bool) or not isinstance(init_scale, numbers.Real) \
            or not (init_scale > 0 and np.isfinite(init_scale)):
        raise ModelError(f"init_scale must be a positive number, got {init_scale!r}")


def check_factors(factors, what="factors"):
    if isinstance(factors, bool) or not (isinstance(factors, (int, np.integer))
                                         and 1 <= factors <= MAX_FACTORS):
        raise ModelError(f"{what} must be an integer from 1 to {MAX_FACTORS:,}, got {factors!r}")


def check_scale(scale):
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real) \
            or not (scale > 0 and np.isfinite(scale)):
        raise ModelError(f"scale must be a positive number, got {scale!r}")


def check_flag(value, what):
    """None (the model's default) or a bool."""
    if value is not None and not isinstance(value, (bool, np.bool_)):
        raise ModelError(f"{what} must be True, False or None, got {value!r}")


class MF(RatingModel):
    """Matrix factorisation ``y_hat = p_u . q_i`` (the notebook's "MF model").

    factors: k, the embedding size (default 10). use_bias: add ``b_u + b_i`` (None: the
    model's default, off for ``mf``, on for ``mfb``/``mfbs``). sigmoid: output
    ``scale * sigmoid(z)`` (None: the model's default; scale 5.0: ratings in (0, 5)).
    l2: L2 coefficient on the factor columns (not the biases), 0 = off; l2_mode: ``"keras"``
    (Keras' ``embeddings_regularizer=l2(c)``: ``c * sum(W**2)`` over the whole matrix added
    to every batch's loss, so every row decays at every step) or ``"per-sample"`` (classic
    SGD MF: ``c * (|p_u|^2 + |q_i|^2)`` per rating, only the touched rows).
    init: ``"uniform"`` (Keras' Embedding default, ``U(-init_scale, init_scale)``,
    init_scale 0.05) or ``"normal"`` (``N(0, init_scale)``). seed: initialisation, shuffling
    and dropout seed.

    Tables: ``users`` rows ``[p_u, b_u]``, ``items`` rows ``[q_i, b_i]`` (bias columns
    only with biases).
    """

    name = "mf"
    kernel = "mf"
    _default_bias = False
    _default_sigmoid = False

    def __init__(self, factors=10, *, use_bias=None, sigmoid=None, scale=5.0, l2=0.0,
                 l2_mode="keras", init="uniform", init_scale=0.05, seed=0):
        self.factors = factors
        self.use_bias = use_bias
        self.sigmoid = sigmoid
        self.scale = scale
        self.l2 = l2
        self.l2_mode = l2_mode
        self.init = init
        self.init_scale = init_scale
        self.seed = seed

    def _validate(self):
        check_factors(self.factors)
        check_flag(self.use_bias, "use_bias")
        check_flag(self.sigmoid, "sigmoid")
        check_l2(self.l2, self.l2_mode)
        check_init(self.init, self.init_scale)
        check_scale(self.scale)

    @property
    def has_bias(self) -> bool:
        return self._default_bias if self.use_bias is None else bool(self.use_bias)

    @property
    def has_sigmoid(self) -> bool:
        return self._default_sigmoid if self.sigmoid is None else bool(self.sigmoid)

    def _design(self, n_users, n_items):
        k = self.factors
        cols = k + (1 if self.has_bias else 0)
        l2 = np.zeros(cols)
        l2[:k] = self.l2

        def table(name, rows):
            return TableSpec(name, rows, cols, init=self.init, scale=self.init_scale, l2=l2,
                             l2_mode=self.l2_mode)

        return Design(
            tables=[table("users", n_users), table("items", n_items)],
            spec=pack(kernel.SPEC, k=k, bias=int(self.has_bias), sigmoid=int(self.has_sigmoid)),
            fspec=np.array([float(self.scale)]),
            workspace=lambda batch: 3 + 6 * cols)  # the fused SGD kernel's constants

    @classmethod
    def gradcheck_configs(cls):
        base = {"factors": 3}
        return [base, {**base, "sigmoid": not cls._default_sigmoid},
                {**base, "l2": 0.05, "l2_mode": "keras"},
                {**base, "l2": 0.05, "l2_mode": "per-sample"}]

    def item_embeddings(self):
        self._require_fitted()
        return self.I_[:, :self.factors]

    @property
    def user_factors_(self):
        return self.U_[:, :self.factors]

    @property
    def item_factors_(self):
        return self.I_[:, :self.factors]

    @property
    def user_bias_(self):
        return self.U_[:, self.factors] if self.has_bias else None

    @property
    def item_bias_(self):
        return self.I_[:, self.factors] if self.has_bias else None


class MFB(MF):
    """Matrix factorisation with biases ``y_hat = p_u . q_i + b_u + b_i`` (``mfb``).
    ``sigmoid=True`` gives ``5 * sigmoid(...)``; ``l2`` the notebook's regularised variant."""

    name = "mfb"
    _default_bias = True


class MFBS(MFB):
    """The notebook's "MF + bias + sigmoid": ``y_hat = 5 * sigmoid(p_u . q_i + b_u + b_i)``."""

    name = "mfbs"
    _default_sigmoid = True
