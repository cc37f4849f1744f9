"""Atomic output (mfcore.atomic) under errors and real signals.

The signal tests run tests/atomic_child.py in a real subprocess, which stops at a chosen
point of the write and says so on stdout; the parent then sends a real signal, so each
signal lands exactly where the test means it to (no sleeps)."""
from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import mfcore.atomic as atomic
from mfcore.atomic import TEMP_NAME_PATTERN, atomic_output, remove_stale_temp_files
from mfcore.signals import Terminated, interrupt_in, signals_as_exceptions

CHILD = Path(__file__).with_name("atomic_child.py")
OLD = b"the previous content, which must survive\n"

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")


def _temps(folder):
    return sorted(p.name for p in Path(folder).iterdir() if p.name.endswith(".tmp"))


def _spawn(mode, target, *args, env=None):
    """Start the child; return it once it reports READY (and the path it printed)."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(atomic.__file__).parents[1]),
                                         env.get("PYTHONPATH", "")])
    child = subprocess.Popen([sys.executable, str(CHILD), mode, str(target), *map(str, args)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = child.stdout.readline()
    if not line.startswith("READY"):
        out, err = child.communicate(timeout=60)
        pytest.fail(f"child did not reach its stop: {line!r} {out!r} {err!r}")
    return child, line.split(" ", 1)[1].strip()


def _finish(child):
    out, err = child.communicate(timeout=60)
    assert "NOT INTERRUPTED" not in out
    return child.returncode, out, err


# ---------------------------------------------------------------------------------------
# in-process behaviour
# ---------------------------------------------------------------------------------------
def test_success_replaces_and_uses_the_umask(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(OLD)
    old_umask = os.umask(0o027)
    try:
        with atomic_output(target) as fh:
            fh.write(b"new")
    finally:
        os.umask(old_umask)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert _temps(tmp_path) == []


def test_error_keeps_the_target_and_removes_the_temp(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(OLD)
    seen = []
    with pytest.raises(RuntimeError):
        with atomic_output(target) as fh:
            fh.write(b"half")
            seen = _temps(tmp_path)
            raise RuntimeError("boom")
    assert len(seen) == 1 and TEMP_NAME_PATTERN.match(seen[0])
    assert f"-{os.getpid()}-" in seen[0]  # the writer's pid is in the name
    assert target.read_bytes() == OLD and _temps(tmp_path) == []


def test_text_mode(tmp_path):
    target = tmp_path / "out.csv"
    with atomic_output(target, "w", encoding="utf-8", newline="") as fh:
        fh.write("a,b\r\n")
    assert target.read_bytes() == b"a,b\r\n"


def test_a_symlink_is_followed_and_kept(tmp_path):
    real = tmp_path / "real.bin"
    real.write_bytes(OLD)
    link = tmp_path / "link.bin"
    link.symlink_to(real)
    with atomic_output(link) as fh:
        fh.write(b"new")
    assert link.is_symlink() and real.read_bytes() == b"new"


@posix_only
@pytest.mark.parametrize("kind", ["folder", "fifo", "chardev"])
def test_non_regular_targets_are_refused(tmp_path, kind):
    if kind == "folder":
        target = tmp_path / "d"
        target.mkdir()
    elif kind == "fifo":
        target = tmp_path / "f"
        os.mkfifo(target)
    else:
        target = Path("/dev/null")
    with pytest.raises(OSError) as err:
        with atomic_output(target) as fh:
            fh.write(b"x")
    words = {"folder": "a folder", "fifo": "named pipe", "chardev": "character device"}[kind]
    assert words in str(err.value) and "not a regular file" in str(err.value)
    assert _temps(target.parent if kind != "chardev" else tmp_path) == []
    if kind == "chardev":
        assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_an_interrupt_hidden_behind_a_cleanup_error_is_reraised(tmp_path):
    """zipfile refuses to close an archive whose member is open: the ValueError it raises
    while the KeyboardInterrupt unwinds must not hide the interrupt."""
    target = tmp_path / "out.bin"
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(target) as fh:
            fh.write(b"x")
            try:
                raise KeyboardInterrupt
            finally:
                raise ValueError("Can't close the ZIP file while there is an open handle")
    assert _temps(tmp_path) == [] and not target.exists()


def test_interrupt_in_follows_the_context_chain():
    ki = KeyboardInterrupt()
    try:
        try:
            raise ki
        except KeyboardInterrupt:
            raise ValueError("cleanup failed")
    except ValueError as exc:
        assert interrupt_in(exc) is ki
    assert interrupt_in(ValueError("plain")) is None
    assert isinstance(interrupt_in(Terminated(15)), Terminated)


@posix_only
def test_signals_as_exceptions_only_over_default_handlers():
    def mine(signum, frame):
        pass

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        with signals_as_exceptions():
            assert signal.getsignal(signal.SIGTERM) is mine  # the program's own is kept
    finally:
        signal.signal(signal.SIGTERM, previous)
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with signals_as_exceptions() as installed:
            assert installed and signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
            with pytest.raises(Terminated) as err:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)  # the handler raises before this ends
            assert err.value.exit_code == 143 and "SIGTERM" in str(err.value)
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous)


# ---------------------------------------------------------------------------------------
# leftovers of killed writers
# ---------------------------------------------------------------------------------------
def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _fake_temp(folder, pid, host=None, name="model.npz"):
    host = host or atomic._HOST
    p = Path(folder) / f".{name}.mfcore-{host}-{pid}-0123abcd.tmp"
    p.write_bytes(b"partial")
    return p


def test_stale_temp_files_are_removed_but_only_ours(tmp_path):
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = _fake_temp(tmp_path, _dead_pid())
        alive_fresh = _fake_temp(tmp_path, live.pid, name="a")
        alive_old = _fake_temp(tmp_path, live.pid, name="b")
        old = time.time() - atomic.STALE_SECONDS - 60
        os.utime(alive_old, (old, old))
        other_host_dead = _fake_temp(tmp_path, _dead_pid(), host="ffffff"
                                     if atomic._HOST != "ffffff" else "eeeeee")
        mine = _fake_temp(tmp_path, os.getpid(), name="mine")
        os.utime(mine, (old, old))
        strangers = [tmp_path / ".model.npz.x1y2z3.tmp", tmp_path / "notes.mfcore-1-2.tmp",
                     tmp_path / "model.npz"]
        for p in strangers:
            p.write_bytes(b"keep")
            os.utime(p, (old, old))
        removed = remove_stale_temp_files(tmp_path)
        assert sorted(removed) == sorted([str(dead), str(alive_old)])
        for p in (alive_fresh, other_host_dead, mine, *strangers):
            assert p.exists(), p
    finally:
        live.kill()
        live.wait()


@posix_only
def test_sigkill_leftover_is_cleaned_by_the_next_write(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(OLD)
    child, _ = _spawn("writing", target)
    child.send_signal(signal.SIGKILL)
    code, _, _ = _finish(child)
    assert code == -signal.SIGKILL
    left = _temps(tmp_path)
    assert len(left) == 1 and f"-{child.pid}-" in left[0]  # nothing can clean up a SIGKILL
    assert target.read_bytes() == OLD
    with atomic_output(tmp_path / "other.bin") as fh:  # any later write into the folder
        fh.write(b"y")
    assert _temps(tmp_path) == [] and target.read_bytes() == OLD


# ---------------------------------------------------------------------------------------
# real signals at chosen points, library use (no handler of the program's own)
# ---------------------------------------------------------------------------------------
@posix_only
def test_sigint_right_after_the_temp_file_is_created(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(OLD)
    child, tmp = _spawn("created", target)
    assert os.path.exists(tmp) and os.path.getsize(tmp) == 0
    child.send_signal(signal.SIGINT)
    code, out, err = _finish(child)
    assert code == -signal.SIGINT and "KeyboardInterrupt" in err  # a plain script's Ctrl-C
    assert not os.path.exists(tmp) and _temps(tmp_path) == []
    assert target.read_bytes() == OLD


@posix_only
def test_sigint_while_a_zip_member_is_open_is_a_keyboard_interrupt(tmp_path):
    target = tmp_path / "out.npz"
    target.write_bytes(OLD)
    child, _ = _spawn("member", target)
    child.send_signal(signal.SIGINT)
    code, out, err = _finish(child)
    # the traceback ends in the KeyboardInterrupt (zipfile's ValueError is not what is
    # reported; zipfile may still complain when the abandoned archive is collected at exit,
    # which the command line silences)
    report = err.split("Exception ignored")[0]
    assert code == -signal.SIGINT and report.strip().splitlines()[-1] == "KeyboardInterrupt"
    assert "ValueError" not in report
    assert _temps(tmp_path) == [] and target.read_bytes() == OLD


@posix_only
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_termination_signal_removes_the_temp_then_kills(tmp_path, signame):
    target = tmp_path / "out.bin"
    target.write_bytes(OLD)
    child, _ = _spawn("writing", target)
    assert len(_temps(tmp_path)) == 1
    signum = getattr(signal, signame)
    child.send_signal(signum)
    code, out, err = _finish(child)
    assert code == -signum  # still dies by the signal, as without mfcore
    assert "Traceback" not in err
    assert _temps(tmp_path) == [] and target.read_bytes() == OLD


# ---------------------------------------------------------------------------------------
# the command line: one line, 130 / 143, no temp file, the old model intact
# ---------------------------------------------------------------------------------------
@pytest.fixture()
def trained(tmp_path):
    """A small ratings file and a model trained on it (the file a new run overwrites)."""
    from click.testing import CliRunner

    from mfcore.cli import main
    from mfcore.data import synthetic_ratings, write_ratings_dat
    data = tmp_path / "r.dat"
    write_ratings_dat(synthetic_ratings(3000, n_users=60, n_items=50, seed=2), data)
    model = tmp_path / "m.npz"
    res = CliRunner().invoke(main, ["train", "--data", str(data), "--model", "mfb",
                                    "--factors", "3", "--epochs", "1", "--save", str(model),
                                    "-q"], catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    return data, model, model.read_bytes()


@posix_only
@pytest.mark.parametrize("signame,code,message", [("SIGINT", 130, "interrupted"),
                                                  ("SIGTERM", 143, "terminated by SIGTERM")])
def test_cli_signal_while_saving_a_model(trained, signame, code, message):
    data, model, before = trained
    child, _ = _spawn("cli-member=table.users.npy", "-", "train", "--data", data, "--model", "mfb",
                      "--factors", "3", "--epochs", "1", "--save", model, "-q")
    child.send_signal(getattr(signal, signame))
    got, out, err = _finish(child)
    assert got == code
    assert err.strip() == message, err  # one line, no traceback, no "Exception ignored"
    assert model.read_bytes() == before
    assert _temps(model.parent) == []


def test_model_save_refuses_a_device(trained):
    from mfcore.errors import ModelError
    from mfcore.models import load_model
    _, model, _ = trained
    m = load_model(model)
    if os.name == "posix":
        with pytest.raises(ModelError, match="character device"):
            m.save("/dev/null")
        assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    np.testing.assert_array_equal(load_model(model).U_, m.U_)
