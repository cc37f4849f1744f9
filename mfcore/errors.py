"""Exceptions mfcore raises on purpose.

Every error a user can cause derives from :class:`MfcoreError`; the command line prints
its message as one line on stderr and exits with status 1, never with a traceback.
"""


class MfcoreError(Exception):
    """Base class for errors caused by input, configuration or environment."""


class DataError(MfcoreError, ValueError):
    """Malformed ratings data. The message names the source and, when known, line and column.

    Attributes: ``path`` (str or None), ``line`` (1-based or None), ``column`` (1-based or None).
    """

    def __init__(self, message, path=None, line=None, column=None):
        where = []
        if path is not None:
            where.append(str(path))
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column}")
        full = f"{', '.join(where)}: {message}" if where else message
        super().__init__(full)
        self.path, self.line, self.column = path, line, column
        self.reason = message


class DownloadError(MfcoreError):
    """A data set could not be downloaded, verified or unpacked."""


class ModelError(MfcoreError, ValueError):
    """Bad hyper-parameters, an unfitted model, unknown users/items, or a bad model file."""


class UnknownIdsError(ModelError):
    """Users or items the model never saw (``predict``/``evaluate`` with the raising policy)."""


class TrainingDiverged(MfcoreError):
    """Training diverged: a loss or weight became NaN or infinite, the loss passed the
    divergence bound (:data:`mfcore.engine.trainer.DIVERGENCE_FACTOR`), or the initial
    weights already predict non-finite or absurd ratings (``cause == "init"``).

    ``fit`` leaves the model as it was before the call (unfitted if it was). Attributes:
    ``epoch`` (1-based epoch counted from the model's first, None for the initial
    weights), ``cause`` (``"init"`` or ``"learning-rate"``), ``history`` (the epochs of
    the failed fit, ``diverged=True``).
    """

    def __init__(self, message, epoch=None, cause=None, history=None):
        super().__init__(message)
        self.epoch, self.cause, self.history = epoch, cause, history


class MemoryLimitError(MfcoreError, MemoryError):
    """What was asked for needs more memory than is available (the message gives both
    figures). Raised before the large arrays are allocated."""


class OutputError(MfcoreError):
    """An output file that must not or cannot be written (it is an input, it exists and is
    not what the command writes, its folder is missing...). Raised before any work starts."""
