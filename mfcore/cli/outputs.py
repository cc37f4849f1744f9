"""Checks on the files a command is about to write, made before any work starts.

Every command that writes a file (``train --save``, ``predict --output``,
``compare --plot``) calls :func:`check_output` first, so that a bad output path costs no
training time and never costs data:

* never write over an input: the output is compared with every file the command reads by
  device and inode (``os.stat``), so another spelling, a symlink or a hard link of the
  input is caught as well, and ``--force`` does not override this;
* ``train --save`` replaces an existing file only when it is an mfcore model (a ``.npz``
  whose ``meta`` member is JSON with ``"format": "mfcore-model"``), unless ``--force``;
* predictions and plots never replace an mfcore model (a model costs training time);
* the output must be a regular file (or not exist yet) in an existing, writable folder.

Problems raise :class:`~mfcore.errors.OutputError`: one line naming the option and path.
"""
from __future__ import annotations

import json
import os
import stat
import zipfile

from ..errors import OutputError

__all__ = ["check_output", "is_mfcore_model", "builtin_input_files"]

_META_MAX = 1 << 24  # a model's meta member is a few KB; do not read a huge one


def is_mfcore_model(path) -> bool:
    """True when ``path`` is a model file written by mfcore (its ``meta`` member says so)."""
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo("meta.npy")
            if info.file_size > _META_MAX:
                return False
            import numpy as np
            with zf.open(info) as fh:
                raw = np.lib.format.read_array(fh, allow_pickle=False)
        meta = json.loads(raw.tobytes().decode("utf-8"))
        return isinstance(meta, dict) and meta.get("format") == "mfcore-model"
    except Exception:  # noqa: BLE001 - anything unreadable is simply not a model
        return False


def builtin_input_files(name):
    """The files a builtin data set is read from (present or not): ``[(path, what)]``."""
    from ..data import BUILTIN_DATASETS, data_home
    spec = BUILTIN_DATASETS[name]
    home = data_home()
    out = [(home / spec.folder / spec.ratings_file, f"the ratings file of {name}"),
           (home / spec.filename, f"the archive of {name}")]
    if spec.titles_file:
        out.append((home / spec.folder / spec.titles_file, f"the titles file of {name}"))
    return out


def _same_file(st, path):
    try:
        other = os.stat(path)
    except (OSError, ValueError):
        return False
    return (st.st_dev, st.st_ino) == (other.st_dev, other.st_ino)


def check_output(path, option, inputs=(), *, models_only=False, force=False,
                 dash_for_stdout=False):
    """Raise OutputError unless this command may write ``path``.

    ``option`` names the option in messages (``"--save"``); ``inputs`` lists the files the
    command reads, as ``(path, description)`` pairs (``None`` paths are skipped);
    ``models_only`` refuses to replace an existing file that is not an mfcore model unless
    ``force``; the other outputs (predictions, plots) never replace an mfcore model.
    ``"-"`` (stdout) always passes; ``dash_for_stdout`` says so when the path is a device
    or a pipe (``/dev/stdout``).
    """
    if path is None or path == "-":
        return
    path = os.fspath(path)
    if not path.strip():
        raise OutputError(f"{option}: the file name is empty")
    where = f"{option} {path}"
    if not os.path.isabs(path):
        try:
            os.getcwd()
        except FileNotFoundError:
            raise OutputError(f"{where}: a relative path, and the working directory no "
                              f"longer exists (it was deleted); cd to a folder that exists "
                              f"or give an absolute path") from None
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise OutputError(f"{where}: cannot check the output ({exc.strerror or exc})") from None
    if st is not None:
        if not stat.S_ISREG(st.st_mode):
            from ..atomic import describe_file_type
            hint = "; use - for stdout" if dash_for_stdout and not stat.S_ISDIR(st.st_mode) \
                else "; give a file name"
            raise OutputError(f"{where}: it is {describe_file_type(st.st_mode)}, not a regular "
                              f"file{hint}")
        for src, what in inputs:
            if src is not None and _same_file(st, src):
                same = "" if os.path.abspath(src) == os.path.abspath(path) else f" ({src})"
                raise OutputError(f"{where}: it is {what}{same}, which this command reads; "
                                  f"refusing to write over an input")
        if models_only and not force and not is_mfcore_model(path):
            raise OutputError(f"{where}: the file exists and is not an mfcore model; refusing "
                              f"to overwrite it (pass --force to replace it)")
        if not models_only and is_mfcore_model(path):
            raise OutputError(f"{where}: the file is an mfcore model; refusing to write over "
                              f"it (choose another name, or remove the model first)")
    folder = os.path.dirname(os.path.realpath(path))
    if not os.path.isdir(folder):
        raise OutputError(f"{where}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{where}: folder {folder} is not writable")
