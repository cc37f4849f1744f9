"""``mfcore datasets ...`` and the shared data-source options, through click's CliRunner."""
from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from mfcore.cli import main
from mfcore.cli.options import data_source_options, load_from_options, parse_sep_option


@pytest.fixture()
def run(data_home):
    runner = CliRunner()

    def invoke(*args, env=None):
        return runner.invoke(main, list(args), env=env, catch_exceptions=False)
    return invoke


def _one_line_error(result):
    err = result.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_info_ml100k_reports_the_real_counts(run):
    res = run("datasets", "info", "ml-100k")
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "100,000" in out and "943" in out and "1,682" in out
    assert "1 .. 5" in out and "1997-09-20 .. 1998-04-22" in out and "density" in out
    res = run("datasets", "info", "ML-100K", "--json")
    d = json.loads(res.stdout)
    assert (d["ratings"], d["users"], d["items"]) == (100_000, 943, 1682)
    assert (d["rating_min"], d["rating_max"]) == (1.0, 5.0)
    assert d["date_min"] == "1997-09-20" and d["time_max"] == 893286638


@pytest.mark.parametrize("sep", ["tab", "\\t", "\t"])
def test_info_on_a_file_with_separator_spellings(run, ml100k_path, sep):
    res = run("datasets", "info", "--data", str(ml100k_path), "--sep", sep, "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["ratings"] == 100_000


def test_wrong_separator_is_one_line_exit_1(run, ml100k_path):
    res = run("datasets", "info", "--data", str(ml100k_path), "--sep", "::")
    assert res.exit_code == 1
    err = _one_line_error(res)
    assert "line 1" in err and "wrong separator" in err and str(ml100k_path) in err


def test_bad_file_is_one_line_exit_1(run, tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("1,2,3\n4,5,six\n")
    res = run("datasets", "info", "--data", str(p))
    assert res.exit_code == 1
    assert "line 2, column 3" in _one_line_error(res)


def test_usage_errors_exit_2(run, ml100k_path):
    assert run("datasets", "info").exit_code == 2
    assert run("datasets", "info", "ml-100k", "--data", str(ml100k_path)).exit_code == 2
    assert run("datasets", "info", "netflix").exit_code == 2
    assert run("datasets", "info", "--data", "/no/such/file").exit_code == 2


@pytest.fixture()
def home_with_ml100k(tmp_path, ml100k_path):
    """A data home holding only ml-100k (a link to the shared folder, which is only read),
    so presence tests do not depend on what else the shared data home holds."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "ml-100k").symlink_to(ml100k_path.parent.resolve(), target_is_directory=True)
    return home


def test_list_shows_presence_and_size(run, home_with_ml100k):
    env = {"MFCORE_DATA_HOME": str(home_with_ml100k)}
    res = run("datasets", "list", env=env)
    assert res.exit_code == 0
    lines = {ln.split()[0]: ln for ln in res.stdout.splitlines()[1:]}
    assert set(lines) == {"ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-latest-small"}
    assert "present" in lines["ml-100k"] and "MB" in lines["ml-100k"]
    assert "missing" in lines["ml-1m"]
    d = json.loads(run("datasets", "list", "--json", env=env).stdout)
    rows = {r["name"]: r for r in d["datasets"]}
    assert rows["ml-100k"]["present"] and rows["ml-100k"]["size"] > 1_000_000
    assert not rows["ml-25m"]["present"]


def test_download_present_and_impossible(run, home_with_ml100k, monkeypatch):
    """'Impossible' = the set is missing and the data home is read-only (no write bit, which
    mfcore honours even as root): the error says what to fetch and where to put it, and
    no download is attempted, whatever the machine's network."""
    import mfcore.data.datasets as ds

    def fetch(spec, *args, **kwargs):
        pytest.fail(f"tried to download {spec.url}")
    monkeypatch.setattr(ds, "_fetch", fetch)
    home = home_with_ml100k
    env = {"MFCORE_DATA_HOME": str(home)}
    res = run("datasets", "download", "ml-100k", env=env)
    assert res.exit_code == 0 and "already present" in res.stdout
    home.chmod(0o555)
    try:
        res = run("datasets", "download", "ml-1m", env=env)
    finally:
        home.chmod(0o755)
    assert res.exit_code == 1
    err = _one_line_error(res)
    assert "read-only" in err
    assert "https://files.grouplens.org/datasets/movielens/ml-1m.zip" in err
    assert str(home / "ml-1m.zip") in err
    assert sorted(p.name for p in home.iterdir()) == ["ml-100k"]


def test_download_from_a_zip_placed_by_hand(tmp_path):
    import io
    import zipfile
    from dataclasses import replace
    import hashlib
    from mfcore.data import BUILTIN_DATASETS
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ml-1m/ratings.dat", b"1::10::5::978300760\n2::10::3::978302109\n")
    body = buf.getvalue()
    (tmp_path / "ml-1m.zip").write_bytes(body)
    spec = replace(BUILTIN_DATASETS["ml-1m"], size=len(body), md5=None,
                   sha256=hashlib.sha256(body).hexdigest())
    mp = pytest.MonkeyPatch()
    mp.setitem(BUILTIN_DATASETS, "ml-1m", spec)
    try:
        runner = CliRunner()
        env = {"MFCORE_DATA_HOME": str(tmp_path)}
        res = runner.invoke(main, ["datasets", "download", "ml-1m"], env=env)
        assert res.exit_code == 0, res.output
        assert (tmp_path / "ml-1m" / "ratings.dat").is_file()
        res = runner.invoke(main, ["datasets", "info", "ml-1m", "--json"], env=env)
        assert json.loads(res.stdout)["ratings"] == 2
    finally:
        mp.undo()


@pytest.mark.parametrize("cmd", [["datasets"], ["datasets", "list"], ["datasets", "info"],
                                 ["datasets", "download"]])
def test_every_help_has_an_example(cmd):
    res = CliRunner().invoke(main, cmd + ["--help"])
    assert res.exit_code == 0 and "Examples:" in res.stdout and "mfcore datasets" in res.stdout


def test_data_source_options_and_load_from_options(ml100k_path):
    seen = {}

    @click.command()
    @data_source_options
    def cmd(dataset, data, sep, header):
        seen.update(dataset=dataset, data=data, sep=sep, header=header)
        r = load_from_options(dataset, data, sep, header, default_dataset="ml-100k", quiet=True)
        click.echo(len(r))

    runner = CliRunner()
    res = runner.invoke(cmd, ["--data", str(ml100k_path), "--sep", "tab", "--no-header"])
    assert res.exit_code == 0 and res.stdout.strip() == "100000"
    assert seen["sep"] == "\t" and seen["header"] is False
    res = runner.invoke(cmd, [])  # the default data set
    assert res.exit_code == 0 and res.stdout.strip() == "100000"
    assert runner.invoke(cmd, ["--dataset", "ml-100k", "--data", str(ml100k_path)]).exit_code == 2
    assert runner.invoke(cmd, ["--dataset", "ml-100k", "--sep", ","]).exit_code == 2
    assert runner.invoke(cmd, ["--dataset", "nope"]).exit_code == 2
    with pytest.raises(click.UsageError):
        load_from_options(None, None, None, None)
    assert parse_sep_option("comma") == "," and parse_sep_option("::") == "::"


def test_cli_modules_import_light():
    code = ("import sys, mfcore.cli, mfcore.cli.datasets, mfcore.cli.options, mfcore.progress; "
            "print(sorted(m for m in ('numba', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
