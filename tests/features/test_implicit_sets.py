"""Implicit-feedback sets N(u) and N(i), by hand."""
import numpy as np

from mfcore.data.ratings import Ratings
from mfcore.features.implicit import csr, implicit_sets


def _ratings(users, items):
    n = len(users)
    return Ratings(np.asarray(users, np.int32), np.asarray(items, np.int32),
                   np.ones(n, np.float32), np.zeros(n, np.int64), np.arange(3), np.arange(4))


def test_csr_deduplicates_and_sorts():
    ptr, idx = csr([2, 0, 0, 2, 0], [1, 3, 0, 1, 3], 3)
    np.testing.assert_array_equal(ptr, [0, 2, 2, 3])
    np.testing.assert_array_equal(idx, [0, 3, 1])


def test_sets_from_training_pairs_only_by_default():
    train = _ratings([0, 0, 1], [0, 2, 2])
    test = _ratings([1, 2], [3, 0])
    s = implicit_sets(train)
    np.testing.assert_array_equal(s["user_ptr"], [0, 2, 3, 3])
    np.testing.assert_array_equal(s["user_items"], [0, 2, 2])
    assert "item_ptr" not in s
    s = implicit_sets(train, test, flipped=True)  # implicit="all": the test pairs count too
    np.testing.assert_array_equal(s["user_ptr"], [0, 2, 4, 5])
    np.testing.assert_array_equal(s["user_items"], [0, 2, 2, 3, 0])
    np.testing.assert_array_equal(s["item_ptr"], [0, 2, 2, 4, 5])
    np.testing.assert_array_equal(s["item_users"], [0, 2, 0, 1, 1])
