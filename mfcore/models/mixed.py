"""The notebook's mixed models: matrix factorisation plus a network, ``mixed-bias`` (Mixed
model 1: MF + NN modelling of the bias) and ``mixed-interaction`` (Mixed model 2: MF + NN
modelling of the interaction)."""
from __future__ import annotations

import numpy as np

from ..engine import samples
from ..errors import ModelError
from ..kernels import mlp
from ..kernels import nn as kernel
from .base import PREDICT_CHUNK
from .mf import check_factors, check_init, check_l2, check_scale
from .nn import (DEFAULT_TIME_BINS, DEFAULT_TIME_INPUTS, TIME_FEATURES_DOC, _ProgramModel,
                 check_activation, check_bool, check_rate, check_widths, normalise, per_layer)


class MixedBias(_ProgramModel):
    """Mixed model 1, MF + NN modelling of the bias::

        z = e_u . e_m + head([b_u, b_m])          y_hat = scale * sigmoid(z)  (or z)

    with vector-valued bias embeddings ``b_u``, ``b_m`` and ``head`` = hidden layers
    ``Dense(h, activation) -> [Dropout(rate)]`` then ``Dense(1)``.

    factors: size of ``e_u``, ``e_m`` (the notebook's e_factors, default 10).
    bias_factors: size of ``b_u``, ``b_m`` (b_factors, default 10). hidden: head widths
    (default ``(int(2*bias_factors*0.75),)``; ``()`` gives the linear head
    ``Dense(1)([b_u, b_m]) = W b_u + W' b_m + c``). activation: of the hidden head layers
    (default ``"linear"``: the notebook's Dense has none). dropout: after each hidden head
    layer (default 0.4), one float or one per layer. sigmoid: ``scale * sigmoid(z)`` output
    (default True, scale 5). l2/l2_mode: L2 on all embedding columns (as MF);
    init/init_scale: embedding initialisation (uniform +-0.05); seed.

    Layout: ``U[u] = [e_u (factors), b_u (bias_factors)]``, ``I[i]`` likewise; ``theta``
    the head's weights. The Keras reference ``mixed_bias`` at k is
    ``MixedBias(factors=10, bias_factors=k)`` (:meth:`keras_reference`).
    """

    __doc__ += TIME_FEATURES_DOC

    name = "mixed-bias"

    def __init__(self, factors=10, *, bias_factors=10, hidden=None, activation="linear",
                 dropout=0.4, sigmoid=True, scale=5.0, l2=0.0, l2_mode="keras",
                 init="uniform", init_scale=0.05, time_features=False,
                 time_inputs=DEFAULT_TIME_INPUTS, time_bins=DEFAULT_TIME_BINS,
                 time_factors=None, seed=0):
        self.factors = factors
        self.bias_factors = bias_factors
        self.time_features = time_features
        self.time_inputs = normalise(time_inputs)
        self.time_bins = time_bins
        self.time_factors = time_factors
        self.hidden = normalise(hidden)
        self.activation = activation
        self.dropout = normalise(dropout)
        self.sigmoid = sigmoid
        self.scale = scale
        self.l2 = l2
        self.l2_mode = l2_mode
        self.init = init
        self.init_scale = init_scale
        self.seed = seed

    def _validate(self):
        check_factors(self.factors)
        check_factors(self.bias_factors, "bias_factors")
        self._hidden = (check_widths(self.hidden) if self.hidden is not None
                        else (max(1, int(2 * self.bias_factors * 0.75)),))
        check_activation(self.activation)
        self._dropouts = per_layer(self.dropout, len(self._hidden), "dropout", check_rate)
        check_bool(self.sigmoid, "sigmoid")
        check_scale(self.scale)
        check_l2(self.l2, self.l2_mode)
        check_init(self.init, self.init_scale)
        self._check_time_params()

    @classmethod
    def keras_reference(cls, k):
        """The Keras reference ``mixed_bias`` at k: 10 dot factors, k bias factors."""
        return cls(factors=10, bias_factors=k)

    @property
    def _cols(self):
        return self.factors + self.bias_factors

    def _design(self, n_users, n_items):
        f, bf = self.factors, self.bias_factors
        b = mlp.ProgramBuilder(fspec_base=1)
        x0, d, time_head = self._time_input(b, 2 * bf, bf)
        x = x0
        for h, rate in zip(self._hidden, self._dropouts):
            x = b.dense(x, d, h, self.activation)
            d = h
            if rate > 0:
                x = b.dropout(x, d, rate)
        out = b.dense(x, d, 1, "linear")
        tables = (self._embedding_tables(n_users, n_items, self._cols, self.l2)
                  + self._time_tables(bf))
        return self._program_design(tables, b, self.scale, in_u=x0, u_col=f, u_len=bf,
                                    in_i=x0 + bf, i_col=f, i_len=bf,
                                    dot_mode=kernel.DOT_TABLES, dot_u=0, dot_i=0, dot_len=f,
                                    out=out, sigmoid=int(self.sigmoid), **time_head)

    @classmethod
    def gradcheck_configs(cls):
        base = {"factors": 3, "bias_factors": 2}
        return [
            base,
            {**base, "hidden": (), "sigmoid": False},
            {**base, "hidden": (4, 3), "activation": "relu", "dropout": (0.3, 0.0)},
            {**base, "hidden": (4, 3), "activation": "elu", "dropout": (0.3, 0.0),
             "sigmoid": False},
            {**base, "hidden": (3,), "l2": 0.05, "l2_mode": "keras"},
            {**base, "hidden": (3,), "activation": "relu", "time_features": True,
             "time_bins": 4, "l2": 0.05, "l2_mode": "per-sample",
             "time_inputs": ("bin", "day", "dev")},
        ]

    def item_embeddings(self):
        """The items' dot-product factors ``e_m``."""
        self._require_fitted()
        return self.I_[:, :self.factors]


class MixedInteraction(_ProgramModel):
    """Mixed model 2, MF + NN modelling of the interaction::

        z = T(e_u) . T'(e_m) + b_u + b_m          y_hat = scale * sigmoid(z)  (or z)

    with towers ``T``, ``T'`` of the same shape and separate weights: for each width in
    ``tower`` a ``Dense`` layer; all but the last use ``activation`` and are followed by
    ``Dropout(dropout)`` when it is > 0; the last is linear (it gives the embedding that
    enters the dot product). Scalar biases ``b_u``, ``b_m`` are embedding columns.

    factors: size of ``e_u``, ``e_m`` (default 10). tower: widths (default
    ``(int(0.75*factors),)``, the notebook's linear tower ``Dense(int(0.75k))``; longer
    tuples give the DNN towers). activation: hidden tower layers' activation (default
    relu; unused with one layer). dropout: after hidden tower layers (default 0).
    tower_bias: Dense layers with bias (default True, as Keras). sigmoid/scale: output
    ``scale * sigmoid(z)`` (default True, 5). l2/l2_mode: L2 on the factor columns (not the
    scalar biases); init/init_scale; seed.

    Layout: ``U[u] = [e_u (factors), b_u]``, ``I[i] = [e_m (factors), b_m]``; ``theta`` both
    towers' weights. The Keras reference ``mixed_interaction`` at k is
    ``MixedInteraction(factors=k)``.
    """

    __doc__ += TIME_FEATURES_DOC

    name = "mixed-interaction"

    def __init__(self, factors=10, *, tower=None, activation="relu", dropout=0.0,
                 tower_bias=True, sigmoid=True, scale=5.0, l2=0.0, l2_mode="keras",
                 init="uniform", init_scale=0.05, time_features=False,
                 time_inputs=DEFAULT_TIME_INPUTS, time_bins=DEFAULT_TIME_BINS,
                 time_factors=None, seed=0):
        self.factors = factors
        self.time_features = time_features
        self.time_inputs = normalise(time_inputs)
        self.time_bins = time_bins
        self.time_factors = time_factors
        self.tower = normalise(tower)
        self.activation = activation
        self.dropout = normalise(dropout)
        self.tower_bias = tower_bias
        self.sigmoid = sigmoid
        self.scale = scale
        self.l2 = l2
        self.l2_mode = l2_mode
        self.init = init
        self.init_scale = init_scale
        self.seed = seed

    def _validate(self):
        check_factors(self.factors)
        self._tower = (check_widths(self.tower, "tower") if self.tower is not None
                       else (max(1, int(self.factors * 0.75)),))
        if not self._tower:
            raise ModelError("tower needs at least one layer width (the width of the "
                             "embeddings entering the dot product)")
        check_activation(self.activation)
        self._dropouts = per_layer(self.dropout, len(self._tower) - 1, "dropout", check_rate)
        check_bool(self.tower_bias, "tower_bias")
        check_bool(self.sigmoid, "sigmoid")
        check_scale(self.scale)
        check_l2(self.l2, self.l2_mode)
        check_init(self.init, self.init_scale)
        self._check_time_params()

    @classmethod
    def keras_reference(cls, k):
        return cls(factors=k)

    def _tower_ops(self, b, x, d):
        n = len(self._tower)
        for j, h in enumerate(self._tower):
            last = j == n - 1
            x = b.dense(x, d, h, "linear" if last else self.activation, bias=self.tower_bias)
            d = h
            if not last and self._dropouts[j] > 0:
                x = b.dropout(x, d, self._dropouts[j])
        return x, d

    def _design(self, n_users, n_items):
        k = self.factors
        b = mlp.ProgramBuilder(fspec_base=1)
        tu, du, time_head = self._time_input(b, k, k)  # the user tower gets the time inputs
        ti = b.tensor(k)
        ou, d = self._tower_ops(b, tu, du)
        om, _ = self._tower_ops(b, ti, k)
        l2 = np.zeros(k + 1)
        l2[:k] = self.l2
        tables = self._embedding_tables(n_users, n_items, k + 1, l2) + self._time_tables(k)
        return self._program_design(tables, b, self.scale, notes={"item_out": (om, d)},
                                    in_u=tu, u_col=0, u_len=k, in_i=ti, i_col=0, i_len=k,
                                    dot_mode=kernel.DOT_TENSORS, dot_u=ou, dot_i=om, dot_len=d,
                                    bias_u=k, bias_i=k, sigmoid=int(self.sigmoid), **time_head)

    @classmethod
    def gradcheck_configs(cls):
        base = {"factors": 3}
        return [
            base,
            {**base, "tower": (4, 3), "activation": "tanh", "dropout": 0.3,
             "sigmoid": False},
            {**base, "tower": (2,), "tower_bias": False, "l2": 0.05, "l2_mode": "keras"},
            {**base, "tower": (4, 3), "dropout": 0.2, "time_features": True, "time_bins": 3,
             "time_factors": 2, "time_inputs": ("bin", "day", "dev")},
        ]

    def item_embeddings(self):
        """The item tower's outputs ``T'(e_m)``, the vectors that enter the dot product."""
        self._require_fitted()
        t, d = self.design_.notes["item_out"]
        n = self.I_.shape[0]
        out = np.zeros((n, d), np.float32)
        chunk = max(1, min(PREDICT_CHUNK, n))
        ws = self._workspace(chunk)
        # the item tower reads no time inputs: a zero bin and drift fill the records
        context = ((np.zeros(n, np.int32), np.zeros(n, np.float32), np.full(n, -1, np.int32))
                   if self.time_features else ())
        S = samples.pack(np.zeros(n, np.int32), np.arange(n, dtype=np.int32), None, context)
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            kernel.tensor_values(self.tables_.arena, self._params(), S, start, m, ws, t, d,
                                 out[start:start + m])
        return out
