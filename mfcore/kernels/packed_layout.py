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
is one loop over a block, which LLVM turns into vector instructions.

Which blocks a row has, and whether the blocks are one ``ALIGN`` wide, is a
:class:`Mode`: a marker whose Numba type carries the three switches, so that the compiled
loops specialise on it (one compilation per mode actually used, every switch a
compile-time constant, every block offset of a narrow row too).
"""
import numpy as np
from numba import njit, types
from numba.extending import (NativeValue, models, overload, register_model, typeof_impl,
                             unbox)

from . import CORE

#: block widths are multiples of this many values (16 float32: one 64-byte cache line)
ALIGN = 16


class Mode:
    """The switches of a packed layout: ``occurrences`` (a ``g2`` block: Keras' Adam
    second moment from per-occurrence squares), ``per_sample`` (``l2`` and ``c`` blocks),
    ``narrow`` (blocks one ``ALIGN`` wide)."""

    __slots__ = ("occurrences", "per_sample", "narrow")

    def __init__(self, occurrences, per_sample, narrow):
        self.occurrences = bool(occurrences)
        self.per_sample = bool(per_sample)
        self.narrow = bool(narrow)

    @property
    def blocks(self) -> int:
        """Blocks per packed row: w, g, m, v, then g2, then l2 and c."""
        return 4 + int(self.occurrences) + 2 * int(self.per_sample)

    def __repr__(self):
        return (f"Mode(occurrences={self.occurrences}, per_sample={self.per_sample}, "
                f"narrow={self.narrow})")


class ModeType(types.Dummy):
    """Numba's type of a :class:`Mode`: one type per combination of switches."""

    def __init__(self, occurrences, per_sample, narrow):
        self.switches = (occurrences, per_sample, narrow)
        super().__init__(name=f"PackedMode{self.switches}")


@typeof_impl.register(Mode)
def _typeof_mode(value, context):
    return ModeType(value.occurrences, value.per_sample, value.narrow)


register_model(ModeType)(models.OpaqueModel)


@unbox(ModeType)
def _unbox_mode(typ, obj, c):
    return NativeValue(c.context.get_dummy_value())


def padded_width(cols) -> int:
    """The block width of a table with ``cols`` columns."""
    return -(-int(cols) // ALIGN) * ALIGN


def switches(mode):
    """``(occurrences, per_sample, narrow)`` of a :class:`Mode` (compiled code only,
    where they are compile-time constants)."""
    raise NotImplementedError("compiled code only")


@overload(switches, inline="always")
def _switches(mode):
    if isinstance(mode, ModeType):
        occurrences, per_sample, narrow = mode.switches

        def impl(mode):
            return occurrences, per_sample, narrow
        return impl


@njit(**CORE, inline="always")
def block_count(mode):
    """:attr:`Mode.blocks` in compiled code."""
    occurrences, per_sample, _ = switches(mode)
    return 4 + (1 if occurrences else 0) + (2 if per_sample else 0)


@njit(**CORE, inline="always")
def block_offsets(mode, width):
    """``(block, g, m, v, g2, l2, c)`` for rows of ``mode`` whose tables have ``width``
    padded columns: the block width (the constant ``ALIGN`` for narrow rows) and where
    each block starts (the weights at 0), unsigned; an absent block's offset is
    meaningless. Kernels index a row ``a[offset + c]`` with an unsigned ``c``: an index
    LLVM can prove non-negative gets no wrap-around test, and offsets from the row's own
    start let it vectorise loops that touch several blocks without a run-time overlap
    test when they are constants."""
    occurrences, per_sample, narrow = switches(mode)
    b = np.uint64(ALIGN) if narrow else np.uint64(width)
    g2 = np.uint64(4) * b
    l2 = g2 + b if occurrences else g2
    return b, b, np.uint64(2) * b, np.uint64(3) * b, g2, l2, l2 + b
