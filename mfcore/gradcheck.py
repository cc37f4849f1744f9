"""Check every hand-derived gradient against central finite differences in float64.

Two levels are checked, for every table the model declares:

- the model kernel (``forward_backward``): the gradient of the batch's mean squared error
  with respect to every row the batch touches, in every table, and every dense weight, in
  training mode (dropout masks are fixed by seed and step, so the loss is deterministic);
- the training step's regularisation terms (Keras' whole-matrix L2 and per-sample L2),
  through one plain-SGD step of the shared batch loop: ``(W - W_after) / lr`` must equal
  the finite-difference gradient of the batch loss including the penalty.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import registry
from .engine import loop, optim, samples
from .engine.contract import G2_NONE, Params, arena_gradient, buffers
from .kernels import dispatch


@dataclass
class GradCheckResult:
    """Outcome for one model configuration: worst relative error over all checked entries."""

    model: str
    config: dict
    checked: int
    max_rel_error: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_rel_error <= self.tolerance and self.checked > 0


def _rel(a, b):
    return abs(a - b) / max(1e-7, abs(a) + abs(b))


class _Problem:
    """A small random problem for ``model`` in float64: every table's weights drawn
    N(0, 0.5) (larger than the default init, so products and curvature are not
    negligible), dense weights perturbed, a batch with a repeated user."""

    def __init__(self, model, n_users=6, n_items=5, batch=9, seed=0):
        from .data.ratings import Ratings
        rng = np.random.default_rng(seed)
        users = rng.integers(0, n_users, batch).astype(np.int32)
        items = rng.integers(0, n_items, batch).astype(np.int32)
        users[:2] = users[2]  # duplicates in a batch must accumulate
        y = rng.integers(1, 6, batch).astype(np.float64)
        ts = (rng.integers(0, 200, batch) * 86400 + 880_000_000).astype(np.int64)
        data = Ratings(users, items, y.astype(np.float32), ts,
                       np.arange(n_users), np.arange(n_items))
        model._check()
        model._prepare(data)
        self.tables = model.tables_.with_dtype(np.float64)
        W = self.tables.arena.W
        W[:] = rng.normal(0, 0.5, W.shape)
        theta = model.theta_.astype(np.float64) + rng.normal(0, 0.1, model.theta_.shape)
        self.P = Params(model.spec_, model.fspec_, theta, model.state_.astype(np.float64),
                        model.aux_i_, model.aux_f_)
        S = model._encode(users, items, y, ts)
        X = S.X.copy()
        self.S = samples.Samples(X, X.view(np.float32))
        self.y = y
        self.model, self.batch, self.seed = model, batch, seed
        self.ws = np.zeros(model.design_.workspace(batch), np.float64)

    def restate(self):
        return self.P._replace(state=self.P.state.copy())


def check_kernel(model, *, n_users=6, n_items=5, batch=9, seed=0, h=1e-6, tol=1e-5):
    """Finite-difference check of ``model``'s kernel gradient. Returns a GradCheckResult."""
    pb = _Problem(model, n_users, n_items, batch, seed)
    T = pb.tables.arena
    W, theta = T.W, pb.P.theta
    kernel = dispatch.FAMILIES[model.kernel]
    step = 3

    def loss_and_grads():
        R, K = buffers(pb.tables, theta, G2_NONE, False)
        K.step[0] = 1
        kernel.touch(T, pb.P, pb.S, 0, batch, K)  # assigns the gradient slots
        sse = kernel.forward_backward(T, pb.restate(), pb.S, 0, batch, R, pb.ws, seed, step,
                                      True)
        return sse / batch, arena_gradient(T, R, K), R.gtheta, K

    _, G, gtheta, K = loss_and_grads()
    touched = _touched_positions(T, K)

    def central(arr, j, step):
        old = arr[j]
        arr[j] = old + step
        lp = loss_and_grads()[0]
        arr[j] = old - step
        lm = loss_and_grads()[0]
        arr[j] = old
        return (lp - lm) / (2 * step)

    worst, checked = 0.0, 0
    for arr, grad, positions in ((W, G, touched), (theta, gtheta, range(theta.size))):
        for j in positions:
            # two step sizes: rounding dominates the small one where the loss is large
            # (time terms), truncation the large one; a wrong gradient fails both
            err = min(_rel(central(arr, j, h), grad[j]), _rel(central(arr, j, 10 * h), grad[j]))
            worst = max(worst, err)
            checked += 1
    return GradCheckResult(model.name, model.get_params(), checked, worst, tol)


def _touched_positions(T, K):
    """Arena positions of every column of every row the batch reads."""
    out = []
    for j in range(int(K.count[0])):
        t, r = int(K.tab[j]), int(K.rows[j])
        base = int(T.off[t] + r * T.cols[t])
        out.extend(range(base, base + int(T.cols[t])))
    return out


def check_regularised_step(model, *, n_users=6, n_items=5, batch=9, seed=0, h=1e-6, tol=1e-5):
    """Check the training step's full batch gradient (kernel + L2 terms) via one SGD step."""
    pb = _Problem(model, n_users, n_items, batch, seed)
    T = pb.tables.arena
    lr = 1e-3
    n_rows = pb.tables.n_rows
    dense = pb.tables.table_has_keras_l2().astype(np.int64)
    fam = model.kernel_family

    def one_step(W, theta):
        Tc = T._replace(W=W.copy())
        P = pb.restate()._replace(theta=theta.copy())
        R, K = buffers(pb.tables, theta, G2_NONE, pb.tables.any_l2("per-sample"))
        O = optim.OptArrays(np.zeros_like(W), np.zeros_like(W), np.zeros(n_rows, np.int64),
                            np.zeros_like(theta), np.zeros_like(theta),
                            np.array([2], np.int64), dense, np.zeros((6, 1)), np.zeros(6))
        cfg = optim.OptConfig(registry.SGD, lr, 0.9, 0.999, 1e-7, 0, batch, seed)
        loss, _, _ = loop.run_batches(fam, Tc, P, pb.S, R, K, O, cfg, 0, 1, pb.ws, 0.0)
        return loss / batch, Tc.W, P.theta

    W0, theta0 = T.W.copy(), pb.P.theta.copy()
    _, W1, t1 = one_step(W0, theta0)
    # SGD moved each weight by lr * (its column's lr multiplier) * gradient
    rate = np.concatenate([np.tile(T.lr_scale[T.coff[t]:T.coff[t] + T.cols[t]], T.rows[t])
                           for t in range(T.off.size)] or [np.zeros(0)]) * lr
    worst, checked = 0.0, 0
    for arr, after, step in ((W0, W1, rate), (theta0, t1, np.full(theta0.size, lr))):
        grad = (arr - after) / step
        for idx in range(arr.size):
            old = arr[idx]
            arr[idx] = old + h
            lp = one_step(W0, theta0)[0]
            arr[idx] = old - h
            lm = one_step(W0, theta0)[0]
            arr[idx] = old
            fd = (lp - lm) / (2 * h)
            # the SGD-step estimate carries O(lr) rounding; compare with a looser floor
            worst = max(worst, abs(fd - grad[idx]) / max(1e-4, abs(fd) + abs(grad[idx])))
            checked += 1
    return GradCheckResult(model.name + " (training step with L2)", model.get_params(),
                           checked, worst, tol)


def gradcheck_configs():
    """(name, params) pairs covering every model and option that changes a gradient."""
    from .models import MODELS
    out = []
    for name, cls in MODELS.items():
        for params in cls.gradcheck_configs():
            out.append((name, params))
    return out


def run_all(names=None):
    """Check every configuration of the models in ``names`` (default: all).
    Returns a list of GradCheckResult."""
    from .models import create_model
    results = []
    for name, params in gradcheck_configs():
        if names and name not in names:
            continue
        results.append(check_kernel(create_model(name, **params)))
        if params.get("l2"):
            results.append(check_regularised_step(create_model(name, **params)))
    return results
