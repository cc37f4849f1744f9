"""Synthetic explicit ratings shaped like MovieLens 1M, for speed and scale work.

The generator draws, for a seed:

* per-user rating counts: at least ``min_per_user`` (20, like MovieLens) plus a log-normal
  heavy tail, summing exactly to ``n_ratings`` and capped at ``n_items``;
* items per user without repetition, from a Zipf-like popularity ``(rank + 25) ** -1.05``
  (a random item id gets each popularity rank);
* ratings ``clip(round(mu + b_u + b_i + p_u . q_i + noise), 1, 5)``: integers 1..5 with
  a mean near 3.6, like ml-1m; ``b_u``, ``b_i``, ``p_u``, ``q_i`` are Gaussian (popular
  items get slightly higher ``b_i``), ``noise`` the std of a Gaussian term;
* timestamps (seconds) inside ml-1m's span (2000-04-25 .. 2003-02-28), each user active
  from a random start.

Work is done in chunks of about ``chunk`` ratings, so memory beyond the output arrays
(18 bytes per rating) stays bounded: 100M ratings need ~1.8 GB of output and ~100 MB extra.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from numba import njit

from ..atomic import atomic_output
from ..bounds import check_seed
from ..errors import DataError
from .ratings import Ratings

__all__ = ["synthetic_ratings", "write_ratings_dat", "ML1M_SHAPE"]

ML1M_SHAPE = (1_000_209, 6040, 3706)  # ratings, users, items
_T_START, _T_END = 956_703_932, 1_046_454_590


@njit(cache=True, nogil=True)
def _sample_items(counts, cdf, log_w, seed, out):
    """Distinct items for each user: counts[u] draws from the popularity cdf.

    Light users use rejection sampling (O(count)); users asking for more than a quarter of
    the catalogue use Gumbel top-k over all items (O(n_items log n_items)).
    """
    np.random.seed(seed)
    n_items = cdf.shape[0]
    stamp = np.full(n_items, -1, dtype=np.int64)
    pos = 0
    for u in range(counts.shape[0]):
        c = counts[u]
        if 4 * c <= n_items:
            got = 0
            while got < c:
                j = np.searchsorted(cdf, np.random.random() * cdf[-1], side="right")
                if j >= n_items:
                    j = n_items - 1
                if stamp[j] != u:
                    stamp[j] = u
                    out[pos + got] = j
                    got += 1
        else:
            keys = np.empty(n_items)
            for j in range(n_items):
                keys[j] = -(log_w[j] - np.log(-np.log(np.random.random() + 1e-300)))
            top = np.argsort(keys)[:c]
            for q in range(c):
                out[pos + q] = top[q]
        pos += c


def _user_counts(rng, n_ratings, n_users, n_items, min_per_user):
    """Per-user counts summing to n_ratings, each in [min, n_items], heavy-tailed."""
    floor_ = min(min_per_user, n_ratings // n_users, n_items)
    extra = n_ratings - floor_ * n_users
    weights = rng.lognormal(0.0, 1.2, size=n_users)
    counts = np.full(n_users, floor_, dtype=np.int64)
    cap = n_items
    while extra > 0:
        room = cap - counts
        open_ = room > 0
        if not open_.any():  # pragma: no cover - excluded by the density check
            raise DataError("too many ratings for the number of users and items")
        w = np.where(open_, weights, 0.0)
        share = w / w.sum() * extra
        add = np.minimum(np.floor(share).astype(np.int64), room)
        left = extra - int(add.sum())
        if left > 0:  # largest remainders first, among users with room left
            frac = np.where(open_ & (add < room), share - np.floor(share), -1.0)
            order = np.argsort(-frac, kind="stable")
            eligible = order[frac[order] >= 0]
            take = eligible[:left]
            add[take] += 1
        counts += add
        extra = n_ratings - int(counts.sum())
    return counts


def synthetic_ratings(n_ratings: int = 1_000_209, n_users: int | None = 6040,
                      n_items: int | None = 3706, factors: int = 10, noise: float = 0.8,
                      seed: int = 0, chunk: int = 1 << 20, min_per_user: int = 20,
                      name: str | None = None) -> Ratings:
    """A deterministic synthetic ratings set; the default shape is MovieLens 1M's.

    Parameters
    ----------
    n_ratings : total ratings (default 1,000,209).
    n_users, n_items : default 6,040 and 3,706. None scales both with ``n_ratings``
        keeping ml-1m's users/items ratio and density (``sqrt(n_ratings / 1,000,209)``).
    factors : latent dimension of the generating model (default 10).
    noise : std of the Gaussian noise added before rounding (default 0.8).
    seed : the same seed gives the same data.
    chunk : about how many ratings are generated at a time (memory bound).
    min_per_user : each user gets at least this many ratings when the totals allow (20).

    Returns :class:`Ratings` with raw ids ``1..n_users`` and ``1..n_items`` (``user_ids`` /
    ``item_ids`` list them all), integer ratings 1..5 as float32, int64 timestamps, rows
    grouped by user, no repeated (user, item) pair.
    """
    check_seed(seed, "seed", DataError)
    if isinstance(noise, bool) or not isinstance(noise, (int, float, np.integer, np.floating)) \
            or not (math.isfinite(noise) and noise >= 0):
        raise DataError(f"noise must be a finite number >= 0 (a standard deviation), got "
                        f"{noise!r}")
    if isinstance(factors, bool) or not isinstance(factors, (int, np.integer)) or factors < 1:
        raise DataError(f"factors must be a whole number >= 1, got {factors!r}")
    n_ratings = int(n_ratings)
    if n_ratings <= 0:
        raise DataError(f"n_ratings must be positive, got {n_ratings}")
    scale = math.sqrt(n_ratings / ML1M_SHAPE[0])
    if n_users is None:
        n_users = max(1, int(round(ML1M_SHAPE[1] * scale)))
    if n_items is None:
        n_items = max(1, int(round(ML1M_SHAPE[2] * scale)))
    n_users, n_items = int(n_users), int(n_items)
    if n_users <= 0 or n_items <= 0:
        raise DataError("n_users and n_items must be positive")
    if n_ratings > n_users * n_items:
        raise DataError(f"{n_ratings:,} ratings cannot fit {n_users:,} users x {n_items:,} items "
                        "without repeated (user, item) pairs")
    rng = np.random.default_rng(seed)
    counts = _user_counts(rng, n_ratings, n_users, n_items, min_per_user)

    # item popularity: Zipf-like over ranks, ranks assigned to random items
    ranks = np.arange(n_items, dtype=np.float64)
    w = (ranks + 25.0) ** -1.05
    perm = rng.permutation(n_items)             # perm[rank] = item index
    w_item = np.empty(n_items)
    w_item[perm] = w
    cdf = np.cumsum(w_item)
    log_w = np.log(w_item)
    rank_of = np.empty(n_items, dtype=np.float64)
    rank_of[perm] = ranks / max(1, n_items - 1)

    # generating model
    mu = 3.56
    b_u = rng.normal(0.0, 0.42, n_users).astype(np.float32)
    b_i = (rng.normal(0.0, 0.45, n_items) + 0.35 * (0.5 - rank_of)).astype(np.float32)
    sd = (0.3 / max(1, factors)) ** 0.25
    p = rng.normal(0.0, sd, (n_users, factors)).astype(np.float32)
    q = rng.normal(0.0, sd, (n_items, factors)).astype(np.float32)
    start = (_T_START + (_T_END - _T_START) * rng.beta(1.0, 2.5, n_users)).astype(np.int64)
    activity = rng.lognormal(np.log(30 * 86400.0), 1.5, n_users)  # seconds scale per user

    users = np.repeat(np.arange(n_users, dtype=np.int32), counts)
    items = np.empty(n_ratings, dtype=np.int32)
    ratings = np.empty(n_ratings, dtype=np.float32)
    times = np.empty(n_ratings, dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(counts)))
    chunk = max(1, int(chunk))
    seeds = np.random.SeedSequence(seed)
    u0 = 0
    while u0 < n_users:
        # users [u0, u1) hold about `chunk` ratings (at least one user)
        u1 = int(np.searchsorted(offsets, offsets[u0] + chunk, side="right")) - 1
        u1 = min(max(u1, u0 + 1), n_users)
        a, b = int(offsets[u0]), int(offsets[u1])
        child = seeds.spawn(1)[0]
        crng = np.random.default_rng(child)
        nb_seed = int(child.generate_state(1)[0] & 0x7FFFFFFF)
        _sample_items(counts[u0:u1], cdf, log_w, nb_seed, items[a:b])
        uu = users[a:b]
        ii = items[a:b]
        dot = np.einsum("ij,ij->i", p[uu], q[ii])
        r = mu + b_u[uu] + b_i[ii] + dot + crng.normal(0.0, noise, b - a).astype(np.float32)
        ratings[a:b] = np.clip(np.rint(r), 1, 5)
        t = start[uu] + (crng.exponential(1.0, b - a) * activity[uu]).astype(np.int64)
        times[a:b] = np.minimum(t, _T_END)
        u0 = u1
    return Ratings(users, items, ratings, times,
                   np.arange(1, n_users + 1, dtype=np.int64),
                   np.arange(1, n_items + 1, dtype=np.int64), {},
                   name or f"synthetic(n={n_ratings}, seed={seed})")


# =========================================================================================
# writing ml-1m style files
# =========================================================================================
@njit(cache=True, nogil=True)
def _write_int(buf, pos, v):
    if v < 0:
        buf[pos] = 45
        pos += 1
        v = -v
    if v == 0:
        buf[pos] = 48
        return pos + 1
    n = 0
    t = v
    while t > 0:
        n += 1
        t //= 10
    for k in range(n - 1, -1, -1):
        buf[pos + k] = 48 + v % 10
        v //= 10
    return pos + n


@njit(cache=True, nogil=True)
def _format_rows(users, items, ratings2, times, sep, with_time):
    """Text of rows `user sep item sep rating [sep time]\\n`; ratings2 = 2 * rating (ints)."""
    n = users.shape[0]
    buf = np.empty(n * (3 * sep.shape[0] + 64), dtype=np.uint8)
    pos = 0
    for r in range(n):
        pos = _write_int(buf, pos, users[r])
        for q in range(sep.shape[0]):
            buf[pos + q] = sep[q]
        pos += sep.shape[0]
        pos = _write_int(buf, pos, items[r])
        for q in range(sep.shape[0]):
            buf[pos + q] = sep[q]
        pos += sep.shape[0]
        v = ratings2[r]
        pos = _write_int(buf, pos, v // 2)
        if v % 2:
            buf[pos] = 46
            buf[pos + 1] = 53
            pos += 2
        if with_time:
            for q in range(sep.shape[0]):
                buf[pos + q] = sep[q]
            pos += sep.shape[0]
            pos = _write_int(buf, pos, times[r])
        buf[pos] = 10
        pos += 1
    return buf[:pos]


def write_ratings_dat(ratings: Ratings, path, sep: str = "::", timestamps: bool = True,
                      chunk: int = 1 << 20) -> Path:
    """Write ratings as text, ml-1m ``ratings.dat`` style: ``user::item::rating::timestamp``.

    Raw ids are written; ratings that are whole or half numbers are written compactly
    (``4``, ``3.5``), others with ``repr``. The file appears atomically (temp + rename).
    """
    path = Path(path)
    sep_b = np.frombuffer(sep.encode("utf-8"), dtype=np.uint8).copy()
    uids = ratings.user_ids[ratings.users]
    iids = ratings.item_ids[ratings.items]
    r2 = ratings.ratings.astype(np.float64) * 2
    halves = bool(np.all(r2 == np.rint(r2))) and uids.dtype.kind in "iu" and iids.dtype.kind in "iu"
    with atomic_output(path) as out:
        for a in range(0, len(ratings), chunk):
            b = min(a + chunk, len(ratings))
            if halves:
                out.write(_format_rows(uids[a:b].astype(np.int64), iids[a:b].astype(np.int64),
                                       np.rint(r2[a:b]).astype(np.int64),
                                       ratings.timestamps[a:b], sep_b, timestamps).tobytes())
            else:
                lines = []
                for k in range(a, b):
                    row = [str(uids[k]), str(iids[k]), repr(float(ratings.ratings[k]))]
                    if timestamps:
                        row.append(str(int(ratings.timestamps[k])))
                    lines.append(sep.join(row))
                out.write(("\n".join(lines) + "\n").encode("utf-8"))
    return path
