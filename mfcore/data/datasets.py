"""Loading ratings: builtin MovieLens data sets, any delimited file, or a pandas DataFrame.

Builtin sets are the official GroupLens archives, downloaded once into the data home
(:func:`mfcore.data.cache.data_home`), verified against pinned checksums, unpacked safely,
and parsed into a binary cache so later loads take milliseconds. A folder already unpacked in
the data home (``<data home>/ml-100k/u.data``) is used as is and only read.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import stat
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from ..errors import DataError, DownloadError
from ..progress import Progress
from . import cache as _cache
from .parsers import (DEFAULT_RATING_RANGE, check_rating_range, check_ratings_file, densify,
                      normalize_sep, parse_ratings_file, read_titles)
from .ratings import Ratings, SourceDigest, format_id

__all__ = ["DatasetSpec", "BUILTIN_DATASETS", "load_dataset", "download_dataset", "load_file",
           "load_grouplens_fold",
           "from_dataframe", "dataset_status", "resolve_name"]


@dataclass(frozen=True)
class DatasetSpec:
    """How to fetch, verify and read one builtin data set.

    ``size`` (bytes), ``sha256`` and ``md5`` describe the zip at ``url``; any of them may be
    None when no trusted published value exists (at least one hash is always pinned).
    ``folder`` is the top folder the zip unpacks to; ``ratings_file`` and ``titles_file``
    are relative to it.
    """

    name: str
    url: str
    filename: str
    folder: str
    ratings_file: str
    sep: str
    header: bool
    titles_file: str | None
    titles_kind: str | None
    titles_encoding: str
    size: int | None
    sha256: str | None
    md5: str | None
    description: str = ""


_BASE = "https://files.grouplens.org/datasets/movielens/"

# Checksums. sha256 + size: tensorflow/datasets, tensorflow_datasets/url_checksums/movielens.txt
# (ml-100k, ml-1m, ml-20m, ml-25m, ml-latest-small). md5: the ``<zip>.md5`` files GroupLens
# publishes next to each archive, as pinned by several public projects. ml-10m is not in the
# TFDS list; its sha256 and size are the values pinned by independent public projects that
# also match GroupLens' published md5 (ce571fd5...), which we check as well.
# ml-latest-small is refreshed by GroupLens from time to time: the pin is the 2018 archive
# (100,836 ratings); a newer archive fails verification rather than loading silently.
BUILTIN_DATASETS: dict[str, DatasetSpec] = {
    "ml-100k": DatasetSpec(
        "ml-100k", _BASE + "ml-100k.zip", "ml-100k.zip", "ml-100k", "u.data", "\t", False,
        "u.item", "u.item", "latin-1", 4924029,
        "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
        "0e33842e24a9c977be4e0107933c0723",
        "MovieLens 100K: 100,000 ratings (1-5), 943 users, 1,682 movies, 1998"),
    "ml-1m": DatasetSpec(
        "ml-1m", _BASE + "ml-1m.zip", "ml-1m.zip", "ml-1m", "ratings.dat", "::", False,
        "movies.dat", "movies.dat", "latin-1", 5917549,
        "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
        "c4d9eecfca2ab87c1945afe126590906",
        "MovieLens 1M: 1,000,209 ratings (1-5), 6,040 users, 3,706 movies, 2000-2003"),
    "ml-10m": DatasetSpec(
        "ml-10m", _BASE + "ml-10m.zip", "ml-10m.zip", "ml-10M100K", "ratings.dat", "::", False,
        "movies.dat", "movies.dat", "utf-8", 65566137,
        "813c411ccb6122564edfe752e7f80c4dcc5aa25fa94c93622f6877a7ba252862",
        "ce571fd55effeba0271552578f2648bd",
        "MovieLens 10M: 10,000,054 ratings (0.5-5), 69,878 users, 10,677 movies"),
    "ml-20m": DatasetSpec(
        "ml-20m", _BASE + "ml-20m.zip", "ml-20m.zip", "ml-20m", "ratings.csv", ",", True,
        "movies.csv", "movies.csv", "utf-8", 198702078,
        "96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3",
        "cd245b17a1ae2cc31bb14903e1204af3",
        "MovieLens 20M: 20,000,263 ratings (0.5-5), 138,493 users, 26,744 movies"),
    "ml-25m": DatasetSpec(
        "ml-25m", _BASE + "ml-25m.zip", "ml-25m.zip", "ml-25m", "ratings.csv", ",", True,
        "movies.csv", "movies.csv", "utf-8", 261978986,
        "8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",
        "6b51fb2759a8657d3bfcbfc42b592ada",
        "MovieLens 25M: 25,000,095 ratings (0.5-5), 162,541 users, 59,047 movies"),
    "ml-latest-small": DatasetSpec(
        "ml-latest-small", _BASE + "ml-latest-small.zip", "ml-latest-small.zip",
        "ml-latest-small", "ratings.csv", ",", True, "movies.csv", "movies.csv", "utf-8",
        978202, "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436", None,
        "MovieLens latest small (2018): 100,836 ratings (0.5-5), 610 users, 9,724 movies"),
}

_CHUNK = 1 << 20


def resolve_name(name: str) -> str:
    """Canonical builtin name (``"ML-1M"``, ``"1m"``, ``"movielens-1m"`` -> ``"ml-1m"``)."""
    key = str(name).strip().lower().replace("_", "-")
    for prefix in ("movielens-", "movielens"):
        if key.startswith(prefix):
            key = "ml-" + key[len(prefix):].lstrip("-")
    if not key.startswith("ml-") and ("ml-" + key) in BUILTIN_DATASETS:
        key = "ml-" + key
    if key not in BUILTIN_DATASETS:
        raise DataError(f"unknown data set {name!r}; builtin data sets: "
                        f"{', '.join(BUILTIN_DATASETS)} (use load_file / --data for other files)")
    return key


# =========================================================================================
# files and DataFrames
# =========================================================================================
def _params_tag(params: dict) -> str:
    return hashlib.sha256(repr(sorted(params.items())).encode()).hexdigest()[:10]


def _parse_arrays(path, sep, header, columns, rating_range, titles_path, titles_kind,
                  titles_enc) -> dict:
    """The arrays a parse of ``path`` (and its titles) gives, as the cache stores them."""
    raw = parse_ratings_file(path, sep=sep, header=header, columns=columns,
                             rating_range=rating_range)
    users, user_ids = densify(raw["users"])
    items, item_ids = densify(raw["items"])
    titles_dict = read_titles(titles_path, titles_kind, titles_enc) if titles_path else {}
    tid = np.fromiter(titles_dict.keys(), dtype=np.int64, count=len(titles_dict))
    blob = "\n".join(t.replace("\n", " ") for t in titles_dict.values()).encode("utf-8")
    return {"users": users, "items": items, "ratings": raw["ratings"],
            "timestamps": raw["timestamps"], "user_ids": user_ids, "item_ids": item_ids,
            "title_ids": tid, "title_blob": np.frombuffer(blob, dtype=np.uint8)}


#: the arrays a parse cache must hold (:func:`_parse_arrays`)
_CACHED_ARRAYS = {"users", "items", "ratings", "timestamps", "user_ids", "item_ids", "title_ids",
                  "title_blob"}


def _load_parsed(path, *, sep, header, columns, rating_range, name, titles=None,
                 cache=True) -> Ratings:
    """Parse ``path`` (through the binary cache) and attach titles; see :func:`load_file`."""
    path = Path(path)
    check_ratings_file(path)  # before hashing: a FIFO would block, a folder fail
    titles_path, titles_kind, titles_enc = titles if titles else (None, None, None)
    params = {"sep": normalize_sep(sep), "header": header, "columns": repr(columns),
              "range": repr(None if rating_range is None else tuple(map(float, rating_range))),
              "titles": [titles_kind, titles_enc]}
    sources = [path, titles_path]
    state = _cache.file_states(sources)
    cache_file = _cache.cache_file_for(path, _params_tag(params)) if cache else None
    key = arrays = None
    if cache_file is not None:
        # the content key: XXH64 of the sources, about 1.3 ms for 24 MB
        key = _cache.source_key(sources, **params)
        if cache_file.is_file():
            hit = _cache.load_cache(cache_file, key)
            if hit is not None and _CACHED_ARRAYS <= hit[0].keys():
                arrays = hit[0]
    if arrays is None:
        arrays = _parse_arrays(path, sep, header, columns, rating_range, titles_path,
                               titles_kind, titles_enc)
        # the key and the parse read the sources between two looks at their state: if
        # they changed meanwhile, what was parsed may be neither version, and must not be
        # cached (nor returned). The file system's record of the files says so without a
        # second hash (which cost a third of a cold parse)
        if _cache.file_states(sources) != state:
            raise DataError("the file changed while it was being read; try again", str(path))
        if cache_file is not None:
            _cache.save_cache(cache_file, key, arrays)
    titles_out = {}
    if len(arrays["title_ids"]):
        texts = bytes(arrays["title_blob"]).decode("utf-8").split("\n")
        titles_out = dict(zip(arrays["title_ids"].tolist(), texts))
    return Ratings(arrays["users"], arrays["items"], arrays["ratings"], arrays["timestamps"],
                   arrays["user_ids"], arrays["item_ids"], titles_out,
                   name if name is not None else str(path),
                   source=SourceDigest(path.resolve(), state[:1]))


def load_file(path, sep=None, header=None, columns=None, name=None,
              rating_range=DEFAULT_RATING_RANGE, cache=True) -> Ratings:
    """Ratings from any delimited text file.

    Parameters
    ----------
    path : str or Path
    sep : str or None
        Separator: a literal (``"\\t"``, ``"::"``, ``","``) or a name (``"tab"``, ``"comma"``,
        ...); None (default) sniffs it from the first lines.
    header : bool or None
        Whether the first line holds column names; None (default) guesses.
    columns : None, sequence or dict
        Which columns hold user, item, rating[, timestamp], as names (with a header) or 0-based
        positions, e.g. ``("userId", "movieId", "rating")`` or ``(1, 0, 2)``; default: header
        names when recognisable, else columns 0, 1, 2 (and 3 as timestamp when present).
    name : str, default the path.
    rating_range : (lo, hi), default (0, 10)
        Inclusive range of accepted ratings; None accepts any finite rating.
    cache : bool, default True
        Use / write the binary parse cache (see :mod:`mfcore.data.cache`).

    Raises :class:`~mfcore.errors.DataError` (file, line, column) on malformed input.
    """
    check_rating_range(rating_range)
    return _load_parsed(path, sep=sep, header=header, columns=columns,
                        rating_range=rating_range, name=name, cache=cache)


def from_dataframe(df, user_col="user", item_col="item", rating_col="rating",
                   timestamp_col=None, name="DataFrame",
                   rating_range=DEFAULT_RATING_RANGE) -> Ratings:
    """Ratings from a pandas DataFrame.

    User and item columns may hold any sortable ids (integers must be non-negative);
    ratings must be finite and inside ``rating_range``. ``timestamp_col`` (seconds, or a
    datetime column) defaults to ``"timestamp"`` when such a column exists, else zeros.
    """
    check_rating_range(rating_range)
    import pandas as pd
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"from_dataframe takes a pandas DataFrame with {user_col}, {item_col} "
                        f"and {rating_col} columns, got a {type(df).__name__}", name)
    cols = list(df.columns)
    if timestamp_col is None and "timestamp" in cols:
        timestamp_col = "timestamp"
    for role, col in (("user", user_col), ("item", item_col), ("rating", rating_col),
                      ("timestamp", timestamp_col)):
        if col is not None and col not in cols:
            raise DataError(f"the DataFrame has no {role} column {col!r} (columns: "
                            f"{', '.join(map(str, cols))})", name)
    if len(df) == 0:
        raise DataError("empty DataFrame: no ratings", name)

    def row_label(mask):
        pos = int(np.flatnonzero(mask)[0])
        return pos, df.index[pos]

    ids = {}
    for role, col in (("user", user_col), ("item", item_col)):
        values = df[col]
        missing = values.isna().to_numpy()
        if missing.any():
            pos, label = row_label(missing)
            raise DataError(f"missing {role} id at row {pos} (index {format_id(label)})", name)
        arr = values.to_numpy()
        if arr.dtype.kind == "O" and len(arr) and all(
                isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
                for v in arr):
            # Python ints (an object column): integer ids, not strings; one beyond 64 bits
            # is named, not turned (with every other id) into text
            big = np.array([not -2 ** 63 <= int(v) < 2 ** 63 for v in arr])
            if big.any():
                pos, label = row_label(big)
                raise DataError(f"{role} id {format_id(arr[pos])} at row {pos} (index "
                                f"{format_id(label)}) is too large: integer ids must be at most "
                                f"{2 ** 63 - 1:,} (2^63 - 1)", name)
            arr = arr.astype(np.int64)
        if arr.dtype.kind == "f":
            if np.any(arr != np.floor(arr)):
                pos, label = row_label(arr != np.floor(arr))
                raise DataError(f"{role} id {format_id(arr[pos])} at row {pos} (index "
                                f"{format_id(label)}) is not an integer", name)
        if arr.dtype.kind in "fu" and len(arr) and np.any(arr >= 2 ** 63):
            pos, label = row_label(arr >= 2 ** 63)
            raise DataError(f"{role} id {format_id(arr[pos])} at row {pos} (index "
                            f"{format_id(label)}) is too large: integer ids must be at most "
                            f"{2 ** 63 - 1:,} (2^63 - 1)", name)
        if arr.dtype.kind in "fu":
            arr = arr.astype(np.int64)
        if arr.dtype.kind in "iu" and len(arr) and arr.min() < 0:
            pos, label = row_label(arr < 0)
            raise DataError(f"negative {role} id {format_id(arr[pos])} at row {pos} (index "
                            f"{format_id(label)})", name)
        if arr.dtype.kind == "O":
            arr = arr.astype(str)
        ids[role] = arr
    try:
        rating = df[rating_col].to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise DataError(f"rating column {rating_col!r} is not numeric ({exc})", name) from None
    bad = ~np.isfinite(rating)
    if bad.any():
        pos, label = row_label(bad)
        raise DataError(f"rating {format_id(rating[pos])} at row {pos} (index "
                        f"{format_id(label)}) is not a finite number", name)
    if rating_range is not None:
        lo, hi = rating_range
        bad = (rating < lo) | (rating > hi)
        if bad.any():
            pos, label = row_label(bad)
            raise DataError(f"rating {rating[pos]:g} at row {pos} (index {format_id(label)}) out "
                            f"of range [{lo:g}, {hi:g}]", name)
    if timestamp_col is not None:
        ts = df[timestamp_col]
        if ts.isna().any():
            pos, label = row_label(ts.isna().to_numpy())
            raise DataError(f"missing timestamp at row {pos} (index {format_id(label)})", name)
        if ts.dtype.kind == "M":
            timestamps = ts.to_numpy(dtype="datetime64[s]").astype(np.int64)
        else:
            try:
                timestamps = ts.to_numpy(dtype=np.int64)
            except (TypeError, ValueError) as exc:
                raise DataError(f"timestamp column {timestamp_col!r} is not integer seconds "
                                f"({exc})", name) from None
    else:
        timestamps = np.zeros(len(df), dtype=np.int64)
    cols_idx = {}
    for role in ("user", "item"):
        arr = ids[role]
        if arr.dtype.kind in "iu":
            cols_idx[role] = densify(arr.astype(np.int64, copy=False))
        else:
            uniq, inv = np.unique(arr, return_inverse=True)
            cols_idx[role] = (inv.reshape(-1).astype(np.int32), uniq)
    (u, uids), (i, iids) = cols_idx["user"], cols_idx["item"]
    return Ratings(u, i, rating.astype(np.float32), np.ascontiguousarray(timestamps, np.int64),
                   uids, iids, {}, name)


# =========================================================================================
# builtin data sets
# =========================================================================================
def _manual_help(spec: DatasetSpec, home: Path) -> str:
    check = f"sha256 {spec.sha256}" if spec.sha256 else f"md5 {spec.md5}"
    return (f"Fetch {spec.url} ({check}) yourself, e.g. with a browser or "
            f"`curl -LO {spec.url}`, then either put the zip at {home / spec.filename} or unpack "
            f"it there so that {home / spec.folder / spec.ratings_file} exists; set "
            f"MFCORE_DATA_HOME to use another folder.")


def dataset_status(name, data_home=None) -> dict:
    """Whether a builtin set is present locally: ``{"name", "present", "kind"
    ("folder" | "zip" | None), "path", "size" (bytes on disk or None), "description"}``."""
    spec = BUILTIN_DATASETS[resolve_name(name)]
    home = _cache.data_home(data_home)
    folder = home / spec.folder
    zip_path = home / spec.filename
    out = {"name": spec.name, "present": False, "kind": None, "path": None, "size": None,
           "description": spec.description, "url": spec.url}
    if (folder / spec.ratings_file).is_file():
        size = 0
        for root, _dirs, files in os.walk(folder):
            for f in files:
                try:
                    size += os.path.getsize(os.path.join(root, f))
                except OSError:
                    pass
        out.update(present=True, kind="folder", path=str(folder), size=size)
    elif zip_path.is_file():
        out.update(present=True, kind="zip", path=str(zip_path), size=zip_path.stat().st_size)
    return out


def _check_not_cut_short(path, spec):
    """DataError when a builtin set's ratings file ends in the middle of a line. GroupLens
    writes every line whole, so such a file was cut short (an interrupted copy into the
    data home: only the archive is checked against its checksum); parsed as it is, its
    last line would pass with a truncated timestamp and most ratings missing."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
            fh.seek(0, os.SEEK_END)
            if fh.tell() == 0:
                return  # the parser says "empty file"
            fh.seek(-1, os.SEEK_END)
            last = fh.read(1)
    except OSError:
        return  # the parser reports what it cannot read
    if b"\x00" in head or head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return  # UTF-16 or binary: the parser names the encoding
    if last not in (b"\n", b"\r"):
        raise DataError(f"the file ends in the middle of a line: it looks cut short (an "
                        f"interrupted download or copy); unpack or fetch {spec.filename} again",
                        str(path))


def _check_not_in_the_way(folder, spec):
    """DataError when the data home holds something other than the set's folder and
    ratings file at their places (a file named like the folder, a folder or device named
    like the ratings file): downloading would not help, and would fail to unpack."""
    if folder.is_symlink() or folder.exists():
        if not folder.is_dir():
            raise DataError(f"{folder} is not a folder: {spec.name} is read from the folder "
                            f"its archive unpacks to; move it away (mfcore then downloads "
                            f"{spec.filename} again)")
        ratings = folder / spec.ratings_file
        if (ratings.is_symlink() or ratings.exists()) and not ratings.is_file():
            kind = ("a folder" if ratings.is_dir() else "a link to nothing"
                    if not ratings.exists() else "not a regular file (a device or a pipe)")
            raise DataError(f"{ratings} is {kind}: {spec.name}'s ratings must be the "
                            f"archive's file; remove it (mfcore then unpacks {spec.filename} "
                            f"again)")


def load_dataset(name, data_home=None, download=True, progress=None, cache=True) -> Ratings:
    """Load a builtin MovieLens data set.

    Parameters
    ----------
    name : one of :data:`BUILTIN_DATASETS` (``ml-100k``, ``ml-1m``, ``ml-10m``, ``ml-20m``,
        ``ml-25m``, ``ml-latest-small``).
    data_home : folder, default :func:`mfcore.data.cache.data_home` (``$MFCORE_DATA_HOME``
        or the user cache dir).
    download : bool, default True
        Fetch the archive when it is not in the data home. With False a missing set raises.
    progress : bool or None
        Download progress bar on stderr; None shows it only on a terminal.
    cache : bool, default True; use the binary parse cache.

    Returns :class:`Ratings` named after the set, with ``titles`` when the metadata file is
    present. Raises :class:`DownloadError` with manual instructions when the set is missing
    and cannot be fetched, :class:`DataError` when its files are malformed.
    """
    spec = BUILTIN_DATASETS[resolve_name(name)]
    home = _cache.data_home(data_home)
    folder = home / spec.folder
    _check_not_in_the_way(folder, spec)
    if not (folder / spec.ratings_file).is_file():
        if download or (home / spec.filename).is_file():
            folder = download_dataset(spec.name, data_home=home, progress=progress,
                                      allow_network=download)
        else:
            raise DownloadError(f"{spec.name} is not in the data home {home} and download=False. "
                                + _manual_help(spec, home))
    _check_not_cut_short(folder / spec.ratings_file, spec)
    titles = None
    if spec.titles_file:
        titles = (folder / spec.titles_file, spec.titles_kind, spec.titles_encoding)
    return _load_parsed(folder / spec.ratings_file, sep=spec.sep, header=spec.header,
                        columns=None, rating_range=DEFAULT_RATING_RANGE, name=spec.name,
                        titles=titles, cache=cache)


def load_grouplens_fold(fold, data_home=None, download=True, progress=None, cache=True):
    """GroupLens' MovieLens 100K fold ``u1`` .. ``u5`` as ``(train, test)``.

    When the data home holds GroupLens' own ``ml-100k/uK.base`` and ``uK.test`` they are
    read; otherwise the fold is cut from ``u.data`` as GroupLens' ``mku.sh`` does (test =
    rows ``20000 (K-1) .. 20000 K - 1`` in file order, :func:`~mfcore.data.grouplens_fold`).
    Both ways give the same rows; train and test share ``u.data``'s id maps (and titles).
    """
    from .splits import fold_number, grouplens_fold
    k = fold_number(fold)
    full = load_dataset("ml-100k", data_home=data_home, download=download, progress=progress,
                        cache=cache)
    folder = _cache.data_home(data_home) / BUILTIN_DATASETS["ml-100k"].folder
    base, test = folder / f"u{k}.base", folder / f"u{k}.test"
    if not (base.is_file() and test.is_file()):
        return grouplens_fold(full, k)
    parts = []
    for path in (base, test):
        raw = _load_parsed(path, sep="\t", header=False, columns=None,
                           rating_range=DEFAULT_RATING_RANGE, name=f"ml-100k u{k}", cache=cache)
        try:
            part = Ratings.from_arrays(raw.user_ids[raw.users], raw.item_ids[raw.items],
                                       raw.ratings, raw.timestamps, titles=full.titles,
                                       name=f"ml-100k u{k}", user_ids=full.user_ids,
                                       item_ids=full.item_ids)
        except DataError as exc:
            raise DataError(f"{exc} (an id that u.data does not have)", str(path)) from None
        parts.append(part)
    return parts[0], parts[1]


def download_dataset(name, data_home=None, progress=None, allow_network=True) -> Path:
    """Make sure a builtin set is unpacked in the data home; return its folder.

    Uses an unpacked folder if present, else a zip placed by hand in the data home
    (verified, unpacked, left in place), else downloads the zip (verified, unpacked, the zip
    removed). Nothing is left behind on failure.
    """
    spec = BUILTIN_DATASETS[resolve_name(name)]
    home = _cache.data_home(data_home)
    folder = home / spec.folder
    if (folder / spec.ratings_file).is_file():
        return folder
    if not _cache.ensure_writable_dir(home):
        raise DownloadError(f"{spec.name} is not in the data home {home}, which is read-only "
                            "or cannot be created. " + _manual_help(spec, home))
    manual_zip = home / spec.filename
    if manual_zip.is_file():
        try:
            _verify_file(manual_zip, spec)
        except DownloadError as exc:
            raise DownloadError(f"{manual_zip} is not the expected archive ({exc}); delete it. "
                                + _manual_help(spec, home)) from None
        _extract(manual_zip, spec, home)
        return folder
    if not allow_network:
        raise DownloadError(f"{spec.name} is not in the data home {home} and download=False. "
                            + _manual_help(spec, home))
    tmp = None
    try:  # created inside the try: a Ctrl-C right after creation still removes it
        fd, tmp = _temp_in(home, tempfile.mkstemp, prefix=f".{spec.filename}.", suffix=".part")
        os.close(fd)
        _fetch(spec, Path(tmp), progress)
        _extract(Path(tmp), spec, home)
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return folder


def _temp_in(home, make, **kwargs):
    """``make(dir=home, **kwargs)`` (mkstemp / mkdtemp) with a one-line error on failure."""
    try:
        return make(dir=home, **kwargs)
    except OSError as exc:
        raise DownloadError(f"cannot create a temporary file in the data home {home} "
                            f"({exc.strerror or exc})") from None


def _fetch(spec: DatasetSpec, dest: Path, progress) -> None:
    """Download spec.url into dest, verifying length and checksums on the fly."""
    home = dest.parent
    sha = hashlib.sha256()
    md5 = hashlib.md5()
    received = 0
    try:
        req = urllib.request.Request(spec.url, headers={"User-Agent": "mfcore"})
        with urllib.request.urlopen(req, timeout=60) as resp, open(dest, "wb") as out:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else spec.size
            with Progress(total, desc=f"downloading {spec.filename}", unit="B",
                          enabled=progress) as bar:
                while True:
                    chunk = resp.read(_CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    sha.update(chunk)
                    md5.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            if length and length.isdigit() and received != int(length):
                raise DownloadError(f"download of {spec.url} was truncated: got {received:,} of "
                                    f"{int(length):,} bytes. " + _manual_help(spec, home))
    except DownloadError:
        raise
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DownloadError(f"could not download {spec.name} from {spec.url} ({reason}). "
                            + _manual_help(spec, home)) from None
    try:
        _check(spec, received, sha.hexdigest(), md5.hexdigest())
    except DownloadError as exc:
        raise DownloadError(f"download of {spec.url} is corrupt: {exc}. "
                            + _manual_help(spec, home)) from None


def _check(spec, size, sha256, md5) -> None:
    if spec.size is not None and size != spec.size:
        raise DownloadError(f"size {size:,} bytes, expected {spec.size:,}")
    if spec.sha256 is not None and sha256 != spec.sha256:
        raise DownloadError(f"sha256 {sha256}, expected {spec.sha256}")
    if spec.md5 is not None and md5 != spec.md5:
        raise DownloadError(f"md5 {md5}, expected {spec.md5}")
    if spec.sha256 is None and spec.md5 is None:  # pragma: no cover - every spec pins one
        raise DownloadError("no pinned checksum to verify against")


def _verify_file(path: Path, spec: DatasetSpec) -> None:
    sha = hashlib.sha256()
    md5 = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            sha.update(chunk)
            md5.update(chunk)
    _check(spec, path.stat().st_size, sha.hexdigest(), md5.hexdigest())


def _safe_members(zf: zipfile.ZipFile, target: Path, source: str):
    """The zip's members, after rejecting absolute paths, ``..`` escapes and symlinks."""
    root = target.resolve()
    members = []
    for info in zf.infolist():
        name = info.filename
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise DownloadError(f"{source}: refusing to unpack symlink member {name!r}")
        posix = PurePosixPath(name.replace("\\", "/"))
        if posix.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
            raise DownloadError(f"{source}: refusing to unpack absolute path {name!r}")
        if ".." in posix.parts:
            raise DownloadError(f"{source}: refusing to unpack {name!r}, it points outside the "
                                "target folder")
        dest = (root / Path(*posix.parts)).resolve() if posix.parts else root
        if dest != root and root not in dest.parents:
            raise DownloadError(f"{source}: refusing to unpack {name!r}, it lands outside the "
                                "target folder")
        members.append((info, dest))
    return members


def _extract(zip_path: Path, spec: DatasetSpec, home: Path) -> None:
    """Unpack zip_path into a temp folder in home, then rename ``spec.folder`` into place."""
    tmpdir = None
    try:  # created inside the try: a Ctrl-C right after creation still removes it
        tmpdir = Path(_temp_in(home, tempfile.mkdtemp, prefix=f".{spec.name}.extract-"))
        try:
            with zipfile.ZipFile(zip_path) as zf:
                members = _safe_members(zf, tmpdir, str(zip_path.name))
                for info, dest in members:
                    if info.is_dir():
                        dest.mkdir(parents=True, exist_ok=True)
                        continue
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(dest, "wb") as out:
                        shutil.copyfileobj(src, out, _CHUNK)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
            raise DownloadError(f"{zip_path.name}: cannot unpack ({exc}). "
                                + _manual_help(spec, home)) from None
        unpacked = tmpdir / spec.folder
        if not (unpacked / spec.ratings_file).is_file():
            raise DownloadError(f"{zip_path.name} has no {spec.folder}/{spec.ratings_file}. "
                                + _manual_help(spec, home))
        (unpacked / _cache.OWNED_MARKER).write_text("unpacked by mfcore; safe to delete\n")
        target = home / spec.folder
        try:
            os.rename(unpacked, target)
        except OSError:
            if not (target / spec.ratings_file).is_file():  # not a concurrent winner: real error
                raise DownloadError(f"cannot move the unpacked {spec.folder} into {home}. "
                                    + _manual_help(spec, home)) from None
    finally:
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
