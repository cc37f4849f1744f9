"""The output checks every writing command makes before it starts (mfcore.cli.outputs):
never write over an input (by inode: other spellings, symlinks, hard links), never replace
a file that is not a model without --force, and fail fast on a bad folder."""
from __future__ import annotations

import os
import stat
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

import mfcore.cli.compare as cli_compare
import mfcore.cli.train as cli_train
import mfcore.cli.use as cli_use
from mfcore.cli import main
from mfcore.cli.outputs import check_output, is_mfcore_model
from mfcore.data import synthetic_ratings, write_ratings_dat
from mfcore.errors import OutputError


def invoke(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)


def one_error_line(res, *needles):
    assert res.exit_code == 1, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture()
def folder(tmp_path, monkeypatch):
    """A folder holding a small ratings file and a model trained on it; the cwd."""
    data = tmp_path / "ratings.tsv"
    write_ratings_dat(synthetic_ratings(3000, n_users=60, n_items=50, seed=4), data)
    res = invoke("train", "--data", data, "--model", "mf", "--factors", "2", "--epochs", "1",
                 "--save", tmp_path / "m.npz", "-q")
    assert res.exit_code == 0, res.stderr
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture()
def no_work(monkeypatch):
    """Fail the test if a command gets as far as loading data or training."""
    def boom(*a, **k):
        raise AssertionError("the command started its work before checking its output")
    monkeypatch.setattr(cli_train, "load_from_options", boom)
    monkeypatch.setattr(cli_compare, "load_from_options", boom)
    monkeypatch.setattr(cli_use, "_load", boom)


def _train_save(data, save, *extra):
    return invoke("train", "--data", data, "--model", "mf", "--factors", "2", "--epochs", "1",
                  "--save", save, "-q", *extra)


# ---- train --save --------------------------------------------------------------------------
@pytest.mark.parametrize("spelling", ["same", "dot", "absolute", "symlink", "hardlink"])
@pytest.mark.parametrize("force", [False, True])
def test_save_never_overwrites_the_data_file(folder, no_work, spelling, force):
    data = folder / "ratings.tsv"
    before = data.read_bytes()
    save = {"same": "ratings.tsv", "dot": "./sub/../ratings.tsv", "absolute": str(data)}.get(
        spelling)
    (folder / "sub").mkdir()
    if spelling == "symlink":
        (folder / "link.tsv").symlink_to(data)
        save = "link.tsv"
    elif spelling == "hardlink":
        os.link(data, folder / "hard.tsv")
        save = "hard.tsv"
    res = _train_save("ratings.tsv", save, *(["--force"] if force else []))
    one_error_line(res, f"--save {save}", "ratings file given with --data",
                   "refusing to write over an input")
    assert data.read_bytes() == before


def test_save_refuses_a_file_that_is_not_a_model_unless_forced(folder):
    notes = folder / "notes.txt"
    notes.write_text("my notes\n")
    one_error_line(_train_save("ratings.tsv", notes), "notes.txt", "not an mfcore model",
                   "--force")
    assert notes.read_text() == "my notes\n"
    res = _train_save("ratings.tsv", notes, "--force")
    assert res.exit_code == 0, res.stderr
    assert is_mfcore_model(notes)


def test_save_replaces_an_existing_model(folder):
    model = folder / "m.npz"
    old = model.read_bytes()
    res = invoke("train", "--data", "ratings.tsv", "--model", "mfb", "--factors", "3",
                 "--epochs", "1", "--save", model, "-q")
    assert res.exit_code == 0, res.stderr
    assert model.read_bytes() != old and is_mfcore_model(model)


def test_save_never_overwrites_a_builtin_data_file(tmp_path, no_work):
    home = tmp_path / "home"
    (home / "ml-100k").mkdir(parents=True)
    u_data = home / "ml-100k" / "u.data"
    u_data.write_text("1\t1\t5\t0\n")
    for target in (u_data, home / "ml-100k.zip"):
        if target.name.endswith(".zip"):
            target.write_bytes(b"PK fake")
        res = invoke("train", "--dataset", "ml-100k", "--save", target, "--force", "-q",
                     env={"MFCORE_DATA_HOME": str(home)})
        one_error_line(res, "of ml-100k", "refusing to write over an input")
    assert u_data.read_text() == "1\t1\t5\t0\n"


@pytest.mark.parametrize("target,needle", [
    ("missing-dir/m.npz", "does not exist"),
    ("/dev/null", "character device"),
])
def test_save_bad_places_fail_before_training(folder, no_work, target, needle):
    one_error_line(_train_save("ratings.tsv", target), f"--save {target}", needle)


def test_force_without_save_is_a_usage_error(folder):
    assert invoke("train", "--data", "ratings.tsv", "--force").exit_code == 2


# ---- predict --output ----------------------------------------------------------------------
def test_predict_output_never_overwrites_its_inputs(folder, no_work):
    pairs = folder / "pairs.csv"
    pairs.write_text("user,item\n1,1\n")
    (folder / "pairs-link.csv").symlink_to(pairs)
    model_bytes = (folder / "m.npz").read_bytes()
    for out, what in (("pairs.csv", "pairs file given with --input"),
                      ("pairs-link.csv", "pairs file given with --input"),
                      ("m.npz", "the model file")):
        res = invoke("predict", "m.npz", "--input", "pairs.csv", "--output", out)
        one_error_line(res, f"--output {out}", what)
    assert pairs.read_text() == "user,item\n1,1\n"
    assert (folder / "m.npz").read_bytes() == model_bytes


def test_predict_output_to_a_device_points_to_dash(folder, no_work):
    (folder / "pairs.csv").write_text("user,item\n1,1\n")
    res = invoke("predict", "m.npz", "--input", "pairs.csv", "--output", "/dev/null")
    one_error_line(res, "--output /dev/null: it is a character device", "use - for stdout")


def test_predict_output_may_replace_an_ordinary_file(folder):
    pairs = folder / "pairs.csv"
    pairs.write_text("user,item\n1,1\n")
    out = folder / "preds.csv"
    out.write_text("old\n")
    res = invoke("predict", "m.npz", "--input", pairs, "--output", out, "--unknown", "nan")
    assert res.exit_code == 0, res.stderr
    assert out.read_text().startswith("user,item,prediction")


# ---- compare --plot ------------------------------------------------------------------------
def test_plot_checks_come_before_training(folder, no_work):
    pytest.importorskip("matplotlib")
    one_error_line(invoke("compare", "--data", "ratings.tsv", "--plot", "/missing/dir/c.png"),
                   "--plot /missing/dir/c.png", "/missing/dir does not exist")
    one_error_line(invoke("compare", "--data", "ratings.tsv", "--plot", "ratings.tsv"),
                   "refusing to write over an input")
    (folder / "curves.png").symlink_to(folder / "ratings.tsv")
    one_error_line(invoke("compare", "--data", "ratings.tsv", "--plot", "curves.png"),
                   "--plot curves.png", "refusing to write over an input")
    res = invoke("compare", "--data", "ratings.tsv", "--plot", "c.xyz")
    assert res.exit_code == 2 and "cannot write .xyz" in res.stderr


def test_plot_is_written_atomically_with_the_umask(folder):
    pytest.importorskip("matplotlib")
    old = os.umask(0o022)
    try:
        res = invoke("compare", "--data", "ratings.tsv", "--models", "mf", "--factors", "2",
                     "--epochs", "1", "--plot", "c.png", "-q")
    finally:
        os.umask(old)
    assert res.exit_code == 0, res.stderr
    png = folder / "c.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert stat.S_IMODE(png.stat().st_mode) == 0o644
    assert not [p for p in os.listdir(folder) if p.endswith(".tmp")]


# ---- the helper ----------------------------------------------------------------------------
def test_is_mfcore_model(folder):
    assert is_mfcore_model(folder / "m.npz")
    assert not is_mfcore_model(folder / "ratings.tsv")
    assert not is_mfcore_model(folder / "missing.npz")
    np.savez(folder / "plain.npz", a=np.arange(3))
    assert not is_mfcore_model(folder / "plain.npz")
    np.savez(folder / "fake.npz", meta=np.frombuffer(b'{"format": "other"}', np.uint8))
    assert not is_mfcore_model(folder / "fake.npz")
    with zipfile.ZipFile(folder / "junk.npz", "w") as zf:
        zf.writestr("meta.npy", b"not an array")
    assert not is_mfcore_model(folder / "junk.npz")


def test_check_output_library_use(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("x")
    check_output(tmp_path / "new.csv", "--out", [(src, "the input")])  # fine
    check_output("-", "--out", [(src, "the input")])                   # stdout
    check_output(src, "--out", [(None, "nothing"), (tmp_path / "gone", "absent")])
    with pytest.raises(OutputError, match="it is the input"):
        check_output(src, "--out", [(src, "the input")])
    with pytest.raises(OutputError, match="a folder"):
        check_output(tmp_path, "--out")


def test_a_relative_output_from_a_deleted_working_directory_is_explained(tmp_path):
    """It failed with a bare '[Errno 2] No such file or directory' naming nothing."""
    gone = tmp_path / "gone"
    gone.mkdir()
    here = os.getcwd()
    os.chdir(gone)
    try:
        gone.rmdir()
        with pytest.raises(OutputError, match=r"--save rel.npz: a relative path, and the "
                                              r"working directory no longer exists"):
            check_output("rel.npz", "--save")
        check_output(str(tmp_path / "abs.npz"), "--save")   # an absolute path is fine
    finally:
        os.chdir(here)
