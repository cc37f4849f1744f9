"""Fused batched Adam on packed rows (engine.packed, the MF kernel's
packed_forward_backward), held to the general batch path.

The general path (engine.loop.run_batches: kernel gradients, emit(), per-sample L2, the
optimizer's row steps and Keras' lazy catch-up) is itself checked against finite
differences and NumPy references; the packed path must agree with it batch by batch, in
float64, so any change to its gradient or its step fails here."""
import numpy as np
import pytest

from mfcore import registry
from mfcore.data.ratings import Ratings
from mfcore.engine import loop, optim, packed, samples
from mfcore.engine.contract import G2_OCCURRENCES, G2_SUM, buffers
from mfcore.kernels import dispatch
from mfcore.kernels.packed_layout import ALIGN
from mfcore.models import MODELS, create_model

FUSED = [name for name, cls in MODELS.items() if dispatch.has_fused_adam(cls.kernel)]
#: (optimizer code, Keras' per-occurrence second moment)
OPTIMIZERS = [(registry.ADAM, True), (registry.ADAM, False), (registry.SPARSE_ADAM, False)]
CONFIGS = [(name, factors, l2, opt, occ) for name in FUSED for factors in (3, 20)
           for l2 in (0.0, 0.05) for opt, occ in OPTIMIZERS]


def _problem(name, factors, l2, n=240, seed=0):
    """A model with float64 tables of random weights, records with rows repeated within
    batches, and non-zero Adam moments."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 9, n)
    items = rng.integers(0, 7, n)
    y = rng.integers(1, 6, n).astype(np.float32)
    data = Ratings(users.astype(np.int32), items.astype(np.int32), y, np.zeros(n, np.int64),
                   np.arange(9), np.arange(7))
    model = create_model(name, factors=factors, l2=l2, l2_mode="per-sample")
    model._prepare(data)
    tables = model.tables_.with_dtype(np.float64)
    T = tables.arena
    T.W[:] = rng.normal(0, 0.3, tables.size)
    if l2:  # each table its own coefficients and centres
        users_t, items_t = tables.index("users"), tables.index("items")
        T.l2s[T.coff[items_t]:T.coff[items_t] + factors] *= 3.0
        T.center[T.coff[items_t]:T.coff[items_t] + factors] = 0.1
        T.center[T.coff[users_t]:T.coff[users_t] + factors] = -0.2
    S = model._encode(data.users, data.items, data.ratings, data.timestamps)
    M = rng.normal(0, 0.01, tables.size)
    V = rng.uniform(0, 1e-3, tables.size)
    return model, tables, S, M, V


def _state(T, M, V, opt, batch, n_batches, lr=0.01):
    n_rows = int(T.rows.sum())
    tabs = (optim.catch_up_tables(0, n_batches, lr, 0.9, 0.999) if opt == registry.ADAM
            else np.zeros((6, 1)))
    O = optim.OptArrays(M.copy(), V.copy(), np.zeros(n_rows, np.int64), np.zeros(0),
                        np.zeros(0), np.zeros(1, np.int64), np.zeros(T.off.size, np.int64),
                        tabs, np.zeros(6))
    cfg = optim.OptConfig(opt, lr, 0.9, 0.999, 1e-7, 0, batch, 0)
    return O, cfg


@pytest.mark.parametrize("name,factors,l2,opt,occ", CONFIGS)
def test_packed_adam_agrees_with_the_general_path_batch_by_batch(name, factors, l2, opt,
                                                                  occ):
    batch = 16
    model, tables, S, M, V = _problem(name, factors, l2)
    n = S.X.shape[0]
    u, i = S.X[:, samples.USER], S.X[:, samples.ITEM]
    assert len(np.unique(u[:batch])) < batch and len(np.unique(i[:batch])) < batch
    n_batches = -(-n // batch)
    P = model._params()
    per_sample = bool(l2)
    # the general path on the arena
    general = tables.arena
    Og, cfg = _state(general, M, V, opt, batch, n_batches)
    R, K = buffers(tables, np.zeros(0), G2_OCCURRENCES if occ else G2_SUM, per_sample)
    ws = np.zeros(model.design_.workspace(batch))
    # the packed path on a copy
    fused = general._replace(W=general.W.copy())
    Of, _ = _state(fused, M, V, opt, batch, n_batches)
    PK = packed.packed_rows(tables, batch, occ, per_sample)
    assert PK.mode.narrow == (factors + 1 <= ALIGN)  # both the narrow and the wide layout
    packed.pack(fused, Of.M, Of.V, PK)
    for b in range(n_batches):
        before = general.W.copy()
        loss_g, seen_g, ok_g = loop.run_batches(model.kernel_family, general, P, S, R, K,
                                                Og, cfg, b, b + 1, ws, 0.0)
        loss_f, seen_f, ok_f = packed.adam_batches(model.kernel_family, P, S, PK, Of, cfg, b,
                                                   b + 1, ws, 0.0)
        assert (seen_f, ok_f) == (seen_g, ok_g)
        assert loss_f == pytest.approx(loss_g, rel=1e-12), b
        packed.unpack(PK, fused, Of.M, Of.V)
        np.testing.assert_allclose(fused.W, general.W, rtol=1e-10, atol=1e-13, err_msg=str(b))
        np.testing.assert_allclose(Of.M, Og.M, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(Of.V, Og.V, rtol=1e-10, atol=1e-16)
        np.testing.assert_array_equal(Of.last, Og.last)
        assert Of.step[0] == Og.step[0] == b + 1
        assert not np.array_equal(general.W, before)
    if opt == registry.ADAM:  # the end-of-epoch catch-up of rows the last batches missed
        for O, T in ((Og, general), (Of, fused)):
            optim.catch_up_all(T, O, cfg, int(O.step[0]))
        np.testing.assert_allclose(fused.W, general.W, rtol=1e-10, atol=1e-13)


def test_packed_rows_hold_the_tables_and_give_them_back():
    model, tables, _, M, V = _problem("mfb", 20, 0.05)
    T = tables.arena
    for occ in (False, True):
        PK = packed.packed_rows(tables, 8, occ, True)
        assert PK.A.ctypes.data % 64 == 0 and PK.A.shape[1] % ALIGN == 0
        assert PK.A.shape[0] == T.rows[0] + T.rows[1] == PK.first_item + T.rows[1]
        packed.pack(T, M, V, PK)
        W2, M2, V2 = np.zeros_like(T.W), np.zeros_like(M), np.zeros_like(V)
        packed.unpack(PK, T._replace(W=W2), M2, V2)
        np.testing.assert_array_equal(W2, T.W)
        np.testing.assert_array_equal(M2, M)
        np.testing.assert_array_equal(V2, V)


def _fit(name, train, val, **kw):
    model = create_model(name, factors=kw.pop("factors", 8), seed=3, **kw.pop("model", {}))
    return model, model.fit(train, val, epochs=2, verbose=0, **kw)


@pytest.mark.parametrize("name,optimizer,extra", [
    ("mfb", "sparse-adam", {}),
    ("mfbs", "adam", {}),
    ("mf", "adam", {"keras_moments": False}),
    ("mfb", "sparse-adam", {"model": {"l2": 0.02, "l2_mode": "per-sample"}, "factors": 20}),
    ("mfb", "adam", {"progress": True}),  # batches in chunks, as with a progress bar
])
def test_a_fit_on_packed_rows_ends_where_the_general_path_does(ml100k_split, monkeypatch,
                                                                name, optimizer, extra):
    """Whole fits in float32, packed path against the general one: the same histories to
    float32 rounding (the packed gradient is summed in the tables' dtype), and the
    packed path was the one taken."""
    train, val = ml100k_split
    taken = []
    real = packed.adam_batches
    with monkeypatch.context() as mp:
        mp.setattr(packed, "adam_batches", lambda *a: taken.append(1) or real(*a))
        m_fused, h_fused = _fit(name, train, val, optimizer=optimizer, **dict(extra))
    assert taken
    with monkeypatch.context() as mp:
        mp.setattr(dispatch, "has_fused_adam", lambda _name: False)
        m_gen, h_gen = _fit(name, train, val, optimizer=optimizer, **dict(extra))
    np.testing.assert_allclose(h_fused.loss, h_gen.loss, rtol=1e-5)
    np.testing.assert_allclose(h_fused.val_mse, h_gen.val_mse, rtol=1e-5)
    np.testing.assert_allclose(m_fused.tables_.arena.W, m_gen.tables_.arena.W, rtol=1e-3,
                               atol=1e-5)
    state_f, state_g = m_fused.optimizer_state_, m_gen.optimizer_state_
    assert state_f.step == state_g.step
    np.testing.assert_array_equal(state_f.last, state_g.last)

