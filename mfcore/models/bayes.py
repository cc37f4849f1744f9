r"""The models that are factorization machines, fitted as Bayesian FMs by Gibbs sampling
(``model.fit(..., optimizer="mcmc")``, ``mfcore train --optimizer mcmc``).

Each supported model becomes an FM over feature groups built from what the model itself
learned about its data (its id maps, :class:`~mfcore.features.time.TimeAxis` and implicit
sets, so its switches hold), with ``factors`` as the FM rank. Per rating (u, i, t)::

    group           columns                    value             w (bias)    v (factors)
    user            one per user               1 at u            b_u         p_u
    implicit        one per item  (svdpp...)   |N(u)|^-1/2 on N(u)  -        y_j
    item            one per item               1 at i            b_i         q_i
    implicit_users  one per user  (flipped)    |N(i)|^-1/2 on N(i)  -        z_v
    item_bin        one per (item, Bin(t)) seen in training   1  b_{i,Bin(t)}   -
    user_day        one per (user, day) seen in training      1  b_{u,t}        -
    drift           one per user               dev_u(t) at u     a_u         ap_u

plus the FM's global bias w0 (mu). "-" marks a part held at 0 (the group is bias-only or
factors-only, as in Koren's models). ``baseline`` is user | item at rank 0 (biases only);
``mfb`` user | item; ``svdpp`` adds implicit (N(u) from the training pairs, or training
plus validation pairs with ``implicit="all"``), ``flipped=True`` implicit_users;
``timesvd``/``timesvdpp`` add item_bin, user_day and drift for the time terms their
``without`` tuple leaves on (drift's bias with ``drift``, its factors with
``factor_drift``).

What an FM cannot write exactly (Koren, KDD 2009):

- ``scale``: the multiplicative ``(b_i + b_{i,Bin(t)}) (c_u + c_{u,t})``. An FM has no
  product of two biases; ``b_i c_u`` is one rank-1 part of the user-item interaction
  ``p_u . q_i`` the factors already carry, but ``c_{u,t} b_i`` and ``c_u b_{i,Bin(t)}``
  would need factors on the bias-only user_day and item_bin groups. So under mcmc the
  ``scale`` term adds no column (``without=("scale",)`` changes nothing): the model is
  timeSVD(++) without the day-specific scale, the user-level part of it being absorbed
  by ``p_u . q_i``.
- The FM's pairwise interactions are all pairs of active columns, so besides Koren's
  ``q_i . (p_u + |N(u)|^-1/2 sum y_j + ap_u dev_u(t))`` it has terms that depend on the
  user alone (``p_u . sum y_j``: a per-user constant), ``y_j . z_v`` (flipped), and the
  drift factors against p_u and y_j. They are what Rendle, Zhang & Koren (2019) sample too.

  On a validation split of ml-100k fold u1's training part (benchmarks/tune_mcmc.py) the
  dev_u(t) terms do not pay under mcmc: timesvdpp k=10 flipped 0.8801 RMSE with them,
  0.8787 without their factors, 0.8778 ``without=("drift", "factor_drift")``. The model
  keeps Koren's terms by default (the same model under every optimizer); the README
  advises switching them off for mcmc.

Models without biases (``mf``), with a sigmoid output (``mfbs``, ``--sigmoid``) and the
neural models are not factorization machines and refuse mcmc. Training hyper-parameters
(L2, learning-rate multipliers, initialisation) have no meaning for the sampler, which
learns one Normal prior per group (Normal-Gamma hyper-priors): they are refused when not
at their defaults.
"""
from __future__ import annotations

import inspect

import numpy as np

from ..engine import mcmc
from ..engine.fm_design import CSR, FMDesign, RelationBlock, hstack, one_hot, row_normalised
from ..errors import ModelError

#: the models mcmc supports (structurally: those that are factorization machines)
SUPPORTED = ("baseline", "mfb", "svdpp", "timesvd", "timesvdpp")
#: hyper-parameters that only mean something to the gradient optimizers
TRAINING_ONLY = ("l2", "l2_bias", "l2_time", "l2_scale", "l2_mode", "lr_drift", "lr_time",
                 "init", "init_scale")
#: whether the implicit groups (N(u), N(i)) have biases of their own; Koren's SVD++ has
#: none, myFM's feature sets do (chosen on u1's training part: benchmarks/tune_mcmc.py)
IMPLICIT_BIASES = False


def refusal(model) -> str | None:
    """Why ``model`` cannot be fitted with mcmc (one line), or None."""
    from .mf import MF
    supported = ", ".join(SUPPORTED)
    if isinstance(model, MF):
        if not model.has_bias:
            return (f"optimizer 'mcmc' samples a factorization machine, which always has a "
                    f"global bias and a bias per user and item; {model.name} without biases "
                    f"is not one: use mfb (mcmc supports {supported})")
        if model.has_sigmoid:
            return (f"optimizer 'mcmc' samples a factorization machine, whose output is linear; "
                    f"{model.name} with a 5*sigmoid output is not one: use mfb without sigmoid "
                    f"(mcmc supports {supported})")
        return None
    if model.name not in SUPPORTED:
        return (f"optimizer 'mcmc' supports {supported} (the models that are factorization "
                f"machines); {model.name} is not one: use adam, sparse-adam or sgd")
    return None


def check_supported(model):
    """ModelError when ``model`` cannot be fitted with mcmc, or one of its training-only
    hyper-parameters is not at its default."""
    why = refusal(model)
    if why:
        raise ModelError(why)
    sig = inspect.signature(type(model).__init__).parameters
    for name in TRAINING_ONLY:
        if name in sig and getattr(model, name) != sig[name].default:
            raise ModelError(f"{name}={getattr(model, name)!r} does not apply to optimizer 'mcmc': "
                             f"the sampler learns the regularisation itself (a Normal prior per "
                             f"feature group) and has no learning rate; leave {name} at its "
                             f"default ({sig[name].default!r})")


def _csr_of_lists(ptr, idx, n_cols):
    rows = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
    return row_normalised(rows, idx, (len(ptr) - 1, n_cols))


class FMFeatures:
    """A model's FM columns (see the module docstring), built from the model's fitted
    context; ``item_bin_keys``: the (item * n_bins + bin) pairs of training, sorted (from
    :meth:`fit` or a saved model)."""

    def __init__(self, model, item_bin_keys=None):
        n_users, n_items = len(model.user_ids_), len(model.item_ids_)
        terms = model._terms() if hasattr(model, "_terms") else {}
        self.rank = 0 if model.name == "baseline" else int(model._setting("factors"))
        self.n_users = n_users
        self.axis = getattr(model, "time_axis_", None) if terms.get("time") else None
        sets = getattr(model, "implicit_sets_", None) or {}
        parts = []                                              # (name, width, linear, factored)
        if terms.get("item_bins"):
            if item_bin_keys is None:
                raise ValueError("item-bin pairs of the training data are missing")
            self.item_bin_keys = np.asarray(item_bin_keys, np.int64)
            parts.append(("item_bin", len(self.item_bin_keys), True, False))
        else:
            self.item_bin_keys = None
        if terms.get("user_day"):
            parts.append(("user_day", self.axis.n_user_days, True, False))
        self.drift = bool(terms.get("drift") or terms.get("factor_drift"))
        if self.drift:
            parts.append(("drift", n_users, bool(terms.get("drift")), bool(terms.get("factor_drift"))))
        self.x_parts = [name for name, *_ in parts]
        user_parts = [one_hot(np.arange(n_users), n_users)]
        item_parts = [one_hot(np.arange(n_items), n_items)]
        parts.append(("user", n_users, True, True))
        if terms.get("implicit"):
            user_parts.append(_csr_of_lists(sets["user_ptr"], sets["user_items"], n_items))
            parts.append(("implicit", n_items, IMPLICIT_BIASES, True))
        parts.append(("item", n_items, True, True))
        if terms.get("flipped"):
            item_parts.append(_csr_of_lists(sets["item_ptr"], sets["item_users"], n_users))
            parts.append(("implicit_users", n_users, IMPLICIT_BIASES, True))
        self.parts = parts
        self.user_table, self.item_table = hstack(user_parts), hstack(item_parts)
        self.groups = np.repeat(np.arange(len(parts)), [w for _, w, *_ in parts]).astype(np.int32)
        self.linear = np.array([lin for *_, lin, _ in parts], bool)
        self.factored = np.array([fac for *_, fac in parts], bool)

    @classmethod
    def fit(cls, model, train):
        """The features of ``model`` (its context fitted) on the training Ratings ``train``."""
        keys = None
        t = model._terms() if hasattr(model, "_terms") else {}
        if t.get("item_bins"):
            ax = model.time_axis_
            keys = np.unique(train.items.astype(np.int64) * ax.n_bins
                             + ax.bins(ax.days(train.users, train.timestamps)))
        return cls(model, keys)

    def layout(self):
        return mcmc.Layout(sum(w for name, w, *_ in self.parts if name in self.x_parts),
                           (self.user_table.shape[1], self.item_table.shape[1]), self.groups,
                           self.linear, self.factored, self.rank)

    def describe(self) -> list:
        """[[group, columns, has biases, has factors], ...] (for the history and logs)."""
        return [[name, int(w), bool(lin), bool(fac and self.rank > 0)] for name, w, lin, fac in self.parts]

    def columns(self, group):
        """The column numbers of ``group``."""
        return np.flatnonzero(self.groups == [name for name, *_ in self.parts].index(group))

    def design(self, users, items, timestamps=None, ratings=None) -> FMDesign:
        """The FM rows of (user, item[, time]) index triples (targets ``ratings`` or 0)."""
        users = np.asarray(users, np.int64)
        items = np.asarray(items, np.int64)
        n = len(users)
        uu, ur = np.unique(users, return_inverse=True)
        ii, ir = np.unique(items, return_inverse=True)
        blocks = (RelationBlock(ur, self.user_table.take_rows(uu)),
                  RelationBlock(ir, self.item_table.take_rows(ii)))
        X = None
        if self.x_parts:
            ax = self.axis
            days = ax.days(users, timestamps)
            cols = []
            for name in self.x_parts:
                if name == "item_bin":
                    keys = self.item_bin_keys
                    key = items * ax.n_bins + ax.bins(days)
                    pos = np.minimum(np.searchsorted(keys, key), max(len(keys) - 1, 0))
                    found = (keys[pos] == key) if len(keys) else np.zeros(n, bool)
                    cols.append(one_hot(np.where(found, pos, -1), len(keys)))
                elif name == "user_day":
                    cols.append(one_hot(ax.user_day_rows(users, days), ax.n_user_days))
                else:
                    cols.append(CSR(np.arange(n + 1), users, ax.dev(users, days).astype(np.float64),
                                    (n, self.n_users)))
            X = hstack(cols)
        y = np.zeros(n) if ratings is None else np.asarray(ratings, np.float64)
        return FMDesign(y, X, blocks, self.groups, self.linear, self.factored)


# ---------------------------------------------------------------------------- the model hooks

def finish(model, mean):
    """What a model reports for posterior means: float32, clipped when the model clips."""
    pred = mean.astype(np.float32)
    if getattr(model, "clip", False):
        np.clip(pred, model.rating_min_, model.rating_max_, out=pred)
    return pred


def fit(model, train, validation=None, **options):
    """``model.fit(train, validation, optimizer="mcmc", ...)`` (see :mod:`mfcore.engine.mcmc`
    for the options). A new chain from the seed every time."""
    check_supported(model)
    o = mcmc.mcmc_options(model, **options)
    if len(train) == 0:
        raise ModelError("the training set is empty")
    model._sampler_defaults = True      # hyper-parameters left at None: the sampler's defaults
    rank = 0 if model.name == "baseline" else int(model._setting("factors"))
    # before anything of the rank's size exists: every model factors at least a column per
    # user and per item (the exact columns are checked again in mcmc.run)
    mcmc.check_sampler_memory(train.n_users + train.n_items, rank, o.samples)
    return model._fit_or_undo("sampling", lambda: _sample(model, train, validation, o))


def _sample(model, train, validation, o):
    model._prepare(train, validation)
    model.posterior_ = None
    feats = FMFeatures.fit(model, train)
    d_train = feats.design(train.users, train.items, train.timestamps, train.ratings)
    val = None
    if validation is not None and len(validation):
        val = (feats.design(validation.users, validation.items, validation.timestamps),
               validation.ratings)
    if o.verbose:
        groups = ", ".join(f"{name} ({w:,}{'' if lin else ', no bias'}{'' if fac else ', no factors'})"
                           for name, w, lin, fac in feats.describe())
        o.log(f"mcmc: Bayesian FM of rank {feats.rank} over {groups}; {o.sweeps} sweeps, "
              f"the last {o.samples} kept (burn-in {o.burn_in}), seed {o.seed}")
        if (model._terms() if hasattr(model, "_terms") else {}).get("scale"):
            o.log("mcmc: scale (c_u + c_u,t multiplying the item bias) has no FM column; the "
                  "user-item factors approximate its user part (see mfcore.models.bayes)")
    post, hist = mcmc.run(d_train, feats.rank, o, val, finish=lambda m: finish(model, m),
                          settings={"features": feats.describe()})
    model.posterior_, model._fm = post, feats
    model.history_ = hist
    return hist


def features_of(model) -> FMFeatures:
    feats = getattr(model, "_fm", None)
    if feats is None:
        raise ModelError("this model has no posterior samples")
    return feats


def predict_indices(model, users, items, timestamps=None, return_std=False):
    """Posterior predictive means (float32, clipped as the model clips) of index arrays,
    and with ``return_std`` the predictive standard deviations (float32)."""
    feats = features_of(model)
    out = model.posterior_.predict(feats.design(users, items, timestamps), return_std)
    if return_std:
        return finish(model, out[0]), out[1].astype(np.float32)
    return finish(model, out)


def item_embeddings(model) -> np.ndarray:
    """Each item's factors from every kept sample side by side, scaled by 1/sqrt(samples):
    dot products of these rows are the posterior means of the samples' dot products (a
    rotation of the factors from one sample to the next changes nothing)."""
    feats, post = features_of(model), model.posterior_
    if feats.rank == 0:
        raise ModelError(f"{model.name} has no factors: no item embedding to compare items with")
    pos = np.searchsorted(post.layout.vcols, feats.columns("item"))
    E = post.V[:, pos, :].transpose(1, 0, 2).reshape(len(pos), -1)
    return E / np.sqrt(post.n_samples)


def saved_state(model, keep_samples=None) -> dict:
    """The posterior as plain arrays, for the model file (``mcmc.*`` context arrays);
    with ``keep_samples`` its compact form (:meth:`mfcore.engine.mcmc.Posterior.compact`)."""
    post = model.posterior_
    if keep_samples is not None:
        post = post.compact(keep_samples)
    out = dict(post.state())
    feats = features_of(model)
    if feats.item_bin_keys is not None:
        out["item_bin_keys"] = feats.item_bin_keys
    return out


def restore_state(model, arrays):
    """Rebuild the features and posterior saved by :func:`saved_state` for a loaded model
    (its id maps and context already restored); ValueError when they do not fit."""
    keys = arrays.get("item_bin_keys")
    if keys is not None:
        keys = np.asarray(keys)
        if keys.ndim != 1 or keys.dtype.kind not in "iu" or (len(keys) > 1 and np.any(np.diff(keys) <= 0)):
            raise ValueError("posterior item-bin pairs are not sorted unique integers")
    try:
        feats = FMFeatures(model, keys)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"the model's context does not give its FM features ({exc})") from None
    model.posterior_ = mcmc.Posterior.from_state(arrays, feats.layout())
    model._fm = feats
