"""The shared training loop: shuffling, batches, optimizer steps and validation.

The compiled part (:func:`run_batches`) runs a contiguous range of batches of one epoch
without returning to Python; the Python part (:func:`fit`) splits each epoch into a few
such ranges (for the progress bar and Ctrl-C), validates, logs a Keras-style line, and
handles early stopping and divergence.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from ..errors import ModelError, TrainingDiverged
from ..kernels import FAST, dispatch
from ..kernels.rng import shuffle_into
from . import optim
from .optim import OPT_ADAM, OPT_SGD, OPT_SPARSE_ADAM

STATUS_OK = 0
STATUS_NONFINITE = 1
SHUFFLES = ("epoch", "once", "none")
G2_NONE = 0
G2_OCCURRENCES = 1
G2_SUM = 2
EVAL_CHUNK = 8192


@njit(cache=True, fastmath=FAST)
def run_batches(kind, spec, fspec, U, I, theta, state,
                users, items, y, batch_size, b_first, b_last,
                opt, lr, b1, b2, eps,
                MU, VU, last_u, MI, VI, last_i, m_theta, v_theta,
                GU, GI, GU2, GI2, SU, SI, g_theta, ws, g2_mode,
                l2u_keras, l2i_keras, dense_u, dense_i, l2u_sample, l2i_sample, per_sample,
                t_base, tables, seed, step_box, mark_u, mark_i, touched_u, touched_i,
                ub, ib, yb):
    """Train on batches ``b_first .. b_last-1`` of the epoch whose samples, already
    shuffled, are ``users``, ``items``, ``y`` (batch ``b`` is rows ``b*batch_size ...``).

    ``step_box[0]`` is the global step count (updated). ``dense_u``/``dense_i`` select the
    step-by-step whole-table update (Keras' whole-matrix L2). ``SU``/``SI`` (batch, du/di)
    receive the kernel's per-sample row gradients; they are summed per row into ``GU``/``GI``
    and, by ``g2_mode``, their squares (Keras) or the squared sums into ``GU2``/``GI2``,
    Adam's second-moment input. Returns
    ``(sum over batches of batch loss * batch size, samples seen, status)``; on a non-finite
    batch loss it stops before updating anything, with status ``STATUS_NONFINITE``.
    """
    n_total = users.size
    loss_sum = 0.0
    seen = 0
    for bi in range(b_first, b_last):
        t = step_box[0] + 1
        start = bi * batch_size
        n = min(batch_size, n_total - start)
        nu = 0
        ni = 0
        for b in range(n):
            u = users[start + b]
            i = items[start + b]
            ub[b] = u
            ib[b] = i
            yb[b] = y[start + b]
            if mark_u[u] != t:
                mark_u[u] = t
                touched_u[nu] = u
                nu += 1
            if mark_i[i] != t:
                mark_i[i] = t
                touched_i[ni] = i
                ni += 1
        if opt == OPT_ADAM:
            # the batch must see its rows as the dense update would have left them
            if not dense_u:
                optim.adam_catch_up_rows(U, MU, VU, last_u, touched_u, nu, t - 1, t_base,
                                         tables, b1, b2, eps)
            if not dense_i:
                optim.adam_catch_up_rows(I, MI, VI, last_i, touched_i, ni, t - 1, t_base,
                                         tables, b1, b2, eps)
        sse = dispatch.forward_backward(kind, spec, fspec, U, I, theta, state, ub, ib, yb, n,
                                        SU, SI, g_theta, ws, seed, t, True)
        loss = sse / n
        if per_sample:
            pen = 0.0
            scale = 2.0 / n
            for b in range(n):
                u = ub[b]
                i = ib[b]
                for c in range(U.shape[1]):
                    w = U[u, c]
                    pen += l2u_sample[c] * w * w
                    SU[b, c] += scale * l2u_sample[c] * w
                for c in range(I.shape[1]):
                    w = I[i, c]
                    pen += l2i_sample[c] * w * w
                    SI[b, c] += scale * l2i_sample[c] * w
            loss += pen / n
        _accumulate_rows(SU, ub, n, GU, GU2, touched_u, nu, g2_mode)
        _accumulate_rows(SI, ib, n, GI, GI2, touched_i, ni, g2_mode)
        if not math.isfinite(loss):
            return loss_sum, seen, STATUS_NONFINITE
        if dense_u:
            if opt == OPT_SGD:
                loss += optim.sgd_dense_tables_step(U, GU, GU2, l2u_keras, lr)
            else:
                loss += optim.adam_dense_tables_step(U, MU, VU, GU, GU2, l2u_keras, t, lr,
                                                     b1, b2, eps)
        else:
            optim.table_step(opt, U, MU, VU, GU, GU2, last_u, touched_u, nu, t, lr, b1, b2,
                             eps, t_base, tables)
        if dense_i:
            if opt == OPT_SGD:
                loss += optim.sgd_dense_tables_step(I, GI, GI2, l2i_keras, lr)
            else:
                loss += optim.adam_dense_tables_step(I, MI, VI, GI, GI2, l2i_keras, t, lr,
                                                     b1, b2, eps)
        else:
            optim.table_step(opt, I, MI, VI, GI, GI2, last_i, touched_i, ni, t, lr, b1, b2,
                             eps, t_base, tables)
        if theta.size:
            optim.vector_step(opt, theta, m_theta, v_theta, g_theta, t, lr, b1, b2, eps)
        step_box[0] = t
        loss_sum += loss * n
        seen += n
    return loss_sum, seen, STATUS_OK


@njit(cache=True, inline="always", fastmath=FAST)
def _accumulate_rows(S, rows, n, G, G2, touched, n_touched, g2_mode):
    """Sum per-sample row gradients ``S[b]`` into ``G[rows[b]]`` and zero ``S``. ``G2``
    (Adam's second-moment input) gets the per-row sum of squared occurrences
    (``G2_OCCURRENCES``), ``G**2`` of the touched rows (``G2_SUM``), or nothing (``G2_NONE``,
    plain SGD)."""
    for b in range(n):
        r = rows[b]
        for c in range(S.shape[1]):
            g = S[b, c]
            G[r, c] += g
            if g2_mode == G2_OCCURRENCES:
                G2[r, c] += g * g
            S[b, c] = 0.0
    if g2_mode == G2_SUM:
        for j in range(n_touched):
            r = touched[j]
            for c in range(G.shape[1]):
                G2[r, c] = G[r, c] * G[r, c]


@njit(cache=True)
def predict_all(kind, spec, fspec, U, I, theta, state, users, items, out, ws, chunk,
                ub, ib, pb):
    """Predictions for every pair, in chunks of ``chunk`` (the size ``ws`` was made for)."""
    n = users.size
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        for b in range(m):
            ub[b] = users[start + b]
            ib[b] = items[start + b]
        dispatch.predict(kind, spec, fspec, U, I, theta, state, ub, ib, m, pb, ws)
        for b in range(m):
            out[start + b] = pb[b]


@njit(cache=True)
def error_sums(pred, y):
    """(sum of squared errors, sum of absolute errors) in float64."""
    sse = 0.0
    sae = 0.0
    for j in range(y.size):
        e = float(pred[j]) - float(y[j])
        sse += e * e
        sae += abs(e)
    return sse, sae


# ---------------------------------------------------------------------------------------
# Python driver
# ---------------------------------------------------------------------------------------

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

    def as_dict(self) -> dict:
        return {"loss": self.loss, "val_loss": self.val_loss, "val_mse": self.val_mse,
                "val_rmse": self.val_rmse, "val_mae": self.val_mae, "seconds": self.seconds,
                "best_epoch": self.best_epoch, "stopped_early": self.stopped_early,
                "diverged": self.diverged}


@dataclass
class OptimizerState:
    """Moments and step counters that persist across calls to ``fit`` (warm restarts)."""

    name: str
    MU: np.ndarray
    VU: np.ndarray
    MI: np.ndarray
    VI: np.ndarray
    m_theta: np.ndarray
    v_theta: np.ndarray
    last_u: np.ndarray
    last_i: np.ndarray
    step: int = 0

    @classmethod
    def zeros(cls, name, U, I, theta):
        return cls(name, np.zeros_like(U), np.zeros_like(U), np.zeros_like(I), np.zeros_like(I),
                   np.zeros_like(theta), np.zeros_like(theta),
                   np.zeros(U.shape[0], np.int64), np.zeros(I.shape[0], np.int64))

    def copy(self):
        return OptimizerState(self.name, *(a.copy() for a in (
            self.MU, self.VU, self.MI, self.VI, self.m_theta, self.v_theta,
            self.last_u, self.last_i)), step=self.step)


def _progress(total, desc, enabled):
    try:
        from ..progress import Progress
    except ImportError:  # pragma: no cover - progress is part of the package
        return None
    return Progress(total, desc=desc, unit="batch", enabled=enabled)


def evaluate_arrays(model, users, items, y):
    """Plain MSE and MAE of ``model`` on index arrays (every row through the model)."""
    pred = model._predict_indices(users, items)
    sse, sae = error_sums(pred, y)
    n = max(1, len(y))
    return sse / n, sae / n


def fit(model, train, validation=None, *, epochs=6, batch_size=64, optimizer="adam",
        lr=None, beta_1=0.9, beta_2=0.999, epsilon=1e-7, keras_moments=True, shuffle="epoch",
        seed=None,
        early_stopping=None, restore_best=True, verbose=1, progress=None, log=None,
        callbacks=()):
    """Train ``model`` in place on ``train`` (a Ratings) and return a :class:`History`.

    epochs: passes over ``train`` (default 6, as the notebook); batch_size: samples per step
    (64; 1 with ``optimizer="sgd"`` is classic per-sample SGD); optimizer: ``"adam"``
    (Keras-faithful, dense semantics), ``"sparse-adam"`` or ``"sgd"``; lr: learning rate
    (default 1e-3 for Adam, 1e-2 for SGD); keras_moments: Adam's second moment of an
    embedding row that occurs several times in a batch is the sum of the squared
    per-occurrence gradients, as Keras 3 computes it (True, default), or the square of their
    sum, the textbook rule (False); shuffle: ``"epoch"`` (a new order every epoch, as
    Keras documents and as the notebook's unseeded runs did), ``"once"`` (one order for all
    the epochs of this call: what Keras 3 ``fit`` actually does after
    ``keras.utils.set_random_seed``, and so what produced the reference figures), or
    ``"none"`` (data order); seed: shuffling and dropout seed (default: the
    model's ``seed``); early_stopping: patience in epochs on validation MSE (None: off),
    restoring the best epoch's weights when ``restore_best``; verbose: 0 silent, 1 one line
    per epoch; progress: show a progress bar (None: when stderr is a terminal);
    log: a callable taking each line (default: print to stderr); callbacks: callables
    ``f(epoch, history)``; one returning True stops training.
    """
    if optimizer not in optim.OPTIMIZERS:
        raise ModelError(f"unknown optimizer {optimizer!r}; choose from "
                         f"{', '.join(optim.OPTIMIZERS)}")
    opt = optim.OPTIMIZERS[optimizer]
    if lr is None:
        lr = 1e-2 if opt == OPT_SGD else 1e-3
    if not (isinstance(epochs, (int, np.integer)) and epochs >= 0):
        raise ModelError(f"epochs must be a non-negative integer, got {epochs!r}")
    if not (isinstance(batch_size, (int, np.integer)) and batch_size >= 1):
        raise ModelError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not (lr > 0 and math.isfinite(lr)):
        raise ModelError(f"learning rate must be a positive number, got {lr!r}")
    if shuffle not in SHUFFLES:
        raise ModelError(f"shuffle must be one of {', '.join(SHUFFLES)}, got {shuffle!r}")
    if early_stopping is not None and validation is None:
        raise ModelError("early stopping needs validation data")
    if len(train) == 0:
        raise ModelError("the training set is empty")
    if log is None:
        def log(line):
            print(line, file=sys.stderr, flush=True)

    model._prepare(train)
    l2u_k, l2i_k, l2u_s, l2i_s = model._l2_columns()
    dense_u, dense_i = bool(np.any(l2u_k > 0)), bool(np.any(l2i_k > 0))
    if optimizer == "adam-dense":
        dense_u = dense_i = True
    if opt == OPT_SPARSE_ADAM and (dense_u or dense_i):
        raise ModelError("Keras-style whole-matrix L2 moves every row at every step, which "
                         "sparse Adam never does; use l2_mode='per-sample' with sparse-adam")
    per_sample = bool(np.any(l2u_s > 0) or np.any(l2i_s > 0))
    seed = model.seed if seed is None else seed

    st = model.optimizer_state_
    if st is None or st.name != optimizer:
        st = model.optimizer_state_ = OptimizerState.zeros(optimizer, model.U_, model.I_,
                                                           model.theta_)
    U, I, theta, state = model.U_, model.I_, model.theta_, model.state_
    users, items, y = train.users, train.items, train.ratings
    n = len(train)
    n_batches = -(-n // batch_size)
    GU, GI, g_theta = np.zeros_like(U), np.zeros_like(I), np.zeros_like(theta)
    GU2, GI2 = np.zeros_like(U), np.zeros_like(I)
    SU = np.zeros((batch_size, U.shape[1]), U.dtype)
    SI = np.zeros((batch_size, I.shape[1]), I.dtype)
    ep_users, ep_items, ep_y = np.empty_like(users), np.empty_like(items), np.empty_like(y)
    ws = np.zeros(model._workspace_size(batch_size), np.float32)
    mark_u = np.full(U.shape[0], -1, np.int64)
    mark_i = np.full(I.shape[0], -1, np.int64)
    touched_u = np.zeros(batch_size, np.int32)
    touched_i = np.zeros(batch_size, np.int32)
    ub = np.zeros(batch_size, np.int32)
    ib = np.zeros(batch_size, np.int32)
    yb = np.zeros(batch_size, np.float32)
    step_box = np.array([st.step], np.int64)
    b1, b2, eps = float(beta_1), float(beta_2), float(epsilon)
    fused_sgd = opt == OPT_SGD and batch_size == 1 and model._fused_sgd is not None \
        and not (dense_u or dense_i)

    if opt == OPT_SGD:
        g2_mode = G2_NONE
    elif opt == OPT_ADAM and keras_moments:
        g2_mode = G2_OCCURRENCES
    else:
        g2_mode = G2_SUM

    hist = History()
    best = (math.inf, None, None)  # (val mse, epoch, snapshot)
    since_best = 0
    epoch0 = model.epochs_trained_
    for e in range(epochs):
        epoch = epoch0 + e
        t0 = time.perf_counter()
        snapshot = model._snapshot()
        if shuffle == "epoch" or (shuffle == "once" and e == 0):
            shuffle_into(users, items, y, seed, epoch, ep_users, ep_items, ep_y)
        elif shuffle == "none" and e == 0:
            ep_users[:], ep_items[:], ep_y[:] = users, items, y
        t_base = int(step_box[0])
        if opt == OPT_ADAM:
            tables = optim.catch_up_tables(t_base, n_batches, lr, b1, b2)
        else:
            tables = np.zeros((6, 1))
        if fused_sgd:
            loss_sum = model._fused_sgd(ep_users, ep_items, ep_y, lr, l2u_s, l2i_s)
            seen, status = n, STATUS_OK if math.isfinite(loss_sum) else STATUS_NONFINITE
            step_box[0] += n
        else:
            chunks = 1 if not _wants_progress(progress) else min(n_batches, 50)
            bounds = np.linspace(0, n_batches, chunks + 1).astype(np.int64)
            bar = _progress(n_batches, f"Epoch {epoch + 1}", progress) if chunks > 1 else None
            loss_sum, seen, status = 0.0, 0, STATUS_OK
            try:
                for c in range(chunks):
                    ls, sn, status = run_batches(
                        model.kind, model.spec_, model.fspec_, U, I, theta, state,
                        ep_users, ep_items, ep_y, batch_size, int(bounds[c]),
                        int(bounds[c + 1]),
                        opt, float(lr), b1, b2, eps,
                        st.MU, st.VU, st.last_u, st.MI, st.VI, st.last_i, st.m_theta,
                        st.v_theta, GU, GI, GU2, GI2, SU, SI, g_theta, ws,
                        g2_mode,
                        l2u_k, l2i_k, dense_u, dense_i, l2u_s, l2i_s, per_sample,
                        t_base, tables, int(seed), step_box, mark_u, mark_i,
                        touched_u, touched_i, ub, ib, yb)
                    loss_sum += ls
                    seen += sn
                    if bar is not None:
                        bar.update(int(bounds[c + 1] - bounds[c]))
                    if status != STATUS_OK:
                        break
            finally:
                if bar is not None:
                    bar.close()
            if opt == OPT_ADAM:
                t_now = int(step_box[0])
                for W, M, V, last, dense in ((U, st.MU, st.VU, st.last_u, dense_u),
                                             (I, st.MI, st.VI, st.last_i, dense_i)):
                    if dense:
                        last[:] = t_now
                    else:
                        optim.adam_catch_up_all(W, M, V, last, t_now, t_base, tables,
                                                b1, b2, eps)
        st.step = int(step_box[0])
        epoch_loss = loss_sum / max(seen, 1)
        if status != STATUS_OK or not np.all(np.isfinite(U)) or not np.all(np.isfinite(I)) \
                or not np.all(np.isfinite(theta)):
            model._restore(snapshot)
            hist.diverged = True
            msg = (f"training diverged in epoch {epoch + 1} (loss became NaN or infinite); "
                   f"kept the weights from the end of epoch {epoch}. Try a smaller learning "
                   f"rate (now {lr:g}).")
            if verbose:
                log("error: " + msg)
            model.history_ = hist
            raise TrainingDiverged(msg)
        model.epochs_trained_ += 1
        hist.loss.append(float(epoch_loss))
        line = f"Epoch {epoch + 1}/{epoch0 + epochs} - loss: {epoch_loss:.4f}"
        if validation is not None and len(validation):
            mse, mae = evaluate_arrays(model, validation.users, validation.items,
                                       validation.ratings)
            penalty = model._keras_penalty()
            hist.val_loss.append(float(mse + penalty))
            hist.val_mse.append(float(mse))
            hist.val_rmse.append(float(math.sqrt(mse)))
            hist.val_mae.append(float(mae))
            line += f" - val_loss: {mse + penalty:.4f} - val_rmse: {math.sqrt(mse):.4f}"
            if mse < best[0]:
                best = (mse, epoch, model._snapshot() if early_stopping is not None else None)
                hist.best_epoch = e + 1
                since_best = 0
            else:
                since_best += 1
        seconds = time.perf_counter() - t0
        hist.seconds.append(float(seconds))
        line += f" - {seconds:.2f}s"
        if verbose:
            log(line)
        stop = any(bool(cb(e, hist)) for cb in callbacks)
        if early_stopping is not None and since_best >= max(1, early_stopping):
            hist.stopped_early = True
            if restore_best and best[2] is not None:
                model._restore(best[2])
                if verbose:
                    log(f"early stopping: restored the weights of epoch {best[1] + 1} "
                        f"(val_mse {best[0]:.4f})")
            stop = True
        if stop:
            break
    model.history_ = hist
    return hist


def _wants_progress(progress):
    if progress is None:
        return sys.stderr.isatty()
    return bool(progress)
