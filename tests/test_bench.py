"""The library side of ``mfcore bench`` (:mod:`mfcore.bench`), including the Keras path,
which is exercised with a fake ``keras`` module (Keras is never installed for the tests)."""
import statistics
import types

import pytest
from fake_keras import FakeModel, make_fake_keras

from mfcore import bench
from mfcore.errors import ModelError


def kinds(fake):
    return [layer.kind for layer in fake.graph]


# ---- rows, results, formatting -------------------------------------------------------------
def test_row_figures():
    row = bench.BenchRow("mfb", "adam", 10, 64, 1000, [0.5, 0.1, 0.2], keras_seconds=2.0)
    assert row.seconds == 0.2 and row.ms_per_epoch == pytest.approx(200)
    assert row.ratings_per_s == pytest.approx(5000) and row.keras_ratio == pytest.approx(10)
    d = row.as_dict()
    assert d["keras_ms_per_epoch"] == pytest.approx(2000) and d["epoch_seconds"] == [0.5, 0.1, 0.2]
    assert bench.BenchRow("mf", "sgd", 4, 1, 10, [1.0]).keras_ratio is None


def _result(**kw):
    rows = [bench.BenchRow("mf", "adam", 10, 64, 800, [0.004]),
            bench.BenchRow("mfb", "sgd", 10, 1, 800, [0.0005], keras_seconds=None)]
    base = dict(rows=rows, compile_seconds={"mf": 1.5, "mfb": 0.0}, numba_cache="cold",
                cache_hits=0, cache_misses=3, n_ratings=1000, n_train=800, n_users=6040,
                n_items=3706, seed=0, repeat=3, train_fraction=0.8)
    base.update(kw)
    return bench.BenchResult(**base)


def test_table_text_and_markdown():
    text = _result().format_table()
    assert "median of 3 epoch(s) after 1 warm-up" in text and "Numba cache: cold" in text
    assert "mf 1.50 s, mfb 0.00 s" in text
    lines = text.splitlines()
    head = next(j for j, line in enumerate(lines) if line.startswith("model"))
    assert lines[head].split() == ["model", "optimizer", "batch", "factors", "ms/epoch",
                                   "ratings/s"]
    assert lines[head + 1].split() == ["mf", "adam", "64", "10", "4.00", "200,000"]
    assert lines[head + 2].split() == ["mfb", "sgd", "1", "10", "0.50", "1,600,000"]
    md = _result(numba_cache="warm", cache_hits=3, cache_misses=0).format_table(markdown=True)
    assert "| model | optimizer | batch | factors | ms/epoch | ratings/s |" in md
    assert "| mf | adam | 64 | 10 | 4.00 | 200,000 |" in md and "warm" in md


def test_table_with_keras_columns():
    r = _result(keras="keras 3.fake (fake)", keras_available=True)
    r.rows[0].keras_seconds = 0.4
    text = r.format_table()
    assert "keras ms" in text and "keras 3.fake" in text
    row = next(line for line in text.splitlines() if line.startswith("mf "))
    assert row.split()[-2:] == ["400", "100.0"]
    assert next(line for line in text.splitlines() if line.startswith("mfb ")).split()[-2:] \
        == ["-", "-"]


@pytest.mark.parametrize("hits,misses,state,text", [
    (3, 0, "warm", "Numba cache: warm"), (0, 2, "cold", "Numba cache: cold"),
    (1, 1, "partly warm", "partly warm (1 loaded, 1 compiled)"),
    (0, 0, "in-process", "already compiled in this process")])
def test_cache_state(hits, misses, state, text):
    assert bench._cache_state(hits, misses) == state
    assert text in _result(numba_cache=state, cache_hits=hits,
                           cache_misses=misses).format_table()


def test_default_batch_size():
    assert bench.default_batch_size("sgd") == 1
    assert bench.default_batch_size("adam") == bench.default_batch_size("sparse-adam") == 64


# ---- timing ----------------------------------------------------------------------------------
def test_time_epochs_compile_and_cache_counts():
    from mfcore.models import create_model
    ratings, train = bench.bench_data(20000, seed=0)
    assert len(ratings) == 20000 and 15000 < len(train) < 17000
    assert (ratings.n_users, ratings.n_items) == (6040, 3706)
    model = create_model("mfb", factors=4)
    times = bench.time_epochs(model, train, optimizer="sparse-adam", batch_size=64, repeat=2)
    assert len(times) == 2 and all(t > 0 for t in times)
    assert model.epochs_trained_ == 3  # warm-up + 2 timed
    assert bench.compile_seconds("mf", ["sgd"]) >= 0
    hits, misses = bench.numba_cache_counts()
    assert hits + misses > 0  # mfcore's kernels were loaded or compiled in this process
    with pytest.raises(ModelError, match="repeat"):
        bench.time_epochs(model, train, optimizer="adam", batch_size=64, repeat=0)


def test_run_bench_rows():
    logged = []
    r = bench.run_bench(20000, models=["mf", "mfb"], optimizers=["adam", "sgd"], factors=[4],
                        repeat=2, log=logged.append)
    assert [(row.model, row.optimizer, row.factors, row.batch_size) for row in r.rows] == \
        [("mf", "adam", 4, 64), ("mf", "sgd", 4, 1), ("mfb", "adam", 4, 64),
         ("mfb", "sgd", 4, 1)]
    for row in r.rows:
        assert len(row.epoch_seconds) == 2
        assert row.ms_per_epoch == pytest.approx(1000 * statistics.median(row.epoch_seconds))
        assert row.ratings_per_s == pytest.approx(r.n_train / row.seconds)
        assert row.keras_seconds is None
    assert set(r.compile_seconds) == {"mf", "mfb"} and r.keras is None
    assert r.numba_cache in ("warm", "cold", "partly warm", "in-process")
    assert any("ms/epoch" in line for line in logged)
    assert r.as_dict()["rows"][0]["model"] == "mf"


def test_run_bench_vs_peers_with_fakes(monkeypatch):
    """The peers' figures join the SGD rows of the MF family, with ratios peer / ours."""
    from mfcore import peers
    calls = []

    def fake_cornac(train, test, k, epochs, seed, use_bias):
        calls.append(("cornac", k, epochs, use_bias, len(train[0])))
        return {"epoch_seconds": [9.0] + [0.020] * (epochs - 1)}

    def fake_surprise(train, test, k, epochs, seed, biased):
        calls.append(("surprise", k, epochs, biased, len(train[0])))
        return {"epoch_seconds": [0.050] * epochs}

    monkeypatch.setattr(peers, "available",
                        lambda: {"cornac": "9.9", "surprise": "1.0", "myfm": False})
    monkeypatch.setattr(peers, "cornac_mf", fake_cornac)
    monkeypatch.setattr(peers, "surprise_svd", fake_surprise)
    r = bench.run_bench(20000, models=["mf", "mfb", "nn"], optimizers=["adam", "sgd"],
                        factors=[4], repeat=2, vs_peers=True)
    sgd = {row.model: row for row in r.rows if row.optimizer == "sgd"}
    assert sgd["mfb"].peer_seconds == {"cornac": 0.020, "surprise": 0.050}
    assert all(not row.peer_seconds for row in r.rows if row.optimizer == "adam")
    assert not sgd["nn"].peer_seconds  # no peer implements it
    assert ("cornac", 4, 3, False, r.n_train) in calls  # mf: no biases, warm-up + 2 epochs
    assert ("surprise", 4, 2, True, r.n_train) in calls
    table = r.format_table()
    assert "cornac ms" in table and "surprise ms" in table
    line = next(ln for ln in table.splitlines() if ln.startswith("mfb") and " sgd " in ln)
    ratio = 0.020 / sgd["mfb"].seconds
    assert f"{ratio:,.2f}" in line
    d = r.as_dict()
    assert d["peers"]["myfm"] is False
    row = next(x for x in d["rows"] if x["model"] == "mfb" and x["optimizer"] == "sgd")
    assert row["peers"]["cornac"]["ms_per_epoch"] == pytest.approx(20.0)


def test_importing_mfcore_never_imports_the_peers():
    import subprocess
    import sys
    code = ("import sys, mfcore, mfcore.bench, mfcore.models; "
            "print([m for m in ('cornac', 'surprise', 'myfm') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


@pytest.mark.parametrize("kw,needle", [({"models": ["nosuchmodel"]}, "nosuchmodel"),
                                       ({"optimizers": ["rmsprop"]}, "rmsprop"),
                                       ({"factors": [0]}, "factors")])
def test_run_bench_rejects_bad_arguments(kw, needle):
    with pytest.raises(ModelError, match=needle):
        bench.run_bench(1000, **kw)


# ---- Keras ---------------------------------------------------------------------------------
def test_keras_is_not_importable_here_and_says_so():
    try:
        import keras  # noqa: F401
        pytest.skip("keras is installed here")
    except ImportError:
        pass
    with pytest.raises(bench.KerasUnavailable, match="pip install tensorflow"):
        bench.import_keras()


@pytest.mark.parametrize("name", bench.KERAS_MODELS)
def test_every_keras_builder_builds(name):
    fake = make_fake_keras()
    km = bench.build_keras_model(name, 100, 50, keras=fake, factors=10)
    assert isinstance(km, FakeModel) and len(km.inputs) == 2
    assert kinds(fake).count("Embedding") >= 2


def test_keras_mf_family_graphs():
    from mfcore.models import create_model
    fake = make_fake_keras()
    bench.build_keras_model(create_model("mf", factors=8), 100, 50, keras=fake)
    assert kinds(fake).count("Embedding") == 2 and "Dot" in kinds(fake)
    emb = [l for l in fake.graph if l.kind == "Embedding"]
    assert [l.args for l in emb] == [(100, 8), (50, 8)]
    assert emb[0].kwargs["embeddings_initializer"] == ("uniform", -0.05, 0.05)
    assert emb[0].kwargs["embeddings_regularizer"] is None

    fake = make_fake_keras()
    bench.build_keras_model(create_model("mfb", factors=8, l2=1e-5), 100, 50, keras=fake)
    emb = [l for l in fake.graph if l.kind == "Embedding"]
    assert [l.args for l in emb] == [(100, 8), (50, 8), (100, 1), (50, 1)]
    assert emb[0].kwargs["embeddings_regularizer"] == ("l2", 1e-5)
    assert emb[2].kwargs["embeddings_regularizer"] is None  # biases are not regularised
    assert "Activation" not in kinds(fake)

    fake = make_fake_keras()
    bench.build_keras_model(create_model("mfbs", factors=8), 100, 50, keras=fake)
    act = next(l for l in fake.graph if l.kind == "Activation")
    lam = next(l for l in fake.graph if l.kind == "Lambda")
    assert act.args == ("sigmoid",) and lam.args[0](2.0) == 10.0


def test_keras_nn_linear_and_mixed_graphs():
    from mfcore.models import create_model
    fake = make_fake_keras()
    bench.build_keras_model(create_model("nn", factors=10), 100, 50, keras=fake)
    dense = [l for l in fake.graph if l.kind == "Dense"]
    assert [(d.args, d.kwargs.get("activation")) for d in dense] == [((15,), "relu"),
                                                                     ((1,), None)]
    assert next(l for l in fake.graph if l.kind == "Dropout").args == (0.4,)

    fake = make_fake_keras()
    bench.build_keras_model(create_model("linear", factors=10), 100, 50, keras=fake)
    assert [l.args for l in fake.graph if l.kind == "Dense"] == [(1,)]
    assert "Dropout" not in kinds(fake)

    fake = make_fake_keras()
    bench.build_keras_model(create_model("residual", factors=10), 100, 50, keras=fake)
    assert "Add" in kinds(fake) and kinds(fake).count("Dense") == 3  # block (2) + output

    fake = make_fake_keras()
    bench.build_keras_model(create_model("mixed-bias", factors=10, bias_factors=4), 100, 50,
                            keras=fake)
    assert [l.args for l in fake.graph if l.kind == "Embedding"] == \
        [(100, 10), (50, 10), (100, 4), (50, 4)]
    assert [l.args for l in fake.graph if l.kind == "Dense"] == [(6,), (1,)]

    fake = make_fake_keras()
    bench.build_keras_model(create_model("mixed-interaction", factors=8), 100, 50, keras=fake)
    assert [l.args for l in fake.graph if l.kind == "Dense"] == [(6,), (6,)]
    assert [l.args for l in fake.graph if l.kind == "Embedding"] == \
        [(100, 8), (50, 8), (100, 1), (50, 1)]


def test_time_keras_epoch_with_a_fake():
    from mfcore.models import create_model
    fake = make_fake_keras()
    _, train = bench.bench_data(5000)
    s = bench.time_keras_epoch(create_model("mfb", factors=4), train, keras=fake)
    assert s >= 0
    km = FakeModel.instances[-1]
    assert km.compiled["loss"] == "mse"
    assert km.compiled["optimizer"] == ("adam", {"learning_rate": 1e-3, "beta_1": 0.9,
                                                 "beta_2": 0.999, "epsilon": 1e-7})
    (n_warm, kw_warm), (n, kw) = km.fits
    assert n_warm == 256 and n == len(train)
    assert kw["batch_size"] == 64 and kw["epochs"] == 1 and kw["shuffle"] is True


def test_run_bench_vs_keras_with_a_fake(monkeypatch):
    fake = make_fake_keras()
    monkeypatch.setattr(bench, "import_keras", lambda: fake)
    r = bench.run_bench(5000, models=["mf"], optimizers=["sgd"], factors=[3], repeat=1,
                        vs_keras=True)
    assert r.keras_available and r.keras == "keras 3.fake (fake)"
    assert r.rows[0].keras_seconds is not None and r.rows[0].keras_ratio is not None
    assert len(FakeModel.instances) == 1  # one Keras model per (model, factors)


def test_run_bench_vs_keras_without_keras(monkeypatch):
    def missing():
        raise bench.KerasUnavailable("TensorFlow/Keras is not installed (pip install tensorflow)")
    monkeypatch.setattr(bench, "import_keras", missing)
    r = bench.run_bench(5000, models=["mf"], optimizers=["sgd"], factors=[3], repeat=1,
                        vs_keras=True)
    assert not r.keras_available and "not installed" in r.keras
    assert r.rows[0].keras_seconds is None and "keras ms" not in r.format_table()


def test_unknown_keras_model_name():
    fake = make_fake_keras()
    model = types.SimpleNamespace(name="temporal", factors=4)
    with pytest.raises(ModelError, match="no Keras equivalent"):
        bench.build_keras_model(model, 10, 10, keras=fake)


def test_importing_mfcore_bench_does_not_import_keras():
    import subprocess
    import sys
    code = ("import sys, mfcore.bench, mfcore.cli; "
            "print(any(m.split('.')[0] in ('keras', 'tensorflow') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
