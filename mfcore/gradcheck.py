"""Check every hand-derived gradient against central finite differences in float64.

Two levels are checked:

- the model kernel (``forward_backward``): the gradient of the batch's mean squared error
  with respect to every user row, item row and dense weight the batch touches, in
  training mode (dropout masks are fixed by seed and step, so the loss is deterministic);
- the trainer's regularisation terms (Keras' whole-matrix L2 and per-sample L2), through one
  plain-SGD step of the shared epoch loop: ``(W - W_after) / lr`` must equal the
  finite-difference gradient of the batch loss including the penalty.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .engine import optim, trainer
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


def _problem(model, n_users, n_items, batch, seed):
    rng = np.random.default_rng(seed)
    U, I, theta, state, spec, fspec = model._build(n_users, n_items, rng)
    # larger weights than the default init, so products and curvature are not negligible
    U = rng.normal(0, 0.5, U.shape)
    I = rng.normal(0, 0.5, I.shape)
    theta = theta.astype(np.float64) + rng.normal(0, 0.1, theta.shape)
    state = state.astype(np.float64)
    users = rng.integers(0, n_users, batch).astype(np.int32)
    items = rng.integers(0, n_items, batch).astype(np.int32)
    users[:2] = users[2]  # duplicates in a batch must accumulate
    y = rng.integers(1, 6, batch).astype(np.float64)
    return U, I, theta, state, spec, fspec, users, items, y


def check_kernel(model, *, n_users=6, n_items=5, batch=9, seed=0, h=1e-6, tol=1e-5):
    """Finite-difference check of ``model``'s kernel gradient. Returns a GradCheckResult."""
    U, I, theta, state, spec, fspec, users, items, y = _problem(model, n_users, n_items, batch, seed)
    ws = np.zeros(model._workspace_size(batch), np.float64)
    step = 3

    def loss_and_grads(U, I, theta):
        SU = np.zeros((batch, U.shape[1]))
        SI = np.zeros((batch, I.shape[1]))
        gt = np.zeros_like(theta)
        sse = dispatch.forward_backward(model.kind, spec, fspec, U, I, theta, state.copy(),
                                        users, items, y, batch, SU, SI, gt, ws, seed, step, True)
        # the kernel gives per-sample row gradients: sum them per row
        GU, GI = np.zeros_like(U), np.zeros_like(I)
        np.add.at(GU, users, SU)
        np.add.at(GI, items, SI)
        return sse / batch, GU, GI, gt

    _, GU, GI, gt = loss_and_grads(U, I, theta)
    worst, checked = 0.0, 0
    for arr, grad, rows in ((U, GU, np.unique(users)), (I, GI, np.unique(items))):
        for r in rows:
            for c in range(arr.shape[1]):
                old = arr[r, c]
                arr[r, c] = old + h
                lp = loss_and_grads(U, I, theta)[0]
                arr[r, c] = old - h
                lm = loss_and_grads(U, I, theta)[0]
                arr[r, c] = old
                worst = max(worst, _rel((lp - lm) / (2 * h), grad[r, c]))
                checked += 1
    for j in range(theta.size):
        old = theta[j]
        theta[j] = old + h
        lp = loss_and_grads(U, I, theta)[0]
        theta[j] = old - h
        lm = loss_and_grads(U, I, theta)[0]
        theta[j] = old
        worst = max(worst, _rel((lp - lm) / (2 * h), gt[j]))
        checked += 1
    return GradCheckResult(model.name, model.get_params(), checked, worst, tol)


def check_regularised_step(model, *, n_users=6, n_items=5, batch=9, seed=0, h=1e-6, tol=1e-5):
    """Check the trainer's full batch gradient (kernel + L2 terms) via one SGD step."""
    U, I, theta, state, spec, fspec, users, items, y = _problem(model, n_users, n_items, batch, seed)
    model.U_, model.I_ = U, I  # _l2_columns reads the table widths only
    l2u_k, l2i_k, l2u_s, l2i_s = (a.astype(np.float64) for a in model._l2_columns())
    dense_u, dense_i = bool(np.any(l2u_k > 0)), bool(np.any(l2i_k > 0))
    per_sample = bool(np.any(l2u_s > 0) or np.any(l2i_s > 0))
    lr = 1e-3

    def one_step(U, I, theta):
        U, I, theta = U.copy(), I.copy(), theta.copy()
        z = np.zeros_like
        tables = optim.catch_up_tables(0, 1, lr, 0.9, 0.999)
        loss, _, _ = trainer.run_batches(
            model.kind, spec, fspec, U, I, theta, state.copy(), users, items, y, batch,
            0, 1, optim.OPT_SGD, lr, 0.9, 0.999, 1e-7,
            z(U), z(U), np.zeros(n_users, np.int64), z(I), z(I), np.zeros(n_items, np.int64),
            z(theta), z(theta), z(U), z(I), z(U), z(I), np.zeros((batch, U.shape[1])),
            np.zeros((batch, I.shape[1])), z(theta), np.zeros(model._workspace_size(batch)),
            trainer.G2_NONE, l2u_k, l2i_k, dense_u, dense_i, l2u_s, l2i_s, per_sample, 0, tables, seed,
            np.array([2], np.int64), np.full(n_users, -1, np.int64),
            np.full(n_items, -1, np.int64), np.zeros(batch, np.int32), np.zeros(batch, np.int32),
            np.zeros(batch, np.int32), np.zeros(batch, np.int32), np.zeros(batch, np.float64))
        return loss / batch, U, I, theta

    _, U1, I1, t1 = one_step(U, I, theta)
    worst, checked = 0.0, 0
    for arr, after in ((U, U1), (I, I1), (theta, t1)):
        grad = (arr - after) / lr
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + h
            lp = one_step(U, I, theta)[0]
            arr[idx] = old - h
            lm = one_step(U, I, theta)[0]
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
        model = create_model(name, **params)
        results.append(check_kernel(model))
        if params.get("l2"):
            results.append(check_regularised_step(model))
    return results
