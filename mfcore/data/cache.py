"""Where mfcore keeps files, and the parsed-ratings binary cache.

* :func:`user_cache_dir`: ``$MFCORE_CACHE_DIR`` if set, else the platform's user cache
  folder + ``mfcore`` (Linux: ``$XDG_CACHE_HOME/mfcore`` or ``~/.cache/mfcore``; macOS:
  ``~/Library/Caches/mfcore``; Windows: ``%LOCALAPPDATA%\\mfcore\\Cache``).
* :func:`data_home`: ``$MFCORE_DATA_HOME`` if set, else :func:`user_cache_dir`. Builtin data
  sets live there as the official archives unpack (``<data home>/ml-1m/ratings.dat``).
* Parsed caches (``.mfcache``) hold plain numeric arrays behind a JSON header, read
  straight into fresh arrays (:func:`load_cache`; no pickle, no zip). Each is tagged with
  a key: the parse options and each source's size and XXH64 of its bytes
  (:func:`source_key`, :mod:`mfcore.data.fasthash`). The content, not the modification
  time, is what counts: an edit that keeps the size and restores the mtime (``cp -p``,
  ``rsync -t``, ``tar`` do) is still seen. Hashing an ml-1m sized file (24 MB) costs
  about 1.3 ms (SHA-256: 15 ms; parsing it: ~80 ms), so a cached load hashes the source
  and reads the cache in less time than the zipped ``.npz`` of mfcore 0.1.0 took to read
  alone. The SHA-256 of the ratings file, which model files record, is computed only when
  asked for (:class:`~mfcore.data.ratings.SourceDigest`).
  Caches sit next to the source only inside a folder mfcore unpacked itself (it holds
  :data:`OWNED_MARKER`) and that is writable; otherwise under ``<user cache dir>/parsed/``,
  named by a hash of the source's absolute path. Writes are atomic (temp file, then
  ``os.replace``); when no place is writable, caching is silently skipped.
"""
from __future__ import annotations

import hashlib
import json
import mmap
import os
import stat
import struct
import sys
from pathlib import Path

import numpy as np

from ..atomic import atomic_output
from .fasthash import file_xxh64

__all__ = ["user_cache_dir", "data_home", "is_writable_dir", "cache_file_for", "load_cache",
           "save_cache", "read_cache", "source_key", "file_digest", "ensure_writable_dir", "OWNED_MARKER",
           "CACHE_VERSION", "CACHE_SUFFIX"]

OWNED_MARKER = ".mfcore-owned"
#: 2: keyed on content (SHA-256), no longer on mtime; 3: keyed on XXH64, own file format
CACHE_VERSION = 3
CACHE_SUFFIX = ".mfcache"
#: a cache file starts with these 8 bytes, then the format version and the header's length
#: (two little-endian uint32), then the header (UTF-8 JSON: the key, ``meta``, and per
#: array its name, dtype, shape and offset), then from the next multiple of 64 bytes the
#: arrays, each at a multiple of 64
_MAGIC = b"\x93MFCACHE"
_PREFIX = struct.Struct("<8sII")
_ALIGN = 64
_MAX_HEADER = 1 << 20


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


def file_digest(path) -> str:
    """SHA-256 (hex) of the bytes of ``path`` (what model files record of their data).

    SHA-256 because data sets publish SHA-256 sums to compare with, and CPUs with SHA
    instructions (most x86-64 since ~2017, ARMv8) hash it at over 1 GB/s. Raises OSError
    if unreadable."""
    with open(path, "rb") as fh:
        return _sha256_of(fh, os.fstat(fh.fileno()).st_size)


def source_key(paths, **params) -> str:
    """A JSON key for a parse: each source's absolute path, size and XXH64, plus the
    options.

    A source that cannot be read gets ``None`` for size and hash (so its later appearance
    changes the key)."""
    files = []
    for p in paths:
        if p is None:
            continue
        p = Path(p)
        try:
            with open(p, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                files.append([str(p.resolve()), size, file_xxh64(fh)])
        except OSError:
            files.append([str(p.resolve()), None, None])
    return json.dumps({"v": CACHE_VERSION, "files": files, "params": params}, sort_keys=True,
                      default=str)


def _sha256_of(fh, size) -> str:
    """SHA-256 (hex) of the open file ``fh`` through a memory map (hashlib releases the GIL
    over the whole map)."""
    if size == 0:
        return hashlib.sha256(b"").hexdigest()
    with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        return hashlib.sha256(mm).hexdigest()


def file_states(paths) -> list:
    """What the file system says of each source (None entries skipped): resolved path, size,
    modification and status-change times (ns), inode; None for one that cannot be read.
    Any write to a file changes its status-change time, which no user call can set back
    (unlike the modification time): comparing states taken before and after a parse tells
    whether a source changed during it, without hashing it again."""
    out = []
    for p in paths:
        if p is None:
            continue
        p = Path(p)
        try:
            st = p.stat()
            out.append((str(p.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns,
                        st.st_ino))
        except OSError:
            out.append((str(p.resolve()), None))
    return out


def cache_file_for(source, tag: str = "") -> Path | None:
    """Where the parsed cache of ``source`` lives, or None when no writable place exists."""
    source = Path(source).resolve()
    folder = source.parent
    suffix = f".{tag}" if tag else ""
    if (folder / OWNED_MARKER).is_file() and is_writable_dir(folder):
        return folder / f".{source.name}{suffix}{CACHE_SUFFIX}"
    base = user_cache_dir() / "parsed"
    if not ensure_writable_dir(base):
        return None
    digest = hashlib.sha256(os.fsencode(str(source))).hexdigest()[:16]
    return base / f"{source.name}-{digest}{suffix}{CACHE_SUFFIX}"


def _data_start(header_length):
    """Where the arrays of a cache file start: past the header, at a multiple of 64."""
    return -(-(_PREFIX.size + header_length) // _ALIGN) * _ALIGN


def _readable_dtype(text):
    """The dtype named ``text`` if a cache may hold it (native plain numbers), else None."""
    try:
        dt = np.dtype(str(text))
    except TypeError:
        return None
    if dt.kind not in "biuf" or not dt.isnative or dt.itemsize > 8 or dt.hasobject:
        return None
    return dt


def load_cache(path, key: str):
    """``(arrays, meta)`` stored at ``path`` if its key equals ``key``; None if absent,
    stale or damaged in any way (the header is checked before any array is read: every
    dtype a plain native number, every array inside the file)."""
    got = _read(path, key)
    return None if got is None else got[1:]


def read_cache(path):
    """``(key, arrays, meta)`` of the cache file at ``path`` whatever its key (for
    inspection), or None when it is not a readable cache file."""
    return _read(path, None)


def _read(path, key):
    if path is None:
        return None
    try:
        with open(path, "rb", buffering=0) as fh:
            size = os.fstat(fh.fileno()).st_size
            prefix = fh.read(_PREFIX.size)
            if len(prefix) != _PREFIX.size:
                return None
            magic, version, length = _PREFIX.unpack(prefix)
            if magic != _MAGIC or version != CACHE_VERSION or length > min(size, _MAX_HEADER):
                return None
            header = json.loads(fh.read(length).decode("utf-8"))
            if not isinstance(header, dict) or not isinstance(header.get("key"), str) \
                    or (key is not None and header["key"] != key):
                return None
            base = _data_start(length)
            arrays = {}
            for name, dtype, shape, offset in header["arrays"]:
                dt = _readable_dtype(dtype)
                if (dt is None or not isinstance(name, str) or name in arrays
                        or not all(isinstance(d, int) and d >= 0 for d in shape)
                        or not isinstance(offset, int) or offset < 0 or offset % _ALIGN):
                    return None
                out = np.empty(tuple(shape), dt)
                if base + offset + out.nbytes > size:
                    return None
                fh.seek(base + offset)
                view = memoryview(out).cast("B")
                got = 0
                while got < out.nbytes:
                    n = fh.readinto(view[got:])
                    if not n:
                        return None
                    got += n
                arrays[name] = out
            meta = header.get("meta", {})
            return (header["key"], arrays, meta) if isinstance(meta, dict) else None
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError, MemoryError):
        return None


def save_cache(path, key: str, arrays: dict, meta: dict | None = None) -> bool:
    """Write ``arrays`` (plain numeric arrays), ``key`` and ``meta`` (JSON) to ``path``
    atomically. Returns False (and leaves nothing behind) when the folder is not
    writable."""
    if path is None:
        return False
    path = Path(path)
    folder = path.parent
    if not is_writable_dir(folder):
        return False
    arrays = {name: np.ascontiguousarray(a) for name, a in arrays.items()}

    entries, at = [], 0
    for name, a in arrays.items():
        entries.append([name, a.dtype.str, list(a.shape), at])
        at = -(-(at + a.nbytes) // _ALIGN) * _ALIGN
    header = json.dumps({"key": key, "meta": meta or {}, "arrays": entries}).encode("utf-8")
    base = _data_start(len(header))
    try:
        with atomic_output(path) as fh:
            fh.write(_PREFIX.pack(_MAGIC, CACHE_VERSION, len(header)))
            fh.write(header)
            at = _PREFIX.size + len(header)
            for (_, _, _, offset), a in zip(entries, arrays.values()):
                fh.write(b"\0" * (base + offset - at))
                fh.write(memoryview(a).cast("B") if a.size else b"")
                at = base + offset + a.nbytes
        return True
    except OSError:
        return False
