"""The one place that maps a kernel family's name to its compiled code.

Numba cannot cache a function that receives another jitted function as an argument, so the
shared loops (:mod:`mfcore.engine.loop`) receive a *family marker* instead: a
:class:`Family` value whose Numba type (:class:`FamilyType`) carries the family's name. The
functions below resolve to that family's kernel while Numba compiles a loop, so each family
gets its own compiled, disk-cached loop and compiles only its own kernel.

A model names its family (``kernel = "mf"``); :func:`family` gives the marker. Adding a
family: its module under ``kernels/`` (``touch``, ``forward_backward``, ``predict``,
optionally ``sgd_block`` and ``packed_forward_backward``) and one entry in :data:`FAMILIES`.
"""
from numba import types
from numba.extending import (NativeValue, models, overload, register_model, typeof_impl,
                             unbox)

from . import baseline, mf, nn, timesvdpp

#: kernel family name -> module
FAMILIES = {"mf": mf, "nn": nn, "baseline": baseline, "timesvdpp": timesvdpp}


class Family:
    """The marker of a kernel family (pass it to the compiled loops)."""

    __slots__ = ("name",)

    def __init__(self, name):
        if name not in FAMILIES:
            raise ValueError(f"unknown kernel family {name!r}")
        self.name = name

    def __repr__(self):
        return f"Family({self.name!r})"


class FamilyType(types.Dummy):
    """Numba's type of a :class:`Family`: one type per family, so that compiled code
    specialises on it (a namedtuple would not do: Numba's call dispatch tells tuples apart
    by their items only, not by their class)."""

    def __init__(self, family):
        self.family = family
        super().__init__(name=f"KernelFamily({family})")


@typeof_impl.register(Family)
def _typeof_family(value, context):
    return FamilyType(value.name)


register_model(FamilyType)(models.OpaqueModel)


@unbox(FamilyType)
def _unbox_family(typ, obj, c):
    return NativeValue(c.context.get_dummy_value())


def family(name) -> Family:
    """The marker that selects kernel family ``name`` in compiled code."""
    return Family(name)


def has_fused_sgd(name) -> bool:
    """Whether family ``name`` has a fused per-sample SGD kernel (``sgd_block``)."""
    return hasattr(FAMILIES[name], "sgd_block")


def has_fused_adam(name) -> bool:
    """Whether family ``name`` trains batched Adam on packed rows
    (``packed_forward_backward``, :mod:`mfcore.engine.packed`)."""
    return hasattr(FAMILIES[name], "packed_forward_backward")


def _module(marker):
    return FAMILIES[marker.family] if isinstance(marker, FamilyType) else None


# The functions below are only called from compiled code; their implementation is the
# family's own function, chosen from the marker's type at compile time.
def touch(fam, T, P, S, start, n, K):
    """Record every row records ``start .. start+n-1`` read (see engine.contract)."""
    raise NotImplementedError("compiled code only")


def forward_backward(fam, T, P, S, start, n, R, ws, seed, step, training):
    """Emit the batch's mean-squared-error row gradients; return its sum of squared errors."""
    raise NotImplementedError("compiled code only")


def predict(fam, T, P, S, start, n, out, ws):
    """Write the predictions for records ``start .. start+n-1`` into ``out[:n]``."""
    raise NotImplementedError("compiled code only")


def sgd_block(fam, T, P, S, start, end, lr, ws, stride, first):
    """Fused per-sample SGD over records ``start .. end-1`` visited in the order
    ``start + (first + stride * j) % (end - start)`` (see :func:`has_fused_sgd`)."""
    raise NotImplementedError("compiled code only")


def packed_forward_backward(fam, P, S, start, n, PK, first_item, width, ws):
    """Add the gradients of records ``start .. start+n-1`` into the packed user and item
    rows; return (sum of squared errors, per-sample L2 penalty) (see :func:`has_fused_adam`)."""
    raise NotImplementedError("compiled code only")


@overload(touch, inline="always")
def _touch(fam, T, P, S, start, n, K):
    mod = _module(fam)
    if mod is not None:
        f = mod.touch

        def impl(fam, T, P, S, start, n, K):
            f(T, P, S, start, n, K)
        return impl


@overload(forward_backward, inline="always")
def _forward_backward(fam, T, P, S, start, n, R, ws, seed, step, training):
    mod = _module(fam)
    if mod is not None:
        f = mod.forward_backward

        def impl(fam, T, P, S, start, n, R, ws, seed, step, training):
            return f(T, P, S, start, n, R, ws, seed, step, training)
        return impl


@overload(predict, inline="always")
def _predict(fam, T, P, S, start, n, out, ws):
    mod = _module(fam)
    if mod is not None:
        f = mod.predict

        def impl(fam, T, P, S, start, n, out, ws):
            f(T, P, S, start, n, out, ws)
        return impl


@overload(sgd_block, inline="always")
def _sgd_block(fam, T, P, S, start, end, lr, ws, stride, first):
    mod = _module(fam)
    if mod is not None and hasattr(mod, "sgd_block"):
        f = mod.sgd_block

        def impl(fam, T, P, S, start, end, lr, ws, stride, first):
            return f(T, P, S, start, end, lr, ws, stride, first)
        return impl


@overload(packed_forward_backward, inline="always")
def _packed_forward_backward(fam, P, S, start, n, PK, first_item, width, ws):
    mod = _module(fam)
    if mod is not None and hasattr(mod, "packed_forward_backward"):
        f = mod.packed_forward_backward

        def impl(fam, P, S, start, n, PK, first_item, width, ws):
            return f(P, S, start, n, PK, first_item, width, ws)
        return impl
