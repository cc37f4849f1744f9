"""Model files: ``.npz`` of plain arrays plus JSON metadata; no pickle, validated on load.

Layout version 2 (written by mfcore 0.2.0)::

    meta               uint8 bytes of a JSON object: format "mfcore-model", version 2,
                       model (CLI name), params, epochs_trained, global_mean, rating_min,
                       rating_max, n_train, history, data_source, tables [[name, rows, cols]]
    table.<name>       every parameter table, float32 (rows, cols)
    theta, state       dense weights and non-trainable state, float32
    user_ids, item_ids raw id of each index, strictly increasing
    user_counts, item_counts, seen_indptr, seen_items   what training saw (CSR per user)
    title_ids, title_texts                               titles, when the data had them
    context.<name>     what a model learned about its data besides parameters (time axis,
                       who rated what), for the models that have it

Version 1 (mfcore 0.1.0) stored the ``users``/``items`` tables as ``U``/``I`` and the
kernel's ``spec``/``fspec``; it still loads (the spec is checked against the one the
hyper-parameters give). The kernel settings are not part of version 2: they are rebuilt
from the hyper-parameters, so their layout can change without breaking files.
"""
from __future__ import annotations

import json
import math
import os
import stat
import zipfile

import numpy as np

from ..atomic import atomic_output
from ..errors import ModelError

FORMAT = "mfcore-model"
LAYOUT_VERSION = 2
READABLE_VERSIONS = (1, 2)
_BOOKKEEPING = ("user_ids", "item_ids", "user_counts", "item_counts", "seen_indptr",
                "seen_items")


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _plain_ids(ids):
    ids = np.asarray(ids)
    return ids.astype(str) if ids.dtype == object else ids


def save_model(model, path, keep_samples=None) -> str:
    """Write ``model`` to ``path`` atomically (see the module docstring; ``keep_samples``:
    see :meth:`RatingModel.save`)."""
    model._require_fitted()
    if keep_samples is not None:
        if getattr(model, "posterior_", None) is None:
            raise ModelError("keep_samples applies to models fitted with optimizer='mcmc'")
        if isinstance(keep_samples, bool) or not isinstance(keep_samples, (int, np.integer)) \
                or keep_samples < 0:
            raise ModelError(f"keep_samples must be a non-negative integer, got {keep_samples!r}")
    built, now = getattr(model, "_built_params", None), model._build_key()
    if built is not None and built != now:
        changed = ", ".join(f"{k} {built.get(k)!r} -> {now.get(k)!r}" for k in sorted(now)
                            if built.get(k) != now.get(k))
        raise ModelError(f"the model's parameters changed since it was fitted ({changed}); "
                         f"its weights are still the fitted ones, so fit again before saving, "
                         f"or set the parameters back")
    path = os.fspath(path)
    tables = model.tables_
    meta = {
        "format": FORMAT, "version": LAYOUT_VERSION, "model": model.name,
        "params": _jsonable(model.get_params()),
        "epochs_trained": int(model.epochs_trained_),
        "global_mean": model.global_mean_, "rating_min": model.rating_min_,
        "rating_max": model.rating_max_, "n_train": int(model.n_train_),
        "history": model.history_.as_dict() if model.history_ is not None else None,
        "data_source": _jsonable(model.data_source_),
        "tables": [[s.name, s.rows, s.cols] for s in tables.specs],
    }
    titles = getattr(model, "titles_", {}) or {}
    keys = list(titles)
    arrays = {f"table.{name}": tables.view(name) for name in tables.names}
    arrays.update({f"context.{k}": np.asarray(v)
                   for k, v in model._saved_context(keep_samples).items()})
    arrays.update({
        "theta": model.theta_, "state": model.state_,
        "user_ids": _plain_ids(model.user_ids_), "item_ids": _plain_ids(model.item_ids_),
        "user_counts": model.user_counts_, "item_counts": model.item_counts_,
        "seen_indptr": model.seen_indptr_, "seen_items": model.seen_items_,
        "title_ids": _plain_ids(np.asarray(keys)) if keys else np.zeros(0, np.int64),
        "title_texts": np.asarray([titles[k] for k in keys], dtype=str) if keys
        else np.zeros(0, "U1"),
        "meta": np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8),
    })
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ModelError(f"cannot save to {path}: folder {folder} does not exist")
    try:
        with atomic_output(path) as fh:
            np.savez(fh, **arrays)
    except OSError as exc:
        raise ModelError(f"cannot save to {path}: {exc.strerror or exc}") from None
    return path


def _check_regular(path):
    """ModelError unless ``path`` is a regular file (or absent: np.load says so): a model
    archive is read by seeking, so a pipe would block and a device never ends."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        kind = ("a named pipe" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
                else "a device")
        raise ModelError(f"{path}: is {kind}, not a model file (a model is an .npz archive, "
                         f"read from a regular file)")


def _unreadable_member(name, exc) -> str:
    """Why the archive member ``name`` could not be read, in words (one line)."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, ValueError) and "allow_pickle" in text:
        return (f"not an mfcore model file: its array {name!r} holds Python objects "
                f"(refused: loading them could run code)")
    if isinstance(exc, zipfile.BadZipFile):
        why = f"is damaged ({text})"
    elif isinstance(exc, RuntimeError) and ("password" in text or "encrypt" in text):
        why = "is encrypted"
    elif isinstance(exc, MemoryError):
        why = "declares a shape too large to hold in memory"
    else:
        why = f"cannot be read ({text})"
    return f"a corrupt model file: its array {name!r} {why}"


class _File:
    """The arrays and metadata of one model file, with checks that name the file."""

    def __init__(self, path):
        self.path = path
        _check_regular(path)
        try:
            z = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise ModelError(f"{path}: no such model file") from None
        except IsADirectoryError:
            raise ModelError(f"{path}: is a folder, not a model file") from None
        except Exception:  # zipfile/ValueError/OSError: not an npz of plain arrays
            raise ModelError(f"{path}: not an mfcore model file") from None
        if not hasattr(z, "files"):  # a bare .npy
            raise ModelError(f"{path}: not an mfcore model file (a single array, not a "
                             f"model archive)")
        with z:
            self.arrays = {}
            for k in z.files:
                try:
                    self.arrays[k] = z[k]
                except Exception as exc:
                    raise ModelError(f"{path}: {_unreadable_member(k, exc)}") from None
        raw = self.arrays.pop("meta", None)
        try:
            meta = json.loads(bytes(raw).decode("utf-8")) if raw is not None else None
        except (ValueError, TypeError):
            meta = None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ModelError(f"{path}: not an mfcore model file")
        self.meta = meta

    def fail(self, what):
        raise ModelError(f"{self.path}: {what}")

    def field(self, key, kind, check=None, what=None):
        if key not in self.meta:
            self.fail(f"metadata lacks {key!r}")
        value = self.meta[key]
        if kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) \
                and math.isfinite(value)
        elif kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, kind)
        if not ok or (check is not None and not check(value)):
            self.fail(f"metadata {key!r} is {value!r}, expected {what or kind.__name__}")
        return value

    def array(self, key, kinds, ndim=1):
        a = self.arrays.get(key)
        if a is None:
            self.fail(f"array {key!r} is missing")
        if a.dtype.kind not in kinds or a.ndim != ndim:
            self.fail(f"array {key!r} has dtype {a.dtype} and {a.ndim} dimension(s); "
                      f"expected {ndim}")
        return a

    def weights(self, key, shape):
        a = self.arrays.get(key)
        if a is None:
            self.fail(f"array {key!r} is missing")
        if a.shape != tuple(shape) or a.dtype != np.float32:
            self.fail(f"array {key!r} has shape {a.shape} {a.dtype}, expected "
                      f"{tuple(shape)} float32 for these hyper-parameters")
        if not np.all(np.isfinite(a)):
            self.fail(f"array {key!r} holds NaN or infinite values")
        return a


def _check_ids(f, key):
    ids = f.array(key, "iuUf")
    if len(ids) == 0:
        f.fail(f"array {key!r} is empty")
    if ids.dtype.kind == "f" and not np.all(np.isfinite(ids)):
        f.fail(f"array {key!r} holds NaN or infinite ids")
    if len(ids) > 1 and not np.all(ids[1:] > ids[:-1]):
        f.fail(f"array {key!r} is not strictly increasing (ids must be sorted and unique)")
    return ids


def _data_source(f):
    """``data_source`` (where the model's training data came from), each field checked."""
    from .. import registry
    from ..bounds import is_seed
    source = f.meta.get("data_source") or {}
    if not isinstance(source, dict):
        f.fail("metadata 'data_source' must be an object")

    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 1

    checks = {
        "dataset": (lambda v: v in registry.DATASETS, "a builtin data set name"),
        "data": (lambda v: isinstance(v, str) and v != "" and "\0" not in v, "a path"),
        "sha256": (lambda v: isinstance(v, str) and len(v) == 64
                   and all(c in "0123456789abcdef" for c in v), "a SHA-256 in hex"),
        "sep": (lambda v: isinstance(v, str) and v != "", "a separator"),
        "header": (lambda v: isinstance(v, bool), "true or false"),
        "split": (lambda v: v in registry.SPLITS, "one of " + ", ".join(registry.SPLITS)),
        "split_seed": (is_seed, "a seed"),
        "train_fraction": (number, "a number in (0, 1)"),
    }
    for key, (ok, what) in checks.items():
        value = source.get(key)
        if value is not None and not ok(value):
            f.fail(f"metadata 'data_source.{key}' is {value!r}, expected {what}")
    return source


def _index_array(f, key):
    """A 1-d integer array of counts or indices as int64, every value in [0, 2**62]
    (unsigned values that would wrap, or negative ones, are refused)."""
    a = f.array(key, "iu")
    if len(a) and (a.min() < 0 or a.max() > 1 << 62):
        f.fail(f"array {key!r} holds negative or absurdly large values")
    return a.astype(np.int64)


def load_model(path):
    """Load a model written by :meth:`RatingModel.save` (layout 1 or 2), validating every
    field and invariant before use; a bad file raises ModelError naming the problem."""
    from . import MODELS
    from ..engine.tables import ParameterTables
    path = os.fspath(path)
    f = _File(path)
    version = f.meta.get("version")
    if version not in READABLE_VERSIONS:
        f.fail(f"model format version {version!r} is not supported (this mfcore reads "
               f"versions {', '.join(map(str, READABLE_VERSIONS))})")
    name = f.field("model", str)
    cls = MODELS.get(name)
    if cls is None:
        f.fail(f"unknown model {name!r}")
    params = f.field("params", dict)
    try:
        model = cls(**params)
        model._check()
    except (TypeError, ModelError) as exc:
        f.fail(f"bad hyper-parameters in model file ({exc})")
    epochs = f.field("epochs_trained", int, lambda v: 0 <= v < 1 << 62,
                     "a non-negative integer below 2**62")
    mean = f.field("global_mean", float, what="a finite number")
    lo = f.field("rating_min", float, what="a finite number")
    hi = f.field("rating_max", float, lambda v: v >= lo, "a finite number >= rating_min")
    n_train = f.meta.get("n_train", 0)
    if isinstance(n_train, bool) or not isinstance(n_train, int) or n_train < 0:
        f.fail(f"metadata 'n_train' is {n_train!r}, expected a non-negative integer")
    source = _data_source(f)
    user_ids, item_ids = _check_ids(f, "user_ids"), _check_ids(f, "item_ids")
    n_users, n_items = len(user_ids), len(item_ids)
    counts_u = _index_array(f, "user_counts")
    counts_i = _index_array(f, "item_counts")
    ptr = _index_array(f, "seen_indptr")
    seen = _index_array(f, "seen_items")
    if len(counts_u) != n_users or len(counts_i) != n_items or len(ptr) != n_users + 1:
        f.fail("user/item bookkeeping arrays do not match the id maps")
    if ptr[0] != 0 or np.any(np.diff(ptr) < 0) or ptr[-1] != len(seen) \
            or not np.array_equal(np.diff(ptr), counts_u):
        f.fail("inconsistent seen-items index (seen_indptr)")
    if len(seen) and (seen.min() < 0 or seen.max() >= n_items):
        f.fail("seen_items holds item indices outside the model")
    if np.any(counts_i < 0) or counts_i.sum() != len(seen):
        f.fail("item_counts do not match seen_items")

    model.user_ids_, model.item_ids_ = user_ids, item_ids
    model.user_counts_, model.item_counts_ = counts_u.astype(np.int64), counts_i.astype(np.int64)
    model.seen_indptr_, model.seen_items_ = ptr.astype(np.int64), seen.astype(np.int32)
    model.global_mean_ = float(mean)
    model.rating_min_, model.rating_max_ = float(lo), float(hi)
    model.n_train_ = n_train
    context = {k[len("context."):]: v for k, v in f.arrays.items() if k.startswith("context.")}
    try:
        model._restore_context(context)
    except (ValueError, KeyError, TypeError) as exc:
        f.fail(f"the model's data context is missing or inconsistent ({exc})")
    design = model._design(n_users, n_items)
    if version == 1:
        if [s.name for s in design.tables] != ["users", "items"]:
            f.fail(f"a version-1 file cannot hold model {name!r}")
        keys = {"users": "U", "items": "I"}
    else:
        listed = f.meta.get("tables")
        want = [[s.name, s.rows, s.cols] for s in design.tables]
        if listed != want:
            f.fail(f"tables {listed!r} do not match the hyper-parameters ({want!r})")
        keys = {s.name: f"table.{s.name}" for s in design.tables}
    weights = {s.name: f.weights(keys[s.name], (s.rows, s.cols)) for s in design.tables}
    theta = f.weights("theta", (design.theta_size,))
    state = f.weights("state", (design.state_size,))
    if version == 1:
        spec, fspec = f.arrays.get("spec"), f.arrays.get("fspec")
        want_spec, want_fspec = model._v1_kernel_settings(design)
        if spec is None or fspec is None or not np.array_equal(spec, want_spec) \
                or spec.dtype.kind not in "iu" or fspec.shape != np.shape(want_fspec) \
                or not np.allclose(fspec, want_fspec):
            f.fail("kernel settings do not match the hyper-parameters")
    model._install(design, ParameterTables(design.tables, weights), theta.copy(), state.copy())
    model._built_params = model._build_key()
    model.epochs_trained_ = epochs
    model.optimizer_state_ = None
    model.data_source_ = source
    title_ids, title_texts = f.arrays.get("title_ids"), f.arrays.get("title_texts")
    if title_ids is None or title_texts is None or len(title_ids) != len(title_texts):
        f.fail("title arrays are missing or of different lengths")
    model.titles_ = {k.item() if hasattr(k, "item") else k: str(t)
                     for k, t in zip(title_ids, title_texts)}
    model.history_ = _history(f)
    return model


def _history(f):
    from ..engine.mcmc import SamplerHistory
    from ..engine.trainer import History
    hist = f.meta.get("history")
    if not hist:
        return None
    if not isinstance(hist, dict):
        f.fail("metadata 'history' must be an object")
    mcmc = isinstance(hist.get("settings"), dict) and hist["settings"].get("optimizer") == "mcmc"
    h = SamplerHistory() if mcmc else History()
    fields = h.as_dict()
    for k, v in hist.items():
        if k not in fields:
            continue
        default = fields[k]
        if isinstance(default, list):
            if not isinstance(v, list) or not all(
                    v_ is None or (isinstance(v_, (int, float)) and not isinstance(v_, bool))
                    for v_ in v):
                f.fail(f"metadata 'history.{k}' must be a list of numbers")
        elif k == "best_epoch":
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                f.fail(f"metadata 'history.best_epoch' is {v!r}, expected a positive integer")
        elif isinstance(default, bool):
            if not isinstance(v, bool):
                f.fail(f"metadata 'history.{k}' must be true or false")
        elif isinstance(default, (int, float)) and not isinstance(default, bool):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                f.fail(f"metadata 'history.{k}' must be a number")
        elif isinstance(default, dict):
            if not isinstance(v, dict):
                f.fail(f"metadata 'history.{k}' must be an object")
        setattr(h, k, v)
    return h
