"""What every model shares: fit, predict, evaluate, recommend, similar items, save and load.

A model is described by three float32 parameter arrays and a kernel:

- ``U_`` (n_users, du): one row of user parameters (factors, bias, bias vector ...);
- ``I_`` (n_items, di): the same for items;
- ``theta_`` (p,): the dense weights (MLP layers), flat;
- ``state_`` (s,): non-trainable state (batch-norm moving averages);

plus ``spec_``/``fspec_`` (int64/float64 hyper-parameters read by its compiled kernel, see
:mod:`mfcore.kernels`). Subclasses implement ``_build`` and, where they have them,
``_l2_columns`` and ``item_embeddings``; everything else lives here.
"""
from __future__ import annotations

import inspect
import json
import math
import os

import numpy as np

from ..atomic import atomic_output
from ..data.ratings import Ratings
from ..errors import DataError, ModelError, UnknownIdsError
from ..engine import trainer

FORMAT = "mfcore-model"
FORMAT_VERSION = 1
UNKNOWN_POLICIES = ("raise", "nan", "mean")
EVALUATE_POLICIES = ("model", "skip", "mean")


class RatingModel:
    """Base class of mfcore's rating-prediction models (scikit-learn conventions:
    hyper-parameters in ``__init__``, learned state in attributes ending with ``_``)."""

    #: the CLI name of the model
    name = "?"
    #: kernel family code (see :mod:`mfcore.kernels.dispatch`)
    kind = -1

    # ---- hyper-parameters ----------------------------------------------------------------
    @classmethod
    def _param_names(cls):
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self) -> dict:
        """The constructor's hyper-parameters and their current values."""
        return {p: getattr(self, p) for p in self._param_names()}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _reset(self):
        self.U_ = self.I_ = self.theta_ = self.state_ = None
        self.spec_ = self.fspec_ = None
        self.optimizer_state_ = None
        self.epochs_trained_ = 0
        self.history_ = None
        self.user_ids_ = self.item_ids_ = None
        self.seen_indptr_ = self.seen_items_ = None
        self.data_source_ = {}

    def _check_common(self):
        if not isinstance(self.seed, (int, np.integer)):
            raise ModelError(f"seed must be an integer, got {self.seed!r}")

    # ---- to be provided by subclasses -------------------------------------------------------
    def _build(self, n_users: int, n_items: int, rng: np.random.Generator):
        """Return ``(U, I, theta, state, spec, fspec)`` freshly initialised."""
        raise NotImplementedError

    def _l2_columns(self):
        """Per-column L2 coefficients ``(user_keras, item_keras, user_sample, item_sample)``
        (float32 arrays of length du, di, du, di)."""
        du, di = self.U_.shape[1], self.I_.shape[1]
        z = np.zeros
        return z(du, np.float32), z(di, np.float32), z(du, np.float32), z(di, np.float32)

    def _workspace_size(self, batch: int) -> int:
        """float32 scratch the kernel needs for ``batch`` samples."""
        return 1

    @property
    def _fused_sgd(self):
        """A fast per-sample SGD epoch ``f(users, items, y, lr, l2u, l2i) -> loss sum`` over
        shuffled samples, or None."""
        return None

    @classmethod
    def gradcheck_configs(cls) -> list:
        """Small hyper-parameter sets that together exercise every gradient path."""
        return [{}]

    def item_embeddings(self) -> np.ndarray:
        """(n_items, k) vectors used by :meth:`similar_items`."""
        raise ModelError(f"{self.name} has no item embedding to compare items with")

    # ---- fitting ----------------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return getattr(self, "U_", None) is not None and self.epochs_trained_ > 0

    def _prepare(self, train: Ratings):
        """Build parameters for ``train``'s index space (or keep them for a warm restart)."""
        same = (getattr(self, "U_", None) is not None and self.user_ids_ is not None
                and len(self.user_ids_) == train.n_users and len(self.item_ids_) == train.n_items
                and np.array_equal(self.user_ids_, train.user_ids)
                and np.array_equal(self.item_ids_, train.item_ids))
        if not same:
            self._reset_keep_source()
            rng = np.random.default_rng(self.seed)
            (self.U_, self.I_, self.theta_, self.state_,
             self.spec_, self.fspec_) = self._build(train.n_users, train.n_items, rng)
            self.user_ids_ = np.asarray(train.user_ids)
            self.item_ids_ = np.asarray(train.item_ids)
        if same and getattr(self, "_prepared_for", None) is train:
            return  # fit again on the same data: bookkeeping is already up to date
        self._prepared_for = train
        # what the training data tells about users and items (for predict/recommend):
        # the (user, item) pairs seen in every fit so far, without duplicates
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
        n_prev = getattr(self, "_n_train", 0) if same else 0
        mean_prev = getattr(self, "global_mean_", 0.0) if same else 0.0
        n_new = len(train)
        self.global_mean_ = float((mean_prev * n_prev + float(np.sum(train.ratings, dtype=np.float64)))
                                  / max(1, n_prev + n_new))
        self._n_train = n_prev + n_new
        lo, hi = train.rating_scale
        self.rating_min_ = min(lo, getattr(self, "rating_min_", lo)) if same else lo
        self.rating_max_ = max(hi, getattr(self, "rating_max_", hi)) if same else hi
        if train.titles:
            self.titles_ = dict(train.titles)
        elif not same:
            self.titles_ = {}

    def _reset_keep_source(self):
        source = getattr(self, "data_source_", {})
        self._reset()
        self.data_source_ = source

    def fit(self, train, validation=None, **kwargs) -> "trainer.History":
        """Train on ``train`` and return the :class:`~mfcore.engine.trainer.History`.

        ``train``: a :class:`Ratings` (or a DataFrame with columns user, item, rating);
        ``validation``: a Ratings sharing ``train``'s id maps (e.g. from
        :func:`mfcore.random_split`), or a DataFrame whose ids all occur in ``train``.
        Keyword options (epochs=6, batch_size=64, optimizer="adam", lr, seed,
        early_stopping, verbose, progress ...) are those of :func:`mfcore.engine.trainer.fit`.
        Calling ``fit`` again continues training from the current weights.
        """
        self._check_common()
        train = _as_ratings(train, "train")
        if validation is not None:
            validation = _as_ratings(validation, "validation", like=train)
            if not (np.array_equal(validation.user_ids, train.user_ids)
                    and np.array_equal(validation.item_ids, train.item_ids)):
                raise ModelError("validation must share train's id maps: split one Ratings "
                                 "with mfcore.random_split (or build both from one DataFrame)")
        trainer.fit(self, train, validation, **kwargs)
        return self.history_

    def _snapshot(self):
        st = self.optimizer_state_
        return (self.U_.copy(), self.I_.copy(), self.theta_.copy(), self.state_.copy(),
                None if st is None else st.copy(), self.epochs_trained_)

    def _restore(self, snap):
        self.U_[...] = snap[0]
        self.I_[...] = snap[1]
        self.theta_[...] = snap[2]
        self.state_[...] = snap[3]
        if snap[4] is not None:
            self.optimizer_state_ = snap[4]
        self.epochs_trained_ = snap[5]

    def _keras_penalty(self) -> float:
        """Keras' regularisation term ``sum_c l2[c] sum W[:, c]^2`` at the current weights."""
        l2u, l2i, _, _ = self._l2_columns()
        pen = 0.0
        for W, l2 in ((self.U_, l2u), (self.I_, l2i)):
            if np.any(l2 > 0):
                pen += float(np.sum(l2.astype(np.float64) * np.sum(W.astype(np.float64) ** 2, axis=0)))
        return pen

    # ---- prediction -------------------------------------------------------------------------
    def _require_fitted(self):
        if getattr(self, "U_", None) is None:
            raise ModelError(f"this {type(self).__name__} is not fitted yet: call fit() first")

    def _predict_indices(self, users, items) -> np.ndarray:
        """Raw model output for index arrays (no clipping, no unknown handling)."""
        users = np.ascontiguousarray(users, dtype=np.int32)
        items = np.ascontiguousarray(items, dtype=np.int32)
        n = len(users)
        out = np.empty(n, np.float32)
        chunk = max(1, min(trainer.EVAL_CHUNK, n))
        ws = np.zeros(self._workspace_size(chunk), np.float32)
        trainer.predict_all(self.kind, self.spec_, self.fspec_, self.U_, self.I_, self.theta_,
                            self.state_, users, items, out, ws, chunk,
                            np.empty(chunk, np.int32), np.empty(chunk, np.int32),
                            np.empty(chunk, np.float32))
        return out

    def _to_indices(self, users, items, ids):
        users = np.atleast_1d(np.asarray(users))
        items = np.atleast_1d(np.asarray(items))
        if users.shape != items.shape:
            raise ModelError(f"users and items must have the same length "
                             f"({users.shape[0]} vs {items.shape[0]})")
        if ids == "raw":
            from ..data.ratings import _lookup
            return (_lookup(self.user_ids_, users, "user", -1),
                    _lookup(self.item_ids_, items, "item", -1))
        if ids == "index":
            u = users.astype(np.int64)
            i = items.astype(np.int64)
            u = np.where((u >= 0) & (u < len(self.user_ids_)), u, -1).astype(np.int32)
            i = np.where((i >= 0) & (i < len(self.item_ids_)), i, -1).astype(np.int32)
            return u, i
        raise ModelError(f"ids must be 'raw' or 'index', got {ids!r}")

    def known(self, users, items, ids="raw") -> np.ndarray:
        """Boolean mask: both the user and the item had ratings in the training data."""
        self._require_fitted()
        u, i = self._to_indices(users, items, ids)
        ok = (u >= 0) & (i >= 0)
        ok[ok] = (self.user_counts_[u[ok]] > 0) & (self.item_counts_[i[ok]] > 0)
        return ok

    def predict(self, users, items, *, ids="raw", unknown="raise", clip=False) -> np.ndarray:
        """Predicted ratings, float32 array of shape (n,).

        users, items: raw ids (``ids="raw"``, default) or dense indices (``ids="index"``).
        unknown: what to do with a pair whose user or item is not in the model or had no
        training ratings (its parameters would be untrained noise): ``"raise"`` (default),
        ``"nan"``, or ``"mean"`` (the training mean rating). clip: clip to the training
        rating scale.
        """
        self._require_fitted()
        if unknown not in UNKNOWN_POLICIES:
            raise ModelError(f"unknown must be one of {UNKNOWN_POLICIES}, got {unknown!r}")
        u, i = self._to_indices(users, items, ids)
        ok = self.known(u, i, ids="index")
        if not np.all(ok) and unknown == "raise":
            j = int(np.flatnonzero(~ok)[0])
            raw_u = np.atleast_1d(np.asarray(users))[j]
            raw_i = np.atleast_1d(np.asarray(items))[j]
            raise UnknownIdsError(f"{int((~ok).sum())} of {len(ok)} pairs have a user or item the "
                             f"model never saw in training (first: user {raw_u!r}, item "
                             f"{raw_i!r}); pass unknown='mean' or unknown='nan'")
        out = np.full(len(u), np.nan if unknown == "nan" else self.global_mean_, np.float32)
        if np.any(ok):
            out[ok] = self._predict_indices(u[ok], i[ok])
        if clip:
            np.clip(out, self.rating_min_, self.rating_max_, out=out)
        return out

    def evaluate(self, data, *, unknown="model", clip=False) -> dict:
        """MSE, RMSE and MAE on ``data``: a Ratings (its own id maps or the model's) or a
        DataFrame with raw ids user, item, rating.

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
            data = _as_ratings(data, "data")
            from ..data.ratings import _lookup
            users = _lookup(self.user_ids_, data.user_ids[data.users], "user", -1)
            items = _lookup(self.item_ids_, data.item_ids[data.items], "item", -1)
        y = data.ratings
        if len(y) == 0:
            raise ModelError("nothing to evaluate: the data set is empty")
        outside = (users < 0) | (items < 0)
        if unknown == "model" and outside.any():
            j = int(np.flatnonzero(outside)[0])
            what = ("user", data.user_ids[data.users[j]]) if users[j] < 0 else \
                ("item", data.item_ids[data.items[j]])
            raise UnknownIdsError(f"{data.name}: {what[0]} {_plain_value(what[1])!r} is not in "
                                  f"the model ({int(outside.sum())} of {len(y)} rows have ids "
                                  f"the model never saw); pass unknown='skip' or 'mean'")
        known = ~outside
        known[known] = (self.user_counts_[users[known]] > 0) & (self.item_counts_[items[known]] > 0)
        skipped = mean_filled = 0
        if unknown == "model":
            pred = self._predict_indices(users, items)
        elif unknown == "skip":
            if not known.any():
                raise ModelError(f"{data.name}: none of its {len(y):,} rows has a user and an "
                                 f"item with training ratings; nothing to evaluate")
            skipped = int((~known).sum())
            pred = self._predict_indices(users[known], items[known])
            y = y[known]
        else:
            mean_filled = int((~known).sum())
            pred = np.full(len(y), self.global_mean_, np.float32)
            pred[known] = self._predict_indices(users[known], items[known])
        if clip:
            np.clip(pred, self.rating_min_, self.rating_max_, out=pred)
        sse, sae = trainer.error_sums(pred, y)
        mse = sse / len(y)
        return {"mse": mse, "rmse": math.sqrt(mse), "mae": sae / len(y), "n": int(len(y)),
                "skipped": skipped, "mean_filled": mean_filled}

    # ---- recommendation ---------------------------------------------------------------------
    def _title(self, raw_item):
        return getattr(self, "titles_", {}).get(raw_item.item() if hasattr(raw_item, "item") else raw_item)

    def recommend(self, user, n=10, *, exclude_seen=True, ids="raw"):
        """The ``n`` items with the highest predicted rating for ``user``.

        Items without training ratings are never recommended; with ``exclude_seen`` the
        items the user rated in training are left out. Returns a DataFrame with columns
        item (raw id, or index with ``ids="index"``), score, title (when known).
        """
        self._require_fitted()
        u, _ = self._to_indices([user], [self.item_ids_[0]] if ids == "raw" else [0], ids)
        u = int(u[0])
        if u < 0 or self.user_counts_[u] == 0:
            raise ModelError(f"user {user!r} had no ratings in the training data; "
                             f"cannot recommend for it")
        cand = np.flatnonzero(self.item_counts_ > 0).astype(np.int32)
        if exclude_seen:
            seen = self.seen_items_[self.seen_indptr_[u]:self.seen_indptr_[u + 1]]
            cand = np.setdiff1d(cand, seen, assume_unique=False).astype(np.int32)
        scores = self._predict_indices(np.full(len(cand), u, np.int32), cand)
        top = _top_n(scores, n)
        return self._item_frame(cand[top], scores[top], "score", ids)

    def similar_items(self, item, n=10, *, ids="raw"):
        """The ``n`` items whose embeddings have the highest cosine similarity to ``item``'s
        (items without training ratings excluded). DataFrame: item, similarity, title."""
        self._require_fitted()
        _, i = self._to_indices([self.user_ids_[0]] if ids == "raw" else [0], [item], ids)
        i = int(i[0])
        if i < 0 or self.item_counts_[i] == 0:
            raise ModelError(f"item {item!r} had no ratings in the training data")
        E = self.item_embeddings().astype(np.float64)
        norms = np.linalg.norm(E, axis=1)
        norms[norms == 0] = 1.0
        sims = (E @ E[i]) / (norms * norms[i])
        cand = np.flatnonzero((self.item_counts_ > 0) & (np.arange(len(sims)) != i))
        top = _top_n(sims[cand], n)
        return self._item_frame(cand[top], sims[cand][top].astype(np.float32), "similarity", ids)

    def _item_frame(self, idx, values, col, ids):
        import pandas as pd
        raw = self.item_ids_[idx]
        frame = pd.DataFrame({"item": raw if ids == "raw" else idx, col: values})
        if getattr(self, "titles_", None):
            frame["title"] = [self._title(r) for r in raw]
        return frame

    # ---- persistence ------------------------------------------------------------------------
    def save(self, path) -> str:
        """Write the model to ``path`` (``.npz`` with JSON metadata, no pickle), atomically."""
        self._require_fitted()
        path = os.fspath(path)
        meta = {
            "format": FORMAT, "version": FORMAT_VERSION, "model": self.name,
            "params": _jsonable(self.get_params()),
            "epochs_trained": int(self.epochs_trained_),
            "global_mean": self.global_mean_, "rating_min": self.rating_min_,
            "rating_max": self.rating_max_, "n_train": int(self._n_train),
            "history": self.history_.as_dict() if self.history_ is not None else None,
            "data_source": _jsonable(self.data_source_),
        }
        titles = getattr(self, "titles_", {}) or {}
        title_keys = list(titles)
        arrays = {
            "U": self.U_, "I": self.I_, "theta": self.theta_, "state": self.state_,
            "spec": self.spec_, "fspec": self.fspec_,
            "user_ids": _plain_ids(self.user_ids_), "item_ids": _plain_ids(self.item_ids_),
            "user_counts": self.user_counts_, "item_counts": self.item_counts_,
            "seen_indptr": self.seen_indptr_, "seen_items": self.seen_items_,
            "title_ids": _plain_ids(np.asarray(title_keys)) if title_keys else np.zeros(0, np.int64),
            "title_texts": np.asarray([titles[k] for k in title_keys], dtype=str) if title_keys
            else np.zeros(0, "U1"),
            "meta": np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8),
        }
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise ModelError(f"cannot save to {path}: folder {folder} does not exist")
        try:
            with atomic_output(path) as fh:
                np.savez(fh, **arrays)
        except OSError as exc:
            raise ModelError(f"cannot save to {path}: {exc.strerror or exc}") from None
        return path


def load_model(path) -> RatingModel:
    """Load a model written by :meth:`RatingModel.save`, validating it before use."""
    from . import MODELS
    path = os.fspath(path)
    try:
        z = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ModelError(f"{path}: no such model file") from None
    except Exception as exc:  # zipfile/ValueError/OSError: not a model file
        raise ModelError(f"{path}: not an mfcore model file ({exc})") from None
    with z:
        try:
            meta = json.loads(bytes(z["meta"]).decode("utf-8"))
            a = {k: z[k] for k in z.files if k != "meta"}
        except Exception as exc:
            raise ModelError(f"{path}: not an mfcore model file ({exc})") from None
    if meta.get("format") != FORMAT:
        raise ModelError(f"{path}: not an mfcore model file")
    if meta.get("version") != FORMAT_VERSION:
        raise ModelError(f"{path}: model format version {meta.get('version')} is not supported "
                         f"(this mfcore reads version {FORMAT_VERSION})")
    cls = MODELS.get(meta.get("model"))
    if cls is None:
        raise ModelError(f"{path}: unknown model {meta.get('model')!r}")
    try:
        model = cls(**meta["params"])
    except (TypeError, ModelError) as exc:
        raise ModelError(f"{path}: bad hyper-parameters in model file ({exc})") from None
    model._reset()
    n_users, n_items = len(a["user_ids"]), len(a["item_ids"])
    U, I, theta, state, spec, fspec = model._build(n_users, n_items, np.random.default_rng(0))
    for key, ref in (("U", U), ("I", I), ("theta", theta), ("state", state)):
        got = a[key]
        if got.shape != ref.shape or got.dtype != np.float32:
            raise ModelError(f"{path}: array {key} has shape {got.shape} {got.dtype}, "
                             f"expected {ref.shape} float32 for these hyper-parameters")
        if not np.all(np.isfinite(got)):
            raise ModelError(f"{path}: array {key} holds NaN or infinite values")
    if not (np.array_equal(a["spec"], spec) and np.allclose(a["fspec"], fspec)):
        raise ModelError(f"{path}: kernel settings do not match the hyper-parameters")
    ptr = a["seen_indptr"]
    if (len(ptr) != n_users + 1 or len(a["user_counts"]) != n_users
            or len(a["item_counts"]) != n_items or ptr[-1] != len(a["seen_items"])
            or (len(a["seen_items"]) and (a["seen_items"].min() < 0 or a["seen_items"].max() >= n_items))):
        raise ModelError(f"{path}: inconsistent user/item bookkeeping arrays")
    model.U_, model.I_, model.theta_, model.state_ = a["U"], a["I"], a["theta"], a["state"]
    model.spec_, model.fspec_ = spec, fspec
    model.user_ids_, model.item_ids_ = a["user_ids"], a["item_ids"]
    model.user_counts_, model.item_counts_ = a["user_counts"], a["item_counts"]
    model.seen_indptr_, model.seen_items_ = ptr, a["seen_items"].astype(np.int32)
    model.titles_ = {k.item() if hasattr(k, "item") else k: str(t)
                     for k, t in zip(a["title_ids"], a["title_texts"])}
    model.epochs_trained_ = int(meta["epochs_trained"])
    model.global_mean_ = float(meta["global_mean"])
    model.rating_min_, model.rating_max_ = float(meta["rating_min"]), float(meta["rating_max"])
    model._n_train = int(meta.get("n_train", 0))
    model.data_source_ = meta.get("data_source") or {}
    hist = meta.get("history")
    if hist:
        h = trainer.History()
        for k, v in hist.items():
            setattr(h, k, v)
        model.history_ = h
    return model


# ---- helpers ----------------------------------------------------------------------------
def _top_n(scores, n):
    n = max(0, min(int(n), len(scores)))
    if n == 0:
        return np.zeros(0, np.int64)
    part = np.argpartition(-scores, n - 1)[:n]
    return part[np.argsort(-scores[part], kind="stable")]


def _plain_value(v):
    return v.item() if hasattr(v, "item") else v


def _plain_ids(ids):
    ids = np.asarray(ids)
    if ids.dtype == object:
        return ids.astype(str)
    return ids


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _as_ratings(data, what, like=None) -> Ratings:
    if isinstance(data, Ratings):
        return data
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover
        pd = None
    if pd is not None and isinstance(data, pd.DataFrame):
        missing = [c for c in ("user", "item", "rating") if c not in data.columns]
        if missing:
            raise DataError(f"{what} DataFrame lacks column(s) {', '.join(missing)} "
                            f"(needs user, item, rating)")
        ts = data["timestamp"].to_numpy() if "timestamp" in data.columns else None
        if like is not None:
            return Ratings.from_arrays(data["user"].to_numpy(), data["item"].to_numpy(),
                                       data["rating"].to_numpy(), ts, name="DataFrame",
                                       user_ids=like.user_ids, item_ids=like.item_ids)
        return Ratings.from_arrays(data["user"].to_numpy(), data["item"].to_numpy(),
                                   data["rating"].to_numpy(), ts, name="DataFrame")
    raise ModelError(f"{what} must be a mfcore Ratings or a pandas DataFrame, "
                     f"got {type(data).__name__}")
