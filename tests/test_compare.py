"""``mfcore compare`` and the library behind it."""
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from mfcore.cli import main
from mfcore.errors import ModelError
from mfcore.compare import compare, format_markdown, format_table, notebook_model, ranked
from parity import load_reference, parity_violations


def test_library_compare_ranks_by_best_val_mse(ml100k_split):
    train, val = ml100k_split
    res = compare(train, val, models=["mf", "mfbs"], factors=[10], epochs=3)
    assert [(r.model, r.factors) for r in res] == [("mf", 10), ("mfbs", 10)]
    best = ranked(res)
    assert best[0].best_mse <= best[1].best_mse
    assert best[0].model == "mfbs"  # sigmoid MF beats plain MF after 3 epochs, as in Keras
    table = format_table(res)
    assert "Epoch 3/3" in table and "val_loss" in table and "rank" in table
    md = format_markdown(res)
    assert md.count("| mf | 10 |") == 2 and "| rank |" in md


def test_notebook_presets():
    assert notebook_model("mfb", 50).factors == 50
    mb = notebook_model("mixed-bias", 50)
    assert (mb.factors, mb.bias_factors) == (10, 50)


def test_cli_compare_whole_zoo_matches_keras(zoo_json, shared_dir):
    """The acceptance run: every notebook model at k = 10 and 50, 6 epochs, on u.data,
    within the parity band of the Keras reference figures, trained as the reference was
    (seeded Keras 3 replays one shuffled order in every epoch: --shuffle once), averaged
    over seeds as the parity tests do (one Keras run is one draw: see parity.py). The run
    is the session's ``zoo_json`` (conftest): ``mfcore compare --json`` trained once for
    this test and the parity tests."""
    from conftest import PARITY_SEEDS
    out = zoo_json
    assert all(len(r["runs"]) == PARITY_SEEDS for r in out["results"])
    ref, ref2 = load_reference(shared_dir)
    assert len(out["results"]) == 14
    bad = {}
    for r in out["results"]:
        key = f"{r['model'].replace('-', '_')}/k={r['factors']}"
        v = parity_violations(r["history"]["val_loss"], ref[key]["val_loss"],
                              ref2[key]["val_loss"])
        if v:
            bad[key] = v
    assert bad == {}


def test_cli_compare_markdown_and_usage_errors(data_home):
    runner = CliRunner()
    res = runner.invoke(main, ["compare", "--dataset", "ml-100k", "--models", "mfb",
                               "--factors", "5", "--epochs", "1", "--markdown", "-q"])
    assert res.exit_code == 0, res.stderr
    assert res.stdout.startswith("Validation loss per epoch:")
    res = runner.invoke(main, ["compare", "--models", "mfb,svd"])
    assert res.exit_code == 2 and "svd" in res.stderr
    res = runner.invoke(main, ["compare", "--factors", "ten"])
    assert res.exit_code == 2
    res = runner.invoke(main, ["compare", "--json", "--markdown"])
    assert res.exit_code == 2


def test_cli_compare_plot(data_home, tmp_path):
    path = tmp_path / "curves.png"
    res = CliRunner().invoke(main, ["compare", "--dataset", "ml-100k", "--models", "mf,mfb",
                                    "--factors", "5", "--epochs", "2", "--plot", str(path),
                                    "-q"])
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert res.exit_code == 2 and "matplotlib" in res.stderr
        assert not path.exists()
    else:
        assert res.exit_code == 0, res.stderr
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_in_a_real_subprocess(data_home):
    env = dict(os.environ, MFCORE_DATA_HOME=str(data_home))
    out = subprocess.run([sys.executable, "-m", "mfcore", "compare", "--dataset", "ml-100k",
                          "--models", "mfb,mfbs", "--factors", "10", "--epochs", "2"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "rank" in out.stdout and "mfbs" in out.stdout and "wall time" in out.stdout
    assert "Epoch 2/2" in out.stderr


def _compare_cmd(data_home):
    env = dict(os.environ, MFCORE_DATA_HOME=str(data_home))
    cmd = [sys.executable, "-m", "mfcore", "compare", "--dataset", "ml-100k",
           "--models", "mf,mfb", "--factors", "4", "--epochs", "2", "--no-progress"]
    return cmd, env


def test_each_curve_is_printed_once_when_log_and_table_share_a_file(data_home, tmp_path):
    """`mfcore compare > log 2>&1`: the epoch log already holds the curves, so the table
    holds only the ranking; with stdout alone redirected, the file gets the curves."""
    cmd, env = _compare_cmd(data_home)
    both = tmp_path / "both.txt"
    with open(both, "w") as fh:
        subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, timeout=600,
                       check=True)
    text = both.read_text()
    assert text.count("Epoch 1/2") == 2 and text.count("Epoch 2/2") == 2  # mf and mfb once
    assert "rank" in text and "wall time" in text
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert out.stdout.count("Epoch 2/2") == 2 and out.stderr.count("Epoch 2/2") == 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pty semantics of Linux")
def test_each_curve_is_printed_once_in_a_terminal(data_home):
    import pty
    cmd, env = _compare_cmd(data_home)
    master, slave = pty.openpty()
    try:
        child = subprocess.Popen(cmd, stdout=slave, stderr=slave, env=env)
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert child.wait(timeout=600) == 0
    finally:
        os.close(master)
    text = b"".join(chunks).decode()
    assert text.count("Epoch 1/2") == 2 and text.count("Epoch 2/2") == 2, text
    assert "rank" in text


def test_settings_a_model_refuses_stop_compare_before_anything_trains(ml100k_split, data_home):
    """A model that cannot take the options (nn has no Gibbs sampler; threads need per-sample
    SGD) is named at once, not reported as a failed run after the others trained."""
    train, val = ml100k_split
    logged = []
    with pytest.raises(ModelError, match=r"^nn \(k=10\): optimizer 'mcmc' supports .*nothing "
                                         r"was trained$"):
        compare(train, val, models=["mfb", "nn"], factors=[10], optimizer="mcmc", samples=5,
                log=logged.append)
    assert logged == []
    runner = CliRunner()
    for args in (["--models", "mfb,nn", "--optimizer", "mcmc", "--samples", "5"],
                 ["--models", "mfb,nn", "--optimizer", "mcmc", "--folds", "u1,u2"],
                 ["--models", "mfb,mfbs", "--factors", "3", "--threads", "2"]):
        res = runner.invoke(main, ["compare", "--dataset", "ml-100k", *args])
        assert res.exit_code == 1, res.output
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") \
            and lines[0].endswith("nothing was trained"), res.output
        assert "ml-100k:" not in res.output          # refused before the data was read
