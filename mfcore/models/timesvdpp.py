"""Koren's factor models with implicit feedback and time: ``svdpp``, ``timesvd``,
``timesvdpp`` (formulas and gradients in :mod:`mfcore.kernels.timesvdpp`).

Trained by default with per-sample SGD (Koren's own method) with per-term learning-rate
multipliers and L2, chosen on a validation split carved from ml-100k fold u1's training
part (``benchmarks/tune_koren.py``), never on a test fold.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..engine.tables import TableSpec
from ..bounds import MAX_BETA, check_bins
from ..errors import ModelError
from ..features.implicit import IMPLICIT_MODES, implicit_sets
from ..features.time import TimeAxis
from ..kernels import timesvdpp as kernel
from ..layout import pack
from ..registry import L2_MODES
from .base import Design, RatingModel
from .mf import check_factors, check_flag, check_l2


#: the time terms of timesvd / timesvdpp, each of which ``without`` can switch off
TIME_TERMS = ("drift", "user_day", "item_bins", "scale", "factor_drift")


def _nonneg(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not (value >= 0 and np.isfinite(value)):
        raise ModelError(f"{what} must be a non-negative number, got {value!r}")


class _KorenModel(RatingModel):
    """Shared machinery; the subclasses choose which terms exist."""

    kernel = "timesvdpp"
    #: chosen on a validation split of fold u1's training part (benchmarks/tune_koren.py)
    fit_defaults = {"epochs": 33, "batch_size": 1, "optimizer": "sgd", "lr": 0.01,
                    "lr_decay": 0.97}
    # which term families the class offers
    _time = False
    _implicit_term = False
    #: what a hyper-parameter left at None means, for the gradient optimizers (sgd, adam,
    #: sparse-adam) and for ``optimizer="mcmc"``; the subclasses fill in the mcmc side
    #: from validation splits (see their docstrings)
    auto_settings = {"factors": (50, 50)}

    def _setting(self, name):
        """A hyper-parameter as used: its value, or when it is None the default of the
        optimizer family the model is fitted (or loaded) with (:attr:`auto_settings`)."""
        value = getattr(self, name)
        if value is None and name in self.auto_settings:
            return self.auto_settings[name][1 if self._sampler_defaults else 0]
        return value

    def _build_key(self):
        key = super()._build_key()
        key.update({k: self._setting(k) for k in self.auto_settings})
        return key

    # ---- hyper-parameters ------------------------------------------------------------------
    def _check_common_params(self):
        check_factors(self._setting("factors"))
        check_flag(self.clip, "clip")
        for what in ("l2", "l2_bias"):
            check_l2(getattr(self, what), L2_MODES[0], what)     # (l2_mode: checked below)
        _nonneg(self.init_scale, "init_scale")
        if not self.init_scale > 0:
            raise ModelError(f"init_scale must be a positive number, got {self.init_scale!r}")
        if self.l2_mode not in L2_MODES:
            raise ModelError(f"l2_mode must be one of {L2_MODES}, got {self.l2_mode!r}")
        if self._implicit_term:
            if self.implicit not in IMPLICIT_MODES:
                raise ModelError(f"implicit must be one of {IMPLICIT_MODES}, got "
                                 f"{self.implicit!r}")
            check_flag(self._setting("flipped"), "flipped")
        if self._time:
            for what in ("l2_time", "l2_scale"):
                check_l2(getattr(self, what), L2_MODES[0], what)
            for what in ("lr_drift", "lr_time", "beta"):
                _nonneg(getattr(self, what), what)
            check_bins(self.bins)
            if self.beta > MAX_BETA:
                raise ModelError(f"beta must be a number from 0 to {MAX_BETA:g}, got "
                                 f"{self.beta!r}")
            off = self._switched_off()
            if off is None or any(t not in TIME_TERMS for t in off):
                raise ModelError(f"without must list time terms from {', '.join(TIME_TERMS)}, "
                                 f"got {self.without!r}")

    def divergence_hint(self) -> str:
        """Above 1, beta makes the drift input dev_u(t) grow faster than the days
        themselves: 200 days are 200^4 = 1.6e9 at beta = 4, and the drift terms' steps
        follow."""
        t = self._terms() if self._time else {}
        if (t.get("drift") or t.get("factor_drift")) and float(self.beta) > 1:
            return (f"a smaller beta (now {float(self.beta):g}; dev_u(t) grows as "
                    f"|days|^beta, Koren's is 0.4)")
        return ""

    def _switched_off(self):
        """The names in ``without`` (a tuple, or a comma-separated string), None when it
        is neither."""
        off = self._setting("without")
        if isinstance(off, str):
            off = tuple(v.strip() for v in off.split(",") if v.strip())
        return frozenset(off) if isinstance(off, (tuple, list)) else None

    def _validate(self):
        self._check_common_params()

    # ---- terms -------------------------------------------------------------------------------
    def _terms(self) -> dict:
        t = {name: False for name in ("drift", "user_day", "item_bins", "scale",
                                      "factor_drift", "implicit", "flipped")}
        if self._time:
            off = self._switched_off() or frozenset()
            for name in TIME_TERMS:
                t[name] = name not in off
        if self._implicit_term:
            t["implicit"] = True
            t["flipped"] = bool(self._setting("flipped"))
        t["time"] = any(t[n] for n in ("drift", "user_day", "item_bins", "factor_drift"))
        return t

    # ---- what the data tells ---------------------------------------------------------------
    def _fit_context(self, train, validation):
        t = self._terms()
        if t["time"] and len(train) and not np.any(train.timestamps != 0):
            raise ModelError(f"{self.name} needs timestamps, and the training ratings have "
                             f"none (every timestamp is 0); use svdpp, or switch the time "
                             f"terms off")
        self.time_axis_ = (TimeAxis.fit(train.users, train.timestamps, train.n_users,
                                        self.bins, self.beta) if t["time"] else None)
        if t["implicit"] or t["flipped"]:
            extra = validation if getattr(self, "implicit", "train") == "all" else None
            self.implicit_sets_ = implicit_sets(train, extra, flipped=t["flipped"])
        else:
            self.implicit_sets_ = {}

    def _context_state(self):
        out = {f"implicit.{k}": v for k, v in self.implicit_sets_.items()}
        if self.time_axis_ is not None:
            out.update({f"time.{k}": v for k, v in self.time_axis_.state().items()})
        return out

    def _load_context(self, arrays):
        t = self._terms()
        n_users, n_items = len(self.user_ids_), len(self.item_ids_)
        self.time_axis_ = None
        if t["time"]:
            self.time_axis_ = TimeAxis.from_state(
                {k[5:]: v for k, v in arrays.items() if k.startswith("time.")}, n_users)
        sets = {k[9:]: np.asarray(v) for k, v in arrays.items() if k.startswith("implicit.")}
        if t["implicit"]:
            _check_csr(sets, "user_ptr", "user_items", n_users, n_items)
        if t["flipped"]:
            _check_csr(sets, "item_ptr", "item_users", n_items, n_users)
        self.implicit_sets_ = sets

    def _context(self, users, items, timestamps):
        if self.time_axis_ is None:
            return ()
        ax = self.time_axis_
        days = ax.days(users, timestamps)
        return (ax.bins(days), ax.user_day_rows(users, days), ax.dev(users, days))

    # ---- design ------------------------------------------------------------------------------
    def _design(self, n_users, n_items):
        t = self._terms()
        k = self._setting("factors")
        ucols = 2 * k + 3
        cb, ca, cc, cap = k, k + 1, k + 2, k + 3
        mode = self.l2_mode
        l2u = np.zeros(ucols)
        lru = np.ones(ucols)
        cen = np.zeros(ucols)
        l2u[:k] = self.l2
        l2u[cb] = self.l2_bias
        if t["drift"]:
            l2u[ca] = self.l2_time
            lru[ca] = self.lr_drift
        if t["scale"]:
            l2u[cc] = self.l2_scale
            lru[cc] = self.lr_time
        cen[cc] = 1.0
        if t["factor_drift"]:
            l2u[cap:] = self.l2_time
            lru[cap:] = self.lr_drift
        zeros_from_k = {c: 0.0 for c in range(k, ucols)}
        zeros_from_k[cc] = 1.0
        s = self.init_scale
        tables = [
            TableSpec("users", n_users, ucols, init="normal", scale=s, l2=l2u, l2_mode=mode,
                      center=cen, lr_scale=lru, constant_columns=zeros_from_k),
            TableSpec("items", n_items, k + 1, init="normal", scale=s,
                      l2=[self.l2] * k + [self.l2_bias], l2_mode=mode,
                      constant_columns={k: 0.0}),
        ]
        ax = self.time_axis_
        nb = ax.n_bins if ax is not None else 1
        tables.append(TableSpec("item_bins", n_items * nb if t["item_bins"] else 0, 1,
                                init="zeros", l2=self.l2_bias if t["item_bins"] else 0.0,
                                l2_mode=mode, lr_scale=getattr(self, "lr_time", 1.0)))
        n_ud = ax.n_user_days if (ax is not None and t["user_day"]) else 0
        tables.append(TableSpec("user_days", n_ud, 2, init="zeros",
                                l2=[getattr(self, "l2_bias", 0.0),
                                    getattr(self, "l2_scale", 0.0) if t["scale"] else 0.0],
                                l2_mode=mode, lr_scale=getattr(self, "lr_time", 1.0)))
        tables.append(TableSpec("implicit", n_items if t["implicit"] else 0, k, init="normal",
                                scale=s, l2=self.l2, l2_mode=mode))
        tables.append(TableSpec("implicit_users", n_users if t["flipped"] else 0, k,
                                init="normal", scale=s, l2=self.l2, l2_mode=mode))
        sets = self.implicit_sets_
        parts, offsets = [], {}
        for key in ("user_ptr", "user_items", "item_ptr", "item_users"):
            offsets[key] = sum(len(p) for p in parts)
            parts.append(np.asarray(sets.get(key, np.zeros(0)), np.int64))
        spec = pack(kernel.SPEC, k=k, drift=int(t["drift"]), user_day=int(t["user_day"]),
                    item_bins=int(t["item_bins"]), scale=int(t["scale"]),
                    factor_drift=int(t["factor_drift"]), implicit=int(t["implicit"]),
                    flipped=int(t["flipped"]), time=int(t["time"]), n_bins=nb,
                    nu_ptr=offsets["user_ptr"], nu_idx=offsets["user_items"],
                    ni_ptr=offsets["item_ptr"], ni_idx=offsets["item_users"])
        batch_ws = ucols + k + 1 + 3 + 5 * k
        cache = kernel.predict_scratch(k, n_users, n_items, t["implicit"], t["flipped"])
        return Design(tables=tables, spec=spec, fspec=np.array([self.global_mean_]),
                      workspace=lambda batch: max(batch_ws,
                                                    kernel.sgd_scratch(k, ucols, k + 1),
                                                    4 * k + cache),
                      aux_i=np.concatenate(parts) if parts else np.zeros(0, np.int64),
                      sgd_order="user" if t["implicit"] else "grid")

    @classmethod
    def gradcheck_configs(cls):
        return [{"factors": 3}]

    def item_embeddings(self):
        self._require_fitted()
        return self.I_[:, :self._setting("factors")]


def _check_csr(sets, ptr_key, idx_key, n_rows, n_cols):
    ptr, idx = sets.get(ptr_key), sets.get(idx_key)
    if ptr is None or idx is None:
        raise ValueError(f"{ptr_key}/{idx_key} missing")
    if ptr.shape != (n_rows + 1,) or ptr[0] != 0 or np.any(np.diff(ptr) < 0) \
            or ptr[-1] != len(idx) or (len(idx) and (idx.min() < 0 or idx.max() >= n_cols)):
        raise ValueError(f"{ptr_key}/{idx_key} do not form a valid list per row")


_MCMC_DOC = """
    Under ``optimizer="mcmc"`` the hyper-parameters left at None mean the sampler's own
    defaults: factors 10, flipped on (svdpp, timesvdpp), and without drift and
    factor_drift (timesvd, timesvdpp), whose factors in an FM meet every factored group.
    Chosen by ``benchmarks/tune_mcmc.py`` on 90/10 validation splits of the training parts
    of GroupLens folds u1..u5 (never a test fold); mean validation RMSE of timesvdpp
    0.9002 (k=50, all terms) -> 0.8986 (k=10) -> 0.8863 (flipped) -> 0.8839 (without
    drift, factor_drift); k=20 0.8842, k=50 0.8856. svdpp 0.9038 (k=50) -> 0.8914 (k=10,
    flipped); timesvd 0.9025 (k=50) -> 0.8998 (k=10, without drift, factor_drift).
"""
_COMMON_DOC = """
    factors: k (default None: 50, or under ``optimizer="mcmc"`` the value below). l2: L2
    of the factors (p, q, y, z; default 0.1); l2_bias: of
    the biases (0.005); l2_mode: ``"per-sample"`` (default, classic SGD: the rows a rating
    touches) or ``"keras"``. init_scale: std of the factors' normal init (0.1); biases start
    at 0. clip: predictions clipped to the training rating range (default True; training
    uses the unclipped output). seed. Defaults of ``fit``: 33 epochs of per-sample SGD, lr
    0.01 decaying by 0.97 per epoch. All defaults were chosen on a 90/10 split of ml-100k
    fold u1's training part (``benchmarks/tune_koren.py``), never on a test fold.
"""
_IMPLICIT_DOC = """
    implicit: N(u) from the ``"train"`` pairs only (default) or from ``"all"``: training
    plus the validation pairs given to ``fit`` (who rated what, the Netflix-prize setting;
    it reveals which items are in the test set). flipped: also represent each item by the
    users who rated it (``q_i + |N(i)|^-1/2 sum z_v``; Rendle, Zhang & Koren 2019; default
    None: off, or under mcmc the value below). Its
    SGD runs through the general path: each rating then costs O((|N(u)| + |N(i)|) k)
    instead of O(k) per rating (see the README for measured epoch times).
"""
_TIME_DOC = """
    Time terms, each of which ``without`` (a tuple of names; default None: none, or under
    mcmc the value below) switches off:
    ``"drift"`` (``a_u dev_u(t)``), ``"user_day"`` (``b_{u,t}``, and ``c_{u,t}`` with
    scale), ``"item_bins"`` (``b_{i,Bin(t)}``), ``"scale"`` (``c_u + c_{u,t}`` multiplying the
    item bias, L2 toward 1), ``"factor_drift"`` (``ap_u dev_u(t)`` added to ``p_u``).
    bins: number of time bins (30); beta: exponent of ``dev_u`` (0.4). l2_time: L2 of
    ``a_u``/``ap_u`` (0.01); l2_scale: of ``c_u``/``c_{u,t}`` (0.005); lr_drift:
    learning-rate multiplier of ``a_u``/``ap_u`` (0.001: ``dev`` reaches ~8); lr_time: of
    the bin, day and scale terms (0.1). Prediction without a timestamp: the user's last
    training day.
"""


class SVDpp(_KorenModel):
    __doc__ = ("""SVD++ (Koren, KDD 2008): ``y_hat = mu + b_u + b_i + q_i . (p_u +
    |N(u)|^-1/2 sum_{j in N(u)} y_j)``, ``mu`` the training mean.
""" + _COMMON_DOC + _IMPLICIT_DOC + _MCMC_DOC)

    name = "svdpp"
    _implicit_term = True

    auto_settings = {"factors": (50, 10), "flipped": (False, True)}

    def __init__(self, factors=None, *, implicit="train", flipped=None, l2=0.1, l2_bias=0.005,
                 l2_mode="per-sample", init_scale=0.1, clip=True, seed=0):
        self.factors = factors
        self.clip = clip
        self.implicit = implicit
        self.flipped = flipped
        self.l2 = l2
        self.l2_bias = l2_bias
        self.l2_mode = l2_mode
        self.init_scale = init_scale
        self.seed = seed

    @classmethod
    def gradcheck_configs(cls):
        return [{"factors": 3}, {"factors": 2, "flipped": True},
                {"factors": 2, "l2": 0.05, "l2_mode": "keras"}]


class TimeSVD(_KorenModel):
    __doc__ = ("""timeSVD (Koren, KDD 2009), SVD with temporal dynamics::

        y_hat = mu + b_u + a_u dev_u(t) + b_{u,t} + (b_i + b_{i,Bin(t)}) (c_u + c_{u,t})
                + q_i . (p_u + ap_u dev_u(t))
""" + _COMMON_DOC + _TIME_DOC + _MCMC_DOC)

    name = "timesvd"
    _time = True

    auto_settings = {"factors": (50, 10), "without": ((), ("drift", "factor_drift"))}

    def __init__(self, factors=None, *, without=None, bins=30, beta=0.4, l2=0.1, l2_bias=0.005,
                 l2_time=0.01, l2_scale=0.005, lr_drift=0.001, lr_time=0.1,
                 l2_mode="per-sample", init_scale=0.1, clip=True, seed=0):
        self.factors = factors
        self.clip = clip
        self.without = tuple(without) if isinstance(without, list) else without
        self.bins = bins
        self.beta = beta
        self.l2 = l2
        self.l2_bias = l2_bias
        self.l2_time = l2_time
        self.l2_scale = l2_scale
        self.lr_drift = lr_drift
        self.lr_time = lr_time
        self.l2_mode = l2_mode
        self.init_scale = init_scale
        self.seed = seed

    @classmethod
    def gradcheck_configs(cls):
        return [{"factors": 3, "bins": 4}, {"factors": 2, "bins": 3, "without": ("scale",)},
                {"factors": 2, "bins": 3, "l2": 0.05, "l2_time": 0.1, "l2_scale": 0.2,
                 "l2_mode": "per-sample"}]


class TimeSVDpp(TimeSVD):
    __doc__ = ("""timeSVD++ (Koren, KDD 2009): timeSVD plus SVD++'s implicit term::

        y_hat = mu + b_u + a_u dev_u(t) + b_{u,t} + (b_i + b_{i,Bin(t)}) (c_u + c_{u,t})
                + q_i . (p_u + ap_u dev_u(t) + |N(u)|^-1/2 sum_{j in N(u)} y_j)
""" + _COMMON_DOC + _IMPLICIT_DOC + _TIME_DOC + _MCMC_DOC)

    name = "timesvdpp"
    _implicit_term = True

    auto_settings = {"factors": (50, 10), "flipped": (False, True),
                     "without": ((), ("drift", "factor_drift"))}

    def __init__(self, factors=None, *, implicit="train", flipped=None, without=None, bins=30,
                 beta=0.4, l2=0.1, l2_bias=0.005, l2_time=0.01, l2_scale=0.005,
                 lr_drift=0.001, lr_time=0.1, l2_mode="per-sample", init_scale=0.1, clip=True,
                 seed=0):
        super().__init__(factors, without=without, bins=bins, beta=beta, l2=l2,
                         l2_bias=l2_bias, l2_time=l2_time, l2_scale=l2_scale,
                         lr_drift=lr_drift, lr_time=lr_time, l2_mode=l2_mode,
                         init_scale=init_scale, clip=clip, seed=seed)
        self.implicit = implicit
        self.flipped = flipped

    @classmethod
    def gradcheck_configs(cls):
        return [{"factors": 3, "bins": 4}, {"factors": 2, "bins": 3, "flipped": True},
                {"factors": 2, "bins": 3, "l2": 0.05, "l2_time": 0.1, "l2_scale": 0.2,
                 "l2_mode": "per-sample", "without": ("factor_drift",)}]
