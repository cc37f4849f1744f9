"""The compiled part of training and prediction: batches of one epoch, and predictions
over records, for any kernel family (:mod:`mfcore.kernels.dispatch`; each family gets its
own compiled copy of these loops).

Per batch (:func:`run_batches`)::

    touched rows  <- kernel.touch(batch)                  rows the batch will read
    [adam]        bring those rows up to date (lazy Keras-Adam catch-up)
    sse           <- kernel.forward_backward(batch)       row gradients via emit()
    loss          =  sse / n  (+ per-sample L2 penalty / n)
    step          optimizer over touched rows, densely stepped tables, dense weights
                  (+ Keras' whole-matrix L2 penalty into the loss)
"""
import math

from numba import njit

from ..kernels import CORE, FAST, dispatch
from ..registry import ADAM
from . import optim

STATUS_OK = 0
STATUS_NONFINITE = 1


@njit(**CORE, inline="always")
def batch_span(O, cfg, bi, n_total):
    """Batch ``bi`` of an epoch of ``n_total`` records: ``(t, start, n)``, the step it
    takes (``O.step[0] + 1``), its first record and its size (the last batch may be
    short)."""
    start = bi * cfg.batch_size
    return O.step[0] + 1, start, min(cfg.batch_size, n_total - start)


@njit(**CORE, fastmath=FAST)
def run_batches(fam, T, P, S, R, K, O, cfg, b_first, b_last, ws, loss0):
    """Train kernel family ``fam`` (its marker, see :mod:`mfcore.kernels.dispatch`) on
    batches ``b_first .. b_last-1`` of the epoch whose records, already in epoch order, are
    ``S`` (batch ``b`` is records ``b*batch_size ...``).

    ``O.step[0]`` is the global step count (advanced). Returns ``(loss0 + sum over batches
    of batch loss * batch size, samples seen, status)``; on a non-finite batch loss it stops
    before updating anything, with status ``STATUS_NONFINITE``. ``loss0`` carries the sum
    of the epoch's earlier calls, so that an epoch run in chunks (for a progress bar) adds
    its batch losses in the same order as one call, to the last bit.
    """
    n_total = S.X.shape[0]
    loss_sum = loss0
    seen = 0
    for bi in range(b_first, b_last):
        t, start, n = batch_span(O, cfg, bi, n_total)
        K.step[0] = t
        K.count[0] = 0
        dispatch.touch(fam, T, P, S, start, n, K)
        if cfg.opt == ADAM:
            optim.catch_up_touched(T, O, K, cfg, t - 1)
        R.pen[0] = 0.0
        R.scale[0] = 2.0 / n
        sse = dispatch.forward_backward(fam, T, P, S, start, n, R, ws, cfg.seed, t, True)
        loss = sse / n
        if R.per_sample:
            loss += R.pen[0] / n
        if not math.isfinite(loss):
            return loss_sum, seen, STATUS_NONFINITE
        loss += optim.apply_step(T, P, R, O, K, cfg, t)
        O.step[0] = t
        loss_sum += loss * n
        seen += n
    return loss_sum, seen, STATUS_OK


@njit(**CORE)
def predict_all(fam, T, P, S, out, ws, chunk):
    """Predictions for every record of ``S`` into ``out``, ``chunk`` records at a time (the
    size ``ws`` was made for)."""
    n = S.X.shape[0]
    for first in range(0, n, chunk):
        m = min(chunk, n - first)
        dispatch.predict(fam, T, P, S, first, m, out[first:first + m], ws)


@njit(**CORE)
def square_and_range(y):
    """(sum of squares, min, max) of ``y`` in float64, one pass (y non-empty)."""
    sq = 0.0
    lo = hi = float(y[0])
    for j in range(y.size):
        v = float(y[j])
        sq += v * v
        lo = min(lo, v)
        hi = max(hi, v)
    return sq, lo, hi


@njit(**CORE)
def error_sums(pred, y):
    """(sum of squared errors, sum of absolute errors) in float64."""
    sse = 0.0
    sae = 0.0
    for j in range(y.size):
        e = float(pred[j]) - float(y[j])
        sse += e * e
        sae += abs(e)
    return sse, sae
