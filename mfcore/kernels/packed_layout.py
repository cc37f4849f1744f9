"""Packed rows: the layout of the fused batched Adam path (:mod:`mfcore.engine.packed`)
and of the kernels that train on it.

A packed row holds, one after the other, blocks of ``width`` values for one table row:
its weights, its summed gradient in the current step, Adam's two moments, and the
optional blocks::

    w | g | m | v [| g2] [| l2 | c]

``g2`` (Keras' ``adam``) is the step's sum of squared per-occurrence gradients; ``l2`` and
``c`` (per-sample L2) are each column's coefficient and centre, constant. ``width`` is the
table's column count rounded up to a multiple of ``ALIGN`` (16 float32: a cache line);
columns past the table's width are zero and stay zero (their gradient is zero). A row's
weights, gradient and moments thus share a few adjacent cache lines, and every update
is one loop over a block whose length and offsets are known per table: LLVM turns it
into vector instructions.
"""
import numpy as np
from numba import njit

from . import CORE

#: block widths are multiples of this many values (16 float32: one 64-byte cache line)
ALIGN = 16


@njit(**CORE, inline="always")
def padded_width(cols):
    """The block width of a table with ``cols`` columns (``.py_func`` from Python)."""
    return (cols + ALIGN - 1) // ALIGN * ALIGN


@njit(**CORE, inline="always")
def block_count(occurrences, per_sample):
    """Blocks per packed row: w, g, m, v, then g2 (Keras' per-occurrence moment), then l2
    and c (per-sample L2) (``.py_func`` from Python)."""
    return 4 + (1 if occurrences else 0) + (2 if per_sample else 0)


@njit(**CORE, inline="always")
def block_offsets(block, occurrences, per_sample):
    """``(g, m, v, g2, l2, c)``: where each block of a packed row starts (the weights at
    0), unsigned, for blocks ``block`` wide; an absent optional block's offset is
    meaningless. Kernels index a row ``a[offset + c]`` with an unsigned ``c``: an index LLVM
    can prove non-negative gets no wrap-around test, and offsets from the row's own start
    let it vectorise loops that touch several blocks."""
    b = np.uint64(block)
    g2 = np.uint64(4) * b
    l2 = g2 + b if occurrences else g2
    return b, np.uint64(2) * b, np.uint64(3) * b, g2, l2, l2 + b
