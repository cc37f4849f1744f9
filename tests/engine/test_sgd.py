"""Per-sample SGD on the grid of blocks: its order, its convergence, its options."""
import numpy as np
import pytest

import mfcore
from mfcore.engine import sgd


def test_grid_size_follows_the_data_not_the_threads():
    assert sgd.grid_size(80_000, 943, 1_682) == 6
    assert sgd.grid_size(800_018, 6_040, 3_706) == 20
    assert sgd.grid_size(80_000_000, 10**6, 10**5) == sgd.MAX_GRID
    assert sgd.grid_size(100, 3, 50) == 1  # tiny data: one block, a full shuffle
    assert sgd.grid_size(10**6, 2, 10**5) == 2  # never more blocks than users


def _final_rmse(train, val, shuffle, seed):
    m = mfcore.create_model("mfb", factors=10, seed=seed, l2=0.02, l2_mode="per-sample",
                            init="normal", init_scale=0.1)
    h = m.fit(train, val, epochs=20, optimizer="sgd", batch_size=1, lr=0.005,
              shuffle=shuffle, verbose=0)
    return np.array(h.val_rmse)


def test_block_order_converges_like_a_full_shuffle(ml100k_split):
    """20 epochs of per-sample SGD on ml-100k: the grid's block-wise order ends within
    0.002 RMSE of a uniformly random order of all ratings (mean of 4 seeds; one seed's
    own spread is larger, see benchmarks/shuffle_convergence.py)."""
    train, val = ml100k_split
    blocks = np.mean([_final_rmse(train, val, "epoch", s) for s in range(4)], axis=0)
    full = np.mean([_final_rmse(train, val, "full", s) for s in range(4)], axis=0)
    assert abs(blocks[-1] - full[-1]) <= 0.002, (blocks[-1], full[-1])
    assert blocks[-1] < 0.95 and full[-1] < 0.95  # both really trained


def test_every_epoch_draws_a_new_order_from_the_seed(ml100k_split):
    train, val = ml100k_split
    runs = [mfcore.create_model("mfb", factors=4, seed=s).fit(
        train, val, epochs=2, optimizer="sgd", batch_size=1, verbose=0).loss
        for s in (1, 1, 2)]
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_one_fit_of_two_epochs_equals_two_fits_of_one(ml100k_split):
    train, val = ml100k_split
    a = mfcore.create_model("mfb", factors=4, seed=3)
    a.fit(train, epochs=2, optimizer="sgd", batch_size=1, verbose=0)
    b = mfcore.create_model("mfb", factors=4, seed=3)
    b.fit(train, epochs=1, optimizer="sgd", batch_size=1, verbose=0)
    b.fit(train, epochs=1, optimizer="sgd", batch_size=1, verbose=0)
    np.testing.assert_array_equal(a.tables_.arena.W, b.tables_.arena.W)


@pytest.mark.parametrize("shuffle", ["once", "none", "full"])
def test_other_orders_run_the_same_kernel_on_one_thread(shuffle, ml100k_split):
    train, val = ml100k_split
    h = mfcore.create_model("mfb", factors=4, seed=0).fit(
        train, val, epochs=2, optimizer="sgd", batch_size=1, shuffle=shuffle, verbose=0)
    assert h.val_rmse[-1] < 1.1
