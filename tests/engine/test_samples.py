"""Packed per-rating records and the epoch shuffle: a deterministic, uniformly random
permutation that moves whole records."""
import numpy as np

from mfcore.engine.samples import (ITEM, RATING, USER, copy_into, empty_like, pack,
                                   shuffle_into)
from mfcore.kernels.rng import uniform


def _shuffle(n, seed, epoch):
    users = np.arange(n, dtype=np.int32)
    items = (np.arange(n, dtype=np.int32) * 7) % 1000
    y = np.arange(n, dtype=np.float32)
    S = pack(users, items, y)
    out = empty_like(S)
    shuffle_into(S.X, seed, epoch, out.X)
    return out.X[:, USER].copy(), out.X[:, ITEM].copy(), out.Xf[:, RATING].copy()


def test_records_hold_ints_floats_and_context_in_one_row():
    S = pack(np.array([3, 1]), np.array([7, 2]), np.array([4.5, 1.0], np.float32),
             context=[np.array([11, 12]), np.array([0.25, -2.0], np.float32)])
    assert S.X.shape == (2, 5) and S.X.dtype == np.int32
    np.testing.assert_array_equal(S.X[:, USER], [3, 1])
    np.testing.assert_array_equal(S.Xf[:, RATING], [4.5, 1.0])
    np.testing.assert_array_equal(S.X[:, 3], [11, 12])
    np.testing.assert_array_equal(S.Xf[:, 4], [0.25, -2.0])
    out = empty_like(S)
    copy_into(S.X, out.X)
    np.testing.assert_array_equal(out.X, S.X)
    shuffle_into(S.X, 0, 0, out.X)
    row_of_user_1 = int(np.flatnonzero(out.X[:, USER] == 1)[0])
    assert out.X[row_of_user_1, 3] == 12 and out.Xf[row_of_user_1, 4] == -2.0


def test_permutation_keeps_rows_together_and_is_deterministic():
    u, i, y = _shuffle(100_000, seed=3, epoch=0)
    assert sorted(u) == list(range(100_000))
    np.testing.assert_array_equal(i, (u * 7) % 1000)  # each row moved as a whole
    np.testing.assert_array_equal(y, u.astype(np.float32))
    np.testing.assert_array_equal(_shuffle(100_000, 3, 0)[0], u)
    assert not np.array_equal(_shuffle(100_000, 3, 1)[0], u)
    assert not np.array_equal(_shuffle(100_000, 4, 0)[0], u)


def test_positions_are_uniform():
    """Chi-square test of where each of n=8 items lands over many shuffles (every
    position equally likely), and pairwise order of two items (a half each way)."""
    n, trials = 8, 4000
    counts = np.zeros((n, n))
    first_before = 0
    for t in range(trials):
        u = _shuffle(n, seed=11, epoch=t)[0]
        counts[u, np.arange(n)] += 1
        first_before += int(np.flatnonzero(u == 0)[0] < np.flatnonzero(u == 1)[0])
    expected = trials / n
    chi2 = ((counts - expected) ** 2 / expected).sum()
    # 49 degrees of freedom: the 0.999 quantile is about 85
    assert chi2 < 85, chi2
    assert abs(first_before / trials - 0.5) < 0.04


def test_large_shuffle_mixes_the_whole_range():
    n = 12_800
    u = _shuffle(n, seed=0, epoch=0)[0]
    # the first tenth of the output holds samples from everywhere in the input
    head = np.sort(u[: n // 10])
    assert head[0] < n // 20 and head[-1] > n - n // 20


def test_counter_based_uniform_is_reproducible_and_in_range():
    vals = np.array([uniform(5, 1, 2, j) for j in range(2000)])
    assert vals.min() >= 0 and vals.max() < 1 and abs(vals.mean() - 0.5) < 0.03
    assert uniform(5, 1, 2, 3) == uniform(5, 1, 2, 3) != uniform(5, 1, 2, 4)
