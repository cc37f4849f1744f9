"""mfcore.tune: the grid and space parsers, the default spaces, cross-validation on real
MovieLens folds, and searches that give identical numbers in this process, in local
worker processes and on a real Dask cluster, even when a worker dies mid-search."""
import math
import multiprocessing
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

import mfcore
from mfcore.errors import MfcoreError, ModelError
from mfcore.models import MODELS, create_model
from mfcore.tune import (Dist, FoldSet, SpaceError, cross_validate, default_space,
                         format_markdown, format_table, parse_grid, parse_space, search)

#: per-sample SGD: deterministic for a seed and a few ms per epoch on ml-100k
SGD = {"optimizer": "sgd", "batch_size": 1}


def numbers(result):
    """A search's trials without the timings: what must be identical across backends."""
    return [{k: v for k, v in r.items() if k != "seconds"} | {
        "folds": [{k: v for k, v in f.items() if k != "seconds"} for f in r["folds"]]}
        for r in result.ranked()]


@pytest.fixture(scope="module")
def small(ml100k):
    """A third of MovieLens 100K (file order kept), for quick searches."""
    return ml100k.subset(np.arange(len(ml100k)) % 3 == 0)


# ---- parsers --------------------------------------------------------------------------------
def test_parse_grid_types_and_order():
    g = parse_grid("factors=10,20,50 lr=1e-3, 3e-3 l2-mode=keras,per-sample sigmoid=true")
    assert g == {"factors": [10, 20, 50], "lr": [1e-3, 3e-3],
                 "l2_mode": ["keras", "per-sample"], "sigmoid": [True]}
    assert isinstance(g["factors"][0], int) and isinstance(g["lr"][0], float)
    assert parse_grid({"batch-size": [1, 64]}) == {"batch_size": [1, 64]}


@pytest.mark.parametrize("text, message", [
    ("", "empty grid"),
    ("factors", "cannot read"),
    ("factors=10 factors=20", "given twice"),
    ("lr=log(1e-3,1e-2)", "belong to --space"),
    ("factors=10 ;lr=1", "cannot read"),
])
def test_parse_grid_errors(text, message):
    with pytest.raises(SpaceError, match=message):
        parse_grid(text)


def test_parse_space_kinds():
    s = parse_space("lr=log(1e-4, 1e-1) l2=uniform(0,0.5) factors=int(8,128) "
                    "k2=logint(4,64) opt=choice(sgd,adam) mode=keras,per-sample epochs=5")
    assert s == {"lr": Dist("log", (1e-4, 0.1)), "l2": Dist("uniform", (0, 0.5)),
                 "factors": Dist("int", (8, 128)), "k2": Dist("logint", (4, 64)),
                 "opt": Dist("choice", ("sgd", "adam")),
                 "mode": Dist("choice", ("keras", "per-sample")),
                 "epochs": Dist("const", (5,))}
    assert str(s["lr"]) == "log(0.0001,0.1)" and str(s["epochs"]) == "5"
    assert parse_space(" ".join(f"{k}={d}" for k, d in s.items())) == s  # round trip


@pytest.mark.parametrize("text, message", [
    ("lr=log(0,1)", "positive ends"),
    ("lr=log(1e-1,1e-4)", "low end is above"),
    ("factors=int(1.5,3)", "integer ends"),
    ("lr=gauss(0,1)", "unknown distribution"),
    ("lr=log(1e-3)", "two numbers"),
    ("lr=choice()", "at least one value"),
])
def test_parse_space_errors(text, message):
    with pytest.raises(SpaceError, match=message):
        parse_space(text)


def test_distributions_stay_in_range_and_include_their_ends():
    u = np.linspace(0, 1, 2001)[:-1]
    ints = {Dist("int", (8, 12)).sample(x) for x in u}
    assert ints == {8, 9, 10, 11, 12}
    logints = [Dist("logint", (4, 128)).sample(x) for x in u]
    assert min(logints) == 4 and max(logints) == 128 and all(isinstance(v, int) for v in logints)
    assert np.median(logints) < 30  # log scale: half the draws below sqrt(4 * 129)
    logs = [Dist("log", (1e-4, 1e-1)).sample(x) for x in u]
    assert 1e-4 <= min(logs) and max(logs) <= 1e-1
    assert all(v == float(f"{v:.3g}") for v in logs)  # 3 significant digits
    assert {Dist("choice", ("a", "b", "c")).sample(x) for x in u} == {"a", "b", "c"}


# ---- default spaces -------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_has_a_default_space_whose_draws_are_valid(name):
    space = default_space(name)
    assert "lr" in space
    from mfcore.engine.trainer import fit_options
    for u in (0.0, 0.5, 0.999):
        drawn = {k: d.sample(u) for k, d in space.items()}
        fit = {k: drawn.pop(k) for k in ("lr",)}
        model = create_model(name, **drawn)
        fit_options(model, None, verbose=0, progress=False, **fit)


def test_default_space_follows_the_optimizer_and_the_l2_mode():
    adam = default_space("mfb")
    assert str(adam["lr"]) == "log(0.0001,0.01)" and str(adam["l2"]) == "log(1e-07,0.001)"
    assert "l2_mode" not in adam
    sgd = default_space("mfb", "sgd")
    assert str(sgd["lr"]) == "log(0.001,0.1)" and str(sgd["l2"]) == "log(0.001,0.3)"
    assert str(sgd["l2_mode"]) == "per-sample"  # Keras' whole-table L2 would be ~1000x slower
    assert "l2_mode" not in default_space("mfb", "sgd", "keras")
    assert str(default_space("mfb", "sgd", "keras")["l2"]) == "log(1e-07,0.001)"
    assert str(default_space("svdpp")["lr"]) == "log(0.001,0.1)"  # around its own 1e-2
    assert str(default_space("svdpp", "adam")["lr"]) == "log(0.0001,0.01)"
    assert "factors" not in default_space("mfb", fixed=["factors"])
    assert "factors" not in default_space("baseline")


def test_the_default_space_under_mcmc_is_the_rank_alone():
    """It held lr and l2 (which mcmc refuses), and with the sampler's lr of 0 the search
    stopped at 'lr: log(0,0)', a space the user never gave."""
    for name in ("mfb", "svdpp", "timesvdpp"):
        space = default_space(name, "mcmc")
        assert list(space) == ["factors"] and str(space["factors"]) == "logint(4,128)"
    with pytest.raises(SpaceError, match="baseline under mcmc has no default space"):
        default_space("baseline", "mcmc")
    with pytest.raises(SpaceError, match="the rank alone, and it is held fixed"):
        default_space("mfb", "mcmc", fixed=["factors"])


# ---- folds ---------------------------------------------------------------------------------
def test_foldset_matches_kfold_split_and_pickles_without_its_cache(small):
    import pickle
    fs = FoldSet.kfold(small, 3, seed=4)
    for j, (train, test) in enumerate(mfcore.kfold_split(small, 3, seed=4)):
        a, b = fs.get(j)
        assert np.array_equal(a.users, train.users) and np.array_equal(b.ratings, test.ratings)
    fs.inner(0, 0.1, 0)
    assert fs._cache and pickle.loads(pickle.dumps(fs))._cache == {}
    assert pickle.loads(pickle.dumps(fs)).fingerprint() == fs.fingerprint()
    h = FoldSet.holdout(small, 0.25, seed=2)
    train, test = h.get(0)
    ref_train, ref_test = mfcore.random_split(small, 0.75, seed=2)
    assert np.array_equal(train.items, ref_train.items) and len(test) == len(ref_test)


# ---- cross-validation on real data --------------------------------------------------------
def test_cross_validate_grouplens_folds_match_training_on_each_fold(data_home):
    frame = cross_validate("mfb", folds=["u1", "u2"], epochs=2, **SGD)
    assert list(frame["fold"]) == ["u1", "u2"]
    assert list(frame["n_train"]) == [80000, 80000] and list(frame["n_test"]) == [20000, 20000]
    from mfcore.data import load_grouplens_fold
    for row in frame.itertuples():
        train, test = load_grouplens_fold(row.fold, progress=False)
        model = mfcore.MFB(seed=0)
        model.fit(train, test, epochs=2, verbose=0, **SGD)
        assert row.rmse == pytest.approx(model.history_.val_rmse[-1], rel=1e-12)
        assert row.mae == pytest.approx(model.evaluate(test)["mae"], rel=1e-12)
    assert frame.attrs["retried"] == 0 and frame["error"].isna().all()


def test_cross_validate_kfold_in_processes_equals_in_process(ml100k):
    kw = dict(folds=3, seed=1, epochs=2, **SGD)
    one = cross_validate(mfcore.MFB(factors=8, seed=1), ml100k, jobs=1, **kw)
    two = cross_validate(mfcore.MFB(factors=8, seed=1), ml100k, jobs=2, **kw)
    cols = ["fold", "rmse", "mae", "mse", "n_train", "n_test", "epochs"]
    assert one[cols].equals(two[cols])
    assert 0.9 < one["rmse"].mean() < 1.2 and one["n_test"].sum() == len(ml100k)


# ---- search ---------------------------------------------------------------------------------
def test_grid_search_ranks_every_combination(small):
    r = search("mfb", small, grid="factors=4,8 lr=0.005,0.02", folds=2, epochs=2, **SGD)
    assert [rec["params"] for rec in r.records] == [
        {"factors": 4, "lr": 0.005}, {"factors": 4, "lr": 0.02},
        {"factors": 8, "lr": 0.005}, {"factors": 8, "lr": 0.02}]
    ranked = r.ranked()
    assert [x["rank"] for x in ranked] == [1, 2, 3, 4]
    assert [x["rmse"] for x in ranked] == sorted(x["rmse"] for x in r.records)
    assert r.best["trial"] == ranked[0]["trial"] and r.retried == 0 and r.tasks == 8
    frame = r.trials
    assert list(frame.columns[:4]) == ["rank", "trial", "factors", "lr"]
    assert len(frame) == 4 and frame["rmse"].is_monotonic_increasing
    for rec in r.records:  # a trial's figure is the mean of its folds
        assert rec["rmse"] == pytest.approx(np.mean([f["rmse"] for f in rec["folds"]]))
        assert rec["rmse_std"] == pytest.approx(np.std([f["rmse"] for f in rec["folds"]], ddof=1))
    d = r.as_dict()
    assert set(d) >= {"trials", "best", "retried"} and d["trials"][0]["params"]
    assert "retried: 0 of 8 tasks" in format_table(r) and format_markdown(r).startswith("| rank")


def test_lr_decay_is_a_fit_option_a_search_may_vary(small):
    r = search("mfb", small, grid="lr_decay=1,0.5", folds=2, epochs=3, **SGD)
    a, b = r.records
    assert a["params"] == {"lr_decay": 1} and b["params"] == {"lr_decay": 0.5}
    assert a["rmse"] != b["rmse"]
    params, fit = r.best_settings()
    assert "lr_decay" in fit and "lr_decay" not in params
    model = mfcore.MFB(seed=0)
    train, test = FoldSet.kfold(small, 2, seed=0).get(0)
    model.fit(train, epochs=3, lr_decay=0.5, verbose=0, **SGD)
    assert b["folds"][0]["rmse"] == pytest.approx(model.evaluate(test)["rmse"], rel=1e-12)


def test_random_search_is_seeded_by_seed_and_trial_index_only(small):
    kw = dict(space="factors=logint(2,16) lr=log(1e-3,3e-2)", folds=2, epochs=1, **SGD)
    a = search("mfb", small, random=4, seed=3, **kw)
    b = search("mfb", small, random=6, seed=3, **kw)
    c = search("mfb", small, random=4, seed=4, **kw)
    assert [r["params"] for r in b.records[:4]] == [r["params"] for r in a.records]
    assert [r["rmse"] for r in b.records[:4]] == [r["rmse"] for r in a.records]
    assert [r["params"] for r in c.records] != [r["params"] for r in a.records]


def test_search_in_two_processes_equals_in_process(small):
    kw = dict(random=4, folds=2, epochs=2, seed=5, **SGD)
    one = search("mfb", small, jobs=1, **kw)
    two = search("mfb", small, jobs=2, **kw)
    assert numbers(one) == numbers(two)
    assert two.backend == "2 local processes" and two.retried == 0


def test_a_local_worker_killed_mid_search_is_replaced_and_its_tasks_rerun(small):
    kw = dict(random=4, folds=2, epochs=3, seed=5, **SGD)
    killed = []

    def kill_a_worker(record):
        if not killed:
            pool = [p for p in multiprocessing.active_children()
                    if p.name.startswith("ForkServerProcess")]
            killed.append(pool[0].pid)
            os.kill(pool[0].pid, signal.SIGKILL)

    one = search("mfb", small, jobs=1, **kw)
    two = search("mfb", small, jobs=2, callback=kill_a_worker, **kw)
    assert killed and numbers(one) == numbers(two)
    assert two.retried >= 1


def test_early_stopping_watches_an_inner_split_and_refit_trains_the_kept_epochs(small):
    r = search("mfb", small, grid="lr=0.05,0.1", folds=2, epochs=40, early_stopping=1,
               params={"factors": 16}, **SGD)
    for rec in r.records:
        assert all(f["epochs"] < 40 for f in rec["folds"])  # stopped on the inner split
    params, fit = r.best_settings()
    assert "early_stopping" not in fit and fit["epochs"] == round(r.best["epochs"])
    assert params["factors"] == 16 and params["seed"] == 0
    model = r.refit(small)
    assert model.epochs_trained_ == fit["epochs"] and model.factors == 16
    assert "early stopping on 0.1" in r.protocol


def test_holdout_and_the_mae_metric(small):
    r = search("mfb", small, grid="factors=2,6", holdout=0.2, metric="mae", epochs=1, **SGD)
    assert r.protocol == "holdout" and len(r.best["folds"]) == 1
    assert r.ranked()[0]["mae"] <= r.ranked()[1]["mae"]
    assert r.folds[0]["n_test"] == len(mfcore.random_split(small, 0.8, seed=0)[1])


def test_a_diverging_trial_is_recorded_and_ranked_last(small):
    r = search("mfb", small, grid="lr=0.01,50", folds=2, epochs=3, **SGD)
    worst = r.ranked()[-1]
    assert worst["params"] == {"lr": 50} and "diverged" in worst["error"]
    assert worst["rmse"] is None and r.best["params"] == {"lr": 0.01}
    assert "trial 1 failed: training diverged" in format_table(r)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"grid": "factors=2", "random": 2}, SpaceError, "either a grid or"),
    ({}, SpaceError, "either a grid or"),
    ({"grid": "colour=2"}, SpaceError, "no parameter 'colour'"),
    ({"grid": "seed=1,2"}, SpaceError, "seed is not searched"),
    ({"grid": "factors=2,4", "params": {"factors": 3}}, SpaceError, "both held fixed"),
    ({"grid": "lr=0.1", "lr": 0.2}, SpaceError, "both held fixed"),
    ({"grid": "factors=4,0"}, SpaceError, "trial 1 .*factors must be an integer from 1 to"),
    ({"grid": "lr=-1"}, SpaceError, "trial 0 .*learning rate"),
    ({"grid": "factors=2", "metric": "mse"}, MfcoreError, "metric must be"),
    ({"grid": "factors=2", "colour": 1}, ModelError, "unknown fit option"),
    ({"grid": "factors=2", "folds": 1}, MfcoreError, "from 2 to 1,000"),
    ({"grid": "factors=2", "folds": 10 ** 6}, MfcoreError, "from 2 to 1,000"),
    ({"random": 10 ** 9}, SpaceError, "from 1 to 100,000"),
    ({"grid": {"factors": list(range(1, 1001)), "lr": [0.1] * 101}}, SpaceError,
     "101,000 combinations"),
    ({"grid": "factors=2", "retries": 10 ** 6}, MfcoreError, "retries must be"),
    ({"grid": "factors=2", "holdout": 1.5}, MfcoreError, "fraction"),
    ({"grid": "factors=2", "jobs": 0}, MfcoreError, "jobs must be"),
])
def test_search_errors_before_any_work(small, kwargs, error, message):
    with pytest.raises(error, match=message):
        search("mfb", small, epochs=1, **kwargs)


# ---- Dask ----------------------------------------------------------------------------------
def test_import_mfcore_and_the_cli_do_not_import_dask():
    code = ("import sys, mfcore, mfcore.cli, mfcore.tune, mfcore.parallel; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed'));"
            "print(bad); sys.exit(1 if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_without_dask_a_scheduler_is_one_line_on_how_to_install_it(small, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(MfcoreError, match=r"pip install 'mfcore\[dask\]'"):
        search("mfb", small, grid="factors=2", epochs=1, scheduler="tcp://127.0.0.1:1")


@pytest.fixture(scope="module")
def cluster():
    """A real Dask cluster: 2 worker processes with one thread each, on the loopback."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as c:
        yield c


@pytest.fixture(scope="module")
def reference(small):
    """The search the Dask tests repeat, in this process."""
    return search("mfb", small, jobs=1, **DASK_SEARCH)


DASK_SEARCH = dict(random=6, folds=2, epochs=10, seed=7, **SGD)


def test_dask_search_equals_in_process(small, cluster, reference):
    for _ in range(2):  # the same keys again: nothing counts as retried
        r = search("mfb", small, scheduler=cluster.scheduler_address, **DASK_SEARCH)
        assert numbers(r) == numbers(reference)
        assert r.retried == 0 and r.backend.startswith("Dask at tcp://127.0.0.1")


def test_dask_worker_killed_mid_search_still_completes_identically(small, cluster, reference):
    distributed = pytest.importorskip("distributed")
    killed = []
    with distributed.Client(cluster.scheduler_address) as client:
        pids = client.run(os.getpid)

        def kill_a_worker(record):  # SIGKILL, as the kernel's OOM killer would
            if not killed:
                busy = client.processing()
                victim = next((w for w, keys in busy.items() if keys), sorted(busy)[0])
                killed.append(victim)
                os.kill(pids[victim], signal.SIGKILL)

        r = search("mfb", small, scheduler=cluster.scheduler_address,
                   callback=kill_a_worker, **DASK_SEARCH)
        client.wait_for_workers(2, timeout=60)  # the nanny brings the worker back
    assert killed
    assert len(r.records) == DASK_SEARCH["random"]
    assert all(rec["error"] is None for rec in r.records)
    assert numbers(r) == numbers(reference)
    assert r.retried >= 1


def test_dask_cross_validate_equals_in_process(ml100k, cluster):
    kw = dict(folds=3, seed=2, epochs=1, **SGD)
    local = cross_validate("mfb", ml100k, jobs=1, **kw)
    dask = cross_validate("mfb", ml100k, scheduler=cluster.scheduler_address, **kw)
    cols = ["fold", "rmse", "mae", "n_train", "n_test", "epochs"]
    assert local[cols].equals(dask[cols])
    assert math.isfinite(dask["rmse"].mean())
