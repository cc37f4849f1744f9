"""The ``mfcore`` command: a thin click layer over the library.

Each sub-command lives in its own module and only parses options, calls the library and
prints. Errors the user can cause (:class:`mfcore.errors.MfcoreError`) print one line on
stderr and exit with status 1; usage errors exit with status 2 (click's convention).
Ctrl-C prints "interrupted" (exit 130); SIGTERM and SIGHUP print "terminated by SIGTERM"
(exit 143, 129): both unwind normally, so no temporary file is left behind.
Heavy imports (numba, pandas) happen inside commands so ``mfcore --help`` stays fast.
"""
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


class _Group(click.Group):
    """A click group that turns library errors into one clean line and exit code 1, and
    interrupts (Ctrl-C, SIGTERM, SIGHUP) into one line and 128 + the signal number."""

    def invoke(self, ctx):
        with signals_as_exceptions():
            try:
                return super().invoke(ctx)
            except MfcoreError as exc:
                click.echo(f"error: {exc}", err=True)
                sys.exit(1)
            except (KeyboardInterrupt, Terminated) as exc:
                _interrupted(exc)
            except BrokenPipeError:
                sys.exit(0)
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
