"""Reading (user, item) pairs to score, and raw-id text in the type of a model's ids."""
from __future__ import annotations

import csv
import os
import stat

import numpy as np

from ..bounds import plain_float, plain_int
from ..errors import DataError, ModelError
from .parsers import check_ratings_file
from .ratings import format_id


def parse_ids(tokens, model_ids, what, where=None):
    """Raw-id strings -> an array of the model's id type. ``where`` (path, line numbers)
    locates a bad token in the error message."""
    tokens = np.asarray(tokens, dtype=str)
    kind = np.asarray(model_ids).dtype.kind
    if kind not in "iuf":
        return tokens
    target = np.int64 if kind in "iu" else np.float64
    # Python's int() and float() also take "1_96" and non-ASCII digits: the ids of a
    # ratings file are plain ASCII numbers, and so must these be
    if set("".join(tokens.tolist())) <= (_INT_CHARS if kind in "iu" else _FLOAT_CHARS):
        try:
            return tokens.astype(target)
        except (ValueError, OverflowError):
            pass
    strict = plain_int if kind in "iu" else plain_float
    out = np.empty(len(tokens), dtype=target)
    for j, tok in enumerate(tokens):     # (surrounding whitespace, tabs and newlines pass)
        try:
            out[j] = target(strict(tok))
        except (ValueError, OverflowError) as exc:
            type_name = "an integer" if kind in "iu" else "a number"
            msg = f"{what} id {format_id(str(tok))} is not {type_name} like the model's {what} ids"
            if isinstance(exc, OverflowError):
                msg = (f"{what} id {format_id(str(tok).strip())} is too large: the model's "
                       f"{what} ids are 64-bit integers")
            if where is not None:
                raise DataError(msg, path=where[0], line=int(where[1][j]))
            raise ModelError(msg)
    return out


_INT_CHARS = frozenset("0123456789+- ")
_FLOAT_CHARS = frozenset("0123456789+-.eE ")


#: the smallest and largest timestamps accepted (1900-01-01 .. 2200-01-01, seconds, UTC)
TIMESTAMP_RANGE = (-2_208_988_800, 7_258_118_400)


def parse_timestamp(text, what="timestamp"):
    """Seconds since 1970-01-01 UTC (int) from ``text``: an integer number of seconds
    (``893286638``) or an ISO 8601 date or date-time (``1998-04-22``,
    ``1998-04-22T23:10:38``; UTC unless it names an offset). ValueError (saying what is
    wrong) otherwise."""
    import datetime as dt
    t = str(text).strip()
    try:
        value = plain_int(t)
    except ValueError:
        try:
            when = dt.datetime.fromisoformat(t)
        except ValueError:
            raise ValueError(f"{what} {t!r} is neither whole seconds since 1970-01-01 UTC "
                             f"nor an ISO 8601 date such as 1998-04-22") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
        value = int(when.timestamp())
    lo, hi = TIMESTAMP_RANGE
    if not lo <= value < hi:
        raise ValueError(f"{what} {t!r} is outside the years 1900 .. 2199")
    return value


def read_pairs(path, sep=None, with_timestamps=False):
    """``(users, items, line_numbers)`` (raw-id strings, as written) from a delimited file
    with a header naming ``user`` and ``item`` columns, or exactly two columns without one.

    With ``with_timestamps``: ``(users, items, line_numbers, timestamps)``, the file may
    also have a ``timestamp`` column named in its header (without a header, a third column
    is refused: it could as well be a rating): seconds or ISO dates
    (:func:`parse_timestamp`); ``timestamps`` is None when it has none. Blank lines are
    skipped; bad lines raise DataError naming the file and line (and column).
    """
    try:
        fifo = stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        fifo = False
    if not fifo:  # a pipe being written (<(...), /dev/stdin) is read; a folder or device not
        check_ratings_file(path, "pairs")
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:  # -sig: drops a BOM
            text = fh.read()
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path=path)
    except OSError as exc:
        raise DataError(f"cannot read the file ({exc.strerror})", path=path)
    # lines end at LF (CRLF and a lone CR too), as line numbers are counted by editors;
    # not at the form feeds and Unicode separators str.splitlines would also cut at
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    first = next((j for j, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise DataError("the file is empty: expected user,item pairs", path=path)
    if sep is None:
        head = lines[first]
        sep = next((c for c in (",", "\t", ";", "|") if c in head), " ")
    if len(sep) != 1:
        raise DataError(f"the separator must be one character, got {sep!r}", path=path)
    reader = csv.reader(lines[first:], delimiter=sep, skipinitialspace=sep == " ")
    users, items, where, stamps = [], [], [], []
    ucol = icol = ncols = tcol = None
    end = 0  # lines the reader has consumed: a quoted field may span several
    while True:
        lineno = first + end + 1  # where this record starts
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise DataError(f"not a delimited line ({exc})", path=path,
                            line=first + reader.line_num) from None
        end = reader.line_num
        if not fields or all(not f.strip() for f in fields):
            continue
        fields = [f.strip() for f in fields]
        if ncols is None:
            names = [f.lower() for f in fields]
            ncols = len(fields)
            if "user" in names and "item" in names:
                ucol, icol = names.index("user"), names.index("item")
                if with_timestamps and "timestamp" in names:
                    tcol = names.index("timestamp")
                continue
            named = [n for n in ("user", "item", "timestamp") if n in names]
            if named:
                lacking = " and ".join(n for n in ("user", "item") if n not in names)
                raise DataError(f"the header names {', '.join(named)} but no {lacking} "
                                f"column (columns: {', '.join(fields)})", path=path,
                                line=lineno)
            if ncols != 2:
                # a third column without a header could be a rating as well as a time
                raise DataError(f"expected 2 fields (user{sep}item) or a header naming the "
                                f"user and item"
                                + (" (and timestamp)" if with_timestamps else "")
                                + f" columns, got {ncols} field(s)", path=path, line=lineno)
            ucol, icol = 0, 1
        if len(fields) != ncols:
            raise DataError(f"expected {ncols} fields, got {len(fields)}", path=path,
                            line=lineno)
        u, i = fields[ucol], fields[icol]
        if not u or not i:
            raise DataError(f"empty {'user' if not u else 'item'} id", path=path, line=lineno)
        if tcol is not None:
            try:
                stamps.append(parse_timestamp(fields[tcol]))
            except ValueError as exc:
                raise DataError(str(exc), path=path, line=lineno, column=tcol + 1) from None
        users.append(u)
        items.append(i)
        where.append(lineno)
    if not users:
        raise DataError("no user,item pairs in the file", path=path)
    if with_timestamps:
        return users, items, where, (np.asarray(stamps, np.int64) if tcol is not None
                                     else None)
    return users, items, where
