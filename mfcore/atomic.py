"""Atomic file output: write beside the target, rename over it only when complete.

* The data goes to a temporary file in the target's folder, named
  ``.<target name>.mfcore-<host>-<pid>-<random>.tmp``; only a complete write is renamed
  over the target, so the target is either its old self or the new file, never a part.
* The temporary file is removed on any error, on Ctrl-C (KeyboardInterrupt) and on
  SIGTERM/SIGHUP: while a write is under way those raise
  :class:`~mfcore.signals.Terminated` (when the program has no handler of its own); once
  the temporary file is gone the process still dies by that signal, as it would have.
* SIGKILL (or a power cut) leaves the temporary file behind. The name says which host
  and process wrote it, so the next atomic write into that folder removes leftovers whose
  process is gone, and any of ours not modified for :data:`STALE_SECONDS`.
* A symlink target is followed (the file it points to is replaced, the link stays); a
  target that exists but is not a regular file (a folder, ``/dev/null``, a FIFO) is
  refused with an OSError rather than replaced by a regular file.
* The new file gets the usual permissions (0666 minus the umask), like any new file.
"""
from __future__ import annotations

import errno
import os
import re
import secrets
import socket
import stat
import time
import zlib
from contextlib import contextmanager

from .signals import Terminated, interrupt_in, signals_as_exceptions

__all__ = ["atomic_output", "remove_stale_temp_files", "describe_file_type", "STALE_SECONDS",
           "TEMP_NAME_PATTERN"]

#: a temporary file of ours not modified for this long is a leftover, whoever wrote it
STALE_SECONDS = 600

#: the names of mfcore's temporary files: groups host tag, pid
TEMP_NAME_PATTERN = re.compile(r"^\..*\.mfcore-([0-9a-f]{6})-([0-9]+)-[0-9a-f]{8}\.tmp$",
                               re.DOTALL)

_HOST = format(zlib.crc32(socket.gethostname().encode("utf-8", "replace")) & 0xFFFFFF, "06x")
_NAME_KEEP = 120  # characters of the target's name kept in the temporary name


def describe_file_type(mode: int) -> str:
    """``'a folder'``, ``'a character device'``, ``'a named pipe (FIFO)'``... for a st_mode."""
    for test, text in ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link"),
                       (stat.S_ISREG, "a regular file")):
        if test(mode):
            return text
    return "not a regular file"  # pragma: no cover


def _temp_name(base: str) -> str:
    return f".{base[:_NAME_KEEP]}.mfcore-{_HOST}-{os.getpid()}-{secrets.token_hex(4)}.tmp"


def _pid_alive(pid: int) -> bool:
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


def remove_stale_temp_files(folder, max_age: float = STALE_SECONDS) -> list:
    """Remove mfcore's own leftover temporary files in ``folder``; return their paths.

    A file counts as a leftover when its name matches :data:`TEMP_NAME_PATTERN` and either
    it was written on this host by a process that no longer exists, or it was not modified
    for ``max_age`` seconds (a write in progress keeps its file fresh). Files of this very
    process are never touched, nor anything else in the folder. Errors are ignored.
    """
    removed = []
    try:
        entries = os.scandir(folder)
    except OSError:
        return removed
    now = time.time()
    me = os.getpid()
    with entries:
        for entry in entries:
            m = TEMP_NAME_PATTERN.match(entry.name)
            if m is None:
                continue
            host, pid = m.group(1), int(m.group(2))
            if host == _HOST and pid == me:
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            stale = now - st.st_mtime > max_age or (host == _HOST and not _pid_alive(pid))
            if stale:
                try:
                    os.unlink(entry.path)
                    removed.append(entry.path)
                except OSError:
                    pass
    return removed


def _target_path(path) -> str:
    """The file to replace: ``path`` with symlinks resolved; refuses non-regular files."""
    path = os.fspath(path)
    target = os.path.realpath(path)
    try:
        st = os.stat(target)
    except OSError:
        return target  # absent (or unreadable): the write reports any real problem
    if not stat.S_ISREG(st.st_mode):
        code = errno.EISDIR if stat.S_ISDIR(st.st_mode) else errno.EINVAL
        raise OSError(code, f"it is {describe_file_type(st.st_mode)}, not a regular file "
                            "that can be replaced", path)
    return target


def _unlink_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


@contextmanager
def _temp_then_replace(target, mode, encoding, newline):
    folder, base = os.path.split(target)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) \
        | getattr(os, "O_BINARY", 0)
    tmp = None
    try:
        for _ in range(100):
            # the name is recorded before the file exists, so an interrupt at any point
            # after its creation finds it in ``tmp``; a clash can only be with a leftover
            # of a dead process that had our pid (the name carries the pid and 32 random
            # bits), so removing that in the cleanup is harmless
            tmp = os.path.join(folder, _temp_name(base))
            try:
                fd = os.open(tmp, flags, 0o666)  # 0666 minus the umask, as any new file
            except FileExistsError:
                continue
            break
        else:  # pragma: no cover - 100 clashes of 32 random bits
            raise FileExistsError(errno.EEXIST, "cannot create a temporary file", folder)
        try:
            fh = os.fdopen(fd, mode, encoding=encoding, newline=newline)
        except BaseException:
            os.close(fd)
            raise
        with fh:
            yield fh
        os.replace(tmp, target)
        tmp = None
    except BaseException as exc:
        # a writer interrupted half-way may fail in its own cleanup (zipfile: "Can't close
        # the ZIP file while there is an open writing handle"): report the interrupt
        interrupt = interrupt_in(exc)
        if interrupt is not None and interrupt is not exc:
            raise interrupt from None
        raise
    finally:
        if tmp is not None:
            _unlink_quietly(tmp)


@contextmanager
def atomic_output(path, mode="wb", encoding=None, newline=None):
    """Yield a file object whose content replaces ``path`` only if the block succeeds.

    The data goes to a temporary file in the same folder (so the rename is atomic); on any
    error, Ctrl-C or SIGTERM/SIGHUP the temporary file is removed and ``path`` is left as it
    was. Leftovers of killed writers in that folder are removed first (see
    :func:`remove_stale_temp_files`). Raises OSError when ``path`` exists but is not a
    regular file (after following symlinks).
    """
    target = _target_path(path)
    remove_stale_temp_files(os.path.dirname(target))
    signum = None
    with signals_as_exceptions() as own_handlers:
        try:
            with _temp_then_replace(target, mode, encoding, newline) as fh:
                yield fh
        except Terminated as exc:
            if not own_handlers:
                raise  # the program's own handler raised it: let the program decide
            signum = exc.signum
    if signum is not None:
        # the temporary file is gone and the default handlers are back: die by the
        # signal, as the process would have without us
        os.kill(os.getpid(), signum)
        raise Terminated(signum)  # pragma: no cover - only if the signal did not kill us
