"""Small helpers the commands share to keep their promises (kept apart from the command
modules so that those stay thin)."""
from __future__ import annotations

import contextlib
import os

from ..errors import MemoryLimitError, TrainingDiverged


@contextlib.contextmanager
def nothing_saved(save_path):
    """Around training: a failed fit saves nothing, and its message says so (the file a
    ``--save`` names is left as it was)."""
    try:
        yield
    except (TrainingDiverged, MemoryLimitError) as exc:
        if not save_path:
            tail = "nothing was saved"
        elif os.path.exists(save_path):
            tail = f"{save_path} was left as it was"
        else:
            tail = f"{save_path} was not written"
        raise type(exc)(f"{exc}; {tail}") from None
