"""How much memory a ``fit`` needs, checked before anything big is allocated.

:func:`fit_footprint` adds up what one ``fit`` call allocates, from the model's
:class:`~mfcore.models.base.Design` (its tables and dense weights) and the data sizes:

- the parameter tables and dense weights;
- the optimizer state (``fit`` keeps Adam's two moments shaped like the tables, a step
  count per row, and for Adam the closed-form catch-up tables of an epoch);
- the gradient buffers (two rows of the widest table per table row, four int64 per row),
  and for the MF family under Adam the packed copies of the user and item tables;
- the packed rating records (training in data order and in epoch order, validation) and
  the predictions over them;
- the batch workspace of the kernel (for ``min(batch_size, n_train)`` ratings) and the one
  prediction uses;
- bookkeeping: the (user, item) pairs seen in training, per-row counts, small arrays;
- copies kept for safety: the weights and optimizer state before the fit (a warm restart),
  and the best epoch's (early stopping).

:func:`check_fits` compares the total with the memory available (:func:`available_memory`)
and raises :class:`~mfcore.errors.MemoryLimitError` with the figures, in one line, when it
does not fit. The estimate counts the large arrays only; Python, NumPy and the compiled
kernels are already loaded when it runs, so they are already out of "available".
"""
from __future__ import annotations

import os

import numpy as np

from ..errors import MemoryLimitError

__all__ = ["available_memory", "fit_footprint", "check_fits", "format_bytes",
           "parse_bytes", "MEMORY_LIMIT_ENV"]

#: environment variable that caps the memory mfcore assumes it may use (e.g. ``2GiB``)
MEMORY_LIMIT_ENV = "MFCORE_MEMORY_LIMIT"

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 10 ** 3, "kib": 1 << 10, "m": 1 << 20,
          "mb": 10 ** 6, "mib": 1 << 20, "g": 1 << 30, "gb": 10 ** 9, "gib": 1 << 30,
          "t": 1 << 40, "tb": 10 ** 12, "tib": 1 << 40}


def format_bytes(n) -> str:
    """``n`` bytes in a short human unit: ``512 B``, ``3.1 MiB``, ``872 GiB``."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            if unit == "B":
                return f"{int(n)} B"
            return f"{n:.3g} {unit}" if n < 100 else f"{n:,.0f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def parse_bytes(text) -> int:
    """``"2GiB"``, ``"500 MB"``, ``"1048576"`` -> bytes; ValueError when not a size."""
    s = str(text).strip().lower().replace(" ", "").replace("_", "")
    num = s.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = s[len(num):]
    if unit not in _UNITS or not num:
        raise ValueError(f"not a memory size: {text!r} (e.g. 2GiB, 500MB, 1048576)")
    value = float(num) * _UNITS[unit]
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"not a memory size: {text!r}")
    return int(value)


def _read_int(path):
    try:
        with open(path) as fh:
            text = fh.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _cgroup_room():
    """Bytes left under this process's cgroup memory limit (v2 or v1), or None."""
    try:
        with open("/proc/self/cgroup") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    best = None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, rel = parts
        if controllers == "":  # cgroup v2
            base = os.path.join("/sys/fs/cgroup", rel.lstrip("/"))
            limit = _read_int(os.path.join(base, "memory.max"))
            used = _read_int(os.path.join(base, "memory.current"))
        elif "memory" in controllers.split(","):
            base = os.path.join("/sys/fs/cgroup/memory", rel.lstrip("/"))
            limit = _read_int(os.path.join(base, "memory.limit_in_bytes"))
            used = _read_int(os.path.join(base, "memory.usage_in_bytes"))
        else:
            continue
        if limit is None or limit >= 1 << 60:  # "max" or the v1 "no limit" sentinel
            continue
        room = max(0, limit - (used or 0))
        best = room if best is None else min(best, room)
    return best


def available_memory() -> tuple[int | None, str]:
    """``(bytes, phrase)``: the memory a new allocation may use, and a phrase saying so
    with a ``{}`` for the figure (``"this machine has {} available"``).

    ``$MFCORE_MEMORY_LIMIT`` when set (a size such as ``2GiB``), else the least of the
    kernel's ``MemAvailable`` and the room left under a cgroup memory limit; on systems
    without ``/proc``, the physical memory. ``(None, ...)`` when nothing is known."""
    env = os.environ.get(MEMORY_LIMIT_ENV)
    if env:
        try:
            return parse_bytes(env), f"the limit is {{}} (${MEMORY_LIMIT_ENV}={env})"
        except ValueError as exc:
            raise MemoryLimitError(f"${MEMORY_LIMIT_ENV}: {exc}") from None
    avail = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        avail = None
    room = _cgroup_room()
    if room is not None and (avail is None or room < avail):
        return room, "this process's memory limit leaves {} available"
    if avail is not None:
        return avail, "this machine has {} available"
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), \
            "this machine has {} of memory"
    except (ValueError, OSError, AttributeError):
        return None, "unknown"


def fit_footprint(design, *, n_train, n_val, record_width, batch_size, optimizer,
                  warm_restart, early_stopping, packed_rows=False) -> dict:
    """Bytes one ``fit`` allocates, by part (see the module docstring). ``optimizer``: a
    :class:`mfcore.registry.Optimizer`; ``warm_restart``: the model already holds weights
    (fit keeps a copy of them until it succeeds); ``packed_rows``: the model trains Adam
    on packed copies of its user and item tables (:mod:`mfcore.engine.packed`)."""
    W = sum(int(s.rows) * int(s.cols) for s in design.tables) * 4
    rows = sum(int(s.rows) for s in design.tables)
    width = max([int(s.cols) for s in design.tables] + [1])
    dense = (int(design.theta_size) + int(design.state_size)) * 4
    theta = int(design.theta_size) * 4
    parts = {"tables": W + dense}
    n_batches = -(-max(1, n_train) // max(1, batch_size))
    batch = max(1, min(int(batch_size), max(1, n_train)))   # no batch exceeds the training set
    opt = 2 * W + 8 * rows + 2 * theta
    if optimizer.adam:
        opt += 48 * (n_batches + 402)
    parts[("Adam state" if optimizer.adam else "optimizer state")] = opt
    parts["gradient buffers"] = 2 * (rows + 1) * width * 4 + 32 * rows + theta
    if packed_rows and optimizer.adam:
        from .packed import packed_bytes
        per_sample = any(s.l2_mode == "per-sample" and np.any(s.l2_sample > 0)
                         for s in design.tables)
        users, items = design.tables[:2]
        parts["packed rows"] = packed_bytes(users.rows + items.rows, users.cols, batch, True,
                                            per_sample)
    parts["rating records"] = 4 * record_width * (3 * n_train + n_val) + 4 * (n_train + n_val)
    from ..models.base import prediction_chunk
    parts["batch workspace"] = 4 * int(design.workspace(batch))
    parts["prediction workspace"] = 4 * int(design.workspace(
        prediction_chunk(design, max(n_train, n_val, 1))))
    # what the model keeps about the training data (the seen items, per-row counts) and
    # the small arrays of one step: a fixed MiB covers those
    parts["bookkeeping"] = 12 * n_train + 16 * rows + (1 << 20)
    copies = (W + dense + opt) * (int(bool(warm_restart)) + int(early_stopping is not None))
    if copies:
        parts["safety copies"] = copies
    return parts


def check_fits(parts: dict, what="the model"):
    """Raise MemoryLimitError when the parts do not fit in the available memory."""
    need = sum(parts.values())
    avail, how = available_memory()
    if avail is None or need <= avail:
        return need
    big = sorted(((v, k) for k, v in parts.items() if v), reverse=True)
    detail = ", ".join(f"{k} {format_bytes(v)}" for v, k in big[:4])
    raise MemoryLimitError(f"{what} needs {format_bytes(need)} of memory ({detail}); "
                           + how.format(format_bytes(avail))
                           + ": use fewer factors, smaller layers or batches, or less data")
