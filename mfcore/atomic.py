"""Atomic file output: write beside the target, rename over it only when complete."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager


@contextmanager
def atomic_output(path, mode="wb", encoding=None, newline=None):
    """Yield a file object whose content replaces ``path`` only if the block succeeds.

    The data goes to a temporary file in the same folder (so the rename is atomic); on any
    error the temporary file is removed and ``path`` is left as it was. The new file gets
    the usual permissions (0644 before umask), not mkstemp's 0600.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as fh:
            yield fh
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
        tmp = None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
