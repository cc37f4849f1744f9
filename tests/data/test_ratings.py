"""The Ratings container: id maps, subsets sharing them, lookups, summaries."""
from __future__ import annotations

import numpy as np
import pytest

from mfcore.data import Ratings
from mfcore.errors import DataError


def test_from_arrays_maps_raw_ids_to_sorted_dense_indices():
    r = Ratings.from_arrays([30, 10, 30, 20], [7, 7, 5, 9], [4, 3, 5, 1], [1, 2, 3, 4])
    assert r.user_ids.tolist() == [10, 20, 30] and r.item_ids.tolist() == [5, 7, 9]
    assert r.users.tolist() == [2, 0, 2, 1] and r.items.tolist() == [1, 1, 0, 2]
    assert r.users.dtype == np.int32 and r.ratings.dtype == np.float32
    assert r.timestamps.dtype == np.int64
    assert (len(r), r.n_users, r.n_items) == (4, 3, 3)
    assert r.user_ids[r.users].tolist() == [30, 10, 30, 20]


def test_subset_shares_id_maps(ml100k):
    part = ml100k.subset(np.arange(10))
    assert len(part) == 10 and part.user_ids is ml100k.user_ids
    assert part.n_users == ml100k.n_users and part.n_items == ml100k.n_items
    mask = ml100k.ratings == 5
    fives = ml100k.subset(mask)
    assert len(fives) == int(mask.sum()) and np.all(fives.ratings == 5)


def test_lookups_and_unknown_ids(ml100k):
    assert ml100k.user_index(1) == 0 and ml100k.item_index([1, 1682]).tolist() == [0, 1681]
    with pytest.raises(DataError) as err:
        ml100k.user_index([5000, 6000, 1])
    assert str(err.value) == "unknown user id 5000 (2 unknown in all)"  # no np.int64(...)
    assert ml100k.item_index([99999, 2], missing=-1).tolist() == [-1, 1]


def test_fixed_index_space_and_bad_input():
    r = Ratings.from_arrays([2], [1], [3.0], user_ids=np.array([1, 2, 3]),
                            item_ids=np.array([1, 2]))
    assert r.users.tolist() == [1] and r.n_users == 3 and r.n_items == 2
    with pytest.raises(DataError):
        Ratings.from_arrays([9], [1], [3.0], user_ids=np.array([1, 2]))
    with pytest.raises(DataError, match="finite"):
        Ratings.from_arrays([1], [1], [np.nan])
    with pytest.raises(DataError):
        Ratings.from_arrays([1, 2], [1], [3.0, 4.0])


def test_describe_and_dataframe(ml100k):
    d = ml100k.describe()
    assert d["ratings"] == 100_000 and d["users"] == 943 and d["items"] == 1682
    assert d["rating_min"] == 1.0 and d["rating_max"] == 5.0
    assert abs(d["rating_mean"] - 3.52986) < 1e-4
    assert abs(d["density"] - 100_000 / (943 * 1682)) < 1e-12
    df = ml100k.to_dataframe()
    assert list(df.columns) == ["user", "item", "rating", "timestamp"]
    assert df.iloc[0].tolist() == [196, 242, 3.0, 881250949]
    empty = ml100k.subset(np.zeros(len(ml100k), dtype=bool)).describe()
    assert empty["ratings"] == 0 and empty["time_min"] is None
    assert "n=100000" in repr(ml100k)


def test_ids_in_messages_are_plain_values():
    from mfcore.data.ratings import format_id
    assert format_id(np.int64(99999)) == "99999" and format_id(np.str_("abc")) == "'abc'"
    assert format_id(np.float64(2.5)) == "2.5" and format_id(b"x") == "'x'"
    # an id pasted by mistake is cut short, with its length, not echoed whole
    assert format_id("7" * 10_000) == "'" + "7" * 39 + "... (10,000 characters)"
    assert format_id(10 ** 100).endswith("... (101 characters)")
    r = Ratings.from_arrays(["a", "b"], ["x", "y"], [3.0, 4.0])
    with pytest.raises(DataError) as err:
        r.user_index(["zz"])
    assert str(err.value) == "unknown user id 'zz' (1 unknown in all)"
