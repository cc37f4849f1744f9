"""Neural models of the notebook: ``linear``, ``nn`` and ``residual`` (its "todo")."""
from __future__ import annotations

import numbers

import numpy as np

from ..engine.tables import TableSpec
from ..bounds import check_bins
from ..errors import ModelError
from ..features.time import TimeAxis
from ..kernels import mlp
from ..kernels import nn as kernel
from ..layout import pack
from .base import Design, RatingModel
from .mf import check_factors, check_init, check_l2

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


#: exponent of dev_u(t) for the time inputs (Koren's beta)
TIME_BETA = 0.4
#: the time inputs ``time_inputs`` chooses from
TIME_INPUTS = ("bin", "day", "dev")
#: chosen on an inner per-user temporal split of ml-100k's temporal training part (5 seeds
#: each): the bin alone did best for nn, residual and linear; the drift input made every
#: model worse there, the (user, day) input did not help (see the README)
DEFAULT_TIME_INPUTS = ("bin",)
#: bins of the time-bin input, chosen on the same inner split (20 fresh seeds per model):
#: 12 bins (2.5 weeks each on ml-100k's seven months) did better than Koren's 30 (which
#: were 10 weeks each on Netflix's six years) for all five models
DEFAULT_TIME_BINS = 12

TIME_FEATURES_DOC = """
    Time inputs (``time_features=True``, default False; the notebook's unfinished "Temporal
    information"), appended to the MLP's input (to the user tower's, for
    mixed-interaction); ``time_inputs`` chooses them (default ``("bin",)``):

    - ``"bin"``: the rating's time bin (``time_bins`` equal bins over the training days,
      default 12) gets an embedding of ``time_factors`` columns (table ``time_bins``;
      default: the width of the embeddings beside it);
    - ``"day"``: the rating's (user, day) gets a one-column embedding (table
      ``user_days``, Koren's day-specific user bias ``b_{u,t}``: one zero-initialised row
      per (user, day) of training; a pair training never had gives 0);
    - ``"dev"``: the user's drift ``dev_u(t) = sign(t - t_u) |t - t_u|^0.4`` (t in days,
      t_u the user's mean training day, t held inside the user's training days), divided
      by its standard deviation over the training ratings.

    Embedding L2 and init as the other embeddings. Prediction without a timestamp uses
    the user's last training day; days outside the training span fall in the first or
    the last bin.
"""


class _ProgramModel(RatingModel):
    """A model whose kernel is :mod:`mfcore.kernels.nn` (a layer program plus a head),
    with the optional time inputs of :data:`TIME_FEATURES_DOC`."""

    kernel = "nn"
    time_features = False
    time_inputs = DEFAULT_TIME_INPUTS
    time_bins = DEFAULT_TIME_BINS
    time_factors = None

    def _v1_kernel_settings(self, design):
        """0.1.0's head had no time fields (it ended at ``sigmoid``)."""
        spec = np.asarray(design.spec)
        p0 = int(spec[kernel.HEAD.p0])
        head = spec[:kernel.V1_HEAD_LEN].copy()
        head[kernel.HEAD.p0] = kernel.V1_HEAD_LEN
        return np.concatenate([head, spec[p0:]]), design.fspec

    # ---- time inputs -------------------------------------------------------------------------
    def _check_time_params(self):
        check_bool(self.time_features, "time_features")
        inputs = self.time_inputs
        if isinstance(inputs, str):
            inputs = tuple(v.strip() for v in inputs.split(",") if v.strip())
        if not isinstance(inputs, (tuple, list)) or not inputs \
                or any(v not in TIME_INPUTS for v in inputs) or len(set(inputs)) != len(inputs):
            raise ModelError(f"time_inputs must be a non-empty selection of "
                             f"{', '.join(TIME_INPUTS)}, got {self.time_inputs!r}")
        self._time_inputs = tuple(v for v in TIME_INPUTS if v in inputs)
        check_bins(self.time_bins, "time_bins")
        if self.time_factors is not None:
            check_factors(self.time_factors, "time_factors")

    def _time_width(self, beside):
        """Columns of a time-bin embedding: ``time_factors``, or ``beside`` by default."""
        return int(self.time_factors) if self.time_factors is not None else int(beside)

    def _time_input(self, b, width, beside):
        """An input tensor of ``width`` units plus the time inputs when they are on:
        ``(tensor, total width, head fields)``."""
        if not self.time_features:
            return b.tensor(width), width, {}
        used = self._time_inputs
        tw = self._time_width(beside) if "bin" in used else 0
        ud = 1 if "day" in used else 0
        dv = 1 if "dev" in used else 0
        x = b.tensor(width + tw + ud + dv)
        head = {}
        if tw:
            head.update(in_t=x + width, t_len=tw)
        if ud:
            head.update(in_ud=x + width + tw, ud_len=ud)
        if dv:
            head.update(in_dev=x + width + tw + ud)
        return x, width + tw + ud + dv, head

    def _time_tables(self, beside):
        if not self.time_features:
            return []
        # both tables exist (the kernel knows them by position); an unused one has no rows
        ax = getattr(self, "time_axis_", None)
        used = self._time_inputs
        n_ud = (ax.n_user_days if ax is not None else 1) if "day" in used else 0
        return [TableSpec("time_bins", int(self.time_bins) if "bin" in used else 0,
                          self._time_width(beside), init=self.init, scale=self.init_scale,
                          l2=self.l2, l2_mode=self.l2_mode),
                TableSpec("user_days", n_ud, 1, init="zeros", l2=self.l2,
                          l2_mode=self.l2_mode)]

    def _fit_context(self, train, validation):
        self.time_axis_ = None
        if not self.time_features:
            return
        if len(train) and not np.any(train.timestamps != 0):
            raise ModelError(f"{self.name} with time_features needs timestamps, and the "
                             f"training ratings have none (every timestamp is 0)")
        ax = TimeAxis.fit(train.users, train.timestamps, train.n_users, self.time_bins,
                          TIME_BETA)
        dev = ax.dev(train.users, ax.days(train.users, train.timestamps))  # inside the span
        sd = float(np.std(dev)) if len(dev) else 0.0
        self.dev_scale_ = sd if sd > 0 and np.isfinite(sd) else 1.0
        self.time_axis_ = ax

    def _context(self, users, items, timestamps):
        ax = getattr(self, "time_axis_", None)
        if ax is None:
            return ()
        days = ax.days(users, timestamps)
        dev = ax.dev(users, ax.clamp_to_user(users, days)) / self.dev_scale_
        return (ax.bins(days), dev.astype(np.float32), ax.user_day_rows(users, days))

    def _context_state(self):
        ax = getattr(self, "time_axis_", None)
        if ax is None:
            return {}
        out = {f"time.{k}": v for k, v in ax.state().items()}
        out["time_dev_scale"] = np.float64(self.dev_scale_)
        return out

    def _load_context(self, arrays):
        self.time_axis_ = None
        if not self.time_features:
            return
        self.time_axis_ = TimeAxis.from_state(
            {k[5:]: v for k, v in arrays.items() if k.startswith("time.")},
            len(self.user_ids_))
        if self.time_axis_.n_bins != self.time_bins:
            raise ValueError("the time axis does not have time_bins bins")
        scale = float(arrays["time_dev_scale"])
        if not (scale > 0 and np.isfinite(scale)):
            raise ValueError("time_dev_scale is not a positive number")
        self.dev_scale_ = scale

    def _program_design(self, tables, builder, scale, notes=None, **head):
        """A Design from the two tables, a finished ProgramBuilder and the head's fields
        (:data:`mfcore.kernels.nn.HEAD`; fields not given are -1, "none")."""
        values = {f: -1 for f in kernel.HEAD._fields}
        values.update(head, p0=len(kernel.HEAD))
        spec = np.concatenate([pack(kernel.HEAD, **values), builder.program()])
        fspec = np.concatenate([[float(scale)], builder.fspec()])
        row_cols = sum(t.cols for t in tables)

        def init_dense(theta, state, rng):
            builder.init_theta(theta, rng)
            builder.init_state(state)

        return Design(tables=tables, spec=spec, fspec=fspec, theta_size=builder.n_theta,
                      state_size=builder.n_state, init_dense=init_dense,
                      workspace=lambda batch: kernel.workspace_size(
                          builder.workspace_size(batch), batch, row_cols),
                      notes=notes or {})

    def _embedding_tables(self, n_users, n_items, cols, l2):
        """The ``users`` and ``items`` tables: ``cols`` columns, per-column L2 ``l2``."""
        return [TableSpec(name, rows, cols, init=self.init, scale=self.init_scale, l2=l2,
                          l2_mode=self.l2_mode)
                for name, rows in (("users", n_users), ("items", n_items))]

    def layers(self):
        """The layer sequence of the network, e.g. ``[("dense", 20, 15, "relu", True),
        ("dropout", 0.4), ("dense", 15, 1, "linear", True)]`` (see
        :func:`mfcore.kernels.mlp.describe`)."""
        if getattr(self, "spec_", None) is not None:
            spec, fspec = self.spec_, self.fspec_
        else:
            self._check()
            d = self._design(1, 1)
            spec, fspec = d.spec, d.fspec
        return mlp.describe(spec, int(spec[kernel.HEAD.p0]), fspec)


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

    __doc__ += TIME_FEATURES_DOC

    name = "nn"

    def __init__(self, factors=10, *, hidden=None, activation="relu", dropout=0.4,
                 input_dropout=0.0, batch_norm=False, l2=0.0, l2_mode="keras",
                 init="uniform", init_scale=0.05, time_features=False,
                 time_inputs=DEFAULT_TIME_INPUTS, time_bins=DEFAULT_TIME_BINS,
                 time_factors=None, seed=0):
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
        self.time_features = time_features
        self.time_inputs = normalise(time_inputs)
        self.time_bins = time_bins
        self.time_factors = time_factors
        self.seed = seed

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
        self._check_time_params()

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

    def _design(self, n_users, n_items):
        k = self.factors
        b = mlp.ProgramBuilder(fspec_base=1)
        x0, d, time_head = self._time_input(b, 2 * k, k)
        x = x0
        if self._input_dropout > 0:
            x = b.dropout(x, d, self._input_dropout)
        x, d = self._body(b, x, d)
        out = b.dense(x, d, 1, "linear")
        tables = self._embedding_tables(n_users, n_items, k, self.l2) + self._time_tables(k)
        return self._program_design(tables, b, 1.0, in_u=x0, u_col=0, u_len=k, in_i=x0 + k,
                                    i_col=0, i_len=k, dot_mode=kernel.DOT_NONE, dot_len=0,
                                    out=out, sigmoid=0, **time_head)

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
            {**base, "hidden": (4,), "dropout": 0.2, "time_features": True, "time_bins": 4,
             "time_factors": 2, "time_inputs": ("bin", "day", "dev")},
            {**base, "hidden": (4,), "dropout": 0.0, "time_features": True,
             "time_inputs": ("day",)},
            {**base, "hidden": (4,), "dropout": 0.0, "time_features": True, "time_bins": 3,
             "l2": 0.05, "l2_mode": "keras", "batch_norm": True},
        ]

    def item_embeddings(self):
        self._require_fitted()
        return self.I_[:, :self.factors]


class Linear(NN):
    """The notebook's "linear model": ``y_hat = W [e_u, e_m] + c`` (Keras ``Dense(1)`` over
    the concatenated embeddings; ``W [e_u, e_m] = W_u e_u + W_m e_m``).

    factors: embedding size k (default 10); l2/l2_mode/init/init_scale/seed as
    :class:`NN`. Layout: ``U[u] = e_u``, ``I[i] = e_m``, ``theta = [W (2k), c]``.
    """

    __doc__ += TIME_FEATURES_DOC

    name = "linear"

    def __init__(self, factors=10, *, l2=0.0, l2_mode="keras", init="uniform",
                 init_scale=0.05, time_features=False, time_inputs=DEFAULT_TIME_INPUTS,
                 time_bins=DEFAULT_TIME_BINS, time_factors=None, seed=0):
        super().__init__(factors, hidden=(), dropout=0.0, l2=l2, l2_mode=l2_mode, init=init,
                         init_scale=init_scale, time_features=time_features,
                         time_inputs=time_inputs, time_bins=time_bins,
                         time_factors=time_factors, seed=seed)

    @classmethod
    def gradcheck_configs(cls):
        return [{"factors": 3}, {"factors": 2, "l2": 0.05, "l2_mode": "keras"},
                {"factors": 2, "time_features": True, "time_bins": 3,
                 "time_inputs": ("bin", "day", "dev")}]


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

    __doc__ += TIME_FEATURES_DOC

    name = "residual"

    def __init__(self, factors=10, *, hidden=None, activation="relu", dropout=0.4,
                 input_dropout=0.0, batch_norm=False, l2=0.0, l2_mode="keras",
                 init="uniform", init_scale=0.05, time_features=False,
                 time_inputs=DEFAULT_TIME_INPUTS, time_bins=DEFAULT_TIME_BINS,
                 time_factors=None, seed=0):
        super().__init__(factors, hidden=hidden, activation=activation, dropout=dropout,
                         input_dropout=input_dropout, batch_norm=batch_norm, l2=l2,
                         l2_mode=l2_mode, init=init, init_scale=init_scale,
                         time_features=time_features, time_inputs=time_inputs,
                         time_bins=time_bins, time_factors=time_factors, seed=seed)

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
            {**base, "hidden": (5,), "dropout": 0.0, "time_features": True, "time_bins": 4,
             "input_dropout": 0.2, "time_inputs": ("bin", "dev")},
        ]
