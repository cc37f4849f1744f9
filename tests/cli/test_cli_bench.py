"""``mfcore bench`` through click's CliRunner on a tiny synthetic set."""
import json

import pytest
from click.testing import CliRunner

from mfcore import bench as benchlib
from mfcore.cli import main
from fake_keras import FakeModel, make_fake_keras

TINY = ["bench", "--ratings", "20000", "--models", "mf,mfb", "--factors", "4",
        "--repeat", "1"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture()
def no_keras_import(monkeypatch):
    """Fail if anything tries to import Keras."""
    def forbidden():
        raise AssertionError("Keras must only be imported with --vs-keras")
    monkeypatch.setattr(benchlib, "import_keras", forbidden)


def table_rows(stdout):
    lines = stdout.splitlines()
    head = next(j for j, line in enumerate(lines) if line.startswith("model "))
    rows = []
    for line in lines[head + 1:]:
        if not line.strip():
            break
        rows.append(line.split())
    return lines[head].split(), rows


def test_bench_table(no_keras_import):
    res = invoke(*TINY)
    assert res.exit_code == 0, res.stderr
    head, rows = table_rows(res.stdout)
    assert head == ["model", "optimizer", "batch", "factors", "ms/epoch", "ratings/s"]
    assert [r[:4] for r in rows] == [
        ["mf", "adam", "64", "4"], ["mf", "sparse-adam", "64", "4"], ["mf", "sgd", "1", "4"],
        ["mfb", "adam", "64", "4"], ["mfb", "sparse-adam", "64", "4"], ["mfb", "sgd", "1", "4"]]
    for r in rows:
        ms, per_s = float(r[4].replace(",", "")), float(r[5].replace(",", ""))
        assert ms > 0 and per_s > 0
    assert "20,000 ratings" in res.stdout and "Numba cache:" in res.stdout
    assert "JIT compile (first call minus warm call): mf " in res.stdout
    assert "ms/epoch" in res.stderr  # progress goes to stderr


def test_bench_with_its_default_models_times_every_model(no_keras_import):
    """The default --models is every model; the compile-time probe's data had no
    timestamps, so a plain `mfcore bench` stopped at timesvd with no table."""
    from mfcore.registry import MODELS
    res = invoke("bench", "--ratings", "2000", "--factors", "2", "--repeat", "1",
                 "--optimizers", "sgd", "--json", "-q")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert [r["model"] for r in out["rows"]] == list(MODELS)
    assert set(out["compile_seconds"]) == set(MODELS)


def test_bench_json(no_keras_import):
    res = invoke(*TINY, "--optimizers", "sgd,sparse-adam", "--json", "-q")
    assert res.exit_code == 0 and res.stderr == ""
    out = json.loads(res.stdout)
    assert out["n_ratings"] == 20000 and out["repeat"] == 1 and out["warmup_epochs"] == 1
    assert [(r["model"], r["optimizer"], r["batch_size"]) for r in out["rows"]] == \
        [("mf", "sgd", 1), ("mf", "sparse-adam", 64), ("mfb", "sgd", 1),
         ("mfb", "sparse-adam", 64)]
    for r in out["rows"]:
        assert r["n_train"] == out["n_train"] and len(r["epoch_seconds"]) == 1
        assert r["ratings_per_s"] == pytest.approx(out["n_train"] / (r["ms_per_epoch"] / 1000))
        assert r["keras_ms_per_epoch"] is None
    assert set(out["compile_seconds"]) == {"mf", "mfb"}
    assert out["numba_cache"] in ("warm", "cold", "partly warm", "in-process")
    assert out["keras"] is None


def test_bench_markdown_and_batch_size(no_keras_import):
    res = invoke("bench", "--ratings", "5000", "--models", "mfbs", "--factors", "3,5",
                 "--optimizers", "adam", "--batch-size", "128", "--repeat", "2",
                 "--markdown", "-q")
    assert res.exit_code == 0, res.stderr
    assert "| model | optimizer | batch | factors | ms/epoch | ratings/s |" in res.stdout
    rows = [line for line in res.stdout.splitlines() if line.startswith("| mfbs")]
    assert [r.split("|")[2:5] for r in rows] == [[" adam ", " 128 ", " 3 "],
                                                 [" adam ", " 128 ", " 5 "]]


def test_bench_vs_keras_without_keras(monkeypatch):
    def missing():
        raise benchlib.KerasUnavailable(
            "TensorFlow/Keras is not installed (pip install tensorflow); Keras comparison "
            "skipped")
    monkeypatch.setattr(benchlib, "import_keras", missing)
    res = invoke("bench", "--ratings", "5000", "--models", "mf", "--factors", "3",
                 "--optimizers", "sgd", "--repeat", "1", "--vs-keras", "-q")
    assert res.exit_code == 0
    assert res.stderr.strip().splitlines() == [
        "TensorFlow/Keras is not installed (pip install tensorflow); Keras comparison skipped"]
    head, rows = table_rows(res.stdout)
    assert "keras" not in " ".join(head) and rows[0][:2] == ["mf", "sgd"]


def test_bench_vs_keras_with_a_fake_keras(monkeypatch):
    fake = make_fake_keras()
    monkeypatch.setattr(benchlib, "import_keras", lambda: fake)
    res = invoke("bench", "--ratings", "5000", "--models", "mf,nn", "--factors", "3",
                 "--optimizers", "adam,sgd", "--repeat", "1", "--vs-keras", "-q")
    assert res.exit_code == 0, res.stderr
    head, rows = table_rows(res.stdout)
    assert head[-3:] == ["keras", "ms", "x"]  # "keras ms" splits in two
    assert len(rows) == 4 and all(len(r) == 8 for r in rows)
    assert "Keras: keras 3.fake (fake)" in res.stdout
    assert [m.name for m in FakeModel.instances] == ["mf", "nn"]
    out = json.loads(invoke("bench", "--ratings", "5000", "--models", "mfb", "--factors", "3",
                            "--optimizers", "adam", "--repeat", "1", "--vs-keras", "--json",
                            "-q").stdout)
    assert out["keras_available"] and out["rows"][0]["keras_ratio"] is not None


@pytest.mark.parametrize("args,needle", [
    (["--models", "nosuchmodel"], "nosuchmodel"),
    (["--optimizers", "rmsprop"], "rmsprop"),
    (["--factors", "0"], "0 is not in the range 1.."),
    (["--factors", "ten"], "integers"),
    (["--repeat", "0"], "repeat"),
    (["--json", "--markdown"], "--json or --markdown"),
])
def test_bench_usage_errors_exit_2(args, needle, no_keras_import):
    res = invoke("bench", "--ratings", "1000", *args)
    assert res.exit_code == 2 and needle in res.stderr and "Traceback" not in res.stderr
