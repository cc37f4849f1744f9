"""The time axis of the time-aware models, against values worked out by hand."""
import numpy as np
import pytest

from mfcore.features.time import SECONDS_PER_DAY, TimeAxis

T0 = 880_000_000 - 880_000_000 % SECONDS_PER_DAY  # a midnight (UTC)


def _axis(n_bins=4, beta=0.5):
    # user 0 rates on days 0, 2, 10; user 1 on days 3, 3, 9; user 2 has no ratings
    users = np.array([0, 0, 0, 1, 1, 1])
    days = np.array([0, 2, 10, 3, 3, 9])
    ts = T0 + days * SECONDS_PER_DAY + 3600  # an hour into the day
    return TimeAxis.fit(users, ts, 3, n_bins, beta), users, days


def test_fit_by_hand():
    ax, _, _ = _axis()
    assert ax.first_day == T0 // SECONDS_PER_DAY
    assert ax.n_days == 11
    np.testing.assert_allclose(ax.user_mean_day, [4.0, 5.0, 4.5])  # user 2: overall mean 27/6
    # the last day is each user's own, even when it is below the overall mean (user 1: 9 > 4.5,
    # user 0: 10); a user without ratings gets the rounded overall mean
    np.testing.assert_array_equal(ax.user_last_day, [10, 9, 4])
    np.testing.assert_array_equal(ax.user_first_day, [0, 3, 4])
    # (user, day) pairs, deduplicated: (0,0) (0,2) (0,10) (1,3) (1,9)
    k = ax.key_days
    np.testing.assert_array_equal(ax.user_day_keys, [0, 2, 10, k + 3, k + 9])


def test_last_day_below_the_overall_mean():
    # user 0 rated only on the first day, user 1 99 days later (overall mean day 74.25):
    # user 0's last day is day 0, not the overall mean
    ts = T0 + np.array([1, 100, 100, 100]) * SECONDS_PER_DAY
    ax = TimeAxis.fit(np.array([0, 1, 1, 1]), ts, 2)
    np.testing.assert_array_equal(ax.user_last_day, [0, 99])
    np.testing.assert_array_equal(ax.days(np.array([0, 1])), [0, 99])


def test_per_rating_values():
    ax, users, days = _axis()
    ts = T0 + days * SECONDS_PER_DAY + 3600
    d = ax.days(users, ts)
    np.testing.assert_array_equal(d, days)
    # 4 bins over 11 days: Bin(t) = t * 4 // 11
    np.testing.assert_array_equal(ax.bins(d), [0, 0, 3, 1, 1, 3])
    np.testing.assert_array_equal(ax.bins(np.array([-5, 50])), [0, 3])  # clipped
    # dev = sign(t - t_u) |t - t_u|^0.5
    want = np.sign(days - np.array([4, 4, 4, 5, 5, 5])) * np.abs(
        days - np.array([4, 4, 4, 5, 5, 5])) ** 0.5
    np.testing.assert_allclose(ax.dev(users, d), want, rtol=1e-6)
    rows = ax.user_day_rows(users, d)
    np.testing.assert_array_equal(rows, [0, 1, 2, 3, 3, 4])
    # a day the user never rated on, and days outside the span, have no row
    np.testing.assert_array_equal(ax.user_day_rows(np.array([0, 1, 1, 2]),
                                                   np.array([3, 10, -1, 4])), [-1, -1, -1, -1])
    np.testing.assert_array_equal(ax.clamp_to_user(np.array([0, 1, 1]), np.array([12, 1, 5])),
                                  [10, 3, 5])


def test_state_round_trip_and_refusals():
    ax, users, days = _axis()
    back = TimeAxis.from_state(ax.state(), 3)
    for key, value in ax.state().items():
        np.testing.assert_array_equal(getattr(back, key), value)
    with pytest.raises(ValueError):
        TimeAxis.from_state(ax.state(), 4)  # another number of users
    bad = ax.state()
    bad["user_day_keys"] = bad["user_day_keys"][::-1].copy()
    with pytest.raises(ValueError):
        TimeAxis.from_state(bad, 3)
    bad = ax.state()
    bad["user_first_day"] = bad["user_last_day"] + 1
    with pytest.raises(ValueError):
        TimeAxis.from_state(bad, 3)
