"""The fused per-sample SGD kernels and the grid of blocks, held to the general path.

The general path (engine.loop.run_batches with batch size 1: kernel gradients, emit(),
per-sample L2, the SGD row step) is itself checked against finite differences; the fused
kernels must agree with it step by step, so any change to their update fails here."""
import numpy as np
import pytest

from mfcore import registry
from mfcore.data.ratings import Ratings
from mfcore.engine import loop, optim, samples, sgd
from mfcore.engine.contract import G2_NONE, buffers
from mfcore.kernels import dispatch
from mfcore.models import MODELS, create_model

FUSED = [name for name, cls in MODELS.items() if dispatch.has_fused_sgd(cls.kernel)]
CONFIGS = [(name, params) for name in FUSED for params in MODELS[name].gradcheck_configs()
           # Keras' L2 runs the general path, never the fused kernel
           if params.get("l2_mode") != "keras"]
CONFIGS += [("timesvdpp", {"factors": 3, "bins": 4, "l2": 0.05, "l2_bias": 0.02,
                           "l2_time": 0.1, "l2_scale": 0.2, "lr_drift": 0.3, "lr_time": 0.7}),
            ("svdpp", {"factors": 3, "l2": 0.05, "l2_bias": 0.02})]


def _problem(name, params, n=40, seed=0):
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 7, n)
    items = rng.integers(0, 6, n)
    y = rng.integers(1, 6, n).astype(np.float32)
    ts = (rng.integers(0, 60, n) * 86400 + 880_000_000).astype(np.int64)
    data = Ratings(users.astype(np.int32), items.astype(np.int32), y, ts,
                   np.arange(7), np.arange(6))
    model = create_model(name, **params)
    model._prepare(data)
    tables = model.tables_.with_dtype(np.float64)
    W = tables.arena.W
    W[:] = rng.normal(0, 0.5, tables.size)
    S = model._encode(data.users, data.items, data.ratings, data.timestamps)
    order = np.argsort(S.X[:, samples.USER], kind="stable")  # user runs, for every order
    X = np.ascontiguousarray(S.X[order])
    return model, tables, samples.Samples(X, X.view(np.float32))


def _steps(model, S):
    """The fused kernel's calls: one record each on the grid order, one user's run each
    on the user-run order."""
    if model.design_.sgd_order == "user":
        u = S.X[:, samples.USER]
        cuts = np.flatnonzero(np.diff(u)) + 1
        return list(zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [len(u)]])))
    return [(j, j + 1) for j in range(S.X.shape[0])]


def _general_step(model, tables, T, S, j, lr):
    n_rows = int(T.rows.sum())
    P = model._params()
    R, K = buffers(tables, np.zeros(P.theta.size), G2_NONE, bool(np.any(T.l2s > 0)))
    O = optim.OptArrays(np.zeros_like(T.W), np.zeros_like(T.W), np.zeros(n_rows, np.int64),
                        np.zeros(0), np.zeros(0), np.array([j], np.int64),
                        np.zeros(T.off.size, np.int64), np.zeros((6, 1)), np.zeros(6))
    cfg = optim.OptConfig(registry.SGD, lr, 0.9, 0.999, 1e-7, 0, 1, 0)
    loss, _, _ = loop.run_batches(model.kernel_family, T, P, S, R, K, O, cfg, j, j + 1,
                                  np.zeros(model.design_.workspace(1)), 0.0)
    return loss


@pytest.mark.parametrize("name,params", CONFIGS)
def test_fused_kernel_agrees_with_the_general_path_step_by_step(name, params):
    model, tables, S = _problem(name, params)
    fused = tables.arena
    general = fused._replace(W=fused.W.copy())
    module = dispatch.FAMILIES[model.kernel]
    lr = 0.01 if params.get("flipped") else 0.05  # flipped diverges at 0.05 from here
    for a, b in _steps(model, S):
        before = fused.W.copy()
        loss_f = module.sgd_block(fused, model._params(), S, a, b, lr,
                                  np.zeros(model.design_.workspace(1)), 1, 0)
        loss_g = sum(_general_step(model, tables, general, S, j, lr) for j in range(a, b))
        assert loss_f == pytest.approx(loss_g, rel=1e-10), (a, b)
        np.testing.assert_allclose(fused.W, general.W, rtol=1e-10, atol=1e-12,
                                   err_msg=str((a, b)))
        assert not np.array_equal(fused.W, before)  # every step moves something


@pytest.mark.parametrize("name,params", CONFIGS)
def test_one_call_over_many_records_agrees_with_the_general_path(name, params):
    """Over a whole range in one call (where the MF kernel takes two ratings at a time
    when they share no row, one at a time when they do: both occur here), the fused
    kernel ends where per-sample steps of the general path do."""
    model, tables, S = _problem(name, params, n=200)
    _one_call_agrees(model, tables, S)


@pytest.mark.parametrize("name,params", [c for c in CONFIGS if c[1].get("l2")])
def test_each_tables_own_l2_and_centre_reach_the_fused_kernel(name, params):
    """The fused kernels read each table's own L2 coefficients and centres: with the
    items' differing from the users', they still end where the general path does."""
    model, tables, S = _problem(name, params, n=200)
    T = tables.arena
    k = model.get_params()["factors"] or 3
    users, items = tables.index("users"), tables.index("items")
    T.l2s[T.coff[items]:T.coff[items] + k] *= 3.0
    T.center[T.coff[items]:T.coff[items] + k] = 0.1
    T.center[T.coff[users]:T.coff[users] + k] = -0.2
    _one_call_agrees(model, tables, S)


def _one_call_agrees(model, tables, S):
    fused = tables.arena
    general = fused._replace(W=fused.W.copy())
    module = dispatch.FAMILIES[model.kernel]
    u, i = S.X[:, samples.USER], S.X[:, samples.ITEM]
    shared = (u[1:] == u[:-1]) | (i[1:] == i[:-1])
    assert shared.any() and not shared.all()
    steps = (_steps(model, S) if model.design_.sgd_order == "user"
             else [(0, S.X.shape[0])])
    lr = 0.01  # 200 steps at 0.05 from these weights diverge for the scaled models
    for a, b in steps:
        loss_f = module.sgd_block(fused, model._params(), S, a, b, lr,
                                  np.zeros(model.design_.workspace(1)), 1, 0)
        loss_g = sum(_general_step(model, tables, general, S, j, lr) for j in range(a, b))
        assert loss_f == pytest.approx(loss_g, rel=1e-10)
    np.testing.assert_allclose(fused.W, general.W, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("name,params", [CONFIGS[0], CONFIGS[-2], CONFIGS[-1]])
def test_a_strided_order_trains_the_records_in_that_order(name, params):
    """A kernel given (stride, first) trains records start + (first + stride j) % m, bit
    for bit what the stored-order kernel does on the records put in that order, and moves
    no record."""
    model, tables, S = _problem(name, params)
    module = dispatch.FAMILIES[model.kernel]
    ws = np.zeros(model.design_.workspace(1))
    a, b = _steps(model, S)[0] if model.design_.sgd_order == "user" else (5, 37)
    m = b - a
    stride, first = sgd.affine_order(m, np.uint64(0x5EED))
    assert 1 <= stride < max(m, 2) and 0 <= first < m and np.gcd(stride, m) == 1
    order = a + (first + stride * np.arange(m)) % m
    X2 = S.X.copy()
    X2[a:b] = S.X[order]
    S2 = samples.Samples(X2, X2.view(np.float32))
    X0 = S.X.copy()
    strided, stored = tables.arena, tables.arena._replace(W=tables.arena.W.copy())
    loss_1 = module.sgd_block(strided, model._params(), S, a, b, 0.05, ws, stride, first)
    loss_2 = module.sgd_block(stored, model._params(), S2, a, b, 0.05, ws, 1, 0)
    assert loss_1 == loss_2
    np.testing.assert_array_equal(strided.W, stored.W)
    np.testing.assert_array_equal(S.X, X0)


def test_affine_orders_visit_every_record_once_and_vary():
    states = np.random.default_rng(0).integers(1, 2**63, 39)  # as block_state gives: mixed
    for m in list(range(1, 70)) + [2048, 2310, 4096, 65537]:
        seen = set()
        for s in states:
            stride, first = sgd.affine_order(m, np.uint64(s))
            visit = (first + stride * np.arange(m)) % m
            assert np.array_equal(np.sort(visit), np.arange(m)), (m, stride)
            seen.add((int(stride), int(first)))
        if m > 30:
            assert len(seen) > 20  # the draws differ from state to state
        elif m > 2:
            assert len(seen) > 1


@pytest.mark.parametrize("width", [3, 5])
def test_block_shuffle_is_a_permutation_of_the_range_only(width):
    rng = np.random.default_rng(0)
    X0 = rng.integers(0, 1000, (500, width)).astype(np.int32)
    S = samples.Samples(X0.copy(), None)
    samples.shuffle_range(S.X, 100, 400, np.uint64(7))
    np.testing.assert_array_equal(S.X[:100], X0[:100])  # outside the range: untouched
    np.testing.assert_array_equal(S.X[400:], X0[400:])
    moved = S.X[100:400]
    assert not np.array_equal(moved, X0[100:400])
    assert sorted(map(tuple, moved)) == sorted(map(tuple, X0[100:400]))  # a permutation


def test_grid_blocks_of_a_stratum_share_no_rows_and_cover_every_record(ml100k_split):
    train, _ = ml100k_split
    model = create_model("mfb", factors=4)
    model._prepare(train)
    S = model._encode_ratings(train)
    g = sgd.Grid(S, train.n_users, train.n_items, seed=0)
    assert g.B == sgd.grid_size(len(train), train.n_users, train.n_items) > 1
    assert g.ptr[-1] == len(train)
    E = g.E.X
    assert sorted(map(tuple, E)) == sorted(map(tuple, S.X))
    for a in range(g.B):
        for b in range(g.B):
            blk = E[g.ptr[a * g.B + b]:g.ptr[a * g.B + b + 1]]
            assert np.all(g.ub[blk[:, samples.USER]] == a)
            assert np.all(g.ib[blk[:, samples.ITEM]] == b)


def test_threads_give_bit_identical_numbers(ml100k_split):
    import numba
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one core")
    train, val = ml100k_split
    runs = []
    for threads in (1, 2, 2):
        m = create_model("mfb", factors=8, seed=4)
        h = m.fit(train, val, epochs=3, optimizer="sgd", batch_size=1, lr=0.01,
                  threads=threads, verbose=0)
        runs.append((h.loss, h.val_mse, m.tables_.arena.W.copy()))
    for other in runs[1:]:
        assert other[0] == runs[0][0] and other[1] == runs[0][1]
        np.testing.assert_array_equal(other[2], runs[0][2])


def test_threads_need_the_grid_path(ml100k_split):
    from mfcore.errors import ModelError
    train, _ = ml100k_split
    with pytest.raises(ModelError, match="threads > 1"):
        create_model("mfb").fit(train, epochs=1, optimizer="adam", threads=2, verbose=0)
    with pytest.raises(ModelError, match="threads must be"):
        create_model("mfb").fit(train, epochs=1, optimizer="sgd", batch_size=1, threads=0,
                                verbose=0)
