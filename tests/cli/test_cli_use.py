"""``mfcore evaluate``, ``predict``, ``recommend`` and ``similar`` through click's CliRunner,
checked against the library on models trained by ``mfcore train --save``."""
import json
import math
import os

import numpy as np
import pytest
from click.testing import CliRunner
from cli_checks import one_error_line

from mfcore.cli import main
from mfcore.models import load_model


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def saved(data_home, tmp_path_factory):
    """An mfb model trained one epoch on u.data's seed-0 split by the CLI, and its path."""
    path = tmp_path_factory.mktemp("use") / "mfb.npz"
    res = invoke("train", "--dataset", "ml-100k", "--model", "mfb", "--factors", "5",
                 "--epochs", "1", "--save", path, "-q")
    assert res.exit_code == 0, res.stderr
    return path, load_model(path)


@pytest.fixture(scope="module")
def file_model(data_home, ml100k_path, tmp_path_factory):
    """An mf model trained by the CLI on a 5,000-row csv file (--data)."""
    folder = tmp_path_factory.mktemp("use-file")
    data = folder / "ratings.csv"
    rows = ml100k_path.read_text().splitlines()[:5000]
    data.write_text("user,item,rating,timestamp\n"
                    + "".join(",".join(r.split("\t")) + "\n" for r in rows))
    path = folder / "mf.npz"
    res = invoke("train", "--data", data, "--sep", ",", "--model", "mf", "--factors", "3",
                 "--epochs", "1", "--split-seed", "7", "--train-fraction", "0.7",
                 "--save", path, "-q")
    assert res.exit_code == 0, res.stderr
    return path, load_model(path), data


# ---- evaluate ------------------------------------------------------------------------------
def test_evaluate_own_split_equals_last_validation_mse(saved):
    path, model = saved
    res = invoke("evaluate", path, "--json", "-q")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["split"] == "validation" and out["data"] == "ml-100k" and out["n"] == 19816
    assert out["mse"] == pytest.approx(model.history_.val_mse[-1], rel=1e-9)
    assert out["rmse"] == pytest.approx(model.history_.val_rmse[-1], rel=1e-9)
    assert out["mae"] == pytest.approx(model.history_.val_mae[-1], rel=1e-9)
    assert res.stderr == ""

    text = invoke("evaluate", path)
    assert text.exit_code == 0
    got = dict(line.split(None, 1) for line in text.stdout.splitlines())
    assert float(got["MSE"]) == pytest.approx(out["mse"], abs=1e-6)
    assert int(got["n"]) == 19816 and "validation split" in got["data"]
    assert "mfb" in text.stderr  # the model line goes to stderr


def test_evaluate_own_split_of_a_data_file(file_model):
    path, model, data = file_model
    out = json.loads(invoke("evaluate", path, "--json").stdout)
    assert out["split_seed"] == 7 and out["train_fraction"] == 0.7
    assert out["mse"] == pytest.approx(model.history_.val_mse[-1], rel=1e-9)


@pytest.fixture()
def relative_model(tmp_path, monkeypatch):
    """A model trained with a relative --data path from inside its data folder."""
    from mfcore.data import synthetic_ratings, write_ratings_dat
    work = tmp_path / "work"
    work.mkdir()
    write_ratings_dat(synthetic_ratings(3000, n_users=60, n_items=50, seed=6), work / "r.dat")
    monkeypatch.chdir(work)
    res = invoke("train", "--data", "r.dat", "--model", "mfb", "--factors", "3", "--epochs",
                 "1", "--save", "m.npz", "-q")
    assert res.exit_code == 0, res.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return work / "m.npz", load_model(work / "m.npz"), work / "r.dat"


def test_evaluate_from_another_folder(relative_model):
    path, model, data = relative_model
    res = invoke("evaluate", path, "--json")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["data"] == str(data) and out["data_changed"] is False
    assert out["mse"] == pytest.approx(model.history_.val_mse[-1], rel=1e-9)
    assert "warning" not in res.stderr


def test_evaluate_says_when_the_data_changed(relative_model):
    """An edit keeping the size and the mtime (cp -p, rsync -t) is still seen."""
    path, model, data = relative_model
    st = data.stat()
    lines = data.read_bytes().split(b"\n")
    u, i, r, t = lines[0].split(b"::")
    lines[0] = b"::".join([u, i, b"1" if r != b"1" else b"2", t])
    data.write_bytes(b"\n".join(lines))
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert data.stat().st_size == st.st_size
    res = invoke("evaluate", path, "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["data_changed"] is True
    warning = next(line for line in res.stderr.splitlines() if line.startswith("warning"))
    assert warning.startswith(f"warning: {data} changed since the model was trained")
    assert "SHA-256" in warning
    text = invoke("evaluate", path)
    assert "CHANGED since training" in text.stdout.splitlines()[0]
    quiet = invoke("evaluate", path, "-q", "--json")
    assert quiet.stderr == "" and json.loads(quiet.stdout)["data_changed"] is True


def test_evaluate_an_older_model_with_a_relative_path(relative_model, tmp_path):
    """Model files written before paths were recorded absolutely hold the path as typed:
    it is looked for from the current folder, then beside the model file."""
    path, model, data = relative_model
    model.data_source_ = {k: v for k, v in model.data_source_.items() if k != "sha256"}
    model.data_source_["data"] = "r.dat"
    old = data.parent / "old.npz"
    model.save(old)
    out = json.loads(invoke("evaluate", old, "--json").stdout)  # cwd is elsewhere
    assert out["data"] == str(data) and out["data_changed"] is None
    assert out["mse"] == pytest.approx(model.history_.val_mse[-1], rel=1e-9)


def test_evaluate_missing_recorded_file_is_one_line(file_model, tmp_path):
    path, model, data = file_model
    model.data_source_ = {**model.data_source_, "data": str(tmp_path / "gone.csv")}
    moved = tmp_path / "moved.npz"
    model.save(moved)
    one_error_line(invoke("evaluate", moved), "gone.csv", "--data")


def test_evaluate_all_rows_of_a_dataset(saved, ml100k):
    path, model = saved
    out = json.loads(invoke("evaluate", path, "--dataset", "ml-100k", "--json").stdout)
    lib = model.evaluate(ml100k)
    assert out["split"] == "all" and out["n"] == 100000
    assert out["mse"] == pytest.approx(lib["mse"], rel=1e-9)

    known = model.known(ml100k.user_ids[ml100k.users], ml100k.item_ids[ml100k.items])
    n_unknown = int((~known).sum())
    assert n_unknown > 0  # items rated only in the validation split
    skip = json.loads(invoke("evaluate", path, "--dataset", "ml-100k", "--unknown", "skip",
                             "--json").stdout)
    assert skip["n"] == 100000 - n_unknown and skip["skipped"] == n_unknown
    assert skip["mse"] == pytest.approx(model.evaluate(ml100k.subset(known))["mse"], rel=1e-9)

    mean = json.loads(invoke("evaluate", path, "--dataset", "ml-100k", "--unknown", "mean",
                             "--clip", "--json").stdout)
    assert mean["n"] == 100000 and mean["mean_filled"] == n_unknown
    pred = model.predict(ml100k.user_ids[ml100k.users], ml100k.item_ids[ml100k.items],
                         unknown="mean", clip=True).astype(np.float64)
    assert mean["mse"] == pytest.approx(np.mean((pred - ml100k.ratings) ** 2), rel=1e-9)

    text = invoke("evaluate", path, "--dataset", "ml-100k", "--unknown", "skip")
    assert f"skipped {n_unknown} row(s)" in text.stdout


@pytest.fixture()
def foreign_csv(tmp_path):
    """A ratings file with other id maps: three known pairs and one unknown user."""
    p = tmp_path / "foreign.csv"
    p.write_text("user,item,rating\n196,242,3\n186,302,3\n22,377,1\n99999,242,4\n")
    return p


def test_evaluate_foreign_file_through_raw_ids(saved, foreign_csv):
    path, model = saved
    one_error_line(invoke("evaluate", path, "--data", foreign_csv, "--sep", ","),
                   "99999", "--unknown skip")
    out = json.loads(invoke("evaluate", path, "--data", foreign_csv, "--unknown", "skip",
                            "--json").stdout)
    assert out["n"] == 3 and out["skipped"] == 1
    p = model.predict([196, 186, 22], [242, 302, 377]).astype(np.float64)
    assert out["mse"] == pytest.approx(np.mean((p - [3, 3, 1]) ** 2), rel=1e-6)
    mean = json.loads(invoke("evaluate", path, "--data", foreign_csv, "--unknown", "mean",
                             "--json").stdout)
    e = np.append(p - [3, 3, 1], model.global_mean_ - 4)
    assert mean["n"] == 4 and mean["mean_filled"] == 1
    assert mean["mse"] == pytest.approx(np.mean(e ** 2), rel=1e-6)


def test_evaluate_without_recorded_source(tmp_path, ml100k_split):
    from mfcore.models import MF
    train, _ = ml100k_split
    m = MF(factors=2)
    m.fit(train, epochs=1, verbose=0)
    m.save(tmp_path / "lib.npz")
    one_error_line(invoke("evaluate", tmp_path / "lib.npz"), "--dataset", "--data")


def test_bad_model_file_is_one_line(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_text("not a model")
    one_error_line(invoke("evaluate", bad), "bad.npz")
    one_error_line(invoke("predict", bad, "--user", "1", "--item", "1"), "bad.npz")


# ---- predict -------------------------------------------------------------------------------
def test_predict_one_pair(saved):
    path, model = saved
    res = invoke("predict", path, "--user", "196", "--item", "242")
    assert res.exit_code == 0 and res.stderr == ""
    assert np.float32(res.stdout.strip()) == model.predict([196], [242])[0]
    clipped = invoke("predict", path, "--user", "196", "--item", "242", "--clip").stdout
    assert np.float32(clipped) == model.predict([196], [242], clip=True)[0]


def test_predict_unknown_user(saved):
    path, model = saved
    one_error_line(invoke("predict", path, "--user", "99999", "--item", "242"),
                   "user 99999", "--unknown")
    line = one_error_line(invoke("predict", path, "--user", "abc", "--item", "242"))
    assert line == "error: user id 'abc' is not an integer like the model's user ids"
    mean = invoke("predict", path, "--user", "99999", "--item", "242", "--unknown", "mean")
    assert float(mean.stdout) == pytest.approx(model.global_mean_, rel=1e-6)
    nan = invoke("predict", path, "--user", "99999", "--item", "242", "--unknown", "nan")
    assert nan.exit_code == 0 and math.isnan(float(nan.stdout))


def test_predict_batch_file_equals_library(saved, tmp_path):
    path, model = saved
    rng = np.random.default_rng(1)
    users = rng.choice(model.user_ids_[model.user_counts_ > 0], 300)
    items = rng.choice(model.item_ids_[model.item_counts_ > 0], 300)
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("user,item\n" + "".join(f"{u},{i}\n" for u, i in zip(users, items)))
    out = tmp_path / "preds.csv"
    res = invoke("predict", path, "--input", pairs, "--output", out, "--clip")
    assert res.exit_code == 0, res.stderr
    assert res.stdout == "" and "300 predictions" in res.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == "user,item,prediction" and len(lines) == 301
    got = np.array([line.split(",") for line in lines[1:]])
    assert np.array_equal(got[:, 0].astype(np.int64), users)
    assert np.array_equal(got[:, 1].astype(np.int64), items)
    np.testing.assert_array_equal(got[:, 2].astype(np.float32),
                                  model.predict(users, items, clip=True))
    assert sorted(os.listdir(tmp_path)) == ["pairs.csv", "preds.csv"]  # no temp file left


def test_predict_batch_no_header_to_stdout_keeps_ids_as_written(saved, tmp_path):
    path, model = saved
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("0196\t242\n\n1\t1\n")
    for extra in ([], ["--output", "-"]):
        res = invoke("predict", path, "--input", pairs, *extra)
        assert res.exit_code == 0, res.stderr
        lines = res.stdout.splitlines()
        assert lines[0] == "user,item,prediction"
        assert lines[1].startswith("0196,242,") and lines[2].startswith("1,1,")
        assert np.float32(lines[1].split(",")[2]) == model.predict([196], [242])[0]


def test_predict_batch_header_in_any_order_with_extra_columns(saved, tmp_path):
    path, model = saved
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("item,rating,user\n242,3,196\n302,3,186\n")
    res = invoke("predict", path, "--input", pairs)
    rows = [line.split(",") for line in res.stdout.splitlines()[1:]]
    assert [r[:2] for r in rows] == [["196", "242"], ["186", "302"]]
    np.testing.assert_array_equal(np.array([r[2] for r in rows], np.float32),
                                  model.predict([196, 186], [242, 302]))


def test_predict_batch_unknown_policies(saved, tmp_path):
    path, model = saved
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("user,item\n196,242\n99999,242\n196,77777\n")
    out = tmp_path / "preds.csv"
    one_error_line(invoke("predict", path, "--input", pairs, "--output", out),
                   "pairs.csv, line 3", "user 99999", "2 of 3 pairs")
    assert not out.exists()
    res = invoke("predict", path, "--input", pairs, "--unknown", "nan")
    preds = [line.split(",")[2] for line in res.stdout.splitlines()[1:]]
    assert preds[1] == "nan" and preds[2] == "nan" and preds[0] != "nan"
    res = invoke("predict", path, "--input", pairs, "--unknown", "mean")
    preds = np.array([line.split(",")[2] for line in res.stdout.splitlines()[1:]], np.float32)
    assert preds[1] == preds[2] == np.float32(model.global_mean_)


@pytest.mark.parametrize("content,needle", [
    ("user,item\n196,242\nabc,242\n", "line 3"),
    ("user,item\n196,242\n186,302,5\n", "line 3"),
    ("196,242\n186\n", "line 2"),
    ("196,242,3\n", "line 1"),
    ("user,item\n196,\n", "line 2"),
    ("", "empty"),
])
def test_bad_input_file_is_one_line_and_leaves_no_output(saved, tmp_path, content, needle):
    path, _ = saved
    pairs = tmp_path / "bad.csv"
    pairs.write_text(content)
    out = tmp_path / "preds.csv"
    one_error_line(invoke("predict", path, "--input", pairs, "--output", out),
                   "bad.csv", needle)
    assert sorted(os.listdir(tmp_path)) == ["bad.csv"]


def test_failed_predict_keeps_an_existing_output_untouched(saved, tmp_path):
    path, _ = saved
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("user,item\n196,99999\n")
    out = tmp_path / "preds.csv"
    out.write_text("old\n")
    assert invoke("predict", path, "--input", pairs, "--output", out).exit_code == 1
    assert out.read_text() == "old\n"
    one_error_line(invoke("predict", path, "--input", pairs, "--unknown", "mean",
                          "--output", tmp_path / "missing-dir" / "p.csv"), "missing-dir")


@pytest.mark.parametrize("args", [
    ["--user", "196"],
    ["--item", "242"],
    [],
    ["--user", "196", "--item", "242", "--input", "__PAIRS__"],
    ["--user", "196", "--item", "242", "--output", "x.csv"],
    ["--unknown", "zero", "--user", "196", "--item", "242"],
])
def test_predict_usage_errors_exit_2(saved, tmp_path, args):
    path, _ = saved
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("196,242\n")
    args = [str(pairs) if a == "__PAIRS__" else a for a in args]
    res = invoke("predict", path, *args)
    assert res.exit_code == 2, res.stderr
    assert "Traceback" not in res.stderr


def test_missing_model_file_is_a_usage_error(tmp_path):
    for cmd in (["evaluate"], ["predict", "--user", "1", "--item", "1"],
                ["recommend", "--user", "1"], ["similar", "--item", "1"]):
        res = invoke(cmd[0], tmp_path / "nope.npz", *cmd[1:])
        assert res.exit_code == 2 and "nope.npz" in res.stderr


# ---- recommend / similar -------------------------------------------------------------------
def test_recommend_equals_library(saved):
    path, model = saved
    res = invoke("recommend", path, "--user", "196", "-n", "5", "--json")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    lib = model.recommend(196, n=5)
    assert out["user"] == 196 and [r["item"] for r in out["items"]] == lib["item"].tolist()
    np.testing.assert_allclose([r["score"] for r in out["items"]], lib["score"], rtol=1e-6)
    u = int(np.searchsorted(model.user_ids_, 196))
    seen = set(model.item_ids_[model.seen_items_[model.seen_indptr_[u]:model.seen_indptr_[u + 1]]])
    assert not seen & {r["item"] for r in out["items"]}

    every = json.loads(invoke("recommend", path, "--user", "196", "-n", "5",
                              "--include-seen", "--json").stdout)
    assert [r["item"] for r in every["items"]] == \
        model.recommend(196, n=5, exclude_seen=False)["item"].tolist()

    text = invoke("recommend", path, "--user", "196", "-n", "3")
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["rank", "item", "score"] and len(lines) == 4
    assert lines[1].split()[:2] == ["1", str(lib["item"][0])]


def test_recommend_unknown_user_is_one_line(saved):
    path, _ = saved
    line = one_error_line(invoke("recommend", path, "--user", "99999"))
    assert line == ("error: user 99999 had no ratings in the model's training data; cannot "
                    "recommend for it")  # the id as typed, not np.int64(99999)
    line = one_error_line(invoke("recommend", path, "--user", "x1"))
    assert line == "error: user id 'x1' is not an integer like the model's user ids"
    line = one_error_line(invoke("similar", path, "--item", "0042x"))
    assert line == "error: item id '0042x' is not an integer like the model's item ids"
    assert invoke("recommend", path, "--user", "196", "-n", "0").exit_code == 2


def test_similar_equals_library(saved):
    path, model = saved
    out = json.loads(invoke("similar", path, "--item", "50", "-n", "4", "--json").stdout)
    lib = model.similar_items(50, n=4)
    assert out["item"] == 50 and [r["item"] for r in out["items"]] == lib["item"].tolist()
    np.testing.assert_allclose([r["similarity"] for r in out["items"]], lib["similarity"],
                               rtol=1e-6)
    text = invoke("similar", path, "--item", "50", "-n", "2", "-q")
    assert text.stderr == "" and text.stdout.splitlines()[0].split() == \
        ["rank", "item", "similarity"]
    line = one_error_line(invoke("similar", path, "--item", "99999"))
    assert line == "error: item 99999 had no ratings in the model's training data"


def test_titles_are_shown_when_the_model_has_them(tmp_path):
    from mfcore.data import Ratings
    from mfcore.models import MFB
    r = np.random.default_rng(0)
    users, items = r.integers(1, 30, 600), r.integers(1, 20, 600)
    data = Ratings.from_arrays(users, items, r.integers(1, 6, 600),
                               titles={i: f"Movie {i} (1999)" for i in range(1, 20)})
    m = MFB(factors=3)
    m.fit(data, epochs=1, verbose=0)
    m.save(tmp_path / "t.npz")
    out = json.loads(invoke("recommend", tmp_path / "t.npz", "--user", "1", "-n", "2",
                            "--include-seen", "--json").stdout)
    assert all(row["title"] == f"Movie {row['item']} (1999)" for row in out["items"])
    text = invoke("similar", tmp_path / "t.npz", "--item", "3", "-n", "2")
    assert text.stdout.splitlines()[0].split()[-1] == "title"
    assert "(1999)" in text.stdout


@pytest.mark.parametrize("cmd", ["evaluate", "predict", "recommend", "similar", "bench"])
def test_help_has_examples(cmd):
    res = invoke(cmd, "--help")
    assert res.exit_code == 0 and "Examples:" in res.stdout and f"mfcore {cmd}" in res.stdout
