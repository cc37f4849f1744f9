"""The time axis of time-aware models (Koren, KDD 2009, "Collaborative filtering with
temporal dynamics").

A rating's time ``t`` is its day (UTC) counted from the first training day. Fitted on the
training ratings:

- ``n_bins`` equal bins over the training days (``Bin(t)``, 30 by default); days outside
  the training span fall in the first or the last bin;
- each user's mean rating day ``t_u`` and first and last training days; a user without
  training ratings gets the overall mean day for all three;
- the (user, day) pairs seen in training: each is a row of the user-day tables
  (``b_{u,t}``, ``c_{u,t}``); a pair not seen in training has none (-1), its terms are 0.

The drift of a user at day ``t`` is ``dev_u(t) = sign(t - t_u) |t - t_u|^beta`` (beta 0.4).
Prediction without a timestamp uses the user's last training day.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SECONDS_PER_DAY = 86_400


@dataclass
class TimeAxis:
    """A fitted time axis (see the module docstring). Arrays: ``user_mean_day`` (float64,
    n_users), ``user_last_day`` and ``user_first_day`` (int64, n_users), ``user_day_keys``
    (int64, sorted: the (user, day) pairs of training as ``user * key_days + day``)."""

    first_day: int
    n_days: int
    n_bins: int
    beta: float
    user_mean_day: np.ndarray
    user_last_day: np.ndarray
    user_day_keys: np.ndarray
    user_first_day: np.ndarray

    @property
    def key_days(self) -> int:
        return self.n_days + 1

    @property
    def n_user_days(self) -> int:
        return len(self.user_day_keys)

    @classmethod
    def fit(cls, users, timestamps, n_users, n_bins=30, beta=0.4):
        """The axis of training ratings (``users`` dense indices, ``timestamps`` seconds)."""
        days = np.asarray(timestamps, np.int64) // SECONDS_PER_DAY
        first = int(days.min()) if len(days) else 0
        t = days - first
        n_days = int(t.max()) + 1 if len(t) else 1
        counts = np.bincount(users, minlength=n_users)
        sums = np.bincount(users, weights=t, minlength=n_users)
        overall = float(t.mean()) if len(t) else 0.0
        mean_day = np.where(counts > 0, sums / np.maximum(counts, 1), overall)
        last = np.full(n_users, -1, np.int64)
        firsts = np.full(n_users, n_days, np.int64)
        if len(t):
            np.maximum.at(last, users, t)
            np.minimum.at(firsts, users, t)
        last[counts == 0] = int(np.round(overall))
        firsts[counts == 0] = int(np.round(overall))
        keys = np.unique(np.asarray(users, np.int64) * (n_days + 1) + t)
        return cls(first, n_days, int(n_bins), float(beta), mean_day.astype(np.float64),
                   last, keys.astype(np.int64), firsts)

    # ---- per-rating values -------------------------------------------------------------
    def days(self, users, timestamps=None) -> np.ndarray:
        """Day ``t`` of each rating (int64); None: each user's last training day."""
        if timestamps is None:
            return self.user_last_day[users]
        return np.asarray(timestamps, np.int64) // SECONDS_PER_DAY - self.first_day

    def clamp_to_user(self, users, t) -> np.ndarray:
        """Days ``t`` held inside each user's training span ``[first, last]`` (int64)."""
        return np.clip(np.asarray(t, np.int64), self.user_first_day[users],
                       self.user_last_day[users])

    def bins(self, t) -> np.ndarray:
        """``Bin(t)`` (int32), clipped to the training span's bins."""
        b = (np.asarray(t, np.int64) * self.n_bins) // max(1, self.n_days)
        return np.clip(b, 0, self.n_bins - 1).astype(np.int32)

    def dev(self, users, t) -> np.ndarray:
        """``dev_u(t) = sign(t - t_u) |t - t_u|^beta`` (float32)."""
        x = np.asarray(t, np.float64) - self.user_mean_day[users]
        return (np.sign(x) * np.abs(x) ** self.beta).astype(np.float32)

    def user_day_rows(self, users, t) -> np.ndarray:
        """Row of each (user, day) pair in the user-day tables, -1 when training never had
        it (int32)."""
        t = np.asarray(t, np.int64)
        keys = np.asarray(users, np.int64) * self.key_days + t
        inside = (t >= 0) & (t < self.n_days)
        pos = np.searchsorted(self.user_day_keys, keys)
        pos = np.minimum(pos, max(0, self.n_user_days - 1))
        found = inside & (self.n_user_days > 0)
        found[found] = self.user_day_keys[pos[found]] == keys[found]
        return np.where(found, pos, -1).astype(np.int32)

    # ---- persistence ---------------------------------------------------------------------
    def state(self) -> dict:
        """Arrays and scalars to save (plain NumPy)."""
        return {"first_day": np.int64(self.first_day), "n_days": np.int64(self.n_days),
                "n_bins": np.int64(self.n_bins), "beta": np.float64(self.beta),
                "user_mean_day": self.user_mean_day, "user_last_day": self.user_last_day,
                "user_first_day": self.user_first_day, "user_day_keys": self.user_day_keys}

    @classmethod
    def from_state(cls, d, n_users):
        """The axis saved by :meth:`state`; ValueError when it does not hold together."""
        axis = cls(int(d["first_day"]), int(d["n_days"]), int(d["n_bins"]), float(d["beta"]),
                   np.asarray(d["user_mean_day"], np.float64),
                   np.asarray(d["user_last_day"], np.int64),
                   np.asarray(d["user_day_keys"], np.int64),
                   np.asarray(d["user_first_day"], np.int64))
        if axis.n_days < 1 or axis.n_bins < 1 or not np.isfinite(axis.beta):
            raise ValueError("time axis sizes are not positive")
        if axis.user_mean_day.shape != (n_users,) or axis.user_last_day.shape != (n_users,) \
                or axis.user_first_day.shape != (n_users,):
            raise ValueError("time axis does not match the users")
        if np.any(axis.user_first_day > axis.user_last_day) \
                or not np.all(np.isfinite(axis.user_mean_day)):
            raise ValueError("time axis has a user whose first day is after the last")
        k = axis.user_day_keys
        if len(k) and (np.any(np.diff(k) <= 0) or k[0] < 0
                       or k[-1] >= n_users * axis.key_days):
            raise ValueError("user-day keys are not sorted, unique and in range")
        return axis
