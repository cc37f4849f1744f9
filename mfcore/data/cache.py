"""Where mfcore keeps files, and the parsed-ratings binary cache.

* :func:`user_cache_dir`: ``$MFCORE_CACHE_DIR`` if set, else the platform's user cache
  folder + ``mfcore`` (Linux: ``$XDG_CACHE_HOME/mfcore`` or ``~/.cache/mfcore``; macOS:
  ``~/Library/Caches/mfcore``; Windows: ``%LOCALAPPDATA%\\mfcore\\Cache``).
* :func:`data_home`: ``$MFCORE_DATA_HOME`` if set, else :func:`user_cache_dir`. Builtin data
  sets live there as the official archives unpack (``<data home>/ml-1m/ratings.dat``).
* Parsed caches are uncompressed ``.npz`` files of plain arrays (loaded with
  ``allow_pickle=False``) tagged with a key (source size, mtime, parse options). They sit
  next to the source only inside a folder mfcore unpacked itself (it holds
  :data:`OWNED_MARKER`) and that is writable; otherwise under ``<user cache dir>/parsed/``,
  named by a hash of the source's absolute path. Writes are atomic (temp file, then
  ``os.replace``); when no place is writable, caching is silently skipped.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
from pathlib import Path

import numpy as np

from ..atomic import atomic_output

__all__ = ["user_cache_dir", "data_home", "is_writable_dir", "cache_file_for", "load_cache",
           "save_cache", "source_key", "ensure_writable_dir", "OWNED_MARKER", "CACHE_VERSION"]

OWNED_MARKER = ".mfcore-owned"
CACHE_VERSION = 1


def user_cache_dir() -> Path:
    """The per-user cache folder for mfcore (not created)."""
    env = os.environ.get("MFCORE_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "mfcore" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "mfcore"
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(os.path.expanduser(xdg)):
        base = Path(xdg).expanduser()
    else:
        base = Path.home() / ".cache"
    return base / "mfcore"


def data_home(path=None) -> Path:
    """Folder holding builtin data sets: ``path`` if given, else ``$MFCORE_DATA_HOME``, else
    :func:`user_cache_dir`. Not created here."""
    if path is not None:
        return Path(path).expanduser()
    env = os.environ.get("MFCORE_DATA_HOME")
    if env:
        return Path(env).expanduser()
    return user_cache_dir()


def is_writable_dir(path) -> bool:
    """True when ``path`` is an existing folder we may write into.

    Stricter than ``os.access``: a folder whose permission bits carry no write bit, or on a
    read-only mount, counts as read-only even for root (who would bypass the bits).
    """
    try:
        st = os.stat(path)
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode) or not (st.st_mode & 0o222):
        return False
    if hasattr(os, "statvfs"):
        try:
            if os.statvfs(path).f_flag & getattr(os, "ST_RDONLY", 1):
                return False
        except OSError:
            return False
    return os.access(path, os.W_OK | os.X_OK)


def ensure_writable_dir(path) -> bool:
    """Create ``path`` (and parents) if needed; True if it ends up a writable folder.

    Never creates anything under a read-only ancestor (checked with :func:`is_writable_dir`,
    so even root leaves read-only trees alone)."""
    path = Path(path)
    if path.exists():
        return is_writable_dir(path)
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not is_writable_dir(ancestor):
        return False
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return is_writable_dir(path)


def source_key(paths, **params) -> str:
    """A JSON key for a parse: each source's absolute path, size and mtime, plus options."""
    files = []
    for p in paths:
        if p is None:
            continue
        p = Path(p)
        try:
            st = p.stat()
            files.append([str(p.resolve()), st.st_size, st.st_mtime_ns])
        except OSError:
            files.append([str(p.resolve()), None, None])
    return json.dumps({"v": CACHE_VERSION, "files": files, "params": params}, sort_keys=True,
                      default=str)


def cache_file_for(source, tag: str = "") -> Path | None:
    """Where the parsed cache of ``source`` lives, or None when no writable place exists."""
    source = Path(source).resolve()
    folder = source.parent
    suffix = f".{tag}" if tag else ""
    if (folder / OWNED_MARKER).is_file() and is_writable_dir(folder):
        return folder / f".{source.name}{suffix}.mfcore.npz"
    base = user_cache_dir() / "parsed"
    if not ensure_writable_dir(base):
        return None
    digest = hashlib.sha256(str(source).encode("utf-8")).hexdigest()[:16]
    return base / f"{source.name}-{digest}{suffix}.npz"


def load_cache(path, key: str):
    """The arrays stored at ``path`` if its key equals ``key``; None if absent, stale or bad."""
    if path is None:
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if "__key__" not in z.files or str(z["__key__"]) != key:
                return None
            return {name: z[name] for name in z.files if name != "__key__"}
    except (OSError, ValueError, KeyError, EOFError, Exception):  # noqa: BLE001 - any bad cache is a miss
        return None


def save_cache(path, key: str, arrays: dict) -> bool:
    """Write ``arrays`` (plain numeric/bytes arrays) and ``key`` to ``path`` atomically.

    Returns False (and leaves nothing behind) when the folder is not writable."""
    if path is None:
        return False
    path = Path(path)
    folder = path.parent
    if not is_writable_dir(folder):
        return False
    try:
        with atomic_output(path) as fh:
            np.savez(fh, __key__=np.array(key), **arrays)
        return True
    except OSError:
        return False
