"""Splits: the reference random split on real u.data, k-fold, per-user hold-out, temporal."""
from __future__ import annotations

import numpy as np
import pytest

from mfcore.data import (Ratings, kfold_split, per_user_holdout_split, random_split,
                         synthetic_ratings, temporal_split)
from mfcore.errors import DataError


def _rows(part: Ratings, whole: Ratings):
    """Row numbers of ``part`` in ``whole`` (rows are unique (user, item, time) here)."""
    key = lambda r: (r.users.astype(np.int64) * r.n_items + r.items) * 2**31 + r.timestamps  # noqa: E731
    pos = {k: i for i, k in enumerate(key(whole).tolist())}
    return np.array([pos[k] for k in key(part).tolist()], dtype=np.int64)


@pytest.fixture(scope="module")
def small():
    return synthetic_ratings(4000, n_users=120, n_items=90, seed=11)


def test_random_split_is_exactly_the_reference_split(ml100k):
    train, val = random_split(ml100k, train_fraction=0.8, seed=0)
    assert (len(train), len(val)) == (80_184, 19_816)
    mask = np.random.default_rng(0).random(100_000) < 0.8
    np.testing.assert_array_equal(train.ratings, ml100k.ratings[mask])
    np.testing.assert_array_equal(val.users, ml100k.users[~mask])
    # id maps are shared, so sizes are those of the whole set
    assert train.user_ids is ml100k.user_ids and val.item_ids is ml100k.item_ids
    assert (train.n_users, train.n_items, val.n_items) == (943, 1682, 1682)


def test_random_split_seeds(small):
    a, _ = random_split(small, 0.8, seed=1)
    b, _ = random_split(small, 0.8, seed=1)
    c, _ = random_split(small, 0.8, seed=2)
    np.testing.assert_array_equal(a.items, b.items)
    assert not np.array_equal(_rows(a, small)[:50], _rows(c, small)[:50])
    with pytest.raises(DataError):
        random_split(small, 1.5)


def test_kfold_covers_every_row_once(small):
    seen = np.zeros(len(small), dtype=np.int64)
    folds = list(kfold_split(small, k=5, seed=3))
    assert len(folds) == 5
    for train, test in folds:
        assert len(train) + len(test) == len(small)
        assert abs(len(test) - len(small) / 5) <= 1
        rows = _rows(test, small)
        seen[rows] += 1
        assert np.all(np.diff(rows) > 0)  # file order kept
        assert train.user_ids is small.user_ids
    assert np.all(seen == 1)
    again = [len(t) for _, t in kfold_split(small, k=5, seed=3)]
    assert again == [len(t) for _, t in folds]
    with pytest.raises(DataError):
        list(kfold_split(small, k=1))


def test_per_user_holdout(small):
    train, test = per_user_holdout_split(small, fraction=0.2, seed=0)
    assert len(train) + len(test) == len(small)
    counts = np.bincount(small.users, minlength=small.n_users)
    held = np.bincount(test.users, minlength=small.n_users)
    np.testing.assert_array_equal(held, np.minimum(np.floor(0.2 * counts + 0.5), counts - 1))
    assert set(np.unique(test.users)) <= set(np.unique(train.users))
    train_n, test_n = per_user_holdout_split(small, n=1, seed=0)
    assert np.all(np.bincount(test_n.users, minlength=small.n_users)[counts > 1] == 1)
    t2, _ = per_user_holdout_split(small, fraction=0.2, seed=0)
    np.testing.assert_array_equal(t2.items, train.items)
    # rows keep file order
    assert np.all(np.diff(_rows(test, small)) > 0)


def test_per_user_holdout_on_real_data(ml100k):
    train, test = per_user_holdout_split(ml100k, n=10, seed=0)
    assert len(test) == 943 * 10  # every ml-100k user has >= 20 ratings
    assert len(train) == 100_000 - 9430


def test_temporal_split_by_time_with_stable_ties():
    ts = np.array([5, 1, 3, 3, 3, 9, 0, 2, 7, 3], dtype=np.int64)
    r = Ratings.from_arrays(np.arange(10), np.arange(10), np.ones(10), ts)
    train, test = temporal_split(r, train_fraction=0.5)
    # order by time, ties in file order: 6(0) 1(1) 7(2) 2(3) 3(3) | 4(3) 9(3) 0(5) 8(7) 5(9)
    assert r.user_ids[train.users].tolist() == [1, 2, 3, 6, 7]
    assert r.user_ids[test.users].tolist() == [0, 4, 5, 8, 9]
    assert train.timestamps.max() <= test.timestamps.min()


def test_temporal_split_real_data(ml100k):
    train, test = temporal_split(ml100k, 0.8)
    assert (len(train), len(test)) == (80_000, 20_000)
    assert train.timestamps.max() <= test.timestamps.min()


def test_the_library_temporal_splits_refuse_ratings_without_time():
    """Every timestamp 0 (a DataFrame without a timestamp column): a temporal split would
    be file order under another name."""
    import pandas as pd

    from mfcore.data import from_dataframe, per_user_temporal_split
    r = from_dataframe(pd.DataFrame({"user": [1, 2, 3, 1], "item": [1, 2, 3, 2],
                                     "rating": [4.0, 3.0, 2.0, 5.0]}))
    for split in (lambda: temporal_split(r), lambda: per_user_temporal_split(r)):
        with pytest.raises(DataError, match="no timestamps .*split them at random instead"):
            split()
