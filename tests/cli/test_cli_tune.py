"""``mfcore cv`` and ``mfcore tune`` through click's CliRunner on MovieLens 100K, plus a
real Ctrl-C of a search running in two worker processes."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from mfcore.cli import main
from mfcore.models import load_model

SGD = ["--optimizer", "sgd", "--batch-size", "1"]


@pytest.fixture()
def run(data_home):
    runner = CliRunner()

    def invoke(*args, env=None):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False, env=env)
    return invoke


# ---- cv ----------------------------------------------------------------------------------
def test_cv_on_grouplens_folds_matches_train_on_each_split(run):
    res = run("cv", "--dataset", "ml-100k", "--model", "mfb", "--folds", "u1,u2",
              "--epochs", "2", *SGD, "--jobs", "1", "--json")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert [f["fold"] for f in out["folds"]] == ["u1", "u2"] and out["retried"] == 0
    for fold in out["folds"]:
        ref = run("train", "--dataset", "ml-100k", "--model", "mfb", "--split", fold["fold"],
                  "--epochs", "2", *SGD, "--json", "-q")
        assert fold["rmse"] == pytest.approx(json.loads(ref.stdout)["history"]["val_rmse"][-1],
                                             rel=1e-12)
    rmse = [f["rmse"] for f in out["folds"]]
    assert out["mean"]["rmse"] == pytest.approx(sum(rmse) / 2)
    assert out["std"]["rmse"] == pytest.approx(abs(rmse[0] - rmse[1]) / 2 ** 0.5)  # sample std


def test_cv_table_and_markdown(run):
    res = run("cv", "--dataset", "ml-100k", "--model", "mfb", "--folds", "3", "--epochs", "1",
              *SGD, "--jobs", "1")
    assert res.exit_code == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["fold", "rmse", "mae", "epochs", "n_train", "n_test", "seconds"]
    assert [line.split()[0] for line in lines[1:4]] == ["1", "2", "3"]
    assert lines[4].startswith("mean ± std") and lines[4].count("±") == 3
    assert "retried: 0 of 3 folds" in res.stdout
    assert "3-fold cross-validation of 100,000 ratings" in res.stderr
    md = run("cv", "--dataset", "ml-100k", "--model", "mfb", "--folds", "2", "--epochs", "1",
             *SGD, "--jobs", "1", "--markdown", "-q")
    assert md.stdout.startswith("| fold | rmse |") and md.stderr == ""


@pytest.mark.parametrize("args, message", [
    (["--folds", "1"], "need 2 to 1,000 folds"),
    (["--folds", "5000"], "need 2 to 1,000 folds"),
    (["--jobs", "5000"], "--jobs"),
    (["--folds", "u9"], "GroupLens fold names"),
    (["--folds", "u1,u1"], "named twice"),
    (["--folds", "u1", "--dataset", "ml-latest-small"], "for --dataset ml-100k only"),
    (["--json", "--markdown"], "choose one of --json and --markdown"),
    (["--model", "mfb", "--hidden", "3"], "--hidden does not apply to model mfb"),
])
def test_cv_usage_errors(run, args, message):
    res = run("cv", *(["--dataset", "ml-100k"] if "--dataset" not in args else []), *args)
    assert res.exit_code == 2 and message in res.stderr


def test_compare_folds_runs_cv_for_each_model(run):
    """compare --folds and cv --folds are one code path: the same per-fold figures, also
    with early stopping (on an inner split of the fold's training part) and two jobs."""
    opts = ["--folds", "u1,u2", "--epochs", "30", "--early-stopping", "1", "--lr", "0.05", *SGD]
    res = run("compare", "--dataset", "ml-100k", "--models", "mfb", "--factors", "4", *opts,
              "--jobs", "2", "--json", "-q")
    assert res.exit_code == 0, res.stderr
    (cmp,) = json.loads(res.stdout)["results"]
    ref = json.loads(run("cv", "--dataset", "ml-100k", "--model", "mfb", "--factors", "4",
                         *opts, "--jobs", "1", "--json", "-q").stdout)
    for fold in ref["folds"]:
        mine = cmp["folds"][fold["fold"]]
        assert (mine["rmse"], mine["mae"], mine["epochs"]) == \
            (fold["rmse"], fold["mae"], fold["epochs"])
    assert all(f["epochs"] < 30 for f in ref["folds"])  # stopped on the inner split


@pytest.mark.parametrize("args, message", [
    (["--folds", "u1", "--threads", "2"], "--threads does not go with --folds"),
    (["--jobs", "2"], "--jobs goes with --folds"),
    (["--folds", "u1", "--dataset", "ml-1m"], "for --dataset ml-100k only"),
    (["--folds", "u1,6"], "not a GroupLens fold"),
])
def test_compare_folds_usage_errors(run, args, message):
    res = run("compare", *(["--dataset", "ml-100k"] if "--dataset" not in args else []),
              *args)
    assert res.exit_code == 2 and message in res.stderr


def test_cv_and_tune_take_the_koren_and_time_options(run):
    from mfcore.cli.train import model_params
    assert model_params("nn", bins=4, time_features=True) == {"time_bins": 4,
                                                              "time_features": True}
    assert model_params("timesvd", bins=4) == {"bins": 4}
    res = run("tune", "--dataset", "ml-100k", "--model", "timesvd", "--bins", "3",
              "--without", "scale", "--l2-bias", "0.02", "--grid", "factors=2,3",
              "--folds", "2", "--epochs", "1", "--jobs", "1", "--json", "-q")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert (out["fixed"]["bins"], out["fixed"]["without"], out["fixed"]["l2_bias"]) == \
        (3, ["scale"], 0.02)
    assert all(t["error"] is None for t in out["trials"])
    res = run("cv", "--dataset", "ml-100k", "--model", "svdpp", "--flipped", "--factors", "2",
              "--folds", "2", "--epochs", "1", "--jobs", "1", "--json", "-q")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["params"]["flipped"] is True
    res = run("cv", "--dataset", "ml-100k", "--model", "mfb", "--bins", "3")
    assert res.exit_code == 2 and "--bins does not apply to model mfb" in res.stderr


# ---- tune --------------------------------------------------------------------------------
def test_tune_grid_json(run):
    res = run("tune", "--dataset", "ml-100k", "--model", "mfb", "--grid", "factors=2,6",
              "--folds", "2", "--epochs", "1", *SGD, "--jobs", "1", "--json")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    trials = out["trials"]
    assert [t["rank"] for t in trials] == [1, 2] and trials[0]["rmse"] <= trials[1]["rmse"]
    assert sorted(t["params"]["factors"] for t in trials) == [2, 6]
    assert set(trials[0]) >= {"params", "rmse", "rmse_std", "mae", "seconds", "folds"}
    assert out["best"] == trials[0] and out["retried"] == 0
    assert sum(f["n_test"] for f in out["folds"]) == 80184  # the training part, only
    assert out["fit"] == {"epochs": 1, "optimizer": "sgd", "batch_size": 1}
    assert "searching on the 80,184 training ratings of split random" in res.stderr


def test_tune_random_text_with_the_default_space_and_save(run, tmp_path):
    path = tmp_path / "best.npz"
    res = run("tune", "--dataset", "ml-100k", "--model", "mfb", "--random", "3", "--folds", "2",
              "--epochs", "8", "--early-stopping", "1", *SGD, "--jobs", "1",
              "--save", path)
    assert res.exit_code == 0, res.stderr
    assert ("space (the default): factors=logint(4,128) lr=log(0.001,0.1) l2=log(0.001,0.3) "
            "l2_mode=per-sample") in res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].split()[:4] == ["rank", "trial", "rmse", "±std"]
    assert lines[0].split()[-4:] == ["factors", "lr", "l2", "l2_mode"]
    assert any(line.startswith("best: trial ") for line in lines)
    assert any(line.startswith("retried: 0 of 6 tasks") for line in lines)
    refit = lines[-1]
    assert refit.startswith("refit: the best on all 80,184 training ratings, ")
    assert refit.endswith(f"saved to {path}")
    model = load_model(path)
    scores = model.evaluate(_validation_part())
    assert f"on the 19,816 held-out ratings: RMSE {scores['rmse']:.4f}" in refit
    assert model.l2_mode == "per-sample" and model.data_source_["split"] == "random"
    ev = run("evaluate", path)  # the saved model knows its split
    assert ev.exit_code == 0 and f"RMSE  {scores['rmse']:.6f}" in ev.stdout


def _validation_part():
    from mfcore.data import load_dataset, random_split
    return random_split(load_dataset("ml-100k", progress=False), 0.8, seed=0)[1]


def test_tune_markdown_holdout_on_a_grouplens_split(run):
    res = run("tune", "--dataset", "ml-100k", "--split", "u1", "--model", "mfb",
              "--grid", "lr=0.005,0.01", "--holdout", "0.2", "--metric", "mae",
              "--epochs", "1", *SGD, "--jobs", "1", "--markdown")
    assert res.exit_code == 0, res.stderr
    assert res.stdout.startswith("| rank | trial | mae | ±std | rmse |")
    assert "searching on the 80,000 training ratings of split u1, by a 0.2 holdout" \
        in res.stderr


@pytest.mark.parametrize("args, message", [
    ([], "give --grid SPEC or --random N"),
    (["--grid", "factors=2", "--random", "2"], "give --grid SPEC or --random N"),
    (["--grid", "factors=2", "--space", "lr=log(1e-3,1e-2)"], "--space goes with --random"),
    (["--grid", "factors=2", "--folds", "2", "--holdout", "0.2"], "one of --folds and --holdout"),
    (["--grid", "colour=2"], "no parameter 'colour'"),
    (["--grid", "factors"], "cannot read the grid"),
    (["--random", "2", "--space", "lr=log(0,1)"], "positive ends"),
    (["--grid", "factors=2,4", "--factors", "3"], "factors is both held fixed and searched"),
    (["--grid", "factors=2", "--json", "--markdown"], "choose one of --json and --markdown"),
    (["--grid", "factors=2", "--scheduler", "tcp://127.0.0.1:1", "--jobs", "2"],
     "with --scheduler the cluster's workers run the trials"),
    (["--grid", "factors=2", "--force"], "--force goes with --save"),
    (["--random", str(10 ** 9)], "--random"),
    (["--grid", "factors=2", "--holdout", "nan"], "--holdout"),
    (["--grid", "factors=2", "--retries", "1000"], "--retries"),
    (["--grid", "factors=2", "--folds", "5000"], "--folds"),
])
def test_tune_usage_errors(run, args, message):
    res = run("tune", "--dataset", "ml-100k", "--epochs", "1", *args)
    assert res.exit_code == 2, res.stdout
    assert message in res.stderr


def test_tune_bad_value_is_one_line_before_any_work(run):
    res = run("tune", "--dataset", "ml-100k", "--grid", "factors=4,0", "--epochs", "1")
    assert res.exit_code == 2                       # a value of --grid: a usage error
    assert res.stderr.strip().splitlines()[-1].startswith(
        "error: Invalid value for --grid: trial 1 (factors=0): factors must be an integer "
        "from 1 to 1,048,576, got 0 (see ")
    for grid, said in (("lr=inf", "learning rate must be a positive number, got 'inf'"),
                       ("lr=1_0e-3", "learning rate must be a positive number, got '1_0e-3'"),
                       ("batch_size=2147483648", "batch_size must be an integer from 1")):
        res = run("tune", "--dataset", "ml-100k", "--grid", grid, "--epochs", "1")
        assert res.exit_code == 2 and said in res.stderr, res.stderr


def test_scheduler_without_dask_is_one_line_on_how_to_install_it(run, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    res = run("tune", "--dataset", "ml-100k", "--grid", "factors=2", "--epochs", "1",
              env={"MFCORE_DASK_SCHEDULER": "tcp://127.0.0.1:1"})
    assert res.exit_code == 1
    assert res.stderr.count("\n") == 1 and "pip install 'mfcore[dask]'" in res.stderr
    res = run("cv", "--dataset", "ml-100k", "--scheduler", "tcp://127.0.0.1:1")
    assert res.exit_code == 1 and "pip install 'mfcore[dask]'" in res.stderr


def test_unreachable_scheduler_is_one_line(run):
    dask = pytest.importorskip("dask")
    pytest.importorskip("distributed")
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        res = run("tune", "--dataset", "ml-100k", "--grid", "factors=2", "--epochs", "1",
                  "--scheduler", "tcp://127.0.0.1:1", "-q")
    assert res.exit_code == 1
    assert res.stderr.startswith("error: cannot reach the Dask scheduler at tcp://127.0.0.1:1")
    assert res.stderr.count("\n") == 1


def test_tune_on_a_dask_cluster_named_by_the_environment_equals_jobs_1(run):
    distributed = pytest.importorskip("distributed")
    args = ["tune", "--dataset", "ml-100k", "--model", "mfb", "--random", "3", "--folds", "2",
            "--epochs", "2", *SGD, "--json", "-q"]
    local = json.loads(run(*args, "--jobs", "1").stdout)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        res = run(*args, env={"MFCORE_DASK_SCHEDULER": cluster.scheduler_address})
    assert res.exit_code == 0, res.stderr
    dask = json.loads(res.stdout)
    strip = _without_timings
    assert strip(dask["trials"]) == strip(local["trials"])
    assert dask["backend"].startswith(f"Dask at {cluster.scheduler_address}")


def _without_timings(trials):
    return [{k: (v if k != "folds" else [{a: b for a, b in f.items() if a != "seconds"}
                                         for f in v]) for k, v in t.items() if k != "seconds"}
            for t in trials]


@pytest.mark.skipif(os.name != "posix", reason="process groups and SIGINT")
def test_ctrl_c_cancels_the_workers_and_exits_130(data_home, tmp_path):
    """Ctrl-C in a terminal signals the whole foreground process group: the command, the
    fork server and the workers. The command must stop the workers, print one line and
    exit 130; no process may be left behind."""
    psutil = pytest.importorskip("psutil")
    env = dict(os.environ, MFCORE_DATA_HOME=str(data_home))
    child = subprocess.Popen(
        [sys.executable, "-m", "mfcore", "tune", "--dataset", "ml-100k", "--model", "mfb",
         "--random", "200", "--epochs", "30", *SGD, "--jobs", "2", "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True,
        # a background job of a non-interactive shell inherits SIGINT ignored: undo that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    proc = psutil.Process(child.pid)
    deadline = time.monotonic() + 120
    workers = []
    while time.monotonic() < deadline and child.poll() is None:
        workers = proc.children(recursive=True)
        if len(workers) >= 4:  # the resource tracker, the fork server and two workers
            break
        time.sleep(0.2)
    assert len(workers) >= 4, "the workers did not start"
    time.sleep(2.0)  # they are training now
    os.killpg(child.pid, signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    assert err.strip().splitlines()[-1] == "interrupted"
    assert "Traceback" not in err and out == ""
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert alive == []


def test_a_search_where_every_trial_failed_exits_1(run, tmp_path):
    """The table (or JSON) still shows each trial's error, stderr says so in one line, and
    --save writes nothing; a search with one good trial still succeeds."""
    args = ("tune", "--dataset", "ml-100k", "--model", "mfb", "--epochs", "1", "--folds", "2",
            "--jobs", "1", "-q")
    save = tmp_path / "best.npz"
    for extra in ((), ("--json",), ("--save", save)):
        res = run(*args, "--grid", "lr=1e6", *extra)
        assert res.exit_code == 1, res.output
        assert res.stderr.strip().splitlines() == [res.stderr.strip()]
        assert res.stderr.startswith("error: every trial failed (1); the first: training "
                                     "diverged")
        assert "diverged" in res.stdout and not save.exists()
    res = run(*args, "--grid", "lr=1e6,1e-3", "--save", save)
    assert res.exit_code == 0 and save.exists()
