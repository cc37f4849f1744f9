"""The optimizers against literal reference implementations written in plain NumPy."""
import numpy as np
import pytest

from mfcore import registry
from mfcore.engine import optim
from mfcore.engine.contract import G2_NONE, buffers
from mfcore.engine.tables import ParameterTables, TableSpec

LR, B1, B2, EPS = 1e-3, 0.9, 0.999, 1e-7


def _dense_numpy_adam(W, grads):
    """Keras' Adam, step by step over the whole table, in float64 NumPy."""
    W = W.astype(np.float64).copy()
    M, V = np.zeros_like(W), np.zeros_like(W)
    for t, G in enumerate(grads, start=1):
        M = B1 * M + (1 - B1) * G
        V = B2 * V + (1 - B2) * G * G
        alpha = LR * np.sqrt(1 - B2 ** t) / (1 - B1 ** t)
        W -= alpha * M / (np.sqrt(V) + EPS)
    return W, M, V


def _sparse_grads(rng, rows, cols, steps, touch_prob):
    grads = []
    for _ in range(steps):
        G = np.zeros((rows, cols))
        hit = rng.random(rows) < touch_prob
        G[hit] = rng.normal(0, 1e-2, (hit.sum(), cols))
        grads.append(G)
    return grads


class OneTable:
    """One parameter table ``W0`` in an arena, with the optimizer's arrays around it."""

    def __init__(self, W0, opt, dtype=np.float64, l2=0.0, dense=False, lr=LR, steps=1):
        rows, cols = W0.shape
        self.tables = ParameterTables([TableSpec("w", rows, cols, l2=l2)], {"w": W0},
                                      dtype=dtype)
        self.T = T = self.tables.arena
        self.R, self.K = buffers(self.tables, np.zeros(0, dtype), G2_NONE, False)
        self.O = optim.OptArrays(np.zeros_like(T.W), np.zeros_like(T.W),
                                 np.zeros(rows, np.int64), np.zeros(0, dtype),
                                 np.zeros(0, dtype), np.zeros(1, np.int64),
                                 np.array([int(dense)], np.int64),
                                 optim.catch_up_tables(0, steps, lr, B1, B2),
                                 np.zeros(6, dtype))
        self.cfg = optim.OptConfig(opt, lr, B1, B2, EPS, 0, 1, 0)
        self.shape = W0.shape

    def arr(self, a):
        return a.reshape(self.shape)

    @property
    def W(self):
        return self.arr(self.T.W)

    def step(self, t, grad, g2=None):
        """One step at ``t`` with row gradients ``grad`` (rows with a non-zero entry are
        the touched ones, in slots 0, 1, ...); returns the penalty of a dense step."""
        rows = np.flatnonzero(np.any(grad != 0, axis=1))
        g2 = grad ** 2 if g2 is None else g2
        K, R = self.K, self.R
        K.step[0] = t
        cols = self.shape[1]
        for j, r in enumerate(rows):
            R.G[j, :cols] = grad[r]
            R.G2[j, :cols] = g2[r]
            K.mark[r] = t
            K.slot[r] = j
        K.rows[:len(rows)] = rows
        K.tab[:len(rows)] = 0
        K.count[0] = len(rows)
        if self.O.dense[0]:
            pen = optim.dense_table_step(self.T, R, self.O, K, self.cfg, 0, t)
        else:
            optim.rows_step(self.T, R, self.O, K, self.cfg, t)
            pen = 0.0
        assert not R.G.any() and not R.G2.any(), "a step must zero the slots it consumed"
        return pen


def _run_table(opt, W0, grads, dtype=np.float64):
    tab = OneTable(W0, opt, dtype, steps=len(grads))
    for t, grad in enumerate(grads, start=1):
        tab.step(t, grad)
    if opt == registry.ADAM:
        optim.catch_up_all(tab.T, tab.O, tab.cfg, len(grads))
    return tab.W, tab.arr(tab.O.M), tab.arr(tab.O.V)


@pytest.mark.parametrize("touch_prob", [0.02, 0.3, 1.0])
def test_lazy_adam_matches_dense_keras_adam(touch_prob):
    rng = np.random.default_rng(1)
    W0 = rng.uniform(-0.05, 0.05, (40, 6))
    grads = _sparse_grads(rng, 40, 6, 900, touch_prob)
    ref_W, ref_M, ref_V = _dense_numpy_adam(W0, grads)
    W, M, V = _run_table(registry.ADAM, W0, grads)
    moved = np.abs(ref_W - W0)
    assert moved.max() > 1e-3  # the comparison is not vacuous
    np.testing.assert_allclose(M, ref_M, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(V, ref_V, rtol=1e-9, atol=1e-18)
    # weights agree to well below float32 resolution of the displacement
    assert np.max(np.abs(W - ref_W)) <= 1e-6 * max(1.0, moved.max())


def test_lazy_adam_float32_tracks_dense_within_rounding():
    rng = np.random.default_rng(2)
    W0 = rng.uniform(-0.05, 0.05, (30, 4))
    grads = _sparse_grads(rng, 30, 4, 600, 0.05)
    ref_W, _, _ = _dense_numpy_adam(W0, grads)
    W, _, _ = _run_table(registry.ADAM, W0, grads, dtype=np.float32)
    assert np.max(np.abs(W - ref_W)) < 2e-6


def test_rows_not_touched_still_move_with_keras_adam_but_not_sparse_adam():
    rng = np.random.default_rng(3)
    W0 = rng.uniform(-0.05, 0.05, (3, 2))
    grads = [np.zeros((3, 2)) for _ in range(20)]
    grads[0][1] = [0.5, -0.5]  # row 1 touched once, at step 1
    W_dense, _, _ = _run_table(registry.ADAM, W0, grads)
    W_sparse, _, _ = _run_table(registry.SPARSE_ADAM, W0, grads)
    one_step_move = abs(W_sparse[1] - W0[1])
    assert np.all(abs(W_dense[1] - W0[1]) > 3 * one_step_move)  # kept drifting on momentum
    np.testing.assert_array_equal(W_dense[[0, 2]], W0[[0, 2]])  # never-touched rows: m = 0
    np.testing.assert_array_equal(W_sparse[[0, 2]], W0[[0, 2]])


def test_sparse_adam_matches_per_row_adam():
    rng = np.random.default_rng(4)
    W0 = rng.uniform(-0.05, 0.05, (5, 3))
    grads = _sparse_grads(rng, 5, 3, 50, 0.4)
    W, _, _ = _run_table(registry.SPARSE_ADAM, W0, grads)
    ref = W0.copy()
    M, V = np.zeros_like(ref), np.zeros_like(ref)
    for t, G in enumerate(grads, start=1):
        rows = np.any(G != 0, axis=1)
        M[rows] = B1 * M[rows] + (1 - B1) * G[rows]
        V[rows] = B2 * V[rows] + (1 - B2) * G[rows] ** 2
        alpha = LR * np.sqrt(1 - B2 ** t) / (1 - B1 ** t)
        ref[rows] -= alpha * M[rows] / (np.sqrt(V[rows]) + EPS)
    np.testing.assert_allclose(W, ref, rtol=1e-12, atol=1e-15)


def test_sgd_and_dense_l2_step():
    rng = np.random.default_rng(5)
    W0 = rng.normal(size=(4, 3))
    G0 = rng.normal(size=(4, 3))
    tab = OneTable(W0, registry.SGD, lr=0.1)
    grad = np.zeros_like(G0)
    grad[2] = G0[2]
    tab.step(1, grad)
    expect = W0.copy()
    expect[2] -= 0.1 * G0[2]
    np.testing.assert_allclose(tab.W, expect)
    l2 = np.array([0.5, 0.0, 0.25])
    tab = OneTable(W0, registry.SGD, lr=0.1, l2=l2, dense=True)
    pen = tab.step(1, G0)
    np.testing.assert_allclose(pen, np.sum(l2 * W0 ** 2))
    np.testing.assert_allclose(tab.W, W0 - 0.1 * (G0 + 2 * l2 * W0))
    assert not tab.R.G.any()  # consumed


def test_sgd_learning_rate_scales_per_column():
    W0 = np.ones((2, 3))
    tables = ParameterTables([TableSpec("w", 2, 3, lr_scale=[1.0, 0.5, 0.0])], {"w": W0})
    tab = OneTable(W0, registry.SGD, lr=0.1)
    tab.T = tables.arena
    tab.step(1, np.ones((2, 3)))
    np.testing.assert_allclose(tab.arr(tab.T.W), [[0.9, 0.95, 1.0]] * 2)


def test_dense_adam_with_l2_matches_numpy():
    rng = np.random.default_rng(6)
    W0 = rng.normal(size=(4, 2))
    l2 = np.array([0.01, 0.0], np.float32).astype(np.float64)  # tables keep L2 in float32
    tab = OneTable(W0, registry.ADAM, l2=l2, dense=True)
    ref, rM, rV = W0.copy(), np.zeros((4, 2)), np.zeros((4, 2))
    for t in range(1, 30):
        G = rng.normal(size=(4, 2))
        g = G + 2 * l2 * ref
        pen_ref = np.sum(l2 * ref ** 2)
        rM = B1 * rM + (1 - B1) * g
        rV = B2 * rV + (1 - B2) * g * g
        ref = ref - LR * np.sqrt(1 - B2 ** t) / (1 - B1 ** t) * rM / (np.sqrt(rV) + EPS)
        pen = tab.step(t, G)
        np.testing.assert_allclose(pen, pen_ref, rtol=1e-12)
    np.testing.assert_allclose(tab.W, ref, rtol=1e-12)


def test_unknown_optimizer_code_raises_instead_of_running_as_adam():
    tab = OneTable(np.ones((2, 2)), 99)
    with pytest.raises(ValueError, match="unknown optimizer"):
        tab.step(1, np.ones((2, 2)))
    with pytest.raises(ValueError, match="unknown optimizer"):
        optim.vector_step(tab.cfg, np.ones(3), np.zeros(3), np.zeros(3), np.ones(3), 1)


def test_unknown_optimizer_name_raises():
    from mfcore.errors import ModelError
    with pytest.raises(ModelError, match="unknown optimizer 'adamw'"):
        registry.optimizer("adamw")
