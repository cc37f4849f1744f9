"""Koren's models (svdpp, timesvd, timesvdpp, --flipped) on the real ml-100k folds:
what they may read, their switches, persistence and the timestamp of a prediction.
(Gradients: tests/kernels/test_gradcheck.py; fused SGD: tests/kernels/test_fused_sgd.py.)"""
import numpy as np
import pytest

from mfcore.data import grouplens_fold
from mfcore.data.ratings import Ratings
from mfcore.errors import ModelError
from mfcore.features.implicit import csr
from mfcore.features.time import SECONDS_PER_DAY
from mfcore.models import create_model, load_model
from mfcore.models.timesvdpp import TIME_TERMS


@pytest.fixture(scope="module")
def u1(ml100k):
    return grouplens_fold(ml100k, "u1")


def _weights(model):
    return model.tables_.arena.W.copy()


def _other_test_set(test, seed=1):
    """The same number of validation ratings, with other items, users' other days and
    other ratings: anything a model may not read."""
    rng = np.random.default_rng(seed)
    n = len(test)
    return Ratings(rng.permutation(test.users), rng.integers(0, test.n_items, n).astype(np.int32),
                   rng.integers(1, 6, n).astype(np.float32),
                   test.timestamps + rng.integers(-200, 400, n) * SECONDS_PER_DAY,
                   test.user_ids, test.item_ids, test.titles, "other")


@pytest.mark.parametrize("name", ["svdpp", "timesvdpp"])
def test_implicit_train_never_reads_a_test_pair(u1, name):
    train, test = u1
    fit = dict(epochs=2, verbose=0)
    a = create_model(name, factors=8, flipped=True)
    ha = a.fit(train, validation=test, **fit)
    b = create_model(name, factors=8, flipped=True)
    hb = b.fit(train, validation=_other_test_set(test), **fit)
    # the validation pairs change neither N(u), N(i), the time axis nor a single weight
    np.testing.assert_array_equal(_weights(a), _weights(b))
    assert ha.loss == hb.loss
    ptr, idx = csr(train.users, train.items, train.n_users)
    np.testing.assert_array_equal(a.implicit_sets_["user_ptr"], ptr)
    np.testing.assert_array_equal(a.implicit_sets_["user_items"], idx)
    ptr, idx = csr(train.items, train.users, train.n_items)
    np.testing.assert_array_equal(a.implicit_sets_["item_users"], idx)
    # implicit="all" does read them (the Netflix-prize setting)
    c = create_model(name, factors=8, flipped=True, implicit="all")
    c.fit(train, validation=test, **fit)
    both = np.concatenate([train.users, test.users]), np.concatenate([train.items, test.items])
    ptr, idx = csr(*both, train.n_users)
    np.testing.assert_array_equal(c.implicit_sets_["user_items"], idx)
    assert not np.array_equal(_weights(a), _weights(c))


def test_timesvdpp_without_time_terms_is_svdpp(u1):
    train, test = u1
    a = create_model("svdpp", factors=6)
    ha = a.fit(train, validation=test, epochs=2, verbose=0)
    b = create_model("timesvdpp", factors=6, without=TIME_TERMS)
    hb = b.fit(train, validation=test, epochs=2, verbose=0)
    assert ha.loss == hb.loss and ha.val_mse == hb.val_mse
    np.testing.assert_array_equal(a.predict(test.users, test.items, ids="index", unknown="mean"),
                                  b.predict(test.users, test.items, timestamps=test.timestamps,
                                            ids="index", unknown="mean"))


def test_every_time_term_is_wired(u1):
    train, test = u1
    sub = train.subset(np.arange(0, len(train), 4))
    ref = create_model("timesvd", factors=4)
    ref.fit(sub, epochs=2, verbose=0)
    p_ref = ref.predict(test.users, test.items, timestamps=test.timestamps, ids="index", unknown="mean")
    for term in TIME_TERMS:
        m = create_model("timesvd", factors=4, without=(term,))
        m.fit(sub, epochs=2, verbose=0)
        p = m.predict(test.users, test.items, timestamps=test.timestamps, ids="index", unknown="mean")
        assert np.abs(p - p_ref).max() > 1e-4, term


def test_time_models_need_timestamps(u1):
    train, _ = u1
    flat = Ratings(train.users, train.items, train.ratings, np.zeros(len(train), np.int64),
                   train.user_ids, train.item_ids)
    with pytest.raises(ModelError, match="needs timestamps"):
        create_model("timesvd", factors=4).fit(flat, epochs=1, verbose=0)
    create_model("svdpp", factors=4).fit(flat, epochs=1, verbose=0)  # no time terms: fine


@pytest.mark.parametrize("name,params", [("svdpp", {"flipped": True}),
                                         ("timesvdpp", {"flipped": True}),
                                         ("timesvd", {"without": ("scale",), "bins": 7})])
def test_save_load_keeps_the_context(u1, tmp_path, name, params):
    train, test = u1
    m = create_model(name, factors=5, **params)
    m.fit(train, validation=test, epochs=2, verbose=0)
    path = m.save(tmp_path / "m.npz")
    back = load_model(path)
    assert back.get_params() == m.get_params()
    for ts in (test.timestamps, None):
        np.testing.assert_array_equal(
            m.predict(test.users, test.items, timestamps=ts, ids="index", unknown="mean"),
            back.predict(test.users, test.items, timestamps=ts, ids="index", unknown="mean"))
    assert back.evaluate(test)["mse"] == pytest.approx(m.history_.val_mse[-1], rel=1e-6)


def test_default_timestamp_is_the_users_last_training_day(u1):
    train, test = u1
    m = create_model("timesvdpp", factors=4)
    m.fit(train, epochs=1, verbose=0)
    ax = m.time_axis_
    users = test.users[:500]
    items = test.items[:500]
    last_ts = np.zeros(train.n_users, np.int64)
    np.maximum.at(last_ts, train.users, train.timestamps)
    assert np.array_equal(last_ts[users] // SECONDS_PER_DAY - ax.first_day,
                          ax.user_last_day[users])
    kw = dict(ids="index", unknown="mean")
    np.testing.assert_array_equal(m.predict(users, items, **kw),
                                  m.predict(users, items, timestamps=last_ts[users], **kw))
    # and another time gives other predictions (the terms do depend on it)
    other = m.predict(users, items, timestamps=last_ts[users] - 40 * SECONDS_PER_DAY,
                      ids="index", unknown="mean")
    assert np.abs(other - m.predict(users, items, ids="index", unknown="mean")).max() > 1e-4


@pytest.mark.parametrize("params,match", [
    ({"bins": 0}, "bins must be an integer from 1"),
    ({"bins": 2 ** 40}, "bins must be an integer from 1"),
    ({"bins": True}, "bins must be an integer from 1"),
    ({"beta": 100.0}, "beta must be a number from 0 to 4"),
    ({"beta": float("nan")}, "beta must be a non-negative number"),
    ({"factors": 2 ** 40}, "factors must be an integer from 1"),
])
def test_time_parameters_are_bounded(params, match):
    with pytest.raises(ModelError, match=match):
        create_model("timesvdpp", **params)._check()


def test_nn_time_bins_are_bounded():
    with pytest.raises(ModelError, match="time_bins must be an integer from 1"):
        create_model("nn", time_features=True, time_bins=2 ** 40)._check()


@pytest.mark.parametrize("flipped", [False, True])
def test_chunked_predictions_equal_the_formula(u1, flipped):
    """predict() keeps each user's (and item's) implicit sum once computed: its output
    must equal SVD++'s formula evaluated from the tables with NumPy, for every pair."""
    train, test = u1
    model = create_model("svdpp", factors=4, flipped=flipped, clip=False, seed=3)
    model.fit(train, epochs=1, verbose=0)
    tabs = model.tables_
    U, I, Y = tabs.view("users"), tabs.view("items"), tabs.view("implicit")
    k = 4
    sets = model.implicit_sets_
    pu = U[:, :k].astype(np.float64).copy()
    for u in range(train.n_users):
        items = sets["user_items"][sets["user_ptr"][u]:sets["user_ptr"][u + 1]]
        if len(items):
            pu[u] += Y[items].astype(np.float64).sum(0) / np.sqrt(len(items))
    qi = I[:, :k].astype(np.float64).copy()
    if flipped:
        Z = tabs.view("implicit_users")
        for i in range(train.n_items):
            users = sets["item_users"][sets["item_ptr"][i]:sets["item_ptr"][i + 1]]
            if len(users):
                qi[i] += Z[users].astype(np.float64).sum(0) / np.sqrt(len(users))
    seen = np.zeros(train.n_items, bool)
    seen[train.items] = True
    keep = seen[test.items]
    u, i = test.users[keep], test.items[keep]
    expected = (model.global_mean_ + U[u, k] + I[i, k]
                + np.einsum("nk,nk->n", pu[u], qi[i]))
    got = model.predict(test.user_ids[u], test.item_ids[i])
    np.testing.assert_allclose(got, expected, rtol=2e-5, atol=2e-5)
