"""The ``mfcore`` command: a thin click layer over the library.

Each sub-command lives in its own module and only parses options, calls the library and
prints. Errors the user can cause (:class:`mfcore.errors.MfcoreError`) print one line on
stderr and exit with status 1; usage errors (a bad option value, a missing file named by
an option) print one line too and exit with status 2 (click's convention), and an output
that cannot be written (standard output on a full disk) prints one line and exits 1.
Ctrl-C prints "interrupted" (exit 130); SIGTERM and SIGHUP print "terminated by SIGTERM"
(exit 143, 129): both unwind normally, so no temporary file is left behind.
Heavy imports (numba, pandas) happen inside commands so ``mfcore --help`` stays fast.
"""
import errno
import io
import os
import sys

import click

from ..errors import MfcoreError
from ..signals import Terminated, interrupt_in, signals_as_exceptions


def _silence_unraisable(unraisable):
    """After an interrupt, objects abandoned half-way (a zip archive whose member was being
    written) complain when collected at exit; that noise is not for the user."""


def _interrupted(exc):
    sys.unraisablehook = _silence_unraisable
    if isinstance(exc, Terminated):
        click.echo(str(exc), err=True)
        sys.exit(exc.exit_code)
    click.echo("interrupted", err=True)
    sys.exit(130)


def _one_line(text):
    """``text`` on one line: its lines joined by spaces (click's messages and file names
    holding a newline would otherwise break the one-line promise)."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _usage_error(exc):
    path = exc.ctx.command_path if getattr(exc, "ctx", None) is not None else "mfcore"
    hint = f" (see '{path} --help')" if isinstance(exc, click.UsageError) else ""
    click.echo(f"error: {_one_line(exc.format_message())}{hint}", err=True)
    sys.exit(exc.exit_code)


#: what a failed write to standard output raises (a full disk or quota, a device error)
_WRITE_ERRNOS = {errno.ENOSPC, errno.EIO, errno.EFBIG, errno.EDQUOT, errno.EBADF}


def _os_error(exc):
    """An OSError the library did not turn into a message: one line. A failed write to
    standard output (a full disk) also points standard output at the null device, so that
    the interpreter's final flush cannot fail again with a traceback."""
    if exc.filename is None and exc.errno in _WRITE_ERRNOS:
        try:
            fd = os.open(os.devnull, os.O_WRONLY)
            os.dup2(fd, sys.stdout.fileno())
            os.close(fd)
        except Exception:  # no real file descriptor (a test runner's capture): no flush
            pass
        click.echo(f"error: cannot write standard output: {exc.strerror}", err=True)
    else:
        click.echo(f"error: {_one_line(exc)}", err=True)
    sys.exit(1)


class _ClosedStdout(io.TextIOBase):
    """Standard output when the process started without one (``>&-``): writing to it is
    an error (EBADF, reported by :func:`_os_error`), where Python would drop the text
    silently and exit 0. A command that prints nothing still succeeds."""

    def writable(self):
        return True

    def write(self, text):
        if text:
            raise OSError(errno.EBADF, "it is closed")
        return 0


class _Group(click.Group):
    """A click group that turns library errors into one clean line and exit code 1, and
    interrupts (Ctrl-C, SIGTERM, SIGHUP) into one line and 128 + the signal number."""

    def invoke(self, ctx):
        if sys.stdout is None:
            sys.stdout = _ClosedStdout()
        with signals_as_exceptions():
            try:
                rv = super().invoke(ctx)
                if sys.stdout is not None:
                    sys.stdout.flush()  # a full disk shows here, not in the exit's flush
                return rv
            except MfcoreError as exc:
                click.echo(f"error: {_one_line(exc)}", err=True)
                sys.exit(1)
            except click.ClickException as exc:
                _usage_error(exc)
            except (KeyboardInterrupt, Terminated) as exc:
                _interrupted(exc)
            except BrokenPipeError:
                sys.exit(0)
            except OSError as exc:
                _os_error(exc)
            except Exception as exc:
                # an interrupt that surfaced as another error (cleanup code failing half-way)
                interrupt = interrupt_in(exc)
                if interrupt is None:
                    raise
                _interrupted(interrupt)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mfcore")
def main():
    """mfcore: fast from-scratch rating-prediction models (MF, biased MF, NN, mixed).

    \b
    Examples:
      mfcore datasets info ml-100k
      mfcore train --dataset ml-100k --model mfb --factors 10
      mfcore gradcheck
    """


def _register():
    from . import datasets as _datasets  # noqa: F401  (adds the `datasets` group)
    from . import train as _train  # noqa: F401  (adds `train` and `gradcheck`)
    from . import use as _use  # noqa: F401  (adds `evaluate`, `predict`, `recommend`, `similar`)
    from . import bench as _bench  # noqa: F401  (adds `bench`)
    from . import compare as _compare  # noqa: F401  (adds `compare`)
    from . import tune as _tune  # noqa: F401  (adds `cv` and `tune`)


_register()
