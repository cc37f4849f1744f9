"""The command line of the time-aware and implicit-feedback models: their options,
``--timestamp`` on predict/recommend/evaluate, and ``compare --folds``."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from mfcore.cli import main
from mfcore.data.pairs import parse_timestamp
from mfcore.models import load_model


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def timesvdpp(data_home, tmp_path_factory):
    path = tmp_path_factory.mktemp("time") / "t.npz"
    res = invoke("train", "--dataset", "ml-100k", "--split", "u1", "--model", "timesvdpp",
                 "--factors", "4", "--epochs", "2", "--flipped", "--bins", "12",
                 "--without", "factor_drift", "--save", path, "-q")
    assert res.exit_code == 0, res.stderr
    return path, load_model(path)


def test_model_options_reach_the_model(timesvdpp):
    _, m = timesvdpp
    p = m.get_params()
    assert p["flipped"] is True and p["bins"] == 12 and tuple(p["without"]) == ("factor_drift",)
    assert m.data_source_["split"] == "u1"


@pytest.mark.parametrize("args,needle", [
    (["--model", "mfb", "--flipped"], "--flipped does not apply to model mfb"),
    (["--model", "svdpp", "--without", "scale"], "--without does not apply"),
    (["--model", "timesvd", "--without", "scale,weekday"], "expected time terms"),
    (["--model", "svdpp", "--implicit", "some"], "Invalid value for '--implicit'"),
    (["--model", "mfb", "--time-features"], "--time-features does not apply"),
    (["--model", "nn", "--time-features", "--time-inputs", "bin,week"], "time_inputs"),
])
def test_option_misuse_is_a_usage_error(data_home, args, needle):
    res = invoke("train", "--dataset", "ml-100k", "--epochs", "1", "-q", *args)
    assert res.exit_code == 2 and needle in res.stderr, res.stderr


def test_time_features_and_bins_reach_an_nn(data_home, tmp_path):
    path = tmp_path / "nn.npz"
    res = invoke("train", "--dataset", "ml-100k", "--split", "temporal", "--model", "nn",
                 "--time-features", "--bins", "7", "--time-inputs", "bin,dev", "--epochs",
                 "1", "--save", path, "-q")
    assert res.exit_code == 0, res.stderr
    p = load_model(path).get_params()
    assert p["time_features"] is True and p["time_bins"] == 7
    assert tuple(p["time_inputs"]) == ("bin", "dev")


def test_predict_takes_a_timestamp(timesvdpp, tmp_path):
    path, m = timesvdpp
    when = "1998-03-01"
    ts = parse_timestamp(when)
    res = invoke("predict", path, "--user", 196, "--item", 242, "--timestamp", when)
    assert res.exit_code == 0, res.stderr
    assert float(res.stdout) == pytest.approx(float(m.predict([196], [242], timestamps=[ts])[0]),
                                              abs=1e-6)
    res = invoke("predict", path, "--user", 196, "--item", 242)  # the user's last day
    assert float(res.stdout) == pytest.approx(float(m.predict([196], [242])[0]), abs=1e-6)
    # a file with a timestamp column (seconds or dates) and one without, given --timestamp
    pairs = tmp_path / "p.csv"
    pairs.write_text("item,timestamp,user\n242,881250949,196\n242,1998-03-01,196\n302,0,22\n")
    out = tmp_path / "out.csv"
    assert invoke("predict", path, "--input", pairs, "--output", out, "-q").exit_code == 0
    got = np.loadtxt(out, delimiter=",", skiprows=1)[:, 2]
    want = m.predict([196, 196, 22], [242, 242, 302], timestamps=[881250949, ts, 0])
    np.testing.assert_allclose(got, want, atol=1e-6)
    plain = tmp_path / "q.csv"
    plain.write_text("196,242\n")
    res = invoke("predict", path, "--input", plain, "--timestamp", 881250949)
    assert float(res.stdout.splitlines()[1].split(",")[2]) == pytest.approx(got[0], abs=1e-6)


def test_bad_timestamps_name_the_place(timesvdpp, tmp_path):
    path, _ = timesvdpp
    pairs = tmp_path / "p.csv"
    pairs.write_text("user,item,timestamp\n196,242,881250949\n196,242,next week\n")
    res = invoke("predict", path, "--input", pairs)
    assert res.exit_code == 1
    assert "p.csv, line 3, column 3" in res.stderr and "next week" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    for bad in ("tomorrow", "99999999999999", "1998-13-01"):
        res = invoke("predict", path, "--user", 196, "--item", 242, "--timestamp", bad)
        assert res.exit_code == 2 and "--timestamp" in res.stderr, res.stderr


def test_recommend_and_evaluate_take_a_timestamp(timesvdpp):
    path, m = timesvdpp
    ts = parse_timestamp("1998-02-01")
    res = invoke("recommend", path, "--user", 196, "-n", 5, "--timestamp", "1998-02-01",
                 "--json")
    items = [r["item"] for r in json.loads(res.stdout)["items"]]
    assert items == list(m.recommend(196, n=5, timestamp=ts)["item"])
    res = invoke("evaluate", path, "--json", "-q")
    own = json.loads(res.stdout)
    assert own["mse"] == pytest.approx(m.history_.val_mse[-1], rel=1e-6)
    res = invoke("evaluate", path, "--json", "-q", "--timestamp", "1998-02-01")
    fixed = json.loads(res.stdout)
    assert fixed["n"] == own["n"] and fixed["mse"] != own["mse"]


def test_compare_folds_reports_each_fold_and_the_mean(data_home):
    res = invoke("compare", "--dataset", "ml-100k", "--models", "baseline,mfb", "--factors",
                 "4", "--folds", "u1,u3", "--epochs", "1", "--json", "-q")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["folds"] == ["u1", "u3"]
    for r in out["results"]:
        rmse = [r["folds"][f]["rmse"] for f in ("u1", "u3")]
        assert r["rmse_mean"] == pytest.approx(np.mean(rmse))
        assert r["rmse_std"] == pytest.approx(np.std(rmse, ddof=1))
        assert r["folds"]["u1"]["mse"] == pytest.approx(r["folds"]["u1"]["rmse"] ** 2)
    res = invoke("compare", "--dataset", "ml-100k", "--folds", "u1,u9")
    assert res.exit_code == 2 and "not a GroupLens fold" in res.stderr
    res = invoke("compare", "--dataset", "ml-100k", "--folds", "u1", "--split", "temporal")
    assert res.exit_code == 2 and "not both" in res.stderr
