"""``mfcore train`` and ``mfcore gradcheck`` through click's CliRunner, plus one real
subprocess run of ``mfcore train`` on u.data."""
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import SHARED_DATA_HOME
from mfcore.cli import main
from mfcore.models import load_model


@pytest.fixture()
def run(data_home):
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, list(args), catch_exceptions=False)
    return invoke


def test_train_json_history_matches_the_library(run, ml100k_split):
    res = run("train", "--dataset", "ml-100k", "--model", "mfb", "--factors", "10",
              "--epochs", "2", "--json")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)  # stdout holds exactly one JSON object
    assert out["n_train"] == 80184 and out["n_val"] == 19816
    h = out["history"]
    for key in ("loss", "val_loss", "val_mse", "val_rmse", "val_mae", "seconds"):
        assert len(h[key]) == 2, key
    from mfcore.models import MFB
    train, val = ml100k_split
    lib = MFB(factors=10, seed=0).fit(train, val, epochs=2, verbose=0)
    assert h["val_loss"] == pytest.approx(lib.val_loss, rel=1e-9)
    assert "Epoch 1/2" in res.stderr and "val_loss" in res.stderr


def test_train_save_then_load(run, tmp_path):
    path = tmp_path / "mfbs.npz"
    res = run("train", "--dataset", "ml-100k", "--model", "mfbs", "--factors", "5",
              "--epochs", "1", "--optimizer", "sparse-adam", "--save", str(path), "-q")
    assert res.exit_code == 0, res.stderr
    assert res.stderr == ""  # -q: nothing on stderr; the result line still on stdout
    model = load_model(path)
    assert res.stdout == (f"mfbs k=5 on ml-100k, 1 epoch: val MSE "
                          f"{model.history_.val_mse[0]:.4f}, RMSE {model.history_.val_rmse[0]:.4f}"
                          f", MAE {model.history_.val_mae[0]:.4f} at epoch 1; saved to {path}\n")
    assert model.name == "mfbs" and model.factors == 5 and model.epochs_trained_ == 1
    assert model.data_source_["dataset"] == "ml-100k"
    assert model.data_source_["sha256"] == hashlib.sha256(
        (SHARED_DATA_HOME / "ml-100k" / "u.data").read_bytes()).hexdigest()
    assert np.isfinite(model.predict([1], [1])[0])


def test_train_records_the_data_file_absolutely_with_its_hash(tmp_path, monkeypatch):
    from mfcore.data import synthetic_ratings, write_ratings_dat
    (tmp_path / "d").mkdir()
    data = tmp_path / "d" / "r.dat"
    write_ratings_dat(synthetic_ratings(2000, n_users=60, n_items=50, seed=5), data)
    monkeypatch.chdir(tmp_path / "d")
    res = CliRunner().invoke(main, ["train", "--data", "r.dat", "--model", "mf", "--factors",
                                    "2", "--epochs", "1", "--save", "../m.npz", "-q"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    src = load_model(tmp_path / "m.npz").data_source_
    assert src["data"] == str(data) and os.path.isabs(src["data"])
    assert src["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()


def test_train_result_goes_to_stdout_and_the_log_to_stderr(data_home, tmp_path):
    """`mfcore train ... > result` keeps the result; the epoch log stays on the terminal."""
    env = dict(os.environ, MFCORE_DATA_HOME=str(data_home))
    out = subprocess.run([sys.executable, "-m", "mfcore", "train", "--dataset", "ml-100k",
                          "--model", "mfb", "--factors", "4", "--epochs", "2",
                          "--save", str(tmp_path / "m.npz")],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("mfb k=4 on ml-100k, 2 epochs: val MSE ")
    assert lines[0].endswith(f"at epoch 2; saved to {tmp_path / 'm.npz'}")
    h = load_model(tmp_path / "m.npz").history_
    assert f"val MSE {h.val_mse[1]:.4f}" in lines[0]
    assert "Epoch 1/2" in out.stderr and "Epoch 2/2" in out.stderr
    assert "Epoch" not in out.stdout


def test_summary_line_reports_the_kept_weights():
    from mfcore.cli.train import summary_line
    from mfcore.engine.trainer import History
    from mfcore.models import MFB

    h = History(loss=[1.0, 0.9, 0.8], val_mse=[0.9, 0.8, 0.85], val_rmse=[0.95, 0.89, 0.92],
                val_mae=[0.7, 0.6, 0.65], best_epoch=2, stopped_early=True)
    line = summary_line(MFB(factors=3), "x.csv", h)
    assert line == ("mfb k=3 on x.csv, 3 epochs: val MSE 0.8000, RMSE 0.8900, MAE 0.6000 at "
                    "epoch 2 (early stopping kept the best epoch); not saved (use --save PATH)")
    h.stopped_early = False
    line = summary_line(MFB(factors=3), "x.csv", h, "m.npz")
    assert "val MSE 0.8500" in line and "at epoch 3 (best MSE 0.8000 at epoch 2)" in line
    assert line.endswith("; saved to m.npz")


def test_data_that_is_not_a_file_is_one_line(run, tmp_path):
    res = run("train", "--data", "/dev/null", "--epochs", "1")
    assert res.exit_code == 1
    assert res.stderr.strip() == "error: /dev/null: it is a character device, not a file of ratings"
    long = tmp_path / "long.csv"
    long.write_bytes(b"x" * 70_000 + b"\n")
    res = run("train", "--data", str(long), "--epochs", "1")
    assert res.exit_code == 1 and "over 65,536 bytes without a line break" in res.stderr
    assert "empty" not in res.stderr


def test_train_sgd_per_sample_and_l2_options(run):
    res = run("train", "--dataset", "ml-100k", "--model", "mfb", "--optimizer", "sgd",
              "--batch-size", "1", "--lr", "0.01", "--l2", "0.02", "--l2-mode", "per-sample",
              "--init", "normal", "--init-scale", "0.1", "--epochs", "3", "--json", "-q")
    assert res.exit_code == 0, res.stderr
    h = json.loads(res.stdout)["history"]
    assert h["val_rmse"][-1] < h["val_rmse"][0]


def test_early_stopping_option(run):
    res = run("train", "--dataset", "ml-100k", "--model", "mfbs", "--factors", "50",
              "--epochs", "15", "--early-stopping", "1", "--json", "-q")
    out = json.loads(res.stdout)
    assert out["history"]["stopped_early"] and out["epochs"] < 15


@pytest.mark.parametrize("args,needle", [
    (["--model", "nosuchmodel"], "'nosuchmodel' is not one of"),
    (["--model", "mfb", "--hidden", "15"], "--hidden does not apply to model mfb"),
    (["--factors", "0"], "factors"),
    (["--optimizer", "rmsprop"], "rmsprop"),
    (["--dataset", "ml-100k", "--data", "missing.csv"], "missing.csv"),
])
def test_usage_errors_exit_2(run, args, needle):
    res = run("train", *args)
    assert res.exit_code == 2
    assert needle in res.stderr and "Traceback" not in res.stderr


def test_runtime_error_is_one_line_exit_1(run, tmp_path):
    bad = tmp_path / "r.csv"
    bad.write_text("1,1,5\n2,2,x\n")
    res = run("train", "--data", str(bad), "--sep", ",", "--epochs", "1")
    assert res.exit_code == 1
    err = res.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err and "line 2" in err


def test_diverging_training_is_exit_1_with_advice(run):
    res = run("train", "--dataset", "ml-100k", "--model", "mf", "--optimizer", "sgd",
              "--lr", "100", "--epochs", "2", "-q")
    assert res.exit_code == 1
    assert "diverged" in res.stderr and "learning rate" in res.stderr


def test_gradcheck_command_passes_for_mf_family(run):
    res = run("gradcheck", "--model", "mf", "--model", "mfb", "--model", "mfbs")
    assert res.exit_code == 0, res.stdout
    lines = res.stdout.strip().splitlines()
    assert lines[-1].endswith("0 failed")
    assert all(line.startswith("ok") for line in lines[:-1])


def test_gradcheck_unknown_model_is_usage_error(run):
    res = run("gradcheck", "--model", "nope")
    assert res.exit_code == 2


def test_train_in_a_real_subprocess(data_home, tmp_path):
    env = dict(os.environ, MFCORE_DATA_HOME=str(data_home))
    out = subprocess.run([sys.executable, "-m", "mfcore", "train", "--dataset", "ml-100k",
                          "--model", "mfbs", "--factors", "10", "--epochs", "2", "--json"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    h = json.loads(out.stdout)["history"]
    assert len(h["val_loss"]) == 2 and h["val_loss"][1] < 1.0


def test_notebook_defaults_use_ml1m_from_the_data_home(tmp_path):
    """`mfcore train --model mfb --factors 10` (no data option) trains on ml-1m, found
    unpacked in the data home; here a small synthetic ratings.dat in ml-1m's format."""
    from mfcore.data import synthetic_ratings, write_ratings_dat
    (tmp_path / "ml-1m").mkdir()
    write_ratings_dat(synthetic_ratings(n_ratings=30_000, n_users=300, n_items=200, seed=1),
                      tmp_path / "ml-1m" / "ratings.dat")
    res = CliRunner().invoke(main, ["train", "--model", "mfb", "--factors", "10", "--json",
                                    "-q"], env={"MFCORE_DATA_HOME": str(tmp_path)},
                             catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["dataset"] == "ml-1m" and out["epochs"] == 6 and out["batch_size"] == 64
    assert out["optimizer"] == "adam" and out["n_train"] + out["n_val"] == 30_000


def test_verbose_reports_parameters_and_overhead(run):
    res = run("train", "--dataset", "ml-100k", "--model", "mfb", "--factors", "4",
              "--epochs", "1", "-v")
    assert res.exit_code == 0, res.stderr
    assert "parameters: table users 4,715, table items 8,410" in res.stderr
    assert "outside the epochs" in res.stderr
    assert run("train", "-q", "-v").exit_code == 2


def test_train_per_sample_sgd_threads_give_the_same_numbers(run):
    outs = []
    for threads in ("1", "2"):
        res = run("train", "--dataset", "ml-100k", "--model", "mfb", "--optimizer", "sgd",
                  "--batch-size", "1", "--lr", "0.005", "--epochs", "2", "--threads", threads,
                  "--json")
        assert res.exit_code == 0, res.stderr
        outs.append(json.loads(res.stdout)["history"])
    assert outs[0]["val_mse"] == outs[1]["val_mse"] and outs[0]["loss"] == outs[1]["loss"]


def test_train_threads_with_adam_is_a_clear_error(run):
    res = run("train", "--dataset", "ml-100k", "--epochs", "1", "--threads", "2")
    assert res.exit_code == 1
    assert "threads > 1 runs per-sample SGD" in res.stderr and "Traceback" not in res.stderr


def test_train_full_shuffle(run):
    res = run("train", "--dataset", "ml-100k", "--model", "mfb", "--optimizer", "sgd",
              "--batch-size", "1", "--epochs", "1", "--shuffle", "full", "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["shuffle"] == "full"


def test_cold_kernel_cache_is_announced_once_on_stderr(run, tmp_path, monkeypatch):
    """The first run compiles for ~10 s: one line says so (on stderr, never stdout); a
    warm cache says nothing, and -q silences it."""
    import numba

    from mfcore.kernels import COMPILE_NOTICE, cache_is_cold
    args = ("train", "--dataset", "ml-100k", "--factors", "2", "--epochs", "1")
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path / "empty-cache"))
    assert cache_is_cold(["mf"])
    res = CliRunner().invoke(main, list(args))
    assert res.exit_code == 0, res.stderr
    assert res.stderr.count(COMPILE_NOTICE) == 1 and COMPILE_NOTICE not in res.stdout
    quiet = CliRunner().invoke(main, [*args, "-q"])
    assert COMPILE_NOTICE not in quiet.stderr
    # a cache holding the engine loop and the model's kernel counts as warm
    for sub, name in (("engine_x", "loop.run_batches-26.py311.nbi"),
                      ("kernels_x", "mf.forward_backward-49.py311.nbi")):
        (tmp_path / "empty-cache" / sub).mkdir(parents=True)
        (tmp_path / "empty-cache" / sub / name).write_bytes(b"")
    assert not cache_is_cold(["mf"]) and cache_is_cold(["mf", "nn"])
    warm = CliRunner().invoke(main, list(args))
    assert warm.exit_code == 0 and COMPILE_NOTICE not in warm.stderr
