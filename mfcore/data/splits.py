"""Train / test splits of a :class:`~mfcore.data.ratings.Ratings`.

Every split returns ``Ratings.subset(...)`` views, so train and test share the id maps
(``n_users``, ``n_items``, raw id <-> index) and a model fitted on one scores the other.
Rows inside each part keep their original (file) order. Randomness comes only from
``numpy.random.default_rng(seed)``: the same seed gives the same split.
"""
from __future__ import annotations

import numpy as np

from ..bounds import check_seed
from ..errors import DataError
from .ratings import Ratings

__all__ = ["random_split", "kfold_split", "kfold_assignment", "per_user_holdout_split", "temporal_split",
           "grouplens_fold", "per_user_temporal_split", "fold_number", "GROUPLENS_FOLDS",
           "make_split"]


def _check_fraction(value, name):
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise DataError(f"{name} must be within [0, 1], got {value}")
    return value


def _seed(seed, what="seed"):
    return check_seed(seed, what, DataError)


def random_split(ratings: Ratings, train_fraction: float = 0.8, seed: int = 0):
    """Random row split, the notebook's split made reproducible.

    Exactly ``mask = np.random.default_rng(_seed(seed)).random(len(ratings)) < train_fraction`` over
    the rows in their order; train = rows where ``mask`` holds, test = the others. On
    MovieLens 100K ``u.data`` with seed 0 this gives 80,184 train and 19,816 test rows.

    Returns ``(train, test)``.
    """
    train_fraction = _check_fraction(train_fraction, "train_fraction")
    mask = np.random.default_rng(_seed(seed)).random(len(ratings)) < train_fraction
    return ratings.subset(mask), ratings.subset(~mask)


def kfold_split(ratings: Ratings, k: int = 5, seed: int = 0):
    """K-fold cross-validation: yields ``k`` pairs ``(train, test)``.

    Rows are shuffled with ``default_rng(seed).permutation`` and cut into ``k`` folds of
    sizes differing by at most one; every row is in exactly one test fold.
    """
    fold_of = kfold_assignment(len(ratings), k, seed)
    for f in range(int(k)):
        test = fold_of == f
        yield ratings.subset(~test), ratings.subset(test)


def kfold_assignment(n: int, k: int, seed: int = 0) -> np.ndarray:
    """The test fold (0 .. k-1) of each of ``n`` rows, as :func:`kfold_split` cuts them:
    ``default_rng(seed).permutation(n)`` cut into ``k`` runs of sizes differing by at most
    one. Lets a caller ship one small array instead of ``k`` copies of the data."""
    k = int(k)
    if k < 2:
        raise DataError(f"k must be at least 2, got {k}")
    if k > n:
        raise DataError(f"k={k} folds need at least {k} ratings, got {n}")
    fold_of = np.empty(n, dtype=np.int64)
    perm = np.random.default_rng(_seed(seed)).permutation(n)
    bounds = np.linspace(0, n, k + 1).round().astype(np.int64)
    for f in range(k):
        fold_of[perm[bounds[f]:bounds[f + 1]]] = f
    return fold_of


def per_user_holdout_split(ratings: Ratings, fraction: float = 0.2, n: int | None = None,
                           seed: int = 0, min_train: int = 1):
    """Hold out part of each user's ratings, chosen at random.

    Each user with ``c`` ratings gives ``round(fraction * c)`` of them (or ``n`` when ``n`` is
    given) to the test part, but keeps at least ``min_train`` (default 1) in train, so every
    test user is known to the model.

    Returns ``(train, test)``.
    """
    size = len(ratings)
    seed = _seed(seed)
    if n is None:
        fraction = _check_fraction(fraction, "fraction")
    elif int(n) < 0:
        raise DataError(f"n must be non-negative, got {n}")
    if size == 0:
        return ratings.subset(np.zeros(0, dtype=bool)), ratings.subset(np.zeros(0, dtype=bool))
    keys = np.random.default_rng(seed).random(size)
    order = np.lexsort((keys, ratings.users))           # by user, random within user
    users_sorted = ratings.users[order]
    counts = np.bincount(ratings.users, minlength=ratings.n_users)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.arange(size) - starts[users_sorted]        # 0.. within each user
    if n is None:
        n_test = np.floor(fraction * counts + 0.5).astype(np.int64)
    else:
        n_test = np.full(len(counts), int(n), dtype=np.int64)
    n_test = np.minimum(n_test, np.maximum(counts - int(min_train), 0))
    test = np.zeros(size, dtype=bool)
    test[order[rank < n_test[users_sorted]]] = True
    return ratings.subset(~test), ratings.subset(test)


def _require_timestamps(ratings: Ratings, what: str):
    """DataError when ``ratings`` (non-empty) carry no time: every timestamp is 0."""
    if len(ratings) and not np.any(ratings.timestamps != 0):
        raise DataError(f"{what}, and {ratings.name or 'the ratings'} have no timestamps "
                        f"(every timestamp is 0): split them at random instead")


def temporal_split(ratings: Ratings, train_fraction: float = 0.8):
    """Split by time: the oldest ``round(train_fraction * n)`` ratings train, the rest test.

    Ties in timestamp keep file order (stable sort), so the split is deterministic.
    Returns ``(train, test)``, each in file order.
    """
    train_fraction = _check_fraction(train_fraction, "train_fraction")
    _require_timestamps(ratings, "a temporal split trains on the oldest ratings")
    n = len(ratings)
    order = np.argsort(ratings.timestamps, kind="stable")
    n_train = int(round(train_fraction * n))
    train = np.zeros(n, dtype=bool)
    train[order[:n_train]] = True
    return ratings.subset(train), ratings.subset(~train)


#: rows per GroupLens ml-100k fold (u1 .. u5 test sets)
GROUPLENS_FOLD_ROWS = 20_000
GROUPLENS_FOLDS = ("u1", "u2", "u3", "u4", "u5")


def fold_number(fold) -> int:
    """1 .. 5 from ``"u3"``, ``"U3"``, ``3`` or ``"3"``; DataError otherwise."""
    text = str(fold).strip().lower()
    if text.startswith("u"):
        text = text[1:]
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= len(GROUPLENS_FOLDS):
        raise DataError(f"GroupLens folds are u1 .. u5, got {fold!r}")
    return int(text)


def grouplens_fold(ratings: Ratings, fold):
    """GroupLens' ml-100k fold ``uK`` (its ``mku.sh``): the test set is rows
    ``20000 (K-1) .. 20000 K - 1`` of ``u.data`` in file order, the training set the
    other 80,000 rows (file order kept; GroupLens' ``uK.base``/``uK.test`` hold the same
    rows sorted by user and item). ``ratings`` must be ``u.data`` as loaded, in file
    order (100,000 rows). Returns ``(train, test)`` sharing the id maps."""
    k = fold_number(fold)
    n = len(ratings)
    if n != len(GROUPLENS_FOLDS) * GROUPLENS_FOLD_ROWS:
        raise DataError(f"GroupLens folds are defined on MovieLens 100K's u.data (100,000 rows "
                        f"in file order); {ratings.name} has {n:,} rows")
    test = np.zeros(n, dtype=bool)
    test[(k - 1) * GROUPLENS_FOLD_ROWS:k * GROUPLENS_FOLD_ROWS] = True
    return ratings.subset(~test), ratings.subset(test)


def per_user_temporal_split(ratings: Ratings, fraction: float = 0.2, min_train: int = 1):
    """Each user's latest ratings by time go to the test part: ``round(fraction * c)`` of a
    user's ``c`` ratings (ties in timestamp broken by file order), keeping at least
    ``min_train`` in training. The protocol for judging time-aware models: predict what
    users rated next. Returns ``(train, test)``, each in file order."""
    fraction = _check_fraction(fraction, "fraction")
    _require_timestamps(ratings, "the temporal split holds out each user's latest ratings")
    n = len(ratings)
    if n == 0:
        empty = np.zeros(0, dtype=bool)
        return ratings.subset(empty), ratings.subset(empty)
    order = np.lexsort((np.arange(n), ratings.timestamps, ratings.users))  # by user, time
    users_sorted = ratings.users[order]
    counts = np.bincount(ratings.users, minlength=ratings.n_users)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.arange(n) - starts[users_sorted]  # 0 .. c-1 within each user, by time
    n_test = np.minimum(np.floor(fraction * counts + 0.5).astype(np.int64),
                        np.maximum(counts - int(min_train), 0))
    test = np.zeros(n, dtype=bool)
    test[order[rank >= (counts - n_test)[users_sorted]]] = True
    return ratings.subset(~test), ratings.subset(test)


def make_split(ratings: Ratings, split: str = "random", train_fraction: float = 0.8,
               seed: int = 0):
    """``(train, validation)`` by protocol name (:data:`mfcore.registry.SPLITS`):

    - ``"random"``: :func:`random_split` (the notebook's, ``train_fraction``, ``seed``);
    - ``"temporal"``: :func:`per_user_temporal_split`, each user's last
      ``1 - train_fraction`` of ratings by time;
    - ``"u1"`` .. ``"u5"``: GroupLens' ml-100k folds (:func:`grouplens_fold`).
    """
    if split == "random":
        return random_split(ratings, train_fraction=train_fraction, seed=seed)
    if split == "temporal":
        return per_user_temporal_split(ratings, fraction=1.0 - float(train_fraction))
    if str(split).lower() in GROUPLENS_FOLDS:
        return grouplens_fold(ratings, split)
    raise DataError(f"unknown split {split!r}; choose random, temporal or u1 .. u5")
