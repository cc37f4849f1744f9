"""Reading (user, item) pairs to score, and raw-id text in the type of a model's ids."""
from __future__ import annotations

import csv

import numpy as np

from ..errors import DataError, ModelError
from .ratings import format_id


def parse_ids(tokens, model_ids, what, where=None):
    """Raw-id strings -> an array of the model's id type. ``where`` (path, line numbers)
    locates a bad token in the error message."""
    tokens = np.asarray(tokens, dtype=str)
    kind = np.asarray(model_ids).dtype.kind
    if kind not in "iuf":
        return tokens
    target = np.int64 if kind in "iu" else np.float64
    try:
        return tokens.astype(target)
    except (ValueError, OverflowError):
        pass
    for j, tok in enumerate(tokens):
        try:
            target(int(tok) if kind in "iu" else float(tok))
        except (ValueError, OverflowError):
            type_name = "an integer" if kind in "iu" else "a number"
            msg = f"{what} id {format_id(str(tok))} is not {type_name} like the model's {what} ids"
            if where is not None:
                raise DataError(msg, path=where[0], line=int(where[1][j]))
            raise ModelError(msg)
    raise ModelError(f"cannot read the {what} ids")  # pragma: no cover


def read_pairs(path, sep=None):
    """``(users, items, line_numbers)`` (raw-id strings, as written) from a delimited file
    with a header naming ``user`` and ``item`` columns, or exactly two columns without one.

    Blank lines are skipped; bad lines raise DataError naming the file and line.
    """
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            text = fh.read()
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path=path)
    except OSError as exc:
        raise DataError(f"cannot read the file ({exc.strerror})", path=path)
    lines = text.splitlines()
    first = next((j for j, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise DataError("the file is empty: expected user,item pairs", path=path)
    if sep is None:
        head = lines[first]
        sep = next((c for c in (",", "\t", ";", "|") if c in head), " ")
    if len(sep) != 1:
        raise DataError(f"the separator must be one character, got {sep!r}", path=path)
    reader = csv.reader(lines[first:], delimiter=sep, skipinitialspace=sep == " ")
    users, items, where = [], [], []
    ucol = icol = ncols = None
    for offset, fields in enumerate(reader):
        lineno = first + 1 + offset
        if not fields or all(not f.strip() for f in fields):
            continue
        fields = [f.strip() for f in fields]
        if ncols is None:
            names = [f.lower() for f in fields]
            ncols = len(fields)
            if "user" in names and "item" in names:
                ucol, icol = names.index("user"), names.index("item")
                continue
            if ncols != 2:
                raise DataError(f"expected 2 fields (user{sep}item) or a header naming the "
                                f"user and item columns, got {ncols} field(s)",
                                path=path, line=lineno)
            ucol, icol = 0, 1
        if len(fields) != ncols:
            raise DataError(f"expected {ncols} fields, got {len(fields)}", path=path,
                            line=lineno)
        u, i = fields[ucol], fields[icol]
        if not u or not i:
            raise DataError(f"empty {'user' if not u else 'item'} id", path=path, line=lineno)
        users.append(u)
        items.append(i)
        where.append(lineno)
    if not users:
        raise DataError("no user,item pairs in the file", path=path)
    return users, items, where
