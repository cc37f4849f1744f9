"""Implicit feedback: which items each user rated (``N(u)``), and which users rated each
item (``N(i)``, the "flipped" side), as CSR lists.

Built from the training pairs by default; ``implicit="all"`` also counts the pairs that
will be predicted (validation or test): who rated what is then known for the test set too
-- the Netflix-prize setting, where the qualifying pairs were given. That reveals which
items are in the test set, so it is reported apart and never the default.
"""
from __future__ import annotations

import numpy as np

IMPLICIT_MODES = ("train", "all")


def csr(rows, cols, n_rows):
    """CSR of the distinct (row, col) pairs: ``(ptr (n_rows + 1, int64), idx (int32))``,
    columns sorted within a row."""
    rows = np.asarray(rows, np.int64)
    cols = np.asarray(cols, np.int64)
    n_cols = int(cols.max()) + 1 if len(cols) else 1
    keys = np.unique(rows * n_cols + cols)
    r = keys // n_cols
    idx = (keys % n_cols).astype(np.int32)
    ptr = np.zeros(n_rows + 1, np.int64)
    np.cumsum(np.bincount(r, minlength=n_rows), out=ptr[1:])
    return ptr, idx


def implicit_sets(train, extra=None, flipped=False):
    """``{"user_ptr", "user_items"}`` (N(u)) and, with ``flipped``, ``{"item_ptr",
    "item_users"}`` (N(i)) from the pairs of ``train`` (and of ``extra``, a Ratings in the
    same index space, for ``implicit="all"``)."""
    users, items = train.users, train.items
    if extra is not None and len(extra):
        users = np.concatenate([users, extra.users])
        items = np.concatenate([items, extra.items])
    out = {}
    out["user_ptr"], out["user_items"] = csr(users, items, train.n_users)
    if flipped:
        out["item_ptr"], out["item_users"] = csr(items, users, train.n_items)
    return out
