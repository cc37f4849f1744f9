"""Model selection: k-fold cross-validation and hyper-parameter search, seeded and
reproducible, in this process, on local cores or on a Dask cluster.

    >>> from mfcore.tune import cross_validate, search
    >>> cross_validate("mfb", data, folds=5, epochs=6)        # DataFrame, one row per fold
    >>> r = search("mfbs", train, random=8, folds=3, epochs=4, jobs=2)
    >>> r.trials                                              # ranked DataFrame
    >>> r.best                                                # {"params": ..., "rmse": ...}
    >>> model = r.refit(train)                                # the best, on all of train

**Protocol.** A search scores every trial on the same folds of the data it is given
(k-fold, or one holdout part); give it the *training* part of a split, and keep the test
part for reporting the refitted best. Each (trial, fold) pair is one task: the model is
trained on the fold's training rows and scored (RMSE, MAE) on its held-out rows after
its last epoch; a trial's figure is the mean over its folds (``*_std``: the sample
standard deviation over the folds, n - 1 in the denominator, as ``compare --folds``). With
``early_stopping=PATIENCE`` each task carves an inner validation split (``inner``, 10%
of the fold's training rows, seeded) and stops on it, so the held-out rows never choose
an epoch; the epochs it kept are reported, and :meth:`SearchResult.refit` trains that
many (rounded mean) on all the data.

**Determinism.** Everything random derives from ``seed`` and the trial index only: the
folds and the inner splits (``seed``), the model's initialisation and shuffling (the
model's ``seed`` parameter, ``seed`` unless fixed: every trial starts from the same draws,
so trials differ by their parameters alone), and trial ``i``'s random-search draws
(``numpy.random.SeedSequence(seed, spawn_key=(i,))``, one uniform draw per parameter in
the order of the space, so ``random=16`` extends ``random=8``). Results are keyed by
trial and fold, never by worker or arrival, so ``jobs=1``, ``jobs=2`` and a Dask cluster
give identical tables (the ``seconds`` column aside).

**Spaces.** ``--grid 'factors=10,20,50 lr=1e-3,3e-3'``: every combination, in that
order. ``--space 'lr=log(1e-4,1e-1) l2=log(1e-6,1e-2) factors=int(8,128)'``: random
draws from ``log(a,b)`` (log-uniform), ``uniform(a,b)``, ``int(a,b)`` (uniform integer,
both ends included), ``logint(a,b)`` (log-uniform integer), ``choice(x,y,...)`` or
``x,y,...``, or a constant ``x``. Continuous draws keep 3 significant digits. Names are
the model's hyper-parameters (``factors``, ``l2``, ``l2_mode``, ``dropout`` ...) or fit
options (``lr``, ``lr_decay``, ``epochs``, ``batch_size``, ``optimizer``, ``shuffle``);
``-`` and ``_``
are the same. :func:`default_space` gives each model's default random space.
"""
from __future__ import annotations

import hashlib
import itertools
import math
import re
import statistics
import time
from contextlib import closing
from dataclasses import dataclass, field

import numpy as np

from . import registry
from .bounds import MAX_FOLDS, MAX_TRIALS, plain_float, plain_int
from .errors import MfcoreError, ModelError

__all__ = ["search", "cross_validate", "SearchResult", "parse_grid", "parse_space",
           "default_space", "Dist", "FoldSet", "FIT_KEYS", "METRICS", "SpaceError"]

#: fit options a search may vary (the rest of a trial's settings are model parameters)
FIT_KEYS = ("epochs", "batch_size", "optimizer", "lr", "lr_decay", "shuffle")
#: fit options that may be held fixed (FIT_KEYS, and early stopping's patience)
FIXED_FIT_KEYS = FIT_KEYS + ("early_stopping", "samples", "burn_in")
#: what a search can rank by
METRICS = ("rmse", "mae")
#: share of a fold's training rows that early stopping watches
INNER_FRACTION = 0.1


class SpaceError(MfcoreError, ValueError):
    """A grid or space that does not parse, or names a parameter the model lacks."""


# ---- distributions and parsers -------------------------------------------------------------
_KINDS = ("log", "uniform", "int", "logint", "choice", "const")


@dataclass(frozen=True)
class Dist:
    """One searched parameter: ``kind`` in log, uniform, int, logint, choice, const."""

    kind: str
    args: tuple

    def __post_init__(self):
        if self.kind not in _KINDS:
            raise SpaceError(f"unknown distribution {self.kind!r}; use one of "
                             f"{', '.join(_KINDS[:-1])}")
        a = self.args
        if self.kind in ("log", "uniform", "int", "logint"):
            if len(a) != 2 or not all(_is_number(x) for x in a):
                raise SpaceError(f"{self.kind}(a,b) takes two numbers, got {self}")
            lo, hi = a
            if lo > hi:
                raise SpaceError(f"{self}: the low end is above the high end")
            if self.kind in ("log", "logint") and lo <= 0:
                raise SpaceError(f"{self}: a log scale needs positive ends")
            if self.kind in ("int", "logint") and not all(float(x).is_integer() for x in a):
                raise SpaceError(f"{self}: integer ends expected")
        elif not a:
            raise SpaceError(f"{self.kind}() needs at least one value")

    def sample(self, u: float):
        """The value at quantile ``u`` in [0, 1) (one uniform draw per parameter)."""
        k, a = self.kind, self.args
        if k == "const":
            return a[0]
        if k == "choice":
            return a[min(int(u * len(a)), len(a) - 1)]
        lo, hi = float(a[0]), float(a[1])
        if k == "int":
            return int(min(lo + math.floor(u * (hi - lo + 1)), hi))
        if k == "logint":
            v = math.exp(math.log(lo) + u * (math.log(hi + 1) - math.log(lo)))
            return int(min(max(math.floor(v), lo), hi))
        v = math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))) if k == "log" \
            else lo + u * (hi - lo)
        return min(max(float(f"{v:.3g}"), lo), hi)

    def __str__(self):
        if self.kind == "const":
            return _show(self.args[0])
        return f"{self.kind}({','.join(_show(x) for x in self.args)})"


def _is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _show(v) -> str:
    """A parameter value for tables and specs: floats with 3 significant digits."""
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, tuple):
        return ",".join(_show(x) for x in v)
    return str(v)


def parse_value(text: str):
    """``"10"`` -> 10, ``"1e-3"`` -> 0.001, ``"true"`` -> True, ``"none"`` -> None, else
    the text itself (``"per-sample"``)."""
    t = text.strip()
    low = t.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("none", "null"):
        return None
    try:
        return plain_int(t)
    except ValueError:
        pass
    try:
        v = plain_float(t)
    except ValueError:
        return t
    return v if math.isfinite(v) else t


_ASSIGN = re.compile(r"\s*([A-Za-z_][\w-]*)\s*=\s*"
                     r"([A-Za-z_]\w*\s*\([^()]*\)|[^\s,=()]+(?:\s*,\s*[^\s,=()]+)*)\s*")


def _assignments(text, what):
    if isinstance(text, dict):
        return [(_key(k), v) for k, v in text.items()]
    if not isinstance(text, str) or not text.strip():
        raise SpaceError(f"empty {what}: expected name=values pairs such as "
                         f"'factors=10,20 lr=1e-3,3e-3'")
    out, pos = [], 0
    while pos < len(text):
        m = _ASSIGN.match(text, pos)
        if m is None or m.end() == pos:
            rest = text[pos:].strip()
            raise SpaceError(f"cannot read the {what} at {rest[:30]!r}: expected name=values "
                             f"such as 'factors=10,20' or 'lr=log(1e-4,1e-1)'")
        out.append((_key(m.group(1)), m.group(2)))
        pos = m.end()
    keys = [k for k, _ in out]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise SpaceError(f"{dup[0]} is given twice in the {what}")
    return out


def _key(name):
    return str(name).strip().replace("-", "_")


def parse_grid(text) -> dict:
    """``'factors=10,20,50 lr=1e-3,3e-3'`` -> ``{"factors": [10, 20, 50], "lr": [...]}``
    (a dict of lists passes through, keys normalised)."""
    grid = {}
    for key, values in _assignments(text, "grid"):
        if isinstance(values, str):
            if "(" in values:
                raise SpaceError(f"{key}={values}: a grid lists values (a,b,c); "
                                 f"distributions belong to --space")
            values = [parse_value(v) for v in values.split(",")]
        elif not isinstance(values, (list, tuple)):
            values = [values]
        if not values:
            raise SpaceError(f"{key}: no values")
        grid[key] = list(values)
    return grid


_CALL = re.compile(r"^([A-Za-z_]\w*)\s*\((.*)\)$", re.DOTALL)


def parse_dist(text) -> Dist:
    """One parameter's distribution from its text: ``log(1e-4,1e-1)``, ``int(8,128)``,
    ``choice(a,b)``, ``a,b`` (a choice) or ``a`` (a constant)."""
    if isinstance(text, Dist):
        return text
    if isinstance(text, (list, tuple)):
        return Dist("choice", tuple(text))
    if not isinstance(text, str):
        return Dist("const", (text,))
    t = text.strip()
    m = _CALL.match(t)
    if m:
        kind = m.group(1).lower()
        kind = {"loguniform": "log", "float": "uniform", "randint": "int"}.get(kind, kind)
        args = tuple(parse_value(v) for v in m.group(2).split(",") if v.strip())
        if kind == "const":
            raise SpaceError(f"{t}: write a constant as the bare value")
        return Dist(kind, args)
    values = tuple(parse_value(v) for v in t.split(","))
    return Dist("choice", values) if len(values) > 1 else Dist("const", values)


def parse_space(text) -> dict:
    """``'lr=log(1e-4,1e-1) factors=int(8,128)'`` -> ``{"lr": Dist, "factors": Dist}``
    (a dict of Dist, text or lists passes through, keys normalised)."""
    out = {}
    for key, value in _assignments(text, "space"):
        try:
            out[key] = parse_dist(value)
        except SpaceError as exc:
            raise SpaceError(f"{key}: {exc}") from None
    return out


def format_space(space: dict) -> str:
    """The text :func:`parse_space` reads back."""
    return " ".join(f"{k}={d}" for k, d in space.items())


# ---- default spaces ----------------------------------------------------------------------
#: the default random space of each model; ``{lr}`` is ``log(lr0/10, lr0*10)`` around the
#: learning rate fit would use (Adam 1e-3: 1e-4..1e-2; SGD and the Koren models' own
#: 1e-2: 1e-3..1e-1), ``{l2}`` the L2 range of the L2 mode in force (keras,
#: c * sum(W^2) over whole tables at every step: log(1e-7,1e-3); per-sample: log(1e-3,3e-1))
DEFAULT_SPACES = {
    "mf": "factors=logint(4,128) lr={lr} l2={l2}",
    "mfb": "factors=logint(4,128) lr={lr} l2={l2}",
    "mfbs": "factors=logint(4,128) lr={lr} l2={l2}",
    "linear": "factors=logint(4,128) lr={lr} l2={l2}",
    "nn": "factors=logint(4,128) lr={lr} l2={l2} dropout=uniform(0,0.6)",
    "residual": "factors=logint(4,128) lr={lr} l2={l2} dropout=uniform(0,0.6)",
    "mixed-bias": "factors=logint(4,128) lr={lr} l2={l2}",
    "mixed-interaction": "factors=logint(4,128) lr={lr} l2={l2} dropout=uniform(0,0.6)",
    "baseline": "lr={lr} l2={l2}",
    "svdpp": "factors=logint(4,128) lr={lr} l2={l2} l2_bias=log(1e-4,1e-1)",
    "timesvd": "factors=logint(4,128) lr={lr} l2={l2} l2_bias=log(1e-4,1e-1)",
    "timesvdpp": "factors=logint(4,128) lr={lr} l2={l2} l2_bias=log(1e-4,1e-1)",
}
L2_RANGES = {"keras": "log(1e-7,1e-3)", "per-sample": "log(1e-3,3e-1)"}


def default_space(model, optimizer=None, l2_mode=None, fixed=()) -> dict:
    """The default random space of ``model`` (a name) when trained with ``optimizer``
    (None: the model's own) and ``l2_mode`` (None: the model's default), leaving out the
    names in ``fixed``. With ``sgd`` or ``sparse-adam`` and no fixed ``l2_mode`` the space
    also sets ``l2_mode=per-sample``: Keras' whole-table L2 moves every row at every step,
    which makes per-sample SGD about a thousand times slower and which sparse Adam refuses.
    Under ``mcmc`` (no learning rate, priors learned) the space is the rank alone.
    """
    from .engine.trainer import FIT_DEFAULTS
    from .models import MODELS
    if model not in DEFAULT_SPACES:
        raise SpaceError(f"no default space for model {model!r}; give one (--space)")
    cls = MODELS[model]
    fixed = {_key(k) for k in fixed}
    if optimizer == "mcmc":
        # the sampler learns its priors and has no learning rate: only the rank is a choice
        if "factors" not in cls._param_names():
            raise SpaceError(f"{model} under mcmc has no default space (it samples biases "
                             f"only, and learns their priors); give one (--space)")
        space = {k: d for k, d in parse_space("factors=logint(4,128)").items()
                 if k not in fixed}
        if not space:
            raise SpaceError(f"{model} under mcmc: the default space is the rank alone, and "
                             f"it is held fixed; give one (--space)")
        return space
    own = {**FIT_DEFAULTS, **cls.fit_defaults}
    if optimizer is None or optimizer == own["optimizer"]:
        lr0 = own.get("lr") or registry.optimizer(own["optimizer"]).default_lr
    else:
        lr0 = registry.optimizer(optimizer).default_lr
    mode = l2_mode
    extra = ""
    if mode is None:
        default_mode = cls().l2_mode if "l2_mode" in cls._param_names() else "keras"
        opt = optimizer or own["optimizer"]
        if opt in ("sgd", "sparse-adam") and default_mode == "keras" \
                and "l2_mode" in cls._param_names():
            mode, extra = "per-sample", " l2_mode=per-sample"
        else:
            mode = default_mode
    text = DEFAULT_SPACES[model].format(lr=f"log({lr0 / 10:.3g},{lr0 * 10:.3g})",
                                        l2=L2_RANGES[mode]) + extra
    return {k: d for k, d in parse_space(text).items() if k not in fixed}


# ---- folds, shipped to every worker once ---------------------------------------------------
class FoldSet:
    """The (train, test) pairs every trial is scored on: a base Ratings with each row's
    test fold (-1: never held out), or explicit pairs. Pickles without its caches, so a
    worker receives the data once and cuts (and caches) the folds itself."""

    def __init__(self, *, base=None, assignment=None, pairs=None, names=None):
        if (pairs is None) == (base is None):
            raise MfcoreError("a FoldSet takes either pairs or a base and an assignment")
        self.base, self.pairs = base, None if pairs is None else [tuple(p) for p in pairs]
        self.assignment = None if assignment is None else np.asarray(assignment, np.int64)
        if self.pairs is not None:
            n = len(self.pairs)
        else:
            if len(self.assignment) != len(base):
                raise MfcoreError("a fold assignment needs one entry per rating")
            n = int(self.assignment.max()) + 1 if len(self.assignment) else 0
        if n < 1:
            raise MfcoreError("no folds")
        self.names = list(names) if names is not None else [str(j + 1) for j in range(n)]
        self._cache = {}

    @classmethod
    def kfold(cls, data, k, seed=0):
        """``k``-fold cross-validation as :func:`mfcore.data.kfold_split` cuts it."""
        from .data.splits import kfold_assignment
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) \
                or not 2 <= k <= MAX_FOLDS:
            raise MfcoreError(f"folds must be an integer from 2 to {MAX_FOLDS:,}, got {k!r}")
        return cls(base=data, assignment=kfold_assignment(len(data), int(k), seed))

    @classmethod
    def holdout(cls, data, fraction, seed=0):
        """One fold: ``fraction`` of the rows held out, as :func:`mfcore.random_split`
        with ``train_fraction = 1 - fraction`` cuts them."""
        if not (isinstance(fraction, (int, float)) and 0 < fraction < 1):
            raise MfcoreError(f"holdout must be a fraction in (0, 1), got {fraction!r}")
        train = np.random.default_rng(seed).random(len(data)) < 1.0 - fraction
        if train.all() or not train.any():
            part = "no rating" if train.all() else "every rating"
            raise MfcoreError(f"a holdout of {fraction:g} of {len(data):,} ratings holds out "
                              f"{part}: use a fraction that leaves ratings on both sides")
        return cls(base=data, assignment=np.where(train, -1, 0), names=["holdout"])

    def __len__(self):
        return len(self.names)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_cache"] = {}
        return state

    def get(self, j):
        """Fold ``j``'s ``(train, test)``."""
        if self.pairs is not None:
            return self.pairs[j]
        if ("fold", j) not in self._cache:
            test = self.assignment == j
            self._cache[("fold", j)] = (self.base.subset(~test), self.base.subset(test))
        return self._cache[("fold", j)]

    def inner(self, j, fraction, seed):
        """Fold ``j``'s training rows split for early stopping: ``(train, validation)``."""
        key = ("inner", j, fraction, seed)
        if key not in self._cache:
            from .data import random_split
            self._cache[key] = random_split(self.get(j)[0], 1.0 - fraction, seed=seed)
        return self._cache[key]

    def sizes(self, j):
        train, test = self.get(j)
        return len(train), len(test)

    def fingerprint(self) -> str:
        """A hash of the rows and folds (names the data in task keys)."""
        h = hashlib.blake2b(digest_size=8)
        parts = [p for pair in self.pairs for p in pair] if self.pairs else [self.base]
        for r in parts:
            for a in (r.users, r.items, r.ratings, r.timestamps, r.user_ids, r.item_ids):
                h.update(np.ascontiguousarray(a).tobytes())
        if self.assignment is not None:
            h.update(self.assignment.tobytes())
        return h.hexdigest()


# ---- one task: a trial on a fold -----------------------------------------------------------
@dataclass(frozen=True)
class Task:
    """Train ``model`` with ``params`` on fold ``fold`` with ``fit`` options."""

    trial: int
    fold: int
    model: str
    params: dict
    fit: dict
    inner: float = INNER_FRACTION
    seed: int = 0


def _task_cost(task: Task) -> float:
    """A rough relative cost of ``task`` (epochs x (17 + factors), from timing mfbs fits
    on ml-100k), used only to hand the longest tasks out first so that the workers finish
    together; it never changes a result."""
    from .models import MODELS
    defaults = getattr(MODELS.get(task.model), "fit_defaults", {})
    epochs = task.fit.get("epochs", defaults.get("epochs", 1))
    factors = task.params.get("factors")
    return float(epochs or 1) * (17.0 + (factors if isinstance(factors, (int, float)) else 0.0))


def run_task(task: Task, folds: FoldSet) -> dict:
    """Fit and score one (trial, fold): ``{"trial", "fold", "rmse", "mae", "mse",
    "n_test", "epochs", "seconds"}``, or ``"error"`` when training failed (diverged)."""
    from .models import create_model
    t0 = time.perf_counter()
    train, test = folds.get(task.fold)
    fit = dict(task.fit)
    patience = fit.pop("early_stopping", None)
    validation = None
    if patience is not None:
        train, validation = folds.inner(task.fold, task.inner, task.seed)
    out = {"trial": task.trial, "fold": task.fold}
    try:
        model = create_model(task.model, **task.params)
        hist = model.fit(train, validation, early_stopping=patience, verbose=0,
                         progress=False, threads=1, **fit)
        scores = model.evaluate(test)
    except MfcoreError as exc:
        out["error"] = str(exc)
    else:
        out.update(rmse=float(scores["rmse"]), mae=float(scores["mae"]),
                   mse=float(scores["mse"]), n_test=int(scores["n"]),
                   epochs=hist.best_epoch if hist.stopped_early and hist.best_epoch
                   else len(hist.loss))
    out["seconds"] = time.perf_counter() - t0
    return out


# ---- running tasks -------------------------------------------------------------------------
def _run(backend, tasks, folds, group, progress, on_group=None, desc="trials"):
    """Run ``tasks`` on ``backend``; ``{group: {fold: result}}``, in no particular order.
    ``group(task)`` names what the bar counts (a trial, or a fold); ``on_group(g, results)``
    is called as each group completes."""
    from .progress import Progress
    size = {}
    for t in tasks:
        size[group(t)] = size.get(group(t), 0) + 1
    done = {}
    with Progress(len(size), desc=desc, unit=desc[:-1] if desc.endswith("s") else desc,
                  enabled=progress) as bar, closing(backend.run(run_task, tasks, folds)) as it:
        for i, res in it:
            g = group(tasks[i])
            done.setdefault(g, {})[tasks[i].fold] = res
            if len(done[g]) == size[g]:
                bar.update(1)
                if on_group is not None:
                    on_group(g, done[g])
    return done


def _model_and_params(model, params, seed):
    """``(name, hyper-parameters)`` of a model given by name or instance (checked)."""
    from .models import MODELS, RatingModel, create_model
    if isinstance(model, RatingModel):
        name, base = model.name, dict(model.get_params())
    elif isinstance(model, str) and model in MODELS:
        name, base = model, {"seed": seed}
    else:
        raise ModelError(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
    base.update({_key(k): v for k, v in (params or {}).items()})
    create_model(name, **base)
    return name, base


def _check_fit(fit, where="fit option"):
    fit = {_key(k): v for k, v in fit.items() if v is not None}
    bad = sorted(set(fit) - set(FIXED_FIT_KEYS))
    if bad:
        raise ModelError(f"unknown {where} {bad[0]!r}; fit options are "
                         f"{', '.join(FIXED_FIT_KEYS)}")
    return fit


def _check_config(name, params, fit, label):
    """Build the model and resolve the fit options of one configuration, so that a bad
    value fails before any work starts: SpaceError naming the trial."""
    from .models import create_model
    try:
        o = create_model(name, **params).check_fit(
            validation=fit.get("early_stopping") is not None, verbose=0, progress=False, **fit)
        if fit.get("optimizer") != "mcmc" and o.epochs < 1:
            # fit allows 0 (build only); a search would rank untrained models
            raise ModelError(f"epochs must be at least 1 to compare trained models, got "
                             f"{o.epochs}")
    except MfcoreError as exc:     # a value of the grid or space the model refuses
        raise SpaceError(f"{label}: {exc}") from None


def _folds_for(data, folds, holdout, seed):
    if isinstance(data, FoldSet):
        return data
    if isinstance(data, (list, tuple)):
        return FoldSet(pairs=data)
    if holdout is not None:
        return FoldSet.holdout(data, holdout, seed)
    return FoldSet.kfold(data, folds, seed)


def mean_std(values):
    """Mean and sample standard deviation (0 for one value) of ``values``."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _trial_record(index, searched, results, folds: FoldSet):
    per_fold = [results[j] for j in range(len(folds))]
    rec = {"trial": index, "params": searched}
    errors = [r["error"] for r in per_fold if "error" in r]
    if errors:
        rec.update(rmse=None, rmse_std=None, mae=None, mae_std=None, epochs=None,
                   error=errors[0])
    else:
        for m in METRICS:
            rec[m], rec[m + "_std"] = mean_std([r[m] for r in per_fold])
        epochs = [r["epochs"] for r in per_fold]
        rec["epochs"] = epochs[0] if len(set(epochs)) == 1 else statistics.fmean(epochs)
        rec["error"] = None
    rec["seconds"] = sum(r["seconds"] for r in per_fold)
    rec["folds"] = [{"fold": folds.names[j], **{k: v for k, v in r.items()
                                                 if k not in ("trial", "fold")}}
                    for j, r in enumerate(per_fold)]
    return rec


# ---- search --------------------------------------------------------------------------------
@dataclass
class SearchResult:
    """What :func:`search` found. ``records``: one dict per trial in trial order
    (``trial``, ``params`` (the searched values), ``rmse``, ``rmse_std``, ``mae``,
    ``mae_std``, ``epochs``, ``seconds``, ``error``, ``folds``)."""

    model: str
    fixed: dict
    fit: dict
    metric: str
    seed: int
    method: str
    space: dict
    protocol: str
    records: list
    retried: int = 0
    backend: str = ""
    seconds: float = 0.0
    tasks: int = 0
    folds: list = field(default_factory=list)

    def ranked(self) -> list:
        """The records best first (failed trials last, ties by trial index), with
        ``rank``."""
        def key(r):
            v = r.get(self.metric)
            return (v is None, math.inf if v is None else v, r["trial"])
        return [{"rank": n, **r} for n, r in enumerate(sorted(self.records, key=key), 1)]

    @property
    def best(self) -> dict:
        """The best trial's record (with ``rank`` 1)."""
        return self.ranked()[0]

    @property
    def trials(self):
        """The ranked trials as a DataFrame: rank, trial, one column per searched
        parameter, rmse, rmse_std, mae, mae_std, epochs, seconds, error."""
        import pandas as pd
        rows = []
        for r in self.ranked():
            row = {"rank": r["rank"], "trial": r["trial"], **r["params"]}
            row.update({k: r[k] for k in ("rmse", "rmse_std", "mae", "mae_std", "epochs",
                                          "seconds", "error")})
            rows.append(row)
        return pd.DataFrame(rows)

    def best_settings(self):
        """``(model parameters, fit options)`` of the best trial, everything fixed
        included; with early stopping, the epochs its folds kept (rounded mean) instead of
        the patience."""
        best = self.best
        params, fit = dict(self.fixed), dict(self.fit)
        for k, v in best["params"].items():
            (fit if k in FIT_KEYS else params)[k] = v
        if fit.pop("early_stopping", None) is not None and best.get("epochs") is not None:
            fit["epochs"] = max(1, int(round(best["epochs"])))
        return params, fit

    def refit(self, train, validation=None, **options):
        """The best configuration trained on ``train`` (all the data searched on, say).
        ``validation`` is only reported in the history (nothing stops on it)."""
        from .models import create_model
        params, fit = self.best_settings()
        model = create_model(self.model, **params)
        model.fit(train, validation, **{"verbose": 0, "progress": False, **fit, **options})
        return model

    def as_dict(self) -> dict:
        """Plain JSON-ready form: ``{"trials": [...ranked...], "best": {...}, ...}``."""
        return {"model": self.model, "metric": self.metric, "method": self.method,
                "space": {k: str(d) for k, d in self.space.items()}, "fixed": self.fixed,
                "fit": self.fit, "seed": self.seed, "protocol": self.protocol,
                "folds": self.folds, "backend": self.backend, "tasks": self.tasks,
                "retried": self.retried, "wall_seconds": self.seconds,
                "trials": self.ranked(), "best": self.best}


def _configs(name, grid, random, space, seed, taken):
    """``(method, space, [searched params of trial 0, 1, ...])``."""
    from .models import MODELS
    if (grid is None) == (random is None):
        raise SpaceError("give either a grid or a number of random trials")
    cls = MODELS[name]
    known = set(cls._param_names()) - {"seed"}
    if grid is not None:
        if space is not None:
            raise SpaceError("a space goes with random search, not with a grid")
        values = parse_grid(grid)
        names, method = list(values), "grid"
        described = {k: Dist("choice", tuple(v)) if len(v) > 1 else Dist("const", tuple(v))
                     for k, v in values.items()}
        n = math.prod(len(v) for v in values.values())
        if n > MAX_TRIALS:
            raise SpaceError(f"the grid has {n:,} combinations; at most {MAX_TRIALS:,} "
                             f"trials per search")
        configs = [dict(zip(names, combo)) for combo in itertools.product(*values.values())]
    else:
        if isinstance(random, bool) or not isinstance(random, (int, np.integer)) \
                or not 1 <= random <= MAX_TRIALS:
            raise SpaceError(f"random must be a number of trials from 1 to {MAX_TRIALS:,}, "
                             f"got {random!r}")
        if space is None:
            raise SpaceError("random search needs a space")
        described, method = parse_space(space), "random"
        configs = []
        for i in range(int(random)):
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i,)))
            configs.append({k: d.sample(float(rng.random())) for k, d in described.items()})
    for k in described:
        if k == "seed":
            raise SpaceError("the seed is not searched: it is the search's own --seed")
        if k not in known and k not in FIT_KEYS:
            raise SpaceError(f"model {name} has no parameter {k!r}; it takes "
                             f"{', '.join(sorted(known))}, and the fit options "
                             f"{', '.join(FIT_KEYS)}")
        if k in taken:
            raise SpaceError(f"{k} is both held fixed and searched; drop one")
    return method, described, configs


def search(model, data, *, grid=None, random=None, space=None, folds=3, holdout=None,
           metric="rmse", seed=0, params=None, inner=INNER_FRACTION, jobs=1,
           scheduler=None, retries=2, progress=False, callback=None, **fit) -> SearchResult:
    """Grid or random search of ``model``'s hyper-parameters on ``data``.

    model: a name (``"mfb"``) or a model instance (its parameters are held fixed unless
    searched); params: more fixed hyper-parameters. data: the Ratings to search on (the
    training part of a split), cut into ``folds`` k-fold folds, or one ``holdout``
    fraction, with ``seed``; or a :class:`FoldSet` / a list of ``(train, test)`` pairs.
    grid: ``'factors=10,20 lr=1e-3,3e-3'`` or a dict of lists; random: the number of
    trials drawn from ``space`` (text, a dict, or None for :func:`default_space`).
    metric: ``"rmse"`` or ``"mae"`` (what ranks). fit: fixed fit options (epochs,
    batch_size, optimizer, lr, shuffle, early_stopping: patience on an inner validation
    split of ``inner`` of each fold's training rows). jobs: local processes (1: this
    process; None: one per core); scheduler: a Dask scheduler address or Client instead;
    retries: how often a task may be run again after its worker died. progress: a bar on
    stderr per finished trial; callback(record): called as each trial finishes.
    """
    from .parallel import make_backend
    t0 = time.perf_counter()
    if metric not in METRICS:
        raise MfcoreError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    name, fixed = _model_and_params(model, params, seed)
    fixed_fit = _check_fit(fit)
    # what the caller fixed on purpose; an instance's other values are defaults that a
    # search may override
    given = {_key(k) for k in (params or {})} - {"seed"}
    if random is not None and space is None:
        space = default_space(name, fixed_fit.get("optimizer"), fixed.get("l2_mode")
                              if "l2_mode" in given else None, given | set(fixed_fit))
    method, described, configs = _configs(name, grid, random, space, seed,
                                          given | set(fixed_fit))
    fold_set = _folds_for(data, folds, holdout, seed)
    tasks = []
    for i, searched in enumerate(configs):
        p = {**fixed, **{k: v for k, v in searched.items() if k not in FIT_KEYS}}
        f = {**fixed_fit, **{k: v for k, v in searched.items() if k in FIT_KEYS}}
        _check_config(name, p, f, f"trial {i} ({_params_text(searched)})")
        tasks += [Task(i, j, name, p, f, inner, seed) for j in range(len(fold_set))]
    # longest first (a stable sort: a trial's folds stay together), so that no worker is
    # left with a long task while the others idle; results do not depend on the order
    tasks.sort(key=lambda t: -_task_cost(t))
    backend = make_backend(jobs, scheduler, retries)
    records = [None] * len(configs)

    def finished(trial, results):
        records[trial] = _trial_record(trial, configs[trial], results, fold_set)
        if callback is not None:
            callback(records[trial])

    _run(backend, tasks, fold_set, lambda t: t.trial, progress, finished)
    protocol = ("holdout" if fold_set.names == ["holdout"]
                else f"{len(fold_set)}-fold cross-validation")
    if fixed_fit.get("early_stopping") is not None:
        protocol += f", early stopping on {inner:g} of each fold's training rows"
    return SearchResult(name, fixed, fixed_fit, metric, seed, method, described, protocol,
                        records, backend.retried, backend.describe(),
                        time.perf_counter() - t0, len(tasks),
                        [dict(zip(("fold", "n_train", "n_test"), (fold_set.names[j],
                                                                  *fold_set.sizes(j))))
                         for j in range(len(fold_set))])


# ---- cross-validation ----------------------------------------------------------------------
def _cv_folds(data, folds, seed):
    from .data import grouplens_fold, load_grouplens_fold
    from .data.splits import fold_number
    if isinstance(data, FoldSet):
        return data
    if isinstance(data, (list, tuple)):
        return FoldSet(pairs=data)
    if isinstance(folds, str):
        folds = [f for f in folds.split(",") if f.strip()]
    if isinstance(folds, (list, tuple)):
        names = [f"u{fold_number(f)}" for f in folds]
        pairs = [load_grouplens_fold(n, progress=False) if data is None
                 else grouplens_fold(data, n) for n in names]
        return FoldSet(pairs=pairs, names=names)
    if data is None:
        raise MfcoreError("cross_validate needs data (or GroupLens fold names)")
    return FoldSet.kfold(data, folds, seed)


def cross_validate(model, data=None, *, folds=5, seed=0, inner=INNER_FRACTION, jobs=1,
                   scheduler=None, retries=2, progress=False, **fit):
    """Train and score ``model`` on every fold: a DataFrame with one row per fold (fold,
    rmse, mae, mse, n_train, n_test, epochs, seconds, error).

    model: a name or an instance (a name gets ``seed=seed``). data: a Ratings cut into
    ``folds`` k-fold folds with ``seed``; with ``folds`` a list of GroupLens fold names
    (``["u1", ..., "u5"]`` or ``"u1,u2"``), data is MovieLens 100K's u.data (or None: the
    data home's ``uK.base``/``uK.test``, as ``mfcore train --split uK`` reads them); or a
    :class:`FoldSet` / a list of ``(train, test)`` pairs. fit: fit options (epochs,
    batch_size, optimizer, lr, shuffle, early_stopping on an inner split of ``inner`` of
    each fold's training rows). jobs/scheduler/retries/progress: as :func:`search`.
    ``frame.attrs`` holds the model, its parameters, the fit options and ``retried``.
    Summary: ``frame[["rmse", "mae"]].agg(["mean", "std"])`` (``std`` there is the sample
    standard deviation; the command line prints the population one, as search does).
    """
    import pandas as pd

    from .parallel import make_backend
    name, params = _model_and_params(model, None, seed)
    fit = _check_fit(fit)
    _check_config(name, params, fit, name)
    fold_set = _cv_folds(data, folds, seed)
    tasks = [Task(0, j, name, params, fit, inner, seed) for j in range(len(fold_set))]
    backend = make_backend(jobs, scheduler, retries)
    done = _run(backend, tasks, fold_set, lambda t: t.fold, progress, desc="folds")
    rows = []
    for j in range(len(fold_set)):
        r = done[j][j]
        n_train, n_test = fold_set.sizes(j)
        rows.append({"fold": fold_set.names[j], "rmse": r.get("rmse", math.nan),
                     "mae": r.get("mae", math.nan), "mse": r.get("mse", math.nan),
                     "n_train": n_train, "n_test": n_test, "epochs": r.get("epochs"),
                     "seconds": r["seconds"], "error": r.get("error")})
    frame = pd.DataFrame(rows)
    frame.attrs.update(model=name, params=params, fit=fit, retried=backend.retried,
                       backend=backend.describe())
    return frame


# ---- reports -------------------------------------------------------------------------------
def _params_text(params) -> str:
    return " ".join(f"{k}={_show(v)}" for k, v in params.items()) or "(defaults)"


def _num(v, fmt=".4f"):
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def _epochs_text(v):
    if v is None:
        return "-"
    return str(v) if isinstance(v, int) else f"{v:.1f}"


def _table_rows(result: SearchResult):
    names = list(result.space)
    head = ["rank", "trial", result.metric, "±std",
            "mae" if result.metric == "rmse" else "rmse", "epochs", "seconds"] + names
    other = "mae" if result.metric == "rmse" else "rmse"
    rows = []
    for r in result.ranked():
        rows.append([str(r["rank"]), str(r["trial"]), _num(r[result.metric]),
                     _num(r[result.metric + "_std"]), _num(r[other]),
                     _epochs_text(r["epochs"]), f"{r['seconds']:.2f}"]
                    + [_show(r["params"].get(k)) for k in names])
    return head, rows


def _footer(result: SearchResult) -> list:
    b = result.best
    lines = []
    for r in result.ranked():
        if r["error"]:
            lines.append(f"trial {r['trial']} failed: {r['error']}")
    if b["error"] is None:
        lines.append(f"best: trial {b['trial']}, {_params_text(b['params'])}: "
                     f"{result.metric} {b[result.metric]:.4f} ± "
                     f"{b[result.metric + '_std']:.4f}"
                     + (f" ({_epochs_text(b['epochs'])} epochs kept)"
                        if result.fit.get("early_stopping") is not None else ""))
    else:
        lines.append("every trial failed")
    lines.append(f"retried: {result.retried} of {result.tasks} tasks (run again after "
                 f"their worker died); {result.backend}; wall time {result.seconds:.1f} s")
    return lines


def format_table(result: SearchResult) -> str:
    """The ranked trials as aligned text, then the best trial and the retry count."""
    head, rows = _table_rows(result)
    widths = [max(len(h), *(len(r[c]) for r in rows)) for c, h in enumerate(head)]
    fmt = "  ".join(f"{{:>{w}}}" for w in widths)
    lines = [fmt.format(*head)] + [fmt.format(*r) for r in rows]
    return "\n".join(lines + [""] + _footer(result))


def format_markdown(result: SearchResult) -> str:
    """The ranked trials as a Markdown table, then the best trial and the retry count."""
    head, rows = _table_rows(result)
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines + [""] + [f"{line}  " for line in _footer(result)])
