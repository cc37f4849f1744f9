"""``fit``: the Python side of training, in readable steps.

1. :func:`fit_options` checks the arguments and resolves defaults (a :class:`FitOptions`);
2. :class:`Run` allocates what one ``fit`` call needs: the records in data order and in
   epoch order, the row-gradient sink, the touched-row lists, the optimizer's arrays;
3. :meth:`Run.epoch` shuffles and trains one epoch in a few compiled calls
   (:func:`mfcore.engine.loop.run_batches`, or a kernel's fused per-sample SGD epoch), so
   the progress bar advances and Ctrl-C works between them;
4. :func:`fit` validates after each epoch, logs a Keras-style line, and handles early
   stopping and divergence (:class:`Divergence`).

Before allocating, ``fit`` estimates the memory it needs (:mod:`mfcore.engine.memory`) and
refuses with the figures when it does not fit. A ``fit`` that fails (divergence, memory, a
bad argument) leaves the model as it was before the call.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from .. import registry
from ..bounds import MAX_BATCH, MAX_EPOCHS, check_seed
from ..errors import ModelError, TrainingDiverged
from ..kernels import dispatch
from . import loop, memory, optim, packed, samples, sgd
from .contract import G2_NONE, G2_OCCURRENCES, G2_SUM, buffers
from .optim import OptArrays, OptConfig

SHUFFLES = registry.SHUFFLES

#: Divergence bound: training stops as diverged when an epoch's training loss or the
#: validation MSE exceeds DIVERGENCE_FACTOR times the reference loss, the larger of the
#: loss at the start of the fit and the ratings' own scale (their mean square, or the
#: squared width of their range if larger: what predicting 0 or any wrong value inside
#: the range costs). Honest training never comes near it: losses fall from the start.
DIVERGENCE_FACTOR = 100.0
#: Initial weights whose loss exceeds INIT_FACTOR times the ratings' scale (predictions
#: about 100 times off the rating scale) are refused before training: the init scale is
#: the problem, not the learning rate.
INIT_FACTOR = 1e4
#: Models whose output is bounded (a 5-sigmoid, clipped predictions) cannot pass the
#: divergence bound: a learning rate far too large saturates them instead, and the loss
#: sticks at a value worse than where training started (e.g. mfbs at lr 1e6: loss 2.4 ->
#: 6.9, validation RMSE 2.6, worse than predicting the mean). So training also stops as
#: diverged when an epoch's training loss exceeds RISE_FACTOR x the loss at the start AND
#: (with validation data) the validation MSE exceeds RISE_FACTOR x the validation MSE at
#: the start: training made the model worse on both. (Overfitting raises the validation
#: MSE only; a growing L2 penalty or dropout during training the training loss only.)
RISE_FACTOR = 2.0


@dataclass
class History:
    """Per-epoch figures of a fit, Keras-style.

    ``loss``: mean training loss of the epoch (batch losses weighted by batch size, including
    any L2 penalty); ``val_loss``: validation MSE plus the Keras-style penalty (what Keras
    reports); ``val_mse``/``val_rmse``/``val_mae``: plain metrics; ``seconds``: wall time
    of the epoch including validation.
    """

    loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_mse: list = field(default_factory=list)
    val_rmse: list = field(default_factory=list)
    val_mae: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    diverged: bool = False
    #: the training settings this fit used, defaults resolved (optimizer, lr, ...)
    settings: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"loss": self.loss, "val_loss": self.val_loss, "val_mse": self.val_mse,
                "val_rmse": self.val_rmse, "val_mae": self.val_mae, "seconds": self.seconds,
                "best_epoch": self.best_epoch, "stopped_early": self.stopped_early,
                "diverged": self.diverged, "settings": self.settings}


@dataclass
class OptimizerState:
    """Moments and step counters that persist across calls to ``fit`` (warm restarts):
    ``M``/``V`` shaped like the parameter arena, ``last`` one step count per table row,
    ``m_theta``/``v_theta`` like the dense weights."""

    name: str
    M: np.ndarray
    V: np.ndarray
    last: np.ndarray
    m_theta: np.ndarray
    v_theta: np.ndarray
    step: int = 0

    @classmethod
    def zeros(cls, name, tables, theta):
        W = tables.arena.W
        return cls(name, np.zeros_like(W), np.zeros_like(W),
                   np.zeros(tables.n_rows, np.int64), np.zeros_like(theta),
                   np.zeros_like(theta))

    def copy(self):
        return OptimizerState(self.name, self.M.copy(), self.V.copy(), self.last.copy(),
                              self.m_theta.copy(), self.v_theta.copy(), step=self.step)

    def moments(self, tables, name):
        """``(M, V)`` of table ``name`` as (rows, cols) views."""
        t = tables.index(name)
        a = tables.arena
        lo, n = int(a.off[t]), int(a.rows[t] * a.cols[t])
        shape = (int(a.rows[t]), int(a.cols[t]))
        return self.M[lo:lo + n].reshape(shape), self.V[lo:lo + n].reshape(shape)


@dataclass
class FitOptions:
    """The checked arguments of :func:`fit` (see its docstring)."""

    epochs: int
    batch_size: int
    optimizer: registry.Optimizer
    lr: float
    beta_1: float
    beta_2: float
    epsilon: float
    keras_moments: bool
    shuffle: str
    seed: int
    early_stopping: int | None
    restore_best: bool
    verbose: int
    progress: bool
    log: object
    callbacks: tuple
    threads: int = 1
    lr_decay: float = 1.0


#: what fit uses when neither the call nor the model's ``fit_defaults`` say (the notebook's)
FIT_DEFAULTS = {"epochs": 6, "batch_size": 64, "optimizer": "adam"}


def fit_options(model, validation, *, epochs=None, batch_size=None, optimizer=None, lr=None,
                beta_1=0.9, beta_2=0.999, epsilon=1e-7, keras_moments=True, shuffle="epoch",
                seed=None, early_stopping=None, restore_best=True, verbose=1, progress=None,
                log=None, callbacks=(), threads=1, lr_decay=None) -> FitOptions:
    """Check :func:`fit`'s keyword arguments and resolve their defaults: what the call
    gives, else the model's ``fit_defaults``, else :data:`FIT_DEFAULTS` (the learning rate
    last from the optimizer)."""
    own = {**FIT_DEFAULTS, **getattr(model, "fit_defaults", {})}
    epochs = own["epochs"] if epochs is None else epochs
    batch_size = own["batch_size"] if batch_size is None else batch_size
    if optimizer is None:
        optimizer = own["optimizer"]
        if lr is None:
            lr = own.get("lr")
    opt = registry.optimizer(optimizer)
    if opt.code == registry.MCMC:
        raise ModelError("optimizer 'mcmc' samples instead of stepping: call "
                         "model.fit(..., optimizer='mcmc') (mfcore.models.bayes)")
    lr = opt.default_lr if lr is None else lr
    if lr_decay is None:
        lr_decay = own.get("lr_decay", 1.0) if optimizer == own["optimizer"] else 1.0
    if isinstance(lr_decay, bool) or not isinstance(lr_decay, (int, float, np.floating)) \
            or not 0 < lr_decay <= 1:
        raise ModelError(f"lr_decay must be a number in (0, 1], got {lr_decay!r}")
    if isinstance(epochs, bool) or not (isinstance(epochs, (int, np.integer))
                                        and 0 <= epochs <= MAX_EPOCHS):
        raise ModelError(f"epochs must be an integer from 0 to {MAX_EPOCHS:,}, got {epochs!r}")
    if isinstance(batch_size, bool) or not (isinstance(batch_size, (int, np.integer))
                                            and 1 <= batch_size <= MAX_BATCH):
        raise ModelError(f"batch_size must be an integer from 1 to {MAX_BATCH:,}, got "
                         f"{batch_size!r}")
    if not (isinstance(lr, (int, float, np.floating)) and lr > 0 and math.isfinite(lr)):
        raise ModelError(f"learning rate must be a positive number, got {lr!r}")
    for what, value in (("beta_1", beta_1), ("beta_2", beta_2)):
        if not (isinstance(value, (int, float, np.floating)) and 0 <= value < 1):
            raise ModelError(f"{what} must be a number in [0, 1), got {value!r}")
    if not (isinstance(epsilon, (int, float, np.floating)) and epsilon > 0
            and math.isfinite(epsilon)):
        raise ModelError(f"epsilon must be a positive number, got {epsilon!r}")
    if shuffle not in SHUFFLES:
        raise ModelError(f"shuffle must be one of {', '.join(SHUFFLES)}, got {shuffle!r}")
    if early_stopping is not None:
        if validation is None:
            raise ModelError("early stopping needs validation data")
        if isinstance(early_stopping, bool) or not isinstance(early_stopping, (int, np.integer)) \
                or not 0 <= early_stopping <= MAX_EPOCHS:
            raise ModelError(f"early_stopping must be an integer from 0 to {MAX_EPOCHS:,} "
                             f"(patience in epochs), got {early_stopping!r}")
    seed = check_seed(model.seed if seed is None else seed)
    import numba
    max_threads = numba.config.NUMBA_NUM_THREADS
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) \
            or not 1 <= threads <= max_threads:
        raise ModelError(f"threads must be an integer from 1 to {max_threads} (the cores "
                         f"Numba may use here), got {threads!r}")
    if threads > 1 and not (opt.code == registry.SGD and batch_size == 1
                            and shuffle == "epoch" and dispatch.has_fused_sgd(model.kernel)):
        raise ModelError("threads > 1 runs per-sample SGD on a grid of blocks: it needs "
                         "optimizer='sgd', batch_size=1, shuffle='epoch' and a model with a "
                         f"fused SGD kernel ({model.name} "
                         + ("has one)" if dispatch.has_fused_sgd(model.kernel) else "has none)"))
    if log is None:
        def log(line):
            print(line, file=sys.stderr, flush=True)
    if progress is None:
        progress = sys.stderr.isatty()
    return FitOptions(int(epochs), int(batch_size), opt, float(lr), float(beta_1),
                      float(beta_2), float(epsilon), bool(keras_moments), shuffle, int(seed),
                      early_stopping, bool(restore_best), int(verbose), bool(progress), log,
                      tuple(callbacks), int(threads), float(lr_decay))


class Run:
    """Everything one ``fit`` call allocates, and one epoch of training."""

    def __init__(self, model, train, o: FitOptions):
        self.model, self.o = model, o
        tables = model.tables_
        keras_l2 = tables.table_has_keras_l2()
        dense = np.ones_like(keras_l2) if o.optimizer.dense_tables else keras_l2
        if o.optimizer.code == registry.SPARSE_ADAM and dense.any():
            raise ModelError("Keras-style whole-matrix L2 moves every row at every step, which "
                             "sparse Adam never does; use l2_mode='per-sample' with sparse-adam")
        st = model.optimizer_state_
        if st is None or st.name != o.optimizer.name:
            st = model.optimizer_state_ = OptimizerState.zeros(o.optimizer.name, tables,
                                                               model.theta_)
        self.state = st
        self.dense = dense.astype(np.int64)
        if o.optimizer.code == registry.SGD:
            g2_mode = G2_NONE
        elif o.optimizer.code == registry.ADAM and o.keras_moments:
            g2_mode = G2_OCCURRENCES
        else:
            g2_mode = G2_SUM
        self.R, self.K = buffers(tables, model.theta_, g2_mode, tables.any_l2("per-sample"))
        self.S = model._encode_ratings(train)
        self.n = self.S.X.shape[0]
        self.n_batches = -(-self.n // o.batch_size)
        self.ws = model._workspace(min(o.batch_size, max(1, self.n)))
        self.step = np.array([st.step], np.int64)
        self.cfg = OptConfig(o.optimizer.code, o.lr, o.beta_1, o.beta_2, o.epsilon, 0,
                             o.batch_size, o.seed)
        order = model.design_.sgd_order
        self.fused = (o.optimizer.code == registry.SGD and o.batch_size == 1
                      and dispatch.has_fused_sgd(model.kernel) and order is not None
                      and not dense.any() and (order == "grid" or o.shuffle == "epoch"))
        if o.threads > 1 and not (self.fused and order == "grid"):
            raise ModelError(f"threads > 1 runs per-sample SGD on a grid of blocks, which "
                             f"{model.name} with these settings cannot use (its ratings "
                             f"touch rows shared across blocks, or it has no fused kernel); "
                             f"use threads=1")
        self.family = model.kernel_family
        # batched Adam of a model whose ratings read only their own user's and item's rows
        # runs fused, on packed copies of the two tables (mfcore.engine.packed)
        self.packed = None
        if o.optimizer.adam and not dense.any() and dispatch.has_fused_adam(model.kernel):
            # (no batch holds more than the training set: a huge batch_size is all of it)
            self.packed = packed.packed_rows(tables, min(o.batch_size, max(1, len(train))),
                                             g2_mode == G2_OCCURRENCES, self.R.per_sample)
        self.grid = self.runs = None
        if self.fused and o.shuffle == "epoch" and order == "grid":
            self.grid = model._grid_for(train, self.S, o.seed)
        elif self.fused and order == "user":
            self.runs = model._user_runs_for(train, self.S, o.seed)
        else:
            self.E = samples.empty_like(self.S)
        if self.fused:
            # once, before any epoch loop calls the kernel (see sgd.load_kernel)
            g = self.grid
            E = g.E if g is not None else self.runs.E if self.runs is not None else self.E
            T = tables.arena
            ws = g.scratch(self.ws.size, T.W.dtype)[0] if g is not None else self.ws
            sgd.load_kernel(self.family, T, model._params(), E, o.lr, ws)

    def _order(self, e, epoch):
        """Put the records in this epoch's order (``E``); the grid path shuffles inside its
        epoch instead."""
        if self.grid is not None or self.runs is not None:
            return
        if self.o.shuffle in ("epoch", "full") or (self.o.shuffle == "once" and e == 0):
            samples.shuffle_into(self.S.X, self.o.seed, epoch, self.E.X)
        elif self.o.shuffle == "none" and e == 0:
            samples.copy_into(self.S.X, self.E.X)

    def epoch(self, e, epoch):
        """Train epoch number ``epoch`` (``e``-th of this call). Returns (mean loss,
        finite?)."""
        model, o = self.model, self.o
        self._order(e, epoch)
        lr = o.lr * o.lr_decay ** epoch
        T, P = model.tables_.arena, model._params()
        t_base = int(self.step[0])
        adam = o.optimizer.code == registry.ADAM
        tables = (optim.catch_up_tables(t_base, self.n_batches, lr, o.beta_1, o.beta_2)
                  if adam else np.zeros((6, 1)))
        st = self.state
        O = OptArrays(st.M, st.V, st.last, st.m_theta, st.v_theta, self.step, self.dense,
                      tables, np.zeros(6, T.W.dtype))
        cfg = self.cfg._replace(t_base=t_base, lr=lr)
        if self.grid is not None:
            g = self.grid
            with _threads(o.threads):
                loss_sum = sgd.grid_epoch(self.family, T, P, g.E, g.ptr, g.B, lr, o.seed,
                                          epoch, g.losses,
                                          g.scratch(self.ws.size, T.W.dtype))
            seen, ok = self.n, math.isfinite(loss_sum)
            self.step[0] += self.n
        elif self.runs is not None:
            r = self.runs
            loss_sum = sgd.user_runs_epoch(self.family, T, P, r.E, r.ptr, r.perm, lr, o.seed,
                                           epoch, self.ws)
            seen, ok = self.n, math.isfinite(loss_sum)
            self.step[0] += self.n
        elif self.fused:
            loss_sum = sgd.sequential_epoch(self.family, T, P, self.E, lr, self.ws)
            seen, ok = self.n, math.isfinite(loss_sum)
            self.step[0] += self.n
        elif self.packed is not None:
            PK = self.packed
            packed.pack(T, st.M, st.V, PK)
            try:
                loss_sum, seen, ok = self._batches(epoch, lambda lo, hi, s: packed.adam_batches(
                    self.family, P, self.E, PK, O, cfg, lo, hi, self.ws, s))
            finally:
                packed.unpack(PK, T, st.M, st.V)
            if adam:
                optim.catch_up_all(T, O, cfg, int(self.step[0]))
        else:
            loss_sum, seen, ok = self._batches(epoch, lambda lo, hi, s: loop.run_batches(
                self.family, T, P, self.E, self.R, self.K, O, cfg, lo, hi, self.ws, s))
            if adam:
                optim.catch_up_all(T, O, cfg, int(self.step[0]))
        st.step = int(self.step[0])
        return loss_sum / max(seen, 1), ok

    def _batches(self, epoch, train):
        """Run ``train(first, last, loss_so_far)`` (a compiled batch loop returning (loss
        sum, samples, status), its sum continuing ``loss_so_far``) over the epoch's batches,
        in chunks when a progress bar is shown: the same sum, to the last bit, either way."""
        chunks = min(self.n_batches, 50) if self.o.progress else 1
        bounds = np.linspace(0, self.n_batches, chunks + 1).astype(np.int64)
        bar = None
        if chunks > 1:
            from ..progress import Progress
            bar = Progress(self.n_batches, desc=f"Epoch {epoch + 1}", unit="batch",
                           enabled=True)
        loss_sum, seen, status = 0.0, 0, loop.STATUS_OK
        try:
            for c in range(chunks):
                loss_sum, sn, status = train(int(bounds[c]), int(bounds[c + 1]), loss_sum)
                seen += sn
                if bar is not None:
                    bar.update(int(bounds[c + 1] - bounds[c]))
                if status != loop.STATUS_OK:
                    break
        finally:
            if bar is not None:
                bar.close()
        return loss_sum, seen, status == loop.STATUS_OK


class _threads:
    """Run Numba's parallel regions on ``n`` threads inside the block."""

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        import numba
        self.before = numba.get_num_threads()
        numba.set_num_threads(self.n)

    def __exit__(self, *exc):
        import numba
        numba.set_num_threads(self.before)


def evaluate_records(model, S, y):
    """Plain MSE and MAE of ``model`` on records ``S`` with ratings ``y``."""
    sse, sae = loop.error_sums(model._predict_records(S), y)
    n = max(1, len(y))
    return sse / n, sae / n


def _finite(model):
    return bool(np.all(np.isfinite(model.tables_.arena.W)) and np.all(np.isfinite(model.theta_)))


def ratings_scale(y) -> float:
    """The ratings' own scale as a loss: the larger of their mean square (what predicting
    0 costs) and the squared width of their range (the worst prediction inside it)."""
    y = np.ascontiguousarray(y).ravel()
    if y.size == 0:
        return 1.0
    if y.dtype not in (np.float32, np.float64):
        y = y.astype(np.float64)
    sq, lo, hi = loop.square_and_range(y)
    return max(sq / y.size, (hi - lo) ** 2, 1e-12)


#: training ratings the divergence checks predict (an evenly spaced sample beyond this).
#: The checks compare MSEs at factors of 2 (RISE_FACTOR) and more, and the MSE of 8,192
#: ratings is within a few percent of the full set's; a larger sample only costs time at
#: the start of every fit (65,536 took 4% of an 800k-rating epoch of mixed-interaction k=50)
CHECK_RATINGS = 1 << 13


class Divergence:
    """Divergence checks of one fit (see :data:`DIVERGENCE_FACTOR`, :data:`INIT_FACTOR`).

    On creation, the loss of the weights the fit starts from (``start_loss``: plain MSE
    on the training ratings, unclipped, plus any Keras penalty) is measured; non-finite
    weights or predictions, or a loss above ``INIT_FACTOR`` x the ratings' scale, raise
    at once, blaming the initial weights. Then :meth:`epoch` and :meth:`validation` raise
    when a loss is non-finite or above ``bound``."""

    def __init__(self, model, run, train, o, epoch0):
        self.model, self.o, self.epoch0 = model, o, epoch0
        self.scale = ratings_scale(train.ratings)
        self.fresh = epoch0 == 0
        if not _finite(model):
            self._raise_initial("{w} are not finite (float32 weights hold at most 3.4e+38)")
        # the MSE checks read an evenly spaced sample of at most CHECK_RATINGS training
        # ratings: a 2x or 100x rise shows as well, at a fraction of a prediction pass
        n = run.S.X.shape[0]
        step = max(1, -(-n // CHECK_RATINGS))
        X = np.ascontiguousarray(run.S.X[::step]) if step > 1 else run.S.X
        self.S = samples.Samples(X, X.view(np.float32)) if step > 1 else run.S
        self.y = train.ratings[::step]
        with np.errstate(all="ignore"):
            self.start_mse = self._train_mse()
            self.start_loss = self.start_mse + model._keras_penalty()
        if not math.isfinite(self.start_loss):
            self._raise_initial("{w} give NaN or infinite predictions")
        if self.start_loss > INIT_FACTOR * self.scale:
            self._raise_initial("{w} predict ratings far off the data's scale (their loss "
                                f"{self.start_loss:.3g} is more than {INIT_FACTOR:g} x the "
                                f"ratings' scale {self.scale:.3g})")
        self.reference = max(self.start_loss, self.scale)
        self.bound = DIVERGENCE_FACTOR * self.reference
        #: set by fit: the validation MSE of the starting weights (None: no validation)
        self.start_val = None
        self._rose = None

    def _train_mse(self):
        """Plain MSE of the current weights on (a sample of) the training ratings
        (unclipped, without dropout: what the loss at the start measures)."""
        model, S = self.model, self.S
        n = S.X.shape[0]
        pred = np.empty(n, np.float32)
        chunk = model._prediction_chunk(n)
        loop.predict_all(model.kernel_family, model.tables_.arena, model._params(), S,
                         pred, model._workspace(chunk), chunk)
        sse, _ = loop.error_sums(pred, self.y)
        return sse / max(1, n)

    def _init_advice(self):
        model = self.model
        scale = getattr(model, "init_scale", None)
        if scale is None:
            return "the model's initial weights are the problem, not the learning rate"
        import inspect
        param = inspect.signature(type(model).__init__).parameters.get("init_scale")
        default = "" if param is None or param.default is inspect.Parameter.empty \
            else f", the default is {param.default:g}"
        return f"init_scale {scale:g} is too large; use a smaller init_scale{default}"

    def _raise_initial(self, reason):
        if not self.fresh:  # a warm restart from weights that went bad outside fit
            raise TrainingDiverged("cannot train: " + reason.format(
                w="the weights the model holds") + "; build a new model", None, "weights")
        raise TrainingDiverged("cannot train: " + reason.format(w="the initial weights")
                               + f": {self._init_advice()}", None, "init")

    def _raise(self, epoch, reason, hist, loss=None):
        hist.diverged = True
        if loss is not None:
            hist.loss.append(float(loss))
        o = self.o
        if self.fresh and self.start_loss > DIVERGENCE_FACTOR * self.scale:
            advice, cause = self._init_advice() + " (the initial weights were already far " \
                "off the ratings' scale)", "init"
        else:
            advice, cause = f"try a smaller learning rate (now {o.lr:g})", "learning-rate"
            hint = self.model.divergence_hint()
            if hint:
                advice += f" or {hint}"
        raise TrainingDiverged(f"training diverged in epoch {epoch + 1} of "
                               f"{self.epoch0 + o.epochs}: {reason}; {advice}",
                               epoch + 1, cause, hist)

    def _beyond(self, what, value):
        return (f"{what} reached {value:.3g}, above the divergence bound {self.bound:.3g} "
                f"({DIVERGENCE_FACTOR:g} x the larger of the loss at the start, "
                f"{self.start_loss:.3g}, and the ratings' scale, {self.scale:.3g})")

    def epoch(self, epoch, loss, ok, hist):
        """Check the weights and the training loss after an epoch."""
        if not ok or not math.isfinite(loss):
            self._raise(epoch, "the training loss became NaN or infinite", hist, loss)
        if not _finite(self.model):
            self._raise(epoch, "weights became NaN or infinite", hist, loss)
        if loss > self.bound:
            self._raise(epoch, self._beyond("the training loss", loss), hist, loss)
        self._rose = loss if loss > RISE_FACTOR * self.start_loss else None
        if self._rose is not None and self.start_val is None:
            # no validation data: confirm on the training ratings without dropout (a
            # dropout net's training loss is above its loss without it); only computed
            # when the loss rose, so honest epochs pay nothing
            with np.errstate(all="ignore"):
                mse = self._train_mse()
            if mse > RISE_FACTOR * self.start_mse:
                self._raise(epoch, f"the training MSE rose to {mse:.3g}, more than "
                            f"{RISE_FACTOR:g} x the MSE at the start ({self.start_mse:.3g})",
                            hist, loss)

    def validation(self, epoch, mse, hist):
        """Check the validation MSE after an epoch."""
        if not math.isfinite(mse):
            self._raise(epoch, "the validation MSE became NaN or infinite", hist)
        if mse > self.bound:
            self._raise(epoch, self._beyond("the validation MSE", mse), hist)
        if self._rose is not None and mse > RISE_FACTOR * self.start_val:
            self._raise(epoch, f"the training loss rose to {self._rose:.3g} and the "
                        f"validation MSE to {mse:.3g}, more than {RISE_FACTOR:g} x their "
                        f"values at the start ({self.start_loss:.3g} and "
                        f"{self.start_val:.3g}): training made the model worse", hist)


def _memory_budget(model, train, validation, o, warm):
    """The check :meth:`RatingModel._build` runs on the design before allocating."""
    def check(design):
        try:
            width = samples.FIRST_CONTEXT + len(model._context(
                train.users[:1], train.items[:1], train.timestamps[:1]))
        except Exception:  # noqa: BLE001 - an estimate: assume a wide record
            width = 8
        parts = memory.fit_footprint(
            design, n_train=len(train), n_val=0 if validation is None else len(validation),
            record_width=width, batch_size=o.batch_size, optimizer=o.optimizer,
            warm_restart=warm, early_stopping=o.early_stopping,
            packed_rows=dispatch.has_fused_adam(model.kernel))
        memory.check_fits(parts, f"training {model.name} with these settings")
    return check


def fit(model, train, validation=None, **options):
    """Train ``model`` in place on ``train`` (a Ratings) and return a :class:`History`.

    epochs, batch_size, optimizer, lr: default to the model's ``fit_defaults`` (the
    notebook's models: 6 epochs, batch 64, Keras' Adam with lr 1e-3; the Koren family:
    per-sample SGD); epochs: passes over ``train``; batch_size: samples per step (1 with
    ``optimizer="sgd"`` is classic per-sample SGD); optimizer: ``"adam"`` (Keras-faithful,
    dense semantics), ``"sparse-adam"``, ``"sgd"`` or ``"adam-dense"`` (see
    :mod:`mfcore.registry`); lr: learning rate (the model's, else 1e-3 for Adam, 1e-2 for
    SGD; a model's own lr applies only with its own optimizer); beta_1, beta_2, epsilon:
    Adam's (Keras' defaults 0.9, 0.999, 1e-7); keras_moments: Adam's second moment of an
    embedding row that occurs several times in a batch is the sum of the squared
    per-occurrence gradients, as Keras 3 computes it (True, default), or the square of
    their sum, the textbook rule (False); shuffle:
    ``"epoch"`` (a new order every epoch, as Keras documents and as the notebook's unseeded
    runs did; for per-sample SGD the order is drawn block-wise, see
    :mod:`mfcore.engine.sgd`), ``"full"`` (a new uniformly random order of all records
    every epoch, also for per-sample SGD), ``"once"`` (one order for all the epochs of this
    call: what Keras 3 ``fit`` actually does after ``keras.utils.set_random_seed``, and so
    what produced the reference figures), or ``"none"`` (data order); seed: shuffling and
    dropout seed (default: the model's ``seed``); lr_decay: the learning rate of epoch
    ``e`` (counted from the model's first) is ``lr * lr_decay**e`` (default 1, or the
    model's with its own optimizer); threads: threads for per-sample SGD
    (``optimizer="sgd"``, ``batch_size=1``, ``shuffle="epoch"``: the grid of blocks gives
    bit-identical numbers for any number of threads; default 1); early_stopping: patience
    in epochs on validation MSE (None: off), restoring the best epoch's weights when
    ``restore_best``; verbose: 0 silent, 1 one line per epoch; progress: show a progress
    bar (None: when stderr is a terminal); log: a callable taking each line (default:
    print to stderr); callbacks: callables ``f(epoch, history)``; one returning True stops
    training.

    Divergence: training stops with :class:`~mfcore.errors.TrainingDiverged` when a loss or
    weight becomes NaN or infinite, an epoch's training loss or validation MSE exceeds
    :data:`DIVERGENCE_FACTOR` x the larger of the loss at the start and the ratings' scale,
    or both the training loss and the validation MSE (the training MSE without
    validation data) exceed :data:`RISE_FACTOR` x their values at the start (a bounded
    output that saturated);
    initial weights that predict non-finite values or a loss above :data:`INIT_FACTOR` x
    the ratings' scale are refused before the first epoch (blaming the init scale).
    Memory: the arrays the fit needs are estimated first
    (:mod:`mfcore.engine.memory`); :class:`~mfcore.errors.MemoryLimitError` when they do
    not fit. Any error leaves the model as it was before the call (unfitted if it was):
    weights, optimizer state, history and bookkeeping.
    """
    o = fit_options(model, validation, **options)
    if len(train) == 0:
        raise ModelError("the training set is empty")
    return model._fit_or_undo("training", lambda: _fit(model, train, validation, o))


def _fit(model, train, validation, o):
    warm = getattr(model, "tables_", None) is not None
    model._prepare(train, validation, budget=_memory_budget(model, train, validation, o, warm))
    run = Run(model, train, o)
    val = None
    if validation is not None and len(validation):
        val = (model._encode_ratings(validation), validation.ratings)
    hist = History(settings={"optimizer": o.optimizer.name, "lr": o.lr,
                             "lr_decay": o.lr_decay, "batch_size": o.batch_size,
                             "epochs": o.epochs,
                             "shuffle": o.shuffle, "seed": o.seed, "threads": o.threads})
    best = (math.inf, None, None)  # (val mse, epoch, snapshot)
    since_best = 0
    epoch0 = model.epochs_trained_
    guard = Divergence(model, run, train, o, epoch0)
    if val is not None:
        with np.errstate(all="ignore"):
            guard.start_val = evaluate_records(model, *val)[0]
    hist.settings["start_loss"] = guard.start_loss
    hist.settings["divergence_bound"] = guard.bound
    for e in range(o.epochs):
        epoch = epoch0 + e
        t0 = time.perf_counter()
        epoch_loss, ok = run.epoch(e, epoch)
        guard.epoch(epoch, epoch_loss, ok, hist)
        model.epochs_trained_ += 1
        hist.loss.append(float(epoch_loss))
        line = f"Epoch {epoch + 1}/{epoch0 + o.epochs} - loss: {epoch_loss:.4f}"
        if val is not None:
            mse, mae = evaluate_records(model, *val)
            guard.validation(epoch, mse, hist)
            penalty = model._keras_penalty()
            hist.val_loss.append(float(mse + penalty))
            hist.val_mse.append(float(mse))
            hist.val_rmse.append(float(math.sqrt(mse)))
            hist.val_mae.append(float(mae))
            line += f" - val_loss: {mse + penalty:.4f} - val_rmse: {math.sqrt(mse):.4f}"
            if mse < best[0]:
                best = (mse, epoch, model._snapshot() if o.early_stopping is not None else None)
                hist.best_epoch = e + 1
                since_best = 0
            else:
                since_best += 1
        seconds = time.perf_counter() - t0
        hist.seconds.append(float(seconds))
        line += f" - {seconds:.2f}s"
        if o.verbose:
            o.log(line)
        stop = any(bool(cb(e, hist)) for cb in o.callbacks)
        if o.early_stopping is not None and since_best >= max(1, o.early_stopping):
            hist.stopped_early = True
            if o.restore_best and best[2] is not None:
                model._restore(best[2])
                if o.verbose:
                    o.log(f"early stopping: restored the weights of epoch {best[1] + 1} "
                          f"(val_mse {best[0]:.4f})")
            stop = True
        if stop:
            break
    model.history_ = hist
    return hist
