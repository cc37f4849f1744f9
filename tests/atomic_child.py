"""Child process of tests/test_atomic.py: write through ``mfcore.atomic.atomic_output`` (or
run the ``mfcore`` command line) and stop at a chosen point until a signal arrives.

Usage: ``python atomic_child.py MODE TARGET [mfcore arguments...]``

MODE says where to stop; on reaching it the child prints ``READY <path>`` on stdout (the
temporary file's path, or ``-``) and sleeps, so the parent can send its signal at exactly
that point. If no signal ends the sleep the child prints ``NOT INTERRUPTED`` and exits 3.

* ``created``: right after the temporary file is created, before any byte is written;
* ``writing``: after 1 MiB of plain writes;
* ``member``: inside ``np.savez``, while the zip member ``a.npy`` is still open;
* ``cli-member=NAME``: run ``mfcore ARGS`` (TARGET unused) and stop while the zip member
  NAME (e.g. ``table.users.npy`` of a model file) is still open.
"""
from __future__ import annotations

import os
import signal
import sys
import time
import zipfile

# a background job of a non-interactive shell inherits SIGINT ignored: undo that
signal.signal(signal.SIGINT, signal.default_int_handler)


def stop(what="-"):
    print(f"READY {what}", flush=True)
    time.sleep(60)
    print("NOT INTERRUPTED", flush=True)
    sys.exit(3)


def stop_in_member_close(name):
    real_close = zipfile._ZipWriteFile.close
    stopped = []

    def close(self):
        if not self.closed and self._zinfo.filename == name and not stopped:
            stopped.append(name)  # once: the abandoned member is closed again when collected
            stop()
        return real_close(self)

    zipfile._ZipWriteFile.close = close


def main():
    mode, target, *args = sys.argv[1:]
    from mfcore.atomic import TEMP_NAME_PATTERN, atomic_output

    if mode.startswith("cli-member="):
        stop_in_member_close(mode.split("=", 1)[1])
        from mfcore.cli import main as cli
        cli(args, prog_name="mfcore")
        return
    if mode == "created":
        real_open = os.open

        def spy_open(path, flags, *rest, **kw):
            fd = real_open(path, flags, *rest, **kw)
            if TEMP_NAME_PATTERN.match(os.path.basename(os.fspath(path))):
                stop(os.fspath(path))
            return fd

        os.open = spy_open
        with atomic_output(target) as fh:
            fh.write(b"never written")
    elif mode == "writing":
        with atomic_output(target) as fh:
            fh.write(b"x" * (1 << 20))
            fh.flush()
            stop()
    elif mode == "member":
        import numpy as np
        stop_in_member_close("a.npy")
        with atomic_output(target) as fh:
            np.savez(fh, a=np.arange(1 << 18, dtype=np.float64), b=np.zeros(3))
    else:
        sys.exit(f"unknown mode {mode}")
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
