"""``--optimizer mcmc`` on the command line: train, evaluate, predict --std, recommend,
compare, and the one-line refusals."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from mfcore.cli import main
from mfcore.models import load_model


@pytest.fixture()
def run(data_home):
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, list(args), catch_exceptions=False)
    return invoke


@pytest.fixture(scope="module")
def saved(data_home, tmp_path_factory):
    path = tmp_path_factory.mktemp("mcmc") / "svdpp.npz"
    res = CliRunner().invoke(main, ["train", "--dataset", "ml-100k", "--split", "u1", "--model",
                                    "svdpp", "--factors", "3", "--optimizer", "mcmc", "--samples",
                                    "8", "--burn-in", "2", "--save", str(path)],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    return path, res


def test_train_logs_sweeps_and_says_what_it_averaged(saved):
    path, res = saved
    model = load_model(path)
    h = model.history_
    assert res.stdout == (f"svdpp k=3 on ml-100k, 10 mcmc sweeps: val MSE {h.val_mse[-1]:.4f}, "
                          f"RMSE {h.val_rmse[-1]:.4f}, MAE {h.val_mae[-1]:.4f} (posterior mean of 8 "
                          f"samples after a burn-in of 2); saved to {path}\n")
    assert "Sweep 10/10" in res.stderr and "mcmc: Bayesian FM of rank 3 over user (943)" in res.stderr
    assert "implicit (1,682, no bias)" in res.stderr


def test_evaluate_gives_the_last_running_average(run, saved):
    path, _ = saved
    res = run("evaluate", str(path), "--json")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["mse"] == load_model(path).history_.val_mse[-1] and out["protocol"] == "u1"
    assert "mcmc posterior of 8 samples" in run("evaluate", str(path)).stderr


def test_predict_std_single_and_batch(run, saved, tmp_path):
    path, _ = saved
    model = load_model(path)
    mean, std = model.predict([196, 1], [242, 50], return_std=True)
    res = run("predict", str(path), "--user", "196", "--item", "242", "--std")
    assert res.exit_code == 0 and res.stdout == f"{str(mean[0])} +- {str(std[0])}\n"
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("196,242\n1,50\n")
    res = run("predict", str(path), "--input", str(pairs), "--std")
    rows = ((196, 242, mean[0], std[0]), (1, 50, mean[1], std[1]))
    assert res.stdout == "user,item,prediction,std\n" + "".join(
        f"{u},{i},{str(m)},{str(s)}\n" for u, i, m, s in rows)
    assert run("predict", str(path), "--user", "196", "--item", "242").stdout == f"{str(mean[0])}\n"


def test_recommend_and_similar_work(run, saved):
    path, _ = saved
    res = run("recommend", str(path), "--user", "196", "-n", "3", "--json")
    items = json.loads(res.stdout)["items"]
    frame = load_model(path).recommend(196, n=3)
    assert [r["item"] for r in items] == list(frame["item"])
    assert run("similar", str(path), "--item", "50", "-n", "3").exit_code == 0


def test_std_of_a_point_estimate_model_is_refused(run, tmp_path):
    path = tmp_path / "mfb.npz"
    assert run("train", "--dataset", "ml-100k", "--model", "mfb", "--factors", "2", "--epochs", "1",
               "--save", str(path), "-q").exit_code == 0
    res = run("predict", str(path), "--user", "1", "--item", "1", "--std")
    assert res.exit_code == 1 and res.stderr.count("\n") == 1
    assert "--std needs a model trained with --optimizer mcmc" in res.stderr


def test_keep_samples_saves_the_mean_and_refuses_std_at_zero(run, saved, tmp_path):
    path, _ = saved
    mean = load_model(path).predict([196], [242])
    small = tmp_path / "mean_only.npz"
    res = run("train", "--dataset", "ml-100k", "--split", "u1", "--model", "svdpp", "--factors",
              "3", "--optimizer", "mcmc", "--samples", "8", "--burn-in", "2", "--keep-samples",
              "0", "--save", str(small), "-q")
    assert res.exit_code == 0, res.stderr
    assert small.stat().st_size < path.stat().st_size
    got = float(run("predict", str(small), "--user", "196", "--item", "242").stdout)
    assert got == pytest.approx(float(mean[0]), abs=2e-6)
    res = run("predict", str(small), "--user", "196", "--item", "242", "--std")
    assert res.exit_code == 1 and res.stderr.count("\n") == 1
    assert "averaged predictor only" in res.stderr


@pytest.mark.parametrize("args,code,message", [
    (["--optimizer", "mcmc", "--lr", "0.1"], 2, "--lr does not apply to --optimizer mcmc"),
    (["--optimizer", "mcmc", "--epochs", "3"], 2, "--epochs does not apply"),
    (["--optimizer", "mcmc", "--early-stopping", "1"], 2, "--early-stopping does not apply"),
    (["--optimizer", "sgd", "--samples", "5"], 2, "--samples goes with --optimizer mcmc"),
    (["--burn-in", "5"], 2, "--burn-in goes with --optimizer mcmc"),
    (["--optimizer", "mcmc", "--model", "nn"], 1, "optimizer 'mcmc' supports baseline, mfb"),
    (["--optimizer", "mcmc", "--model", "mfbs"], 1, "5*sigmoid output is not one"),
    (["--optimizer", "mcmc", "--l2", "0.001"], 1, "l2=0.001 does not apply to optimizer 'mcmc'"),
    (["--optimizer", "mcmc", "--keep-samples", "3"], 2,
     "--keep-samples goes with --optimizer mcmc and --save"),
    (["--keep-samples", "3", "--save", "x.npz"], 2, "--keep-samples goes with --optimizer mcmc"),
])
def test_refusals_are_one_line(run, args, code, message):
    res = run("train", "--dataset", "ml-100k", "--model", "mfb", *args)
    assert res.exit_code == code and message in res.stderr
    assert "Traceback" not in res.stderr
    if code == 1:
        assert res.stderr.count("\n") == 1


def test_compare_with_mcmc(run):
    res = run("compare", "--dataset", "ml-100k", "--split", "u1", "--optimizer", "mcmc", "--models",
              "baseline,mfb", "--factors", "2", "--samples", "4", "--burn-in", "1", "--json", "-q")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)["results"]
    assert [r["model"] for r in out] == ["baseline", "mfb"]
    for r in out:
        assert r["best_epoch"] == 5 and r["best_val_mse"] == r["history"]["val_mse"][-1]
        assert np.isnan(r["history"]["val_mse"][0])
    table = run("compare", "--dataset", "ml-100k", "--split", "u1", "--optimizer", "mcmc",
                "--models", "mfb", "--factors", "2", "--samples", "4", "--burn-in", "1", "-q")
    assert "Sweep 5/5" in table.stdout and "val_mse of the running mean" in table.stdout
    bad = run("compare", "--dataset", "ml-100k", "--optimizer", "mcmc", "--epochs", "2")
    assert bad.exit_code == 2 and "--epochs does not apply" in bad.stderr


def test_compare_folds_with_mcmc_reports_each_folds_final_running_average(run):
    """compare --folds with mcmc: each fold's figure is the last running average of a chain
    run exactly as model.fit(..., optimizer="mcmc") runs it on that fold (same seed)."""
    import mfcore
    from mfcore.data import load_grouplens_fold
    res = run("compare", "--dataset", "ml-100k", "--folds", "u1,u2", "--optimizer", "mcmc",
              "--models", "mfb", "--factors", "2", "--samples", "4", "--burn-in", "1", "--json",
              "-q")
    assert res.exit_code == 0, res.stderr
    (summary,) = json.loads(res.stdout)["results"]
    assert summary["model"] == "mfb" and not summary["errors"]
    for fold in ("u1", "u2"):
        train, test = load_grouplens_fold(fold)
        model = mfcore.create_model("mfb", factors=2, seed=0)
        h = model.fit(train, test, optimizer="mcmc", samples=4, burn_in=1, verbose=0)
        assert summary["folds"][fold]["rmse"] == h.val_rmse[-1]
        assert summary["folds"][fold]["epochs"] == 5
    assert summary["rmse_mean"] == pytest.approx(np.mean([summary["folds"][f]["rmse"]
                                                          for f in ("u1", "u2")]), rel=1e-12)
