"""Termination signals as exceptions, so that cleanup code (``finally``) runs.

Python turns SIGINT into :class:`KeyboardInterrupt`, but SIGTERM (``kill``, a job
scheduler, ``timeout``) and SIGHUP (the terminal closed) kill the process on the spot, so
no ``finally`` block runs and half-written temporary files stay behind.
:func:`signals_as_exceptions` makes them raise :class:`Terminated` instead, for as long as
it is active. It only replaces handlers that are still the default ones: a handler the
program installed, or a signal ignored on purpose (``nohup``), is left alone.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

__all__ = ["Terminated", "signals_as_exceptions", "interrupt_in", "TERMINATION_SIGNALS"]

#: the signals :func:`signals_as_exceptions` turns into :class:`Terminated`
TERMINATION_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP")
                            if hasattr(signal, name))


class Terminated(BaseException):
    """A termination signal arrived (see :func:`signals_as_exceptions`).

    Derives from BaseException, like KeyboardInterrupt, so ``except Exception`` does not
    swallow it. ``signum`` is the signal number; ``exit_code`` the shell's 128 + signum.
    """

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = int(signum)

    @property
    def signal_name(self) -> str:
        try:
            return signal.Signals(self.signum).name
        except ValueError:  # pragma: no cover - not a known signal
            return f"signal {self.signum}"

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def __str__(self):
        return f"terminated by {self.signal_name}"


def _raise_terminated(signum, frame):
    raise Terminated(signum)


@contextmanager
def signals_as_exceptions():
    """While active, SIGTERM and SIGHUP raise :class:`Terminated` in the main thread.

    Yields True when at least one handler was installed (only possible in the main
    thread, and only over a default handler); the previous handlers come back on exit.
    """
    installed = {}
    if threading.current_thread() is threading.main_thread():
        for signum in TERMINATION_SIGNALS:
            try:
                if signal.getsignal(signum) is signal.SIG_DFL:
                    installed[signum] = signal.signal(signum, _raise_terminated)
            except (ValueError, OSError):  # pragma: no cover - e.g. an embedded interpreter
                pass
    try:
        yield bool(installed)
    finally:
        for signum, previous in installed.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)


def interrupt_in(exc: BaseException | None):
    """The KeyboardInterrupt or :class:`Terminated` that ``exc`` is or was raised while
    handling (following ``__context__`` / ``__cause__``), else None.

    Cleanup code that fails because it was interrupted half-way (``zipfile`` refusing to
    close an archive whose member is still open, say) raises its own error with the
    interrupt as its context; the interrupt is what the caller should see.
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, (KeyboardInterrupt, Terminated)):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ if exc.__cause__ is not None else exc.__context__
    return None
