"""The one container every part of mfcore passes around: a set of explicit ratings."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError


class SourceDigest:
    """The SHA-256 of the file some ratings were read from, computed when first asked for.

    ``path`` and ``state`` (what :func:`mfcore.data.cache.file_states` said of the file when
    it was read): :meth:`sha256` hashes the file only if it still has that state (any write
    moves its status-change time), before and after hashing, and gives None when it has
    changed since; the answer is kept. Model files record it; nothing else needs it, so a
    parse or a cached load does not spend the 15 ms an ml-1m sized file takes."""

    __slots__ = ("path", "state", "_sha256", "_known")

    def __init__(self, path, state, sha256=None):
        self.path, self.state = str(path), state
        self._sha256, self._known = sha256, sha256 is not None

    def sha256(self) -> str | None:
        if not self._known:
            from .cache import file_digest, file_states
            digest = None
            if file_states([self.path]) == self.state:
                try:
                    digest = file_digest(self.path)
                except OSError:
                    digest = None
                if file_states([self.path]) != self.state:
                    digest = None
            self._sha256, self._known = digest, True
        return self._sha256

    def __repr__(self):
        return f"SourceDigest({self.path!r})"


@dataclass(frozen=True, eq=False)
class Ratings:
    """Explicit ratings (user, item) -> rating, with users and items as dense indices.

    Attributes
    ----------
    users, items : int32 arrays, shape (n,)
        Dense indices in ``[0, n_users)`` and ``[0, n_items)``.
    ratings : float32 array, shape (n,)
    timestamps : int64 array, shape (n,)
        Seconds since the epoch; zeros when the source has none.
    user_ids, item_ids : arrays, shape (n_users,) and (n_items,)
        Raw id of each index (``user_ids[u]`` is the id the file used for user ``u``).
        Sorted ascending, so index order follows raw id order.
    titles : dict raw item id -> title, possibly empty.
    name : where the data came from (a builtin name, a path, or "DataFrame").
    source : the file the rows were parsed from, when they come from
        :func:`~mfcore.data.load_file` or :func:`~mfcore.data.load_dataset` (a
        :class:`SourceDigest`); None otherwise. Subsets keep it: it names the source, not
        the rows. ``source_sha256`` is its SHA-256 (hex), computed when first asked for.

    Subsets made with :meth:`subset` share the id maps, so a model fitted on a training
    split can score its validation split. ``n_users`` and ``n_items`` are the sizes of the
    shared index space, not the counts present in a subset.
    """

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    timestamps: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    titles: dict = field(default_factory=dict)
    name: str = ""
    source: SourceDigest | None = None

    def __post_init__(self):
        n = len(self.users)
        for attr in ("items", "ratings", "timestamps"):
            if len(getattr(self, attr)) != n:
                raise DataError(f"Ratings.{attr} has {len(getattr(self, attr))} rows, users has {n}")

    @property
    def source_sha256(self) -> str | None:
        """SHA-256 (hex) of the source file (see :class:`SourceDigest`), or None."""
        return None if self.source is None else self.source.sha256()

    # ---- sizes -------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(len(self.users))

    @property
    def n_users(self) -> int:
        return int(len(self.user_ids))

    @property
    def n_items(self) -> int:
        return int(len(self.item_ids))

    @property
    def rating_scale(self) -> tuple[float, float]:
        """(min, max) rating present; (nan, nan) when empty."""
        if len(self) == 0:
            return (float("nan"), float("nan"))
        return (float(self.ratings.min()), float(self.ratings.max()))

    # ---- construction ------------------------------------------------------------------
    @classmethod
    def from_arrays(cls, users, items, ratings, timestamps=None, titles=None, name="arrays",
                    user_ids=None, item_ids=None) -> "Ratings":
        """Build from raw ids. Raw ids (any sortable dtype) are mapped to dense indices.

        When ``user_ids`` / ``item_ids`` are given, they fix the index space (raw ids not in
        them raise :class:`DataError`); otherwise the sorted unique raw ids define it.
        """
        users = np.asarray(users)
        items = np.asarray(items)
        ratings = np.asarray(ratings, dtype=np.float32)
        n = len(users)
        if timestamps is None:
            timestamps = np.zeros(n, dtype=np.int64)
        try:
            timestamps = seconds_array(timestamps)
        except (ValueError, OverflowError) as exc:
            raise DataError(str(exc)) from None
        if not (len(items) == len(ratings) == len(timestamps) == n):
            raise DataError("users, items, ratings and timestamps must have the same length")
        if n and not np.all(np.isfinite(ratings)):
            bad = int(np.flatnonzero(~np.isfinite(ratings))[0])
            raise DataError(f"rating at row {bad} is not a finite number")
        uidx, uids = _index(users, user_ids, "user")
        iidx, iids = _index(items, item_ids, "item")
        if titles is not None and not hasattr(titles, "items"):
            raise DataError(f"titles must be a mapping {{item id: title}}, got a "
                            f"{type(titles).__name__}")
        return cls(uidx, iidx, ratings, timestamps, uids, iids, dict(titles or {}), name)

    def subset(self, rows) -> "Ratings":
        """Rows selected by a boolean mask or an index array, sharing this set's id maps."""
        rows = np.asarray(rows)
        if rows.dtype.kind == "b":
            if rows.shape != (len(self),):
                raise DataError(f"a boolean mask for {len(self):,} ratings has shape {rows.shape}")
        elif rows.dtype.kind not in "iu" and rows.size:
            raise DataError(f"rows must be a boolean mask or integer positions, got {rows.dtype}")
        elif rows.size and (rows.max() >= len(self) or rows.min() < -len(self)):
            bad = rows[(rows >= len(self)) | (rows < -len(self))][0]
            raise DataError(f"row {int(bad):,} is out of range: there are {len(self):,} ratings")
        else:
            rows = rows.astype(np.intp)
        return Ratings(self.users[rows], self.items[rows], self.ratings[rows],
                       self.timestamps[rows], self.user_ids, self.item_ids, self.titles,
                       self.name, self.source)

    # ---- raw id <-> index --------------------------------------------------------------
    def user_index(self, raw_ids, missing: int | None = None) -> np.ndarray:
        """Dense indices of raw user ids. Unknown ids raise, or map to ``missing`` if given."""
        return lookup_ids(self.user_ids, raw_ids, "user", missing)

    def item_index(self, raw_ids, missing: int | None = None) -> np.ndarray:
        """Dense indices of raw item ids. Unknown ids raise, or map to ``missing`` if given."""
        return lookup_ids(self.item_ids, raw_ids, "item", missing)

    def to_dataframe(self):
        """A pandas DataFrame with raw ids: columns user, item, rating, timestamp."""
        import pandas as pd
        return pd.DataFrame({"user": self.user_ids[self.users], "item": self.item_ids[self.items],
                             "rating": self.ratings, "timestamp": self.timestamps})

    def describe(self) -> dict:
        """Summary figures: ratings, users, items, scale, density, time range."""
        n = len(self)
        lo, hi = self.rating_scale
        ts = self.timestamps
        has_time = n > 0 and bool(np.any(ts != 0))
        return {
            "name": self.name,
            "ratings": n,
            "users": int(len(np.unique(self.users))) if n else 0,
            "items": int(len(np.unique(self.items))) if n else 0,
            "rating_min": lo, "rating_max": hi,
            "rating_mean": float(self.ratings.mean()) if n else float("nan"),
            "density": n / max(1, self.n_users * self.n_items),
            "time_min": int(ts.min()) if has_time else None,
            "time_max": int(ts.max()) if has_time else None,
            "titles": len(self.titles),
        }

    def __repr__(self) -> str:
        return (f"Ratings(name={self.name!r}, n={len(self)}, n_users={self.n_users}, "
                f"n_items={self.n_items})")


def seconds_array(values) -> np.ndarray:
    """Timestamps as int64 seconds since 1970-01-01 UTC, any shape: integers as they are,
    finite floats rounded down, datetime64 values (any unit) converted, and ISO 8601 or
    integer strings parsed. ValueError, naming the first bad value, otherwise (NaN, inf,
    'yesterday', ...): a cast would have turned NaN into -9.2e18 seconds without a word."""
    arr = np.asarray(values)
    if arr.dtype.kind in "iub":
        return arr.astype(np.int64)
    if arr.dtype.kind == "M":
        if np.isnat(arr).any():
            raise ValueError("timestamp NaT is not a time")
        return arr.astype("datetime64[s]").astype(np.int64)
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (np.abs(arr) >= 2.0 ** 63)
        if bad.any():
            raise ValueError(f"timestamp {_first(arr, bad)} is not a finite number of seconds")
        return np.floor(arr).astype(np.int64)
    if arr.dtype.kind in "USO":
        from .pairs import parse_timestamp
        out = np.empty(arr.shape, np.int64)
        flat = out.reshape(-1)
        for j, v in enumerate(arr.reshape(-1).tolist()):
            if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
                flat[j] = int(v)
            elif isinstance(v, (float, np.floating)) and math.isfinite(v):
                flat[j] = math.floor(v)
            else:
                flat[j] = parse_timestamp(v if isinstance(v, str) else repr(v))
        return out
    raise ValueError(f"timestamps of type {arr.dtype} are not seconds")


def _first(arr, mask):
    return format_id(arr.reshape(-1)[int(np.flatnonzero(mask.reshape(-1))[0])])


def format_id(value) -> str:
    """An id for a message: numbers bare (``99999``), strings quoted (``'abc'``), never a
    NumPy repr (``np.int64(99999)``, ``np.str_('abc')``)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = repr(value) if isinstance(value, str) else str(value)
    if len(text) > 60:  # an id pasted by mistake (a whole line, a 10,000-digit number)
        n = len(value) if isinstance(value, str) else len(text)
        text = f"{text[:40]}... ({n:,} characters)"
    return text


def _index(raw, fixed, what):
    if fixed is None:
        ids, idx = np.unique(raw, return_inverse=True)
        return idx.astype(np.int32, copy=False).reshape(-1), ids
    ids = np.asarray(fixed).reshape(-1)
    if len(ids) > 1:
        try:
            increasing = bool(np.all(ids[1:] > ids[:-1]))
        except TypeError:
            increasing = False
        if not increasing:
            raise DataError(f"{what}_ids must be sorted with no repeats (they fix the index "
                            f"space, which lookups search in order): use np.unique(...) of them")
    return lookup_ids(ids, raw, what, None), ids


def lookup_ids(ids, raw, what, missing):
    """Dense indices of raw ids in the sorted id map ``ids`` (int32; a scalar for a scalar).
    Unknown ids raise DataError naming the first (``what``: "user"/"item"), or map to
    ``missing`` when it is not None."""
    raw = np.asarray(raw)
    scalar = raw.ndim == 0
    raw = raw.reshape(-1)
    if len(ids) == 0:
        pos = np.zeros(len(raw), dtype=np.int64)
        found = np.zeros(len(raw), dtype=bool)
    else:
        try:
            pos = np.searchsorted(ids, raw)
        except TypeError as exc:
            raise DataError(f"{what} ids of type {raw.dtype} cannot be compared with "
                            f"the model's {ids.dtype} ids") from exc
        pos = np.minimum(pos, len(ids) - 1)
        found = ids[pos] == raw
    if not np.all(found):
        if missing is None:
            bad = raw[~found][0]
            raise DataError(f"unknown {what} id {format_id(bad)} ({int((~found).sum())} unknown "
                            f"in all)")
        pos = np.where(found, pos, missing)
    out = pos.astype(np.int32)
    return out[0] if scalar else out
