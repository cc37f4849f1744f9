"""Kernel speed: milliseconds per epoch and ratings per second, per model x optimizer x factors.

    >>> from mfcore.bench import run_bench
    >>> result = run_bench(n_ratings=1_000_209, models=["mf", "mfb"], factors=[10])  # doctest: +SKIP
    >>> print(result.format_table())                                                 # doctest: +SKIP

What is measured (the same way as ``benchmarks/benchutil.py``):

* data: :func:`mfcore.data.synthetic_ratings` of ``n_ratings`` ratings in MovieLens-1M shape
  (6,040 users, 3,706 items), split 80/20 with :func:`mfcore.data.random_split`; epochs run
  over the training part (about 800k ratings for the default 1,000,209);
* one epoch = one call ``model.fit(train, epochs=1)`` (shuffle, every batch, optimizer
  steps; no validation). A warm-up epoch comes first (it compiles or loads the kernels and
  builds the parameters), then ``repeat`` timed epochs; the table gives their median;
* ratings/s = training ratings / median epoch seconds;
* batch size: 1 for ``sgd`` (classic per-sample SGD), 64 otherwise (the notebook's), unless
  given; ``adam`` is the Keras-faithful (dense-moment) Adam, ``sparse-adam`` the lazy one;
* JIT compile, per model: seconds of the first ``fit`` of a tiny data set in this process
  minus a second, warm, identical call (summed over the optimizers benchmarked). The kernels
  the models share (the epoch loop) are compiled with the first model, so its figure holds
  them. Whether the Numba on-disk cache was warm is read from Numba's own hit/miss counters.

Keras (``vs_keras=True``): when TensorFlow/Keras can be imported, each (model, factors) is
also built in Keras (:func:`build_keras_model`, the notebook's architecture for that model's
hyper-parameters) and one epoch of ``fit`` with Adam(1e-3), MSE, batch 64 is timed on the
same training arrays, after a short warm-up ``fit`` that traces the graph. Keras is imported
only then (:func:`import_keras`), never by ``import mfcore``, and is never a dependency.
"""
from __future__ import annotations

import math
import statistics
import sys
import time
from dataclasses import dataclass, field

from . import registry

__all__ = ["BenchRow", "BenchResult", "run_bench", "bench_data", "time_epochs",
           "compile_seconds", "numba_cache_counts", "default_batch_size", "import_keras",
           "KerasUnavailable", "build_keras_model", "time_keras_epoch", "KERAS_MODELS",
           "DEFAULT_OPTIMIZERS", "DEFAULT_FACTORS", "DEFAULT_RATINGS"]

DEFAULT_RATINGS = 1_000_209
DEFAULT_OPTIMIZERS = ("adam", "sparse-adam", "sgd")
DEFAULT_FACTORS = (10, 50)
#: models :func:`build_keras_model` can build
KERAS_MODELS = ("mf", "mfb", "mfbs", "linear", "nn", "residual", "mixed-bias",
                "mixed-interaction")
KERAS_BATCH = 64


@dataclass
class BenchRow:
    """One (model, optimizer, factors) measurement. Times in seconds."""

    model: str
    optimizer: str
    factors: int | None
    batch_size: int
    n_train: int
    epoch_seconds: list = field(default_factory=list)
    keras_seconds: float | None = None
    #: peer name -> its median seconds per epoch on the same data (``vs_peers``)
    peer_seconds: dict = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        """Median of the timed epochs."""
        return float(statistics.median(self.epoch_seconds))

    @property
    def ms_per_epoch(self) -> float:
        return 1000.0 * self.seconds

    @property
    def ratings_per_s(self) -> float:
        return self.n_train / self.seconds if self.seconds > 0 else math.inf

    @property
    def keras_ratio(self) -> float | None:
        """Keras epoch seconds / ours (how many times faster we are), or None."""
        if self.keras_seconds is None or self.seconds <= 0:
            return None
        return self.keras_seconds / self.seconds

    def as_dict(self) -> dict:
        return {"model": self.model, "optimizer": self.optimizer, "factors": self.factors,
                "batch_size": self.batch_size, "n_train": self.n_train,
                "ms_per_epoch": self.ms_per_epoch, "ratings_per_s": self.ratings_per_s,
                "epoch_seconds": list(self.epoch_seconds),
                "keras_ms_per_epoch": None if self.keras_seconds is None
                else 1000.0 * self.keras_seconds,
                "keras_ratio": self.keras_ratio,
                "peers": {name: {"ms_per_epoch": 1000.0 * sec,
                                 "ratio": sec / self.seconds if self.seconds > 0 else None}
                          for name, sec in self.peer_seconds.items()}}


@dataclass
class BenchResult:
    """A whole benchmark run: the rows plus what they were measured on.

    ``numba_cache``: ``"warm"`` (every kernel came from Numba's on-disk cache), ``"cold"``
    (every kernel was compiled), ``"partly warm"``, or ``"in-process"`` (already compiled in
    this process before the benchmark: neither). ``keras``: None when not asked for, else a
    one-line status (``"keras 3.x (tensorflow)"`` or why it is unavailable).
    """

    rows: list
    compile_seconds: dict
    numba_cache: str
    cache_hits: int
    cache_misses: int
    n_ratings: int
    n_train: int
    n_users: int
    n_items: int
    seed: int
    repeat: int
    train_fraction: float
    keras: str | None = None
    keras_available: bool = False
    #: peer name -> version string, or why it is unavailable (None: not asked for)
    peers: dict | None = None

    def as_dict(self) -> dict:
        return {"n_ratings": self.n_ratings, "n_train": self.n_train, "n_users": self.n_users,
                "n_items": self.n_items, "seed": self.seed, "repeat": self.repeat,
                "train_fraction": self.train_fraction, "warmup_epochs": 1,
                "numba_cache": self.numba_cache, "numba_cache_hits": self.cache_hits,
                "numba_cache_misses": self.cache_misses,
                "compile_seconds": dict(self.compile_seconds),
                "keras": self.keras, "keras_available": self.keras_available,
                "peers": self.peers, "rows": [r.as_dict() for r in self.rows]}

    # ---- text ----------------------------------------------------------------------------
    def header_lines(self) -> list:
        cache = {"warm": "warm (kernels loaded from the on-disk cache)",
                 "cold": "cold (kernels compiled in this run)",
                 "partly warm": f"partly warm ({self.cache_hits} loaded, "
                                f"{self.cache_misses} compiled)",
                 "in-process": "n/a (kernels already compiled in this process)"}[self.numba_cache]
        lines = [f"synthetic ml-1m-shaped data: {self.n_ratings:,} ratings, {self.n_users:,} "
                 f"users, {self.n_items:,} items (seed {self.seed}); epochs over the "
                 f"{self.n_train:,}-rating training split",
                 f"ms/epoch: median of {self.repeat} epoch(s) after 1 warm-up epoch; "
                 f"Numba cache: {cache}"]
        if self.keras_available:
            lines.append(f"Keras: {self.keras}; keras ms = one Keras epoch (Adam, batch "
                         f"{KERAS_BATCH} unless set) of the same model on the same data; "
                         f"x = keras / ours")
        if self.peers:
            have = ", ".join(f"{n} {v}" for n, v in self.peers.items() if v)
            lines.append(f"peers: {have or 'none importable'}; <peer> ms = its median epoch of "
                         f"the same model (same k, per-sample SGD) on the same training split, "
                         f"one thread; x = peer / ours")
        return lines

    def compile_line(self) -> str:
        if not self.compile_seconds:
            return "JIT compile: not measured"
        parts = ", ".join(f"{m} {s:.2f} s" for m, s in self.compile_seconds.items())
        return (f"JIT compile (first call minus warm call): {parts} (the first model's "
                f"figure includes the shared epoch loop)")

    def _table(self):
        with_keras = self.keras_available
        head = ["model", "optimizer", "batch", "factors", "ms/epoch", "ratings/s"]
        if with_keras:
            head += ["keras ms", "x"]
        peer_names = [n for n in (self.peers or {}) if any(n in r.peer_seconds
                                                          for r in self.rows)]
        for name in peer_names:
            head += [f"{name} ms", "x"]
        body = []
        for r in self.rows:
            ms = r.ms_per_epoch
            cells = [r.model, r.optimizer, str(r.batch_size),
                     "-" if r.factors is None else str(r.factors),
                     f"{ms:,.2f}" if ms < 10 else f"{ms:,.1f}", f"{r.ratings_per_s:,.0f}"]
            if with_keras:
                if r.keras_seconds is None:
                    cells += ["-", "-"]
                else:
                    cells += [f"{1000 * r.keras_seconds:,.0f}", f"{r.keras_ratio:,.1f}"]
            for name in peer_names:
                sec = r.peer_seconds.get(name)
                cells += ["-", "-"] if sec is None else [f"{1000 * sec:,.1f}",
                                                          f"{sec / r.seconds:,.2f}"]
            body.append(cells)
        return head, body

    def format_table(self, markdown: bool = False) -> str:
        """The table with its header lines: plain aligned text, or a Markdown table."""
        head, body = self._table()
        right = [False, False] + [True] * (len(head) - 2)
        out = []
        if markdown:
            out += self.header_lines() + [""]
            out.append("| " + " | ".join(head) + " |")
            out.append("| " + " | ".join("---:" if r else "---" for r in right) + " |")
            out += ["| " + " | ".join(c) + " |" for c in body]
            out += ["", self.compile_line()]
            return "\n".join(out)
        widths = [max(len(h), *(len(row[j]) for row in body)) if body else len(h)
                  for j, h in enumerate(head)]

        def fmt(cells):
            return "  ".join(c.rjust(w) if r else c.ljust(w)
                             for c, w, r in zip(cells, widths, right)).rstrip()
        out += self.header_lines() + [""]
        out.append(fmt(head))
        out += [fmt(c) for c in body]
        out += ["", self.compile_line()]
        return "\n".join(out)


# ---- data and timing ---------------------------------------------------------------------
def default_batch_size(optimizer: str) -> int:
    """1 for ``sgd`` (classic per-sample SGD), 64 (the notebook's) otherwise."""
    return 1 if optimizer == "sgd" else 64


def bench_data(n_ratings: int = DEFAULT_RATINGS, seed: int = 0, train_fraction: float = 0.8):
    """``(ratings, train)``: the synthetic ml-1m-shaped set and its random training split."""
    from .data import random_split, synthetic_ratings
    ratings = synthetic_ratings(n_ratings=n_ratings, seed=seed)
    train, _ = random_split(ratings, train_fraction=train_fraction, seed=seed)
    return ratings, train


def peer_epochs(model, optimizer, batch_size, train, repeat, seed, available, log):
    """Median seconds per epoch of the importable peers that implement ``model`` with the
    same optimizer: per-sample SGD of ``mf``/``mfb``/``mfbs`` is Cornac's MF and
    Surprise's SVD (biased as the model is; neither has a sigmoid output, so ``mfbs``
    compares its kernel with their plain one). ``{}`` when none applies."""
    from . import peers
    if not (optimizer == "sgd" and batch_size == 1 and model.name in ("mf", "mfb", "mfbs")):
        return {}
    k, bias = int(model.factors), bool(model.has_bias)
    arrays = (train.users, train.items, train.ratings)
    probe = tuple(a[:1000] for a in arrays)
    out = {}
    if available.get("cornac"):
        r = peers.cornac_mf(arrays, probe, k=k, epochs=repeat + 1, seed=seed, use_bias=bias)
        out["cornac"] = float(statistics.median(r["epoch_seconds"][1:]))
    if available.get("surprise"):
        r = peers.surprise_svd(arrays, probe, k=k, epochs=repeat, seed=seed, biased=bias)
        out["surprise"] = float(statistics.median(r["epoch_seconds"]))
    for name, sec in out.items():
        log(f"{model.name} k={k}: {name} {1000 * sec:,.1f} ms/epoch")
    return out


def time_epochs(model, train, *, optimizer: str, batch_size: int, repeat: int = 3,
                threads: int = 1) -> list:
    """Seconds of ``repeat`` single epochs of ``model`` on ``train``, after one warm-up epoch.

    Each epoch is one ``model.fit(train, epochs=1)`` call, timed from outside.
    """
    from .errors import ModelError
    if not (isinstance(repeat, int) and repeat >= 1):
        raise ModelError(f"repeat must be a positive integer, got {repeat!r}")
    kw = dict(epochs=1, optimizer=optimizer, batch_size=batch_size, verbose=0, progress=False,
              threads=threads)
    model.fit(train, **kw)  # warm-up: compile or load kernels, build parameters and state
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        model.fit(train, **kw)
        times.append(time.perf_counter() - t0)
    return times


def _tiny_ratings():
    import numpy as np
    from .data import Ratings
    r = np.random.default_rng(0)
    # timestamps over a year: the time-aware models refuse data without them
    return Ratings.from_arrays(r.integers(0, 50, 500), r.integers(0, 40, 500),
                               r.integers(1, 6, 500),
                               timestamps=r.integers(880_000_000, 911_536_000, 500))


def compile_seconds(model_name: str, optimizers=DEFAULT_OPTIMIZERS, factors: int = 4,
                    batch_size: int | None = None) -> float:
    """JIT compile time of one model: for each optimizer, the first one-epoch ``fit`` of a
    tiny data set minus a second identical (warm) call; summed, never below 0.

    Only meaningful the first time a model is used in a process (later calls give ~0).
    """
    from .models import create_model_at
    data = _tiny_ratings()
    total = 0.0
    for opt in optimizers:
        bs = batch_size or default_batch_size(opt)
        kw = dict(epochs=1, optimizer=opt, batch_size=bs, verbose=0, progress=False)
        t0 = time.perf_counter()
        create_model_at(model_name, factors, seed=0).fit(data, **kw)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        create_model_at(model_name, factors, seed=0).fit(data, **kw)
        warm = time.perf_counter() - t0
        total += max(0.0, first - warm)
    return total


def numba_cache_counts() -> tuple:
    """``(hits, misses)``: how many compiled signatures of mfcore's Numba functions were
    loaded from the on-disk cache / compiled, so far in this process."""
    from numba.core.dispatcher import Dispatcher
    hits = misses = 0
    seen = set()
    for name, mod in list(sys.modules.items()):
        if not (name == "mfcore" or name.startswith("mfcore.")) or mod is None:
            continue
        for obj in list(vars(mod).values()):
            if isinstance(obj, Dispatcher) and id(obj) not in seen:
                seen.add(id(obj))
                st = obj.stats
                hits += sum(st.cache_hits.values())
                misses += sum(st.cache_misses.values())
    return hits, misses


def _cache_state(hits, misses):
    if hits and not misses:
        return "warm"
    if misses and not hits:
        return "cold"
    if hits and misses:
        return "partly warm"
    return "in-process"


def run_bench(n_ratings: int = DEFAULT_RATINGS, models=None, optimizers=DEFAULT_OPTIMIZERS,
              factors=DEFAULT_FACTORS, repeat: int = 3, batch_size: int | None = None,
              seed: int = 0, train_fraction: float = 0.8, vs_keras: bool = False,
              vs_peers: bool = False, threads: int = 1, log=None) -> BenchResult:
    """Time every model x optimizer x factors on one synthetic data set (see the module doc).

    models: CLI names (default: every registered model); optimizers: ``adam``,
    ``sparse-adam``, ``sgd``; batch_size: None = 1 for sgd, 64 otherwise; repeat: timed
    epochs per row (median reported); vs_keras: also time Keras when importable (a row's
    Keras figure is None when it is not); vs_peers: also time the peer libraries that
    implement the same model (:func:`peer_epochs`) when importable; threads: threads of the
    per-sample SGD rows; log: callable receiving one progress line per step.
    """
    from .errors import ModelError
    from .models import MODELS, create_model_at, has_factors

    log = log or (lambda line: None)
    models = list(MODELS) if not models else list(models)
    for name in models:
        if name not in MODELS:
            raise ModelError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    for opt in optimizers:
        if registry.optimizer(opt).code == registry.MCMC:
            raise ModelError("mcmc samples instead of training epochs: time its sweeps with "
                             "benchmarks/bench_mcmc.py")
    factors = [int(k) for k in factors]
    if not models or not optimizers or not factors:
        raise ModelError("nothing to benchmark: give at least one model, optimizer and factor")
    if any(k < 1 for k in factors):
        raise ModelError(f"factors must be positive integers, got {factors}")

    keras_mod, keras_status = None, None
    if vs_keras:
        try:
            keras_mod = import_keras()
            keras_status = _keras_version(keras_mod)
        except KerasUnavailable as exc:
            keras_status = str(exc)

    peer_status = None
    if vs_peers:
        from . import peers
        peer_status = peers.available()
    t0 = time.perf_counter()
    ratings, train = bench_data(n_ratings, seed=seed, train_fraction=train_fraction)
    log(f"data: {len(ratings):,} synthetic ratings, {len(train):,} for training "
        f"({time.perf_counter() - t0:.1f} s)")

    h0, m0 = numba_cache_counts()
    compiled = {}
    rows = []
    for name in models:
        compiled[name] = compile_seconds(name, optimizers, batch_size=batch_size)
        log(f"{name}: JIT compile {compiled[name]:.2f} s")
        for k in (factors if has_factors(name) else factors[:1]):
            keras_s = None
            if keras_mod is not None and name in KERAS_MODELS:
                log(f"{name} k={k}: timing one Keras epoch ...")
                keras_s = time_keras_epoch(create_model_at(name, k, seed=seed), train,
                                           batch_size=batch_size or KERAS_BATCH,
                                           keras=keras_mod, seed=seed)
            for opt in optimizers:
                bs = batch_size or default_batch_size(opt)
                model = create_model_at(name, k, seed=seed)
                times = time_epochs(model, train, optimizer=opt, batch_size=bs, repeat=repeat,
                                    threads=threads if opt == "sgd" and bs == 1 else 1)
                row = BenchRow(name, opt, k if has_factors(name) else None, bs, len(train),
                               times, keras_s)
                if peer_status:
                    row.peer_seconds = peer_epochs(model, opt, bs, train, repeat, seed,
                                                   peer_status, log)
                rows.append(row)
                log(f"{name} {opt} batch {bs} k={k}: {row.ms_per_epoch:,.1f} ms/epoch, "
                    f"{row.ratings_per_s:,.0f} ratings/s")
    h1, m1 = numba_cache_counts()
    hits, misses = h1 - h0, m1 - m0
    return BenchResult(rows=rows, compile_seconds=compiled,
                       numba_cache=_cache_state(hits, misses), cache_hits=hits,
                       cache_misses=misses, n_ratings=len(ratings), n_train=len(train),
                       n_users=ratings.n_users, n_items=ratings.n_items, seed=seed,
                       repeat=repeat, train_fraction=train_fraction, keras=keras_status,
                       keras_available=keras_mod is not None, peers=peer_status)


# ---- Keras (optional, imported lazily) ----------------------------------------------------
class KerasUnavailable(ImportError):
    """TensorFlow/Keras cannot be imported here; the message says so in one line."""


def import_keras():
    """The ``keras`` module (Keras 3 on its configured backend, else ``tensorflow.keras``).

    Raises :class:`KerasUnavailable` when neither imports. Called only on request: nothing
    in mfcore imports Keras otherwise.
    """
    import os
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    errors = []
    try:
        import keras
        return keras
    except Exception as exc:  # ImportError, or a broken backend install
        errors.append(f"keras: {exc}")
    try:
        from tensorflow import keras
        return keras
    except Exception as exc:
        errors.append(f"tensorflow: {exc}")
    raise KerasUnavailable("TensorFlow/Keras is not installed (pip install tensorflow); "
                           "Keras comparison skipped")


def _keras_version(keras) -> str:
    version = getattr(keras, "__version__", "?")
    backend = None
    try:
        backend = keras.backend.backend()
    except Exception:
        pass
    return f"keras {version}" + (f" ({backend})" if backend else "")


def build_keras_model(model, n_users: int, n_items: int, keras=None, factors: int = 10):
    """A Keras model equivalent to one of ours (the notebook's architecture).

    model: a mfcore model instance (its hyper-parameters are mirrored: factors, biases,
    sigmoid and scale, hidden widths, activations, dropout, batch norm, L2 in Keras mode,
    embedding init) or a model name (built with ``factors``). Inputs: two ``(1,)`` integer
    tensors, the user and item indices in ``[0, n_users)`` / ``[0, n_items)``. Supported:
    :data:`KERAS_MODELS`. The model is returned uncompiled.
    """
    from .errors import ModelError
    if isinstance(model, str):
        from .models import create_model_at
        model = create_model_at(model, factors)
    if keras is None:
        keras = import_keras()
    L = keras.layers
    name = model.name
    if name not in KERAS_MODELS:
        raise ModelError(f"no Keras equivalent of {name!r}; Keras models: "
                         f"{', '.join(KERAS_MODELS)}")
    u_in = keras.Input(shape=(1,), dtype="int32", name="user")
    i_in = keras.Input(shape=(1,), dtype="int32", name="item")

    def initializer():
        scale = float(getattr(model, "init_scale", 0.05))
        if getattr(model, "init", "uniform") == "normal":
            return keras.initializers.RandomNormal(mean=0.0, stddev=scale)
        return keras.initializers.RandomUniform(-scale, scale)

    def reg(c):
        if c and getattr(model, "l2_mode", "keras") == "keras":
            return keras.regularizers.l2(float(c))
        return None

    def emb(x, n, k, l2=0.0):
        e = L.Embedding(n, k, embeddings_initializer=initializer(),
                        embeddings_regularizer=reg(l2))(x)
        return L.Flatten()(e)

    def sigmoid_out(z, scale):
        z = L.Activation("sigmoid")(z)
        return L.Lambda(lambda t, s=float(scale): s * t)(z)

    def mlp(x, width, hidden, dropouts, bns, activation, residual=False):
        for j, h in enumerate(hidden):
            if residual:
                a = L.Dense(h, activation=activation)(x)
                c = L.Dense(h)(a)
                s = x if width == h else L.Dense(h, use_bias=False)(x)
                x = L.Activation(activation)(L.Add()([c, s]))
            else:
                x = L.Dense(h, activation=activation)(x)
            width = h
            if dropouts and dropouts[j] > 0:
                x = L.Dropout(dropouts[j])(x)
            if bns and bns[j]:
                x = L.BatchNormalization(momentum=0.99, epsilon=1e-3)(x)
        return x

    model._check()
    k = int(model.factors)
    l2 = float(getattr(model, "l2", 0.0) or 0.0)
    if name in ("mf", "mfb", "mfbs"):
        z = L.Dot(axes=1)([emb(u_in, n_users, k, l2), emb(i_in, n_items, k, l2)])
        if model.has_bias:
            z = L.Add()([z, emb(u_in, n_users, 1), emb(i_in, n_items, 1)])
        out = sigmoid_out(z, model.scale) if model.has_sigmoid else z
    elif name in ("linear", "nn", "residual"):
        x = L.Concatenate()([emb(u_in, n_users, k, l2), emb(i_in, n_items, k, l2)])
        if getattr(model, "_input_dropout", 0) > 0:
            x = L.Dropout(model._input_dropout)(x)
        x = mlp(x, 2 * k, model._hidden, model._dropouts, model._bns, model.activation,
                residual=name == "residual")
        out = L.Dense(1)(x)
    elif name == "mixed-bias":
        bf = int(model.bias_factors)
        dot = L.Dot(axes=1)([emb(u_in, n_users, k, l2), emb(i_in, n_items, k, l2)])
        b = L.Concatenate()([emb(u_in, n_users, bf, l2), emb(i_in, n_items, bf, l2)])
        b = mlp(b, 2 * bf, model._hidden, model._dropouts, None, model.activation)
        z = L.Add()([dot, L.Dense(1)(b)])
        out = sigmoid_out(z, model.scale) if model.sigmoid else z
    else:  # mixed-interaction
        towers = []
        for x_in, n in ((u_in, n_users), (i_in, n_items)):
            t = emb(x_in, n, k, l2)
            last = len(model._tower) - 1
            for j, h in enumerate(model._tower):
                t = L.Dense(h, activation="linear" if j == last else model.activation,
                            use_bias=bool(model.tower_bias))(t)
                if j < last and model._dropouts and model._dropouts[j] > 0:
                    t = L.Dropout(model._dropouts[j])(t)
            towers.append(t)
        z = L.Add()([L.Dot(axes=1)(towers), emb(u_in, n_users, 1), emb(i_in, n_items, 1)])
        out = sigmoid_out(z, model.scale) if model.sigmoid else z
    return keras.Model(inputs=[u_in, i_in], outputs=out, name=name.replace("-", "_"))


def time_keras_epoch(model, train, batch_size: int = KERAS_BATCH, lr: float = 1e-3,
                     keras=None, seed: int = 0) -> float:
    """Seconds of one Keras ``fit`` epoch (Adam(lr), MSE, shuffled) of the Keras equivalent
    of ``model`` on ``train`` (a Ratings; dense indices as inputs).

    A warm-up ``fit`` on the first few batches comes first, so graph tracing is not counted.
    """
    import numpy as np
    if keras is None:
        keras = import_keras()
    utils = getattr(keras, "utils", None)
    if utils is not None and hasattr(utils, "set_random_seed"):
        utils.set_random_seed(seed)
    km = build_keras_model(model, train.n_users, train.n_items, keras=keras)
    km.compile(optimizer=keras.optimizers.Adam(learning_rate=lr, beta_1=0.9, beta_2=0.999,
                                               epsilon=1e-7), loss="mse")
    x = [np.asarray(train.users, np.int32).reshape(-1, 1),
         np.asarray(train.items, np.int32).reshape(-1, 1)]
    y = np.asarray(train.ratings, np.float32)
    warm = min(len(y), 4 * batch_size)
    km.fit([a[:warm] for a in x], y[:warm], batch_size=batch_size, epochs=1, verbose=0)
    t0 = time.perf_counter()
    km.fit(x, y, batch_size=batch_size, epochs=1, verbose=0, shuffle=True)
    return time.perf_counter() - t0
