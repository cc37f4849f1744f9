"""Named positions in flat arrays, defined once.

A compiled kernel reads its settings from a flat ``int64`` array (``spec``) and a layer
program from records in that array. Instead of bare offsets (``spec[r + 7]``) every such
array has a *layout*: a namedtuple instance mapping each field name to its position::

    MF = fields("MF", "k bias sigmoid")        # MF.k == 0, MF.bias == 1, MF.sigmoid == 2
    spec = pack(MF, k=10, bias=1, sigmoid=0)   # array([10, 1, 0])
    unpack(MF, spec)                           # {'k': 10, 'bias': 1, 'sigmoid': 0}

Numba treats a module-level namedtuple as a constant, so ``spec[MF.bias]`` in a kernel
compiles to a fixed offset: the builder (``pack``), the kernels and ``describe``
(``unpack``) share one definition.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

__all__ = ["fields", "pack", "unpack"]


def fields(name: str, names: str, start: int = 0):
    """A namedtuple instance whose field ``f`` holds the position of ``f`` (from ``start``)."""
    keys = names.split()
    return namedtuple(name, keys)(*range(start, start + len(keys)))


def pack(layout, size: int | None = None, dtype=np.int64, /, **values) -> np.ndarray:
    """An array holding ``values`` at their layout positions (zeros elsewhere; ``size``
    entries, default up to the last position). Every field must be given, none unknown."""
    unknown = set(values) - set(layout._fields)
    missing = set(layout._fields) - set(values)
    if unknown or missing:
        raise ValueError(f"{type(layout).__name__}: unknown fields {sorted(unknown)}, "
                         f"missing fields {sorted(missing)}")
    out = np.zeros(size if size is not None else max(layout) + 1, dtype)
    for key, value in values.items():
        out[getattr(layout, key)] = value
    return out


def unpack(layout, array, offset: int = 0) -> dict:
    """``{field: array[offset + position]}`` for every field of ``layout``."""
    return {key: array[offset + pos].item() for key, pos in zip(layout._fields, layout)}
