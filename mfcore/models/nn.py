"""Neural models of the notebook: ``linear``, ``nn`` and ``residual`` (its "todo")."""
from __future__ import annotations

import numbers

import numpy as np

from ..errors import ModelError
from ..kernels import mlp
from ..kernels import nn as kernel
from ..kernels.dispatch import KIND_NN
from .base import RatingModel
from .mf import check_factors, check_init, check_l2, init_table

BN_MOMENTUM = 0.99
BN_EPSILON = 1e-3


# ---- validation helpers shared with models.mixed ------------------------------------------
def check_activation(activation, what="activation"):
    if activation not in mlp.ACTIVATIONS:
        raise ModelError(f"{what} must be one of {', '.join(mlp.ACTIVATIONS)}, "
                         f"got {activation!r}")


def check_widths(widths, what="hidden"):
    """A tuple of positive ints (an empty tuple is allowed)."""
    if isinstance(widths, (int, np.integer)) and not isinstance(widths, bool):
        widths = (widths,)
    if not isinstance(widths, (tuple, list)):
        raise ModelError(f"{what} must be a tuple of positive layer widths, got {widths!r}")
    out = []
    for w in widths:
        if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 1:
            raise ModelError(f"{what} must be a tuple of positive integers, got {widths!r}")
        out.append(int(w))
    return tuple(out)


def check_rate(rate, what):
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not (0.0 <= rate < 1.0):
        raise ModelError(f"{what} must be a number in [0, 1), got {rate!r}")
    return float(rate)


def per_layer(value, n, what, check):
    """Expand a scalar to ``n`` layers or check a per-layer tuple's length."""
    if isinstance(value, (tuple, list)):
        if len(value) != n:
            raise ModelError(f"{what} has {len(value)} entries but there are {n} hidden "
                             f"layers; give one value or one per layer")
        return tuple(check(v, what) for v in value)
    return (check(value, what),) * n


def check_bool(v, what):
    if not isinstance(v, (bool, np.bool_)):
        raise ModelError(f"{what} must be True or False, got {v!r}")
    return bool(v)


def normalise(v):
    """Lists (as from JSON) to tuples, so repr and comparisons are stable."""
    return tuple(v) if isinstance(v, list) else v


def l2_columns(coeffs, mode):
    """(user_keras, item_keras, user_sample, item_sample) from per-column coefficients."""
    cu, ci = coeffs
    zu, zi = np.zeros_like(cu), np.zeros_like(ci)
    if mode == "keras":
        return cu, ci, zu, zi
    return zu, zi, cu, ci


class _ProgramModel(RatingModel):
    """A model whose kernel is :mod:`mfcore.kernels.nn` (a layer program plus a head)."""

    kind = KIND_NN

    def _assemble(self, header, builder, scale, rng, theta_size=None):
        """spec/fspec/theta/state from a header dict and a finished ProgramBuilder."""
        spec_head = np.full(kernel.HEADER_LEN, -1, np.int64)
        spec_head[kernel.H_P0] = kernel.HEADER_LEN
        for key, value in header.items():
            spec_head[key] = value
        spec = np.concatenate([spec_head, builder.program()])
        fspec = np.concatenate([[float(scale)], builder.fspec()])
        theta = np.zeros(builder.n_theta, np.float32)
        builder.init_theta(theta, rng)
        state = np.zeros(builder.n_state, np.float32)
        builder.init_state(state)
        self._ws_rows = (builder.scratch, builder.wa)
        return theta, state, spec, fspec

    def _workspace_size(self, batch):
        if getattr(self, "_ws_rows", None) is None:
            self._build(1, 1, np.random.default_rng(0))
        scratch, wa = self._ws_rows
        return scratch + max(1, batch) * 2 * wa

    def layers(self):
        """The layer sequence of the network, e.g. ``[("dense", 20, 15, "relu", True),
        ("dropout", 0.4), ("dense", 15, 1, "linear", True)]`` (see
        :func:`mfcore.kernels.mlp.describe`)."""
        spec, fspec = self.spec_, self.fspec_
        if spec is None:
            _, _, _, _, spec, fspec = self._build(1, 1, np.random.default_rng(0))
        return mlp.describe(spec, int(spec[kernel.H_P0]), fspec)


class NN(_ProgramModel):
    """The notebook's "nn model": an MLP over ``[e_u, e_m]``::

        x = [e_u, e_m]  (2*factors)
        [Dropout(input_dropout)]
        for each hidden width h:  Dense(h, activation) -> [Dropout(rate)] -> [BatchNorm]
        y_hat = Dense(1)(x)                          (linear output)

    factors: embedding size k (default 10). hidden: tuple of hidden widths (default
    ``(int(2*factors*0.75),)``, the notebook's one-layer model; ``()`` gives the linear
    model). activation: of the hidden layers (``"relu"``; also ``"linear"``, ``"tanh"``,
    ``"sigmoid"``, ``"elu"``, ``"leaky_relu"``, ``"softplus"``). dropout: rate after each
    hidden layer, one float for all or a tuple per layer (0 = no dropout layer; default 0.4).
    input_dropout: rate on the concatenated embeddings (default 0). batch_norm: Keras
    BatchNormalization (momentum 0.99, epsilon 1e-3) after each hidden layer's dropout (or
    after the dense layer when it has none), a bool for all or a tuple per layer.
    l2/l2_mode: L2 on the embedding tables, as :class:`~mfcore.models.mf.MF`.
    init/init_scale: embedding initialisation (Keras: uniform +-0.05); dense kernels are
    glorot-uniform with zero biases. seed: initialisation, shuffling and dropout seed.

    Layout: ``U[u] = e_u``, ``I[i] = e_m`` (k columns each); ``theta`` the dense weights
    (and batch-norm gamma/beta), ``state`` the batch-norm moving mean/variance.

    The notebook's variants (k = factors)::

        two-layer 1/2:   NN(k)                                   # Dense(1.5k) relu, Dropout .4
        two-layer 3/4:   NN(k, input_dropout=0.3, hidden=(int(2*k*0.7),), dropout=0.75)
        three-layer 1/2: NN(k, hidden=(int(2*k*0.75), int(2*k*0.3)), dropout=0.7)
        three-layer 3:   NN(k, hidden=(int(2*k*0.75), int(2*k*0.2)), dropout=(0.4, 0))
        three-layer 5/6: NN(k, hidden=(int(2*k*0.75), int(2*k*0.2)), dropout=(0.4, 0),
                            batch_norm=True)
    """

    name = "nn"

    def __init__(self, factors=10, *, hidden=None, activation="relu", dropout=0.4,
                 input_dropout=0.0, batch_norm=False, l2=0.0, l2_mode="keras",
                 init="uniform", init_scale=0.05, seed=0):
        self.factors = factors
        self.hidden = normalise(hidden)
        self.activation = activation
        self.dropout = normalise(dropout)
        self.input_dropout = input_dropout
        self.batch_norm = normalise(batch_norm)
        self.l2 = l2
        self.l2_mode = l2_mode
        self.init = init
        self.init_scale = init_scale
        self.seed = seed
        self._validate()
        self._reset()

    def _validate(self):
        check_factors(self.factors)
        self._hidden = (check_widths(self.hidden) if self.hidden is not None
                        else self._default_hidden())
        check_activation(self.activation)
        n = len(self._hidden)
        self._dropouts = per_layer(self.dropout, n, "dropout", check_rate)
        self._bns = per_layer(self.batch_norm, n, "batch_norm", check_bool)
        self._input_dropout = check_rate(self.input_dropout, "input_dropout")
        check_l2(self.l2, self.l2_mode)
        check_init(self.init, self.init_scale)

    def _default_hidden(self):
        return (max(1, int(2 * self.factors * 0.75)),)

    @classmethod
    def keras_reference(cls, k):
        """The architecture of the Keras reference figures' ``nn`` at ``k`` factors."""
        return cls(factors=k)

    def _body(self, b, x, d):
        """Emit the hidden layers from tensor ``x`` of width ``d``; return (tensor, width)."""
        for h, rate, bn in zip(self._hidden, self._dropouts, self._bns):
            x = b.dense(x, d, h, self.activation)
            d = h
            if rate > 0:
                x = b.dropout(x, d, rate)
            if bn:
                x = b.batch_norm(x, d, BN_MOMENTUM, BN_EPSILON)
        return x, d

    def _build(self, n_users, n_items, rng):
        k = self.factors
        U = init_table(rng, n_users, k, self.init, self.init_scale)
        I = init_table(rng, n_items, k, self.init, self.init_scale)
        b = mlp.ProgramBuilder(fspec_base=1)
        x = b.tensor(2 * k)
        d = 2 * k
        if self._input_dropout > 0:
            x = b.dropout(x, d, self._input_dropout)
        x, d = self._body(b, x, d)
        out = b.dense(x, d, 1, "linear")
        header = {kernel.H_IN_U: 0, kernel.H_U_COL: 0, kernel.H_U_LEN: k,
                  kernel.H_IN_I: k, kernel.H_I_COL: 0, kernel.H_I_LEN: k,
                  kernel.H_DOT_MODE: kernel.DOT_NONE, kernel.H_DOT_LEN: 0,
                  kernel.H_OUT: out, kernel.H_SIGMOID: 0}
        theta, state, spec, fspec = self._assemble(header, b, 1.0, rng)
        return U, I, theta, state, spec, fspec

    def _l2_columns(self):
        c = np.full(self.factors, self.l2, np.float32)
        return l2_columns((c, c.copy()), self.l2_mode)

    @classmethod
    def gradcheck_configs(cls):
        base = {"factors": 3}
        return [
            {**base, "hidden": (4,), "dropout": 0.0},
            {**base, "hidden": (5, 3), "dropout": (0.5, 0.0), "input_dropout": 0.3},
            {**base, "hidden": (5, 3), "dropout": (0.4, 0.0), "batch_norm": True},
            {**base, "hidden": (4, 3), "activation": "tanh", "dropout": 0.3,
             "batch_norm": (False, True)},
            {**base, "hidden": (4,), "activation": "elu", "dropout": 0.0},
            {**base, "hidden": (4,), "activation": "sigmoid", "dropout": 0.0},
            {**base, "hidden": (4,), "activation": "softplus", "dropout": 0.0},
            {**base, "hidden": (4,), "activation": "leaky_relu", "dropout": 0.0},
            {**base, "hidden": (4,), "dropout": 0.2, "l2": 0.05, "l2_mode": "keras"},
            {**base, "hidden": (4,), "dropout": 0.0, "l2": 0.05, "l2_mode": "per-sample"},
        ]

    def item_embeddings(self):
        self._require_fitted()
        return self.I_[:, :self.factors]

    def user_embeddings(self):
        self._require_fitted()
        return self.U_[:, :self.factors]


class Linear(NN):
    """The notebook's "linear model": ``y_hat = W [e_u, e_m] + c`` (Keras ``Dense(1)`` over
    the concatenated embeddings; ``W [e_u, e_m] = W_u e_u + W_m e_m``).

    factors: embedding size k (default 10); l2/l2_mode/init/init_scale/seed as
    :class:`NN`. Layout: ``U[u] = e_u``, ``I[i] = e_m``, ``theta = [W (2k), c]``.
    """

    name = "linear"

    def __init__(self, factors=10, *, l2=0.0, l2_mode="keras", init="uniform",
                 init_scale=0.05, seed=0):
        super().__init__(factors, hidden=(), dropout=0.0, l2=l2, l2_mode=l2_mode, init=init,
                         init_scale=init_scale, seed=seed)

    @classmethod
    def gradcheck_configs(cls):
        return [{"factors": 3}, {"factors": 2, "l2": 0.05, "l2_mode": "keras"}]


class ResidualNN(NN):
    """An MLP with residual blocks over ``[e_u, e_m]`` (the notebook's "todo: NN model with
    residual block"). Our choice of block, for each width ``h`` in ``hidden``::

        a = Dense(h, activation)(x)
        c = Dense(h)(a)                                   # linear
        s = x if width(x) == h else Dense(h, use_bias=False)(x)   # linear projection
        x = activation(c + s)  -> [Dropout(rate)] -> [BatchNorm]

    i.e. an identity skip around two dense layers (the classic ResNet "basic block" with the
    activation after the addition), a bias-free linear projection only where the width
    changes; then ``y_hat = Dense(1)(x)``.

    factors: k (default 10). hidden: block widths (default ``(2*factors,)``: one block as
    wide as the input, so the skip is an identity). activation (default relu), dropout
    (after each block, default 0.4), input_dropout, batch_norm, l2/l2_mode, init/init_scale,
    seed: as :class:`NN`.
    """

    name = "residual"

    def __init__(self, factors=10, *, hidden=None, activation="relu", dropout=0.4,
                 input_dropout=0.0, batch_norm=False, l2=0.0, l2_mode="keras",
                 init="uniform", init_scale=0.05, seed=0):
        super().__init__(factors, hidden=hidden, activation=activation, dropout=dropout,
                         input_dropout=input_dropout, batch_norm=batch_norm, l2=l2,
                         l2_mode=l2_mode, init=init, init_scale=init_scale, seed=seed)

    def _default_hidden(self):
        return (2 * self.factors,)

    def _body(self, b, x, d):
        for h, rate, bn in zip(self._hidden, self._dropouts, self._bns):
            a = b.dense(x, d, h, self.activation)
            c = b.dense(a, h, h, "linear")
            s = x if d == h else b.dense(x, d, h, "linear", bias=False)
            x = b.add(c, s, h, self.activation)
            d = h
            if rate > 0:
                x = b.dropout(x, d, rate)
            if bn:
                x = b.batch_norm(x, d, BN_MOMENTUM, BN_EPSILON)
        return x, d

    @classmethod
    def gradcheck_configs(cls):
        base = {"factors": 3}
        return [
            {**base, "hidden": (6,), "dropout": 0.0},
            {**base, "hidden": (6, 4), "dropout": (0.3, 0.0), "batch_norm": (False, True),
             "activation": "tanh"},
            {**base, "hidden": (4,), "dropout": 0.3, "input_dropout": 0.2},
        ]
