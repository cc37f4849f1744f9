"""The baseline predictor ``mu + b_u + b_i`` (what Surprise calls BaselineOnly)."""
from __future__ import annotations

import numpy as np

from ..engine.tables import TableSpec
from .base import Design, RatingModel
from .mf import check_l2


class Baseline(RatingModel):
    """``y_hat = mu + b_u + b_i``: the training mean ``mu`` (fixed) plus a learned bias per
    user and per item, both starting at zero.

    l2: L2 coefficient on the biases (default 0); l2_mode: ``"keras"`` (whole-matrix, as
    Keras' ``embeddings_regularizer``) or ``"per-sample"`` (only the rows a rating touches,
    classic SGD). seed: shuffling seed. Tables: ``users`` rows ``[b_u]``, ``items`` rows
    ``[b_i]``.
    """

    name = "baseline"
    kernel = "baseline"

    def __init__(self, *, l2=0.0, l2_mode="keras", seed=0):
        self.l2 = l2
        self.l2_mode = l2_mode
        self.seed = seed

    def _validate(self):
        check_l2(self.l2, self.l2_mode)

    def _design(self, n_users, n_items):
        tables = [TableSpec(name, rows, 1, init="zeros", l2=self.l2, l2_mode=self.l2_mode)
                  for name, rows in (("users", n_users), ("items", n_items))]
        return Design(tables=tables, spec=np.zeros(0, np.int64),
                      fspec=np.array([self.global_mean_]), workspace=lambda batch: 1)

    @classmethod
    def gradcheck_configs(cls):
        return [{}, {"l2": 0.05, "l2_mode": "keras"}, {"l2": 0.05, "l2_mode": "per-sample"}]

    @property
    def user_bias_(self):
        return self.U_[:, 0]

    @property
    def item_bias_(self):
        return self.I_[:, 0]
