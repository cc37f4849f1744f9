"""What every model shares: hyper-parameters, building its parameters, fit, predict,
evaluate, recommend, similar items, save and load.

A model is a :class:`Design` (declared by the subclass from its hyper-parameters and the
index-space sizes) made concrete:

- ``tables_`` (:class:`~mfcore.engine.tables.ParameterTables`): the named float32
  parameter tables, ``users`` and ``items`` first (``U_``/``I_`` are views of them);
- ``theta_`` (p,): the dense weights (MLP layers), flat; ``state_`` (s,): non-trainable
  state (batch-norm moving averages);
- ``spec_``/``fspec_``: int64/float64 settings its compiled kernel reads, ``aux_i_``/
  ``aux_f_``: side data (e.g. CSR lists) built once from the training data.

Subclasses implement ``_validate`` (check hyper-parameters) and ``_design``, and where
they have them ``_context`` (per-rating context columns), ``gradcheck_configs`` and
``item_embeddings``; everything else lives here.
"""
from __future__ import annotations

import inspect
import math
import weakref
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..bounds import check_seed
from ..data.ratings import Ratings, format_id, lookup_ids, seconds_array
from ..engine import loop, samples, trainer
from ..engine.contract import Params
from ..engine.tables import ParameterTables
from ..errors import DataError, MemoryLimitError, MfcoreError, ModelError, UnknownIdsError

UNKNOWN_POLICIES = ("raise", "nan", "mean")
EVALUATE_POLICIES = ("model", "skip", "mean")
#: records per prediction call (the size workspaces for prediction are made for)
PREDICT_CHUNK = 8192
#: the most scratch memory one prediction call takes: models with wide layers predict
#: fewer records per call (the predictions are the same)
PREDICT_WORKSPACE_BYTES = 64 << 20


@dataclass
class Design:
    """What a model is made of, from its hyper-parameters and the index-space sizes.

    tables: TableSpecs (``users``, ``items`` first); spec/fspec: kernel settings;
    theta_size/state_size: dense weights and non-trainable state; init_dense(theta, state,
    rng): fills them (after the tables took their draws from ``rng``); workspace(batch):
    float scratch the kernel needs for ``batch`` records; aux_i/aux_f: side data;
    sgd_order: how the fused per-sample SGD kernel must see the records (``"grid"``,
    ``"user"``: see :mod:`mfcore.engine.sgd`; None: no fused path for this design);
    notes: anything the model wants to remember about its layout (e.g. where a tower's
    output sits).
    """

    tables: list
    spec: np.ndarray
    fspec: np.ndarray
    theta_size: int = 0
    state_size: int = 0
    init_dense: Callable | None = None
    workspace: Callable = lambda batch: 1
    aux_i: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    aux_f: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    sgd_order: str | None = "grid"
    notes: dict = field(default_factory=dict)


class RatingModel:
    """Base class of mfcore's rating-prediction models.

    scikit-learn's conventions: ``__init__`` only stores hyper-parameters; they are
    checked by ``fit`` and ``set_params``; learned state lives in attributes ending with
    ``_``; ``get_params``/``set_params`` let a model be re-created from its parameters
    (``type(m)(**m.get_params())``).
    """

    #: the CLI name of the model (:data:`mfcore.registry.MODELS`)
    name = "?"
    #: its kernel family (:data:`mfcore.kernels.dispatch.FAMILIES`)
    kernel = "?"
    #: how ``fit`` trains it when the call does not say (epochs, batch_size, optimizer,
    #: lr); the notebook's models: 6 epochs of Keras' Adam 1e-3 on batches of 64
    fit_defaults = {"epochs": 6, "batch_size": 64, "optimizer": "adam"}

    # ---- hyper-parameters ----------------------------------------------------------------
    @classmethod
    def _param_names(cls):
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    #: whether hyper-parameters left at None take the mcmc sampler's defaults (set by
    #: ``fit`` and on loading; see ``auto_settings`` of the Koren models)
    _sampler_defaults = False

    def _setting(self, name):
        """A hyper-parameter as the model uses it (models with optimizer-dependent
        defaults resolve None here)."""
        return getattr(self, name)

    def _build_key(self) -> dict:
        """What the built parameters depend on: the hyper-parameters as used."""
        return dict(self.get_params())

    def get_params(self, deep=True) -> dict:
        """The constructor's hyper-parameters and their current values (``deep`` is
        accepted for scikit-learn compatibility; models hold no nested estimators)."""
        return {p: getattr(self, p) for p in self._param_names()}

    def set_params(self, **params) -> "RatingModel":
        """Set hyper-parameters by name, check them, and return the model. Unknown names
        and invalid values raise ModelError. A fitted model rebuilds its parameters at
        the next ``fit`` if the new values change them; until then it predicts with its
        fitted weights, and :meth:`save` refuses (the file would not match them)."""
        names = set(self._param_names())
        unknown = sorted(set(params) - names)
        if unknown:
            raise ModelError(f"{type(self).__name__} has no parameter {unknown[0]!r}; it "
                             f"takes {', '.join(sorted(names))}")
        old = self.get_params()
        for key, value in params.items():
            setattr(self, key, value)
        try:
            self._check()
        except ModelError:
            for key, value in old.items():
                setattr(self, key, value)
            raise
        return self

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _check(self):
        """Check every hyper-parameter (ModelError on the first bad one)."""
        check_seed(getattr(self, "seed", 0))
        self._validate()

    # ---- to be provided by subclasses -------------------------------------------------------
    def _validate(self):
        """Check the hyper-parameters; raise ModelError naming the first bad one."""

    def _design(self, n_users: int, n_items: int) -> Design:
        raise NotImplementedError

    def _context(self, users, items, timestamps):
        """Per-rating context columns for the kernel's records (default: none)."""
        return ()

    def _fit_context(self, train, validation):
        """Learn what the model needs to know about the data besides its parameters (a time
        axis, who rated what) before its design is made; default: nothing."""

    def _context_state(self) -> dict:
        """That knowledge as named plain arrays, to save (default: none)."""
        return {}

    def _load_context(self, arrays: dict):
        """Restore it from :meth:`_context_state`'s arrays; ValueError when they are bad."""

    def _saved_context(self, keep_samples=None) -> dict:
        """Everything a model file keeps besides parameter tables: the model's context and,
        after an mcmc fit, its posterior (as ``mcmc.<name>``; ``keep_samples``: see
        :meth:`save`)."""
        out = dict(self._context_state())
        if getattr(self, "posterior_", None) is not None:
            from . import bayes
            out.update({f"mcmc.{k}": v for k, v in bayes.saved_state(self, keep_samples).items()})
        return out

    def _restore_context(self, arrays: dict):
        """Restore :meth:`_saved_context`'s arrays (the id maps already in place)."""
        posterior = {k[5:]: v for k, v in arrays.items() if k.startswith("mcmc.")}
        self._sampler_defaults = bool(posterior)
        self._load_context({k: v for k, v in arrays.items() if not k.startswith("mcmc.")})
        self.posterior_ = None
        if posterior:
            from . import bayes
            bayes.restore_state(self, posterior)

    def _v1_kernel_settings(self, design: Design):
        """``(spec, fspec)`` of ``design`` as mfcore 0.1.0 laid them out (what a version-1
        model file holds); default: unchanged."""
        return design.spec, design.fspec

    @classmethod
    def gradcheck_configs(cls) -> list:
        """Small hyper-parameter sets that together exercise every gradient path."""
        return [{}]

    def item_embeddings(self) -> np.ndarray:
        """(n_items, k) vectors used by :meth:`similar_items`."""
        raise ModelError(f"{self.name} has no item embedding to compare items with")

    # ---- the fitted parameters ---------------------------------------------------------------
    @property
    def kernel_family(self):
        """The marker that selects this model's kernel family in compiled code."""
        from ..kernels.dispatch import family
        return family(self.kernel)

    def _build(self, n_users, n_items, rng, budget=None):
        """Design the model for this index space and initialise every parameter.
        ``budget(design)``, when given, runs before anything large is allocated (the
        memory check of ``fit``)."""
        design = self._design(n_users, n_items)
        if budget is not None:
            budget(design)
        tables = ParameterTables.initialise(design.tables, rng)
        theta = np.zeros(design.theta_size, np.float32)
        state = np.zeros(design.state_size, np.float32)
        if design.init_dense is not None:
            design.init_dense(theta, state, rng)
        self._install(design, tables, theta, state)

    def _install(self, design, tables, theta, state):
        self.design_ = design
        self.tables_ = tables
        self.theta_, self.state_ = theta, state
        self.spec_ = np.asarray(design.spec, np.int64)
        self.fspec_ = np.asarray(design.fspec, np.float64)
        self.aux_i_ = np.asarray(design.aux_i, np.int64)
        self.aux_f_ = np.asarray(design.aux_f, np.float64)

    def _params(self) -> Params:
        return Params(self.spec_, self.fspec_, self.theta_, self.state_, self.aux_i_,
                      self.aux_f_)

    @property
    def U_(self):
        """The ``users`` table (rows = users, a view: writes change the model)."""
        return self.tables_.view("users")

    @property
    def I_(self):
        """The ``items`` table."""
        return self.tables_.view("items")

    def _workspace(self, batch) -> np.ndarray:
        return np.zeros(self.design_.workspace(batch), np.float32)

    # ---- fitting ----------------------------------------------------------------------------
    def _is_built_for(self, train) -> bool:
        return (getattr(self, "tables_", None) is not None
                and getattr(self, "_built_params", None) == self._build_key()
                and len(self.user_ids_) == train.n_users and len(self.item_ids_) == train.n_items
                and np.array_equal(self.user_ids_, train.user_ids)
                and np.array_equal(self.item_ids_, train.item_ids))

    def _prepare(self, train: Ratings, validation=None, budget=None):
        """Build parameters for ``train``'s index space (or keep them for a warm restart)
        and update what the training data tells about users and items. ``budget``: see
        :meth:`_build`."""
        same = self._is_built_for(train)
        if same and budget is not None:
            budget(self.design_)
        if not same:
            source = getattr(self, "data_source_", {})
            for attr in [a for a in vars(self) if a.endswith("_") and not a.startswith("__")]:
                delattr(self, attr)
            self.data_source_ = source
            self._encoded = []
            self._grid = None
            self._runs = None
            self.optimizer_state_ = None
            self.epochs_trained_ = 0
            self.history_ = None
            self.user_ids_ = np.asarray(train.user_ids)
            self.item_ids_ = np.asarray(train.item_ids)
            self._seen(train, same=False)
            self._fit_context(train, validation)
            self._build(train.n_users, train.n_items, np.random.default_rng(self.seed),
                        budget)
            self._built_params = self._build_key()
            self._prepared_for = weakref.ref(train)
            return
        prepared = getattr(self, "_prepared_for", None)
        if prepared is not None and prepared() is train:
            return  # fit again on the same data: bookkeeping is already up to date
        self._prepared_for = weakref.ref(train)
        self._seen(train, same=True)

    def _seen(self, train, same):
        """The (user, item) pairs seen in every fit so far (without duplicates), counts,
        the training mean and rating scale (for predict and recommend)."""
        pairs = train.users.astype(np.int64) * train.n_items + train.items
        if same and getattr(self, "seen_indptr_", None) is not None:
            old_users = np.repeat(np.arange(train.n_users, dtype=np.int64),
                                  np.diff(self.seen_indptr_))
            pairs = np.concatenate([old_users * train.n_items + self.seen_items_, pairs])
        pairs = np.sort(pairs)  # sort-based dedup: much faster than hash-based np.unique here
        if len(pairs):
            pairs = pairs[np.concatenate([[True], pairs[1:] != pairs[:-1]])]
        su = (pairs // train.n_items).astype(np.int64)
        si = (pairs % train.n_items).astype(np.int32)
        self.user_counts_ = np.bincount(su, minlength=train.n_users).astype(np.int64)
        self.item_counts_ = np.bincount(si, minlength=train.n_items).astype(np.int64)
        self.seen_indptr_ = np.concatenate([[0], np.cumsum(self.user_counts_)]).astype(np.int64)
        self.seen_items_ = si
        n_prev = getattr(self, "n_train_", 0) if same else 0
        mean_prev = getattr(self, "global_mean_", 0.0) if same else 0.0
        n_new = len(train)
        total = mean_prev * n_prev + float(np.sum(train.ratings, dtype=np.float64))
        self.global_mean_ = float(total / max(1, n_prev + n_new))
        self.n_train_ = n_prev + n_new
        lo, hi = train.rating_scale
        self.rating_min_ = min(lo, getattr(self, "rating_min_", lo)) if same else lo
        self.rating_max_ = max(hi, getattr(self, "rating_max_", hi)) if same else hi
        if train.titles:
            self.titles_ = dict(train.titles)
        elif not same:
            self.titles_ = {}

    def fit(self, train, validation=None, **kwargs) -> "trainer.History":
        """Train on ``train`` and return the :class:`~mfcore.engine.trainer.History`.

        ``train``: a :class:`Ratings` (or a DataFrame with columns user, item, rating
        [, timestamp]); ``validation``: a Ratings sharing ``train``'s id maps (e.g. from
        :func:`mfcore.random_split`), or a DataFrame whose ids all occur in ``train``.
        Keyword options (epochs=6, batch_size=64, optimizer="adam", lr, seed,
        early_stopping, verbose, progress ...) are those of :func:`mfcore.engine.trainer.fit`.
        Calling ``fit`` again continues training from the current weights (unless the
        hyper-parameters or the id maps changed).

        ``optimizer="mcmc"`` samples the model as a Bayesian factorization machine instead
        (the models that are one: :mod:`mfcore.models.bayes`); its options are samples,
        burn_in, seed, verbose, progress, log, callbacks (:func:`mfcore.engine.mcmc.mcmc_options`);
        every call draws a new chain.
        """
        self._check()
        train = as_ratings(train, "train")
        if validation is not None:
            validation = as_ratings(validation, "validation", like=train)
            if not (np.array_equal(validation.user_ids, train.user_ids)
                    and np.array_equal(validation.item_ids, train.item_ids)):
                raise ModelError("validation must share train's id maps: split one Ratings "
                                 "with mfcore.random_split (or build both from one DataFrame)")
        if kwargs.get("optimizer") == "mcmc":
            from . import bayes
            return bayes.fit(self, train, validation, **kwargs)
        self._check_gradient_options(validation is not None, kwargs)  # keeps any posterior
        self._sampler_defaults = False
        self.posterior_ = None
        trainer.fit(self, train, validation, **kwargs)
        return self.history_

    def divergence_hint(self) -> str:
        """A setting of this model, besides the learning rate, that a divergence may come
        from ("a smaller beta (now 4) ..."), or "" (the default)."""
        return ""

    def check_fit(self, *, validation=True, **kwargs):
        """Raise :class:`ModelError` for what ``fit(..., **kwargs)`` would refuse before
        reading any data: a bad hyper-parameter, an unknown or unsuited optimizer, a bad
        option (epochs, lr, samples, ...). ``validation``: whether fit will be given
        validation data (early stopping needs it). Trains nothing; returns the resolved
        options (:class:`~mfcore.engine.trainer.FitOptions`, or the sampler's
        :class:`~mfcore.engine.mcmc.McmcOptions`)."""
        self._check()
        if kwargs.get("optimizer") == "mcmc":
            from . import bayes
            from ..engine import mcmc
            bayes.check_supported(self)
            return mcmc.mcmc_options(self, **kwargs)
        return self._check_gradient_options(validation, kwargs)

    def _check_gradient_options(self, has_validation, kwargs):
        given = [k for k in ("samples", "burn_in") if k in kwargs]
        if given:
            raise ModelError(f"{given[0]} applies to optimizer='mcmc' only")
        return trainer.fit_options(self, True if has_validation else None, **kwargs)

    def _pre_fit_state(self):
        """What :meth:`_return_to` needs to undo a ``fit`` that failed: the attributes (a
        shallow copy: ``fit`` replaces them, except the weights and optimizer state, which
        it updates in place and which are copied here)."""
        saved = dict(vars(self))
        arrays = None
        if getattr(self, "tables_", None) is not None:
            st = getattr(self, "optimizer_state_", None)
            arrays = (self.tables_.arena.W.copy(), self.theta_.copy(), self.state_.copy(),
                      None if st is None else st.copy())
        return saved, arrays

    def _fit_or_undo(self, doing, run):
        """``run()`` (a fit's work); any mfcore error, or running out of memory (then a
        MemoryLimitError saying what ``doing`` was, "training" or "sampling"), leaves the
        model as :meth:`_pre_fit_state` found it before the error goes on."""
        pre_fit = self._pre_fit_state()
        try:
            return run()
        except MfcoreError:
            self._return_to(pre_fit)
            raise
        except MemoryError:
            self._return_to(pre_fit)
            raise MemoryLimitError(f"ran out of memory while {doing} {self.name} (the "
                                   f"estimate before allocating said it would fit; other "
                                   f"processes may have taken memory since)") from None

    def _return_to(self, pre_fit):
        """Put the model back as :meth:`_pre_fit_state` found it (unfitted if it was)."""
        saved, arrays = pre_fit
        vars(self).clear()
        vars(self).update(saved)
        if arrays is not None:
            self.tables_.arena.W[...] = arrays[0]
            self.theta_[...] = arrays[1]
            self.state_[...] = arrays[2]
            self.optimizer_state_ = arrays[3]

    def _snapshot(self):
        st = self.optimizer_state_
        return (self.tables_.arena.W.copy(), self.theta_.copy(), self.state_.copy(),
                None if st is None else st.copy(), self.epochs_trained_)

    def _restore(self, snap):
        self.tables_.arena.W[...] = snap[0]
        self.theta_[...] = snap[1]
        self.state_[...] = snap[2]
        if snap[3] is not None:
            self.optimizer_state_ = snap[3]
        self.epochs_trained_ = snap[4]

    def _keras_penalty(self) -> float:
        """Keras' regularisation term at the current weights (0 without Keras L2)."""
        return self.tables_.keras_penalty()

    # ---- records ----------------------------------------------------------------------------
    def _encode(self, users, items, ratings=None, timestamps=None) -> samples.Samples:
        """Kernel records for index arrays (and the model's context columns)."""
        users = np.ascontiguousarray(users, dtype=np.int32)
        items = np.ascontiguousarray(items, dtype=np.int32)
        return samples.pack(users, items, ratings, self._context(users, items, timestamps))

    def _encode_ratings(self, data: Ratings) -> samples.Samples:
        """Records of a Ratings in the model's index space, cached for the last two Ratings
        objects (a repeated ``fit`` on the same training and validation data does not
        encode them again). The cache is dropped when the parameters are rebuilt."""
        cache = getattr(self, "_encoded", [])
        for ref, S in cache:
            if ref() is data:
                return S
        S = self._encode(data.users, data.items, data.ratings, data.timestamps)
        self._encoded = [(weakref.ref(data), S)] + cache[:1]
        return S

    def _grid_for(self, train, S, seed):
        """The training records arranged in a grid of blocks for per-sample SGD
        (:class:`mfcore.engine.sgd.Grid`), kept for the next fit on the same data."""
        from ..engine.sgd import Grid
        cache = getattr(self, "_grid", None)
        if cache is not None and cache[0]() is train and cache[1] == seed:
            return cache[2]
        grid = Grid(S, train.n_users, train.n_items, seed)
        self._grid = (weakref.ref(train), seed, grid)
        return grid

    def _user_runs_for(self, train, S, seed):
        """The training records grouped by user for per-sample SGD
        (:class:`mfcore.engine.sgd.UserRuns`), kept for the next fit on the same data."""
        from ..engine.sgd import UserRuns
        cache = getattr(self, "_runs", None)
        if cache is not None and cache[0]() is train and cache[1] == seed:
            return cache[2]
        runs = UserRuns(S, train.n_users, seed)
        self._runs = (weakref.ref(train), seed, runs)
        return runs

    def _predict_records(self, S: samples.Samples) -> np.ndarray:
        """The model's predictions (float32, shape (n,)) for records: the kernel's output,
        clipped to the training rating range for models whose ``clip`` is on."""
        n = S.X.shape[0]
        out = np.empty(n, np.float32)
        chunk = self._prediction_chunk(n)
        loop.predict_all(self.kernel_family, self.tables_.arena, self._params(), S, out,
                         self._workspace(chunk), chunk)
        if getattr(self, "clip", False):
            np.clip(out, self.rating_min_, self.rating_max_, out=out)
        return out

    def _prediction_chunk(self, n) -> int:
        """Records per prediction call for ``n`` records: PREDICT_CHUNK, fewer when the
        kernel's workspace for them would pass PREDICT_WORKSPACE_BYTES."""
        return prediction_chunk(self.design_, n)

    def _predict_indices(self, users, items, timestamps=None, return_std=False):
        """Model output for index arrays (no unknown handling; clipped only for models
        whose ``clip`` is on). A model fitted with mcmc averages its posterior samples and,
        with ``return_std``, also returns the predictive standard deviations."""
        if getattr(self, "posterior_", None) is not None:
            from . import bayes
            return bayes.predict_indices(self, users, items, timestamps, return_std)
        if return_std:
            raise ModelError(f"return_std needs a posterior: fit this {self.name} with "
                             f"optimizer='mcmc' (it was fitted with "
                             f"{(getattr(self.history_, 'settings', None) or {}).get('optimizer', '?')})")
        return self._predict_records(self._encode(users, items, None, timestamps))

    # ---- prediction -------------------------------------------------------------------------
    def _require_fitted(self):
        if getattr(self, "tables_", None) is None:
            raise ModelError(f"this {type(self).__name__} is not fitted yet: call fit() first")

    def _to_indices(self, users, items, ids):
        users = np.atleast_1d(np.asarray(users))
        items = np.atleast_1d(np.asarray(items))
        if users.shape != items.shape:
            raise ModelError(f"users and items must have the same length "
                             f"({users.shape[0]} vs {items.shape[0]})")
        if ids == "raw":
            for what, given, own in (("user", users, self.user_ids_),
                                     ("item", items, self.item_ids_)):
                _check_id_kind(what, given, own)
            return (lookup_ids(self.user_ids_, users, "user", -1),
                    lookup_ids(self.item_ids_, items, "item", -1))
        if ids == "index":
            u = users.astype(np.int64)
            i = items.astype(np.int64)
            u = np.where((u >= 0) & (u < len(self.user_ids_)), u, -1).astype(np.int32)
            i = np.where((i >= 0) & (i < len(self.item_ids_)), i, -1).astype(np.int32)
            return u, i
        raise ModelError(f"ids must be 'raw' or 'index', got {ids!r}")

    def _known_indices(self, u, i):
        """(user known, item known) masks for index arrays (-1 = outside the model)."""
        ok_u = u >= 0
        ok_u[ok_u] = self.user_counts_[u[ok_u]] > 0
        ok_i = i >= 0
        ok_i[ok_i] = self.item_counts_[i[ok_i]] > 0
        return ok_u, ok_i

    def known(self, users, items, ids="raw") -> np.ndarray:
        """Boolean mask: both the user and the item had ratings in the training data."""
        self._require_fitted()
        ok_u, ok_i = self._known_indices(*self._to_indices(users, items, ids))
        return ok_u & ok_i

    def unknown_pair_message(self, users, items, ok_u, ok_i, where=None) -> str | None:
        """One line naming the first pair whose user or item had no training ratings
        (None when all are known). ``where``: ``(path, line numbers)`` of the pairs."""
        bad = ~(ok_u & ok_i)
        if not bad.any():
            return None
        j = int(np.flatnonzero(bad)[0])
        users = np.atleast_1d(np.asarray(users))
        items = np.atleast_1d(np.asarray(items))
        parts = []
        if not ok_u[j]:
            parts.append(f"user {plain(users[j])}")
        if not ok_i[j]:
            parts.append(f"item {plain(items[j])}")
        loc = f"{where[0]}, line {int(where[1][j])}: " if where is not None else ""
        count = f" ({int(bad.sum())} of {len(bad)} pairs)" if len(bad) > 1 else ""
        return (f"{loc}{' and '.join(parts)}: the model never saw it in training (no "
                f"training ratings){count}")

    def predict(self, users, items, *, timestamps=None, ids="raw", unknown="raise",
                clip=False, return_std=False):
        """Predicted ratings, float32 array of shape (n,); with ``return_std`` a pair
        (predictions, standard deviations).

        users, items: raw ids (``ids="raw"``, default) or dense indices (``ids="index"``).
        timestamps: seconds since the epoch of each rating to predict (or datetime64
        values, or ISO 8601 dates), one per pair or one for all, for time-aware models
        (None: each user's last training day; other models ignore it).
        unknown: what to do with a pair whose user or item is not in the model or had no
        training ratings (its parameters would be untrained noise): ``"raise"`` (default),
        ``"nan"``, or ``"mean"`` (the training mean rating). clip: clip to the training
        rating scale. return_std: also the posterior predictive standard deviation of each
        rating (models fitted with ``optimizer="mcmc"`` only; NaN for unknown pairs): the
        spread of the posterior samples' predictions plus the noise the model estimated.
        """
        self._require_fitted()
        if unknown not in UNKNOWN_POLICIES:
            raise ModelError(f"unknown must be one of {UNKNOWN_POLICIES}, got {unknown!r}")
        u, i = self._to_indices(users, items, ids)
        ok_u, ok_i = self._known_indices(u, i)
        ok = ok_u & ok_i
        if not np.all(ok) and unknown == "raise":
            msg = self.unknown_pair_message(users, items, ok_u, ok_i)
            raise UnknownIdsError(f"{msg}; pass unknown='mean' or unknown='nan'")
        if return_std and getattr(self, "posterior_", None) is None:
            self._predict_indices(u[:0], i[:0], return_std=True)  # raises the explanation
        out = np.full(len(u), np.nan if unknown == "nan" else self.global_mean_, np.float32)
        std = np.full(len(u), np.nan, np.float32)
        if np.any(ok):
            ts = None if timestamps is None else _timestamps_for(timestamps, u.shape)[ok]
            if return_std:
                out[ok], std[ok] = self._predict_indices(u[ok], i[ok], ts, return_std=True)
            else:
                out[ok] = self._predict_indices(u[ok], i[ok], ts)
        if clip:
            np.clip(out, self.rating_min_, self.rating_max_, out=out)
        return (out, std) if return_std else out

    def evaluate(self, data, *, unknown="model", clip=False, timestamp=None) -> dict:
        """MSE, RMSE and MAE on ``data``: a Ratings (its own id maps or the model's) or a
        DataFrame with raw ids user, item, rating [, timestamp].

        Time-aware models use each row's timestamp; ``timestamp`` (seconds since 1970-01-01
        UTC, a datetime64 or an ISO 8601 date) puts every row at that time instead, and
        data without timestamps (all 0) is scored at each user's last training day.

        unknown: rows whose user or item had no training ratings. ``"model"`` (default)
        scores every row with the model, as Keras' ``val_loss`` does (ids outside the
        model's id maps raise ModelError); ``"skip"`` leaves them out; ``"mean"`` predicts the
        training mean for them. clip: clip predictions to the training rating scale.
        Returns ``{"mse", "rmse", "mae", "n", "skipped", "mean_filled"}``.
        """
        self._require_fitted()
        if unknown not in EVALUATE_POLICIES:
            raise ModelError(f"unknown must be one of {EVALUATE_POLICIES}, got {unknown!r}")
        if isinstance(data, Ratings) and np.array_equal(data.user_ids, self.user_ids_) \
                and np.array_equal(data.item_ids, self.item_ids_):
            users, items = data.users, data.items
        else:
            data = as_ratings(data, "data")
            users = lookup_ids(self.user_ids_, data.user_ids[data.users], "user", -1)
            items = lookup_ids(self.item_ids_, data.item_ids[data.items], "item", -1)
        y, ts = data.ratings, data.timestamps
        if len(y) == 0:
            raise ModelError("nothing to evaluate: the data set is empty")
        if timestamp is not None:
            ts = np.array(_timestamps_for(timestamp, y.shape, single=True))
        elif not np.any(ts != 0):
            ts = None  # no timestamps: each user's last training day
        outside = (users < 0) | (items < 0)
        if unknown == "model" and outside.any():
            j = int(np.flatnonzero(outside)[0])
            what = ("user", data.user_ids[data.users[j]]) if users[j] < 0 else \
                ("item", data.item_ids[data.items[j]])
            raise UnknownIdsError(f"{data.name}: {what[0]} {plain(what[1])} is not in "
                                  f"the model ({int(outside.sum())} of {len(y)} rows have ids "
                                  f"the model never saw); pass unknown='skip' or 'mean'")
        ok_u, ok_i = self._known_indices(users, items)
        known = ok_u & ok_i
        skipped = mean_filled = 0
        if unknown == "model":
            pred = self._predict_indices(users, items, ts)
        elif unknown == "skip":
            if not known.any():
                raise ModelError(f"{data.name}: none of its {len(y):,} rows has a user and an "
                                 f"item with training ratings; nothing to evaluate")
            skipped = int((~known).sum())
            pred = self._predict_indices(users[known], items[known],
                                         None if ts is None else ts[known])
            y = y[known]
        else:
            mean_filled = int((~known).sum())
            pred = np.full(len(y), self.global_mean_, np.float32)
            pred[known] = self._predict_indices(users[known], items[known],
                                                None if ts is None else ts[known])
        if clip:
            np.clip(pred, self.rating_min_, self.rating_max_, out=pred)
        sse, sae = loop.error_sums(pred, y)
        mse = sse / len(y)
        return {"mse": mse, "rmse": math.sqrt(mse), "mae": sae / len(y), "n": int(len(y)),
                "skipped": skipped, "mean_filled": mean_filled}

    # ---- recommendation ---------------------------------------------------------------------
    def _title(self, raw_item):
        return getattr(self, "titles_", {}).get(plain(raw_item))

    def recommend(self, user, n=10, *, timestamp=None, exclude_seen=True, ids="raw"):
        """The ``n`` items with the highest predicted rating for ``user``.

        Items without training ratings are never recommended; with ``exclude_seen`` the
        items the user rated in training are left out. timestamp: when the ratings would
        be given (as for :meth:`evaluate`), for time-aware models (None: the user's last
        training day). n: a whole number >= 0. Returns a DataFrame with columns item (raw
        id, or index with ``ids="index"``), score, title (when known).
        """
        self._require_fitted()
        n = _count(n)
        user = _one(user, "user")
        u, _ = self._to_indices([user], [self.item_ids_[0]] if ids == "raw" else [0], ids)
        u = int(u[0])
        if u < 0 or self.user_counts_[u] == 0:
            raise ModelError(f"user {plain(user)} had no ratings in the training data; "
                             f"cannot recommend for it")
        cand = np.flatnonzero(self.item_counts_ > 0).astype(np.int32)
        if exclude_seen:
            seen = self.seen_items_[self.seen_indptr_[u]:self.seen_indptr_[u + 1]]
            cand = np.setdiff1d(cand, seen, assume_unique=False).astype(np.int32)
        ts = None if timestamp is None else np.array(_timestamps_for(timestamp, cand.shape,
                                                                      single=True))
        scores = self._predict_indices(np.full(len(cand), u, np.int32), cand, ts)
        top = top_n(scores, n)
        return self._item_frame(cand[top], scores[top], "score", ids)

    def similar_items(self, item, n=10, *, ids="raw"):
        """The ``n`` items whose embeddings have the highest cosine similarity to ``item``'s
        (items without training ratings excluded). DataFrame: item, similarity, title."""
        self._require_fitted()
        n = _count(n)
        item = _one(item, "item")
        _, i = self._to_indices([self.user_ids_[0]] if ids == "raw" else [0], [item], ids)
        i = int(i[0])
        if i < 0 or self.item_counts_[i] == 0:
            raise ModelError(f"item {plain(item)} had no ratings in the training data")
        if getattr(self, "posterior_", None) is not None:
            from . import bayes
            E = bayes.item_embeddings(self).astype(np.float64)
        else:
            E = self.item_embeddings().astype(np.float64)
        norms = np.linalg.norm(E, axis=1)
        norms[norms == 0] = 1.0
        sims = (E @ E[i]) / (norms * norms[i])
        cand = np.flatnonzero((self.item_counts_ > 0) & (np.arange(len(sims)) != i))
        top = top_n(sims[cand], n)
        return self._item_frame(cand[top], sims[cand][top].astype(np.float32), "similarity", ids)

    def _item_frame(self, idx, values, col, ids):
        import pandas as pd
        raw = self.item_ids_[idx]
        frame = pd.DataFrame({"item": raw if ids == "raw" else idx, col: values})
        if getattr(self, "titles_", None):
            frame["title"] = [self._title(r) for r in raw]
        return frame

    # ---- persistence ------------------------------------------------------------------------
    def save(self, path, keep_samples=None) -> str:
        """Write the model to ``path`` (``.npz`` with JSON metadata, no pickle), atomically.

        keep_samples (models fitted with ``optimizer="mcmc"``): None (default) keeps every
        posterior sample whole; N keeps the averaged predictor (the same mean predictions,
        up to float rounding) and the last N samples whole, from which ``return_std``
        computes the spread (0: no spread). The factors of every sample stay either way:
        an FM's mean prediction needs them (:class:`mfcore.engine.mcmc.Posterior`)."""
        from .persist import save_model
        return save_model(self, path, keep_samples)


# ---- helpers ----------------------------------------------------------------------------
def _timestamps_for(timestamps, shape, single=False):
    """``timestamps`` (one, or one per pair; ``single``: one only) as int64 seconds of
    ``shape`` (:func:`mfcore.data.ratings.seconds_array` reads them); ModelError naming
    the argument otherwise."""
    try:
        if single and np.ndim(timestamps) != 0:
            raise ValueError("timestamp must be one time, not a sequence")
        secs = seconds_array(timestamps)
        if secs.size != 1 and secs.shape != tuple(shape):
            raise ValueError(f"{secs.size:,} timestamps for {shape[0]:,} pairs")
        return np.broadcast_to(secs.reshape(()) if secs.size == 1 else secs, shape)
    except (TypeError, ValueError, OverflowError) as exc:
        if single:
            raise ModelError(str(exc)) from None
        shown = repr(timestamps)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise ModelError(f"timestamps must be seconds since 1970-01-01 UTC (or ISO dates), "
                         f"one for every pair or one for all {shape[0]:,}; got {shown}: "
                         f"{exc}") from None


def _check_id_kind(what, given, own):
    """ModelError when raw ids are text and the model's numbers, or the other way round:
    every such id would otherwise be "never seen in training"."""
    gk, ok = np.asarray(given).dtype.kind, np.asarray(own).dtype.kind
    if not given.size or (gk in "US") == (ok in "US") or gk not in "USiuf":
        return
    if gk in "US":
        raise ModelError(f"{what} ids are given as text ({format_id(given.flat[0])}), but the "
                         f"model's {what} ids are numbers: pass them as numbers")
    raise ModelError(f"{what} ids are given as numbers ({format_id(given.flat[0])}), but the "
                     f"model's {what} ids are text: pass them as strings")


def _one(value, what):
    """A single id for recommend and similar_items; ModelError for a sequence."""
    if np.ndim(value) != 0:
        raise ModelError(f"{what} must be one id, got a sequence of {np.size(value)}; call "
                         f"once per {what}")
    return value


def _count(n, what="n") -> int:
    """``n`` of recommend and similar_items: a whole number >= 0 (0 gives an empty frame)."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ModelError(f"{what} must be a whole number >= 0, got {n!r}")
    return int(n)


def prediction_chunk(design, n) -> int:
    """Records per prediction call (see :meth:`RatingModel._prediction_chunk`)."""
    chunk = max(1, min(PREDICT_CHUNK, int(n)))
    per_record = int(design.workspace(2)) - int(design.workspace(1))
    if per_record > 0:
        chunk = max(1, min(chunk, PREDICT_WORKSPACE_BYTES // (4 * per_record)))
    return chunk


def top_n(scores, n):
    """Indices of the ``n`` largest scores, best first (ties in index order)."""
    n = max(0, min(int(n), len(scores)))
    if n == 0:
        return np.zeros(0, np.int64)
    part = np.argpartition(-scores, n - 1)[:n]
    return part[np.argsort(-scores[part], kind="stable")]


def plain(value):
    """A NumPy scalar as the plain Python value (for messages and JSON)."""
    return value.item() if hasattr(value, "item") else value


def as_ratings(data, what, like=None) -> Ratings:
    """``data`` as a Ratings: a Ratings as is, or a DataFrame with columns user, item,
    rating [, timestamp] (raw ids; with ``like``, mapped through ``like``'s id maps)."""
    if isinstance(data, Ratings):
        return data
    import pandas as pd
    if isinstance(data, pd.DataFrame):
        missing = [c for c in ("user", "item", "rating") if c not in data.columns]
        if missing:
            raise DataError(f"{what} DataFrame lacks column(s) {', '.join(missing)} "
                            f"(needs user, item, rating)")
        ts = data["timestamp"].to_numpy() if "timestamp" in data.columns else None
        maps = {} if like is None else {"user_ids": like.user_ids, "item_ids": like.item_ids}
        return Ratings.from_arrays(data["user"].to_numpy(), data["item"].to_numpy(),
                                   data["rating"].to_numpy(), ts, name="DataFrame", **maps)
    raise ModelError(f"{what} must be a mfcore Ratings or a pandas DataFrame, "
                     f"got {type(data).__name__}")
