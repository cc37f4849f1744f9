"""The memory check of ``fit`` and the seed range (issue 12, class 5), in the library."""
import tracemalloc

import numpy as np
import pytest

import mfcore
from mfcore.bounds import SEED_LIMIT
from mfcore.data import random_split, synthetic_ratings
from mfcore.engine import memory
from mfcore.errors import DataError, MemoryLimitError, ModelError


@pytest.fixture(scope="module")
def data():
    ratings = synthetic_ratings(n_ratings=20_000, n_users=300, n_items=200, seed=1)
    return random_split(ratings, 0.8, seed=0)


def test_sizes_parse_and_print():
    assert memory.parse_bytes("2GiB") == 2 << 30
    assert memory.parse_bytes("500 MB") == 500 * 10 ** 6
    assert memory.parse_bytes("1048576") == 1 << 20
    for bad in ("lots", "", "-1GB", "inf", "nan", "2 parsecs"):
        with pytest.raises(ValueError):
            memory.parse_bytes(bad)
    assert memory.format_bytes(512) == "512 B"
    assert memory.format_bytes(3 << 20) == "3 MiB"
    assert memory.format_bytes(872 << 30) == "872 GiB"


def test_fit_refuses_before_allocating_and_leaves_the_model_unfitted(data, monkeypatch):
    monkeypatch.setenv(memory.MEMORY_LIMIT_ENV, "8MiB")
    model = mfcore.MFB(factors=2000, seed=0)
    tracemalloc.start()
    try:
        with pytest.raises(MemoryLimitError) as info:
            model.fit(*data, epochs=1, verbose=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    msg = str(info.value)
    assert msg.startswith("training mfb with these settings needs ") and "\n" not in msg
    assert "the limit is 8 MiB" in msg and "tables" in msg
    assert isinstance(info.value, MemoryError)  # code catching MemoryError still works
    assert peak < 8 << 20  # refused before the 2000-factor tables existed
    assert getattr(model, "tables_", None) is None


def test_a_warm_restart_refused_for_memory_changes_nothing(data, monkeypatch):
    model = mfcore.MFB(factors=50, seed=0)
    model.fit(*data, epochs=1, verbose=0)
    W = model.tables_.arena.W.copy()
    monkeypatch.setenv(memory.MEMORY_LIMIT_ENV, "100KiB")
    with pytest.raises(MemoryLimitError):
        model.fit(*data, epochs=1, verbose=0)
    np.testing.assert_array_equal(model.tables_.arena.W, W)
    assert model.epochs_trained_ == 1


@pytest.mark.parametrize("name,params,fit", [
    ("mfb", dict(factors=64), dict(optimizer="adam")),
    ("mfb", dict(factors=64), dict(optimizer="sgd", batch_size=1)),
    ("nn", dict(factors=16, hidden=(64, 32)), dict(optimizer="adam", batch_size=256)),
    ("svdpp", dict(factors=32), {}),
])
def test_the_estimate_covers_what_fit_allocates(name, params, fit, data):
    """An independent measure: NumPy reports its allocations to tracemalloc. The estimate
    must be at least the peak a fit allocates, and not wildly more."""
    train, val = data
    seen = {}
    real_check = memory.check_fits

    def spy(parts, what="the model"):
        seen["estimate"] = sum(parts.values())
        return real_check(parts, what)

    mp = pytest.MonkeyPatch()
    mp.setattr(memory, "check_fits", spy)
    model = mfcore.create_model(name, seed=0, **params)
    model.fit(train, val, epochs=1, verbose=0, **fit)  # compile first: numba allocates too
    model = mfcore.create_model(name, seed=0, **params)
    tracemalloc.start()
    try:
        model.fit(train, val, epochs=2, verbose=0, **fit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        mp.undo()
    assert peak <= seen["estimate"], (peak, seen["estimate"])
    assert seen["estimate"] < 6 * peak + (4 << 20), (peak, seen["estimate"])


def test_wide_layers_predict_in_smaller_chunks_with_the_same_numbers(data, monkeypatch):
    from mfcore.models import base
    model = mfcore.NN(factors=4, hidden=(512,), seed=0)
    model.fit(*data, epochs=1, verbose=0)
    users, items = data[1].users, data[1].items
    full = model.predict(model.user_ids_[users], model.item_ids_[items], unknown="nan")
    assert model._prediction_chunk(len(users)) == len(users)
    monkeypatch.setattr(base, "PREDICT_WORKSPACE_BYTES", 64 << 10)
    assert model._prediction_chunk(len(users)) < 100
    small = model.predict(model.user_ids_[users], model.item_ids_[items], unknown="nan")
    np.testing.assert_array_equal(full, small)


# ---- seeds: 0 <= seed < 2**63 everywhere a seed is taken ---------------------------------
@pytest.mark.parametrize("seed", [-1, SEED_LIMIT, 2 ** 64, 1.5, "3", True, None])
def test_bad_seeds_are_refused_everywhere(seed, data):
    train, val = data
    with pytest.raises(ModelError, match=r"seed must be an integer in \[0, 2\*\*63\)"):
        mfcore.MFB(seed=seed).fit(train, val, epochs=1, verbose=0)
    if seed is not None:
        with pytest.raises(ModelError, match="seed"):
            mfcore.MFB(seed=0).fit(train, val, epochs=1, seed=seed, verbose=0)
    with pytest.raises(ModelError, match="seed"):
        mfcore.MFB().set_params(seed=seed)
    with pytest.raises(DataError, match="seed"):
        random_split(train, 0.8, seed=seed)
    with pytest.raises(DataError, match="seed"):
        next(mfcore.kfold_split(train, 3, seed=seed))
    with pytest.raises(DataError, match="seed"):
        mfcore.per_user_holdout_split(train, 0.2, seed=seed)
    with pytest.raises(DataError, match="seed"):
        synthetic_ratings(n_ratings=100, n_users=10, n_items=20, seed=seed)


@pytest.mark.parametrize("optimizer,batch", [("sgd", 1), ("adam", 64)])
def test_the_largest_seed_trains_deterministically(optimizer, batch, data):
    train, val = data
    top = SEED_LIMIT - 1
    a = mfcore.MFB(factors=4, seed=top).fit(train, val, epochs=2, optimizer=optimizer,
                                            batch_size=batch, verbose=0)
    b = mfcore.MFB(factors=4, seed=top).fit(train, val, epochs=2, optimizer=optimizer,
                                            batch_size=batch, verbose=0)
    assert a.val_mse == b.val_mse and np.isfinite(a.val_mse).all()
    t1, _ = random_split(train, 0.5, seed=top)
    t2, _ = random_split(train, 0.5, seed=np.uint64(top))
    assert len(t1) == len(t2)
