"""``--optimizer mcmc`` on GroupLens ml-100k folds u1..u5: every supported model / feature
set fitted exactly as ``model.fit(train, test, optimizer="mcmc")`` does it (the library's
defaults: burn-in 10, 200 kept samples, unless ``--burn-in``/``--samples``), beside myFM
on the same folds with its MovieLens feature sets, in one run.

    PYTHONPATH=. /work/peers-venv/bin/python benchmarks/bench_mcmc.py \
        --data ../shared/data/ml-100k/u.data [--folds 1,2,3,4,5] [--configs ...] [--no-myfm]

Rows: mfcore models (``name key=value ...``) and myFM feature sets (``myfm:mf``,
``myfm:svdpp``, ``myfm:timesvdpp-flipped``; myFM is optional and only imported here).
myFM runs ``burn_in + samples`` sweeps and averages the last ``samples``
(``n_kept_samples``), mfcore the same. RMSE: of the posterior mean on the fold's 20,000
test ratings, clipped to [1, 5] for every row (myFM's example reports it so; the Koren
models clip by default, mfb and baseline are clipped here for the table), and "raw"
unclipped. ms/sweep: median over the sweeps of every fold of the sampling time alone
(mfcore: the history's ``sweep_seconds``; myFM: gaps between its per-sweep callbacks).
The two samplers run one after the other per fold, on one thread; the machine is shared,
so compare the columns of one run.

Nothing here is tuned on a test fold: the defaults and feature choices come from
``benchmarks/tune_mcmc.py`` (validation splits of the folds' training parts). A model
named without settings (``timesvdpp``) runs with its mcmc defaults.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

import numpy as np

os.environ.setdefault("TQDM_DISABLE", "1")  # myFM's progress bar

DEFAULT_CONFIGS = [             # "without=" (empty): every time term, explicitly
    "baseline",
    "mfb factors=10",
    "myfm:mf",
    "svdpp factors=10 flipped=False",
    "myfm:svdpp",
    "svdpp",                    # its mcmc defaults: k=10, flipped
    "timesvd factors=10 without=",
    "timesvd",                  # k=10, without drift,factor_drift
    "timesvdpp factors=10 flipped=False without=",
    "timesvdpp factors=10 flipped=True without=",
    "timesvdpp factors=10 flipped=True without=factor_drift",
    "timesvdpp",                # k=10, flipped, without drift,factor_drift
    "myfm:timesvdpp-flipped",
]


def parse(text):
    name, *pairs = text.split()
    params = {}
    for pair in pairs:
        key, value = pair.split("=")
        params[key] = {"True": True, "False": False}.get(value, value)
        if isinstance(params[key], str) and value.lstrip("-").isdigit():
            params[key] = int(value)
    return name, params


def rmse(pred, y, clip):
    pred = np.clip(pred, 1, 5) if clip else pred
    return float(np.sqrt(np.mean((np.asarray(pred, float) - y) ** 2)))


def run_mfcore(text, train, test, samples, burn_in, seed):
    import mfcore
    name, params = parse(text)
    model = mfcore.create_model(name, seed=seed, **params)
    t0 = time.perf_counter()
    hist = model.fit(train, test, optimizer="mcmc", samples=samples, burn_in=burn_in, verbose=0)
    wall = time.perf_counter() - t0
    if getattr(model, "clip", False):
        model.set_params(clip=False)       # clip is read at prediction time: the raw means
    # every test row scored by the model (users/items without training ratings too), as the
    # fit's own validation figures and myFM's predict do
    pred = model._predict_indices(test.users, test.items, test.timestamps)
    return pred, wall, hist.sweep_seconds[1:], hist.val_rmse[-1]


def run_myfm(groups, train, test, samples, burn_in, seed):
    import myfm
    from mfcore import peers
    tr = (train.users, train.items, train.ratings.astype(float), train.timestamps)
    te = (test.users, test.items, test.ratings.astype(float), test.timestamps)
    n_users, n_items = train.n_users, train.n_items
    X_tr, rel_tr, X_te, rel_te, shapes = peers._myfm_features(groups, tr, te, n_users, n_items)
    stamps = []

    def callback(i, fm, hyper, history):
        stamps.append(time.perf_counter())
        return False, None

    fm = myfm.MyFMRegressor(rank=10, random_seed=seed)
    t0 = time.perf_counter()
    fm.fit(X_tr, tr[2], X_rel=rel_tr, n_iter=burn_in + samples, n_kept_samples=samples,
           group_shapes=shapes, callback=callback)
    wall = time.perf_counter() - t0
    return fm.predict(X_te, X_rel=rel_te), wall, list(np.diff(stamps)), None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="MovieLens 100K u.data")
    ap.add_argument("--folds", default="1,2,3,4,5")
    ap.add_argument("--configs", nargs="*", default=DEFAULT_CONFIGS)
    ap.add_argument("--samples", type=int, default=None, help="[default: mfcore's, 200]")
    ap.add_argument("--burn-in", type=int, default=None, help="[default: mfcore's, 10]")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-myfm", action="store_true")
    a = ap.parse_args(argv)

    import mfcore
    from mfcore.data import grouplens_fold
    from mfcore.engine.mcmc import MCMC_DEFAULTS
    samples = a.samples or MCMC_DEFAULTS["samples"]
    burn_in = MCMC_DEFAULTS["burn_in"] if a.burn_in is None else a.burn_in
    configs = [c for c in a.configs if not (a.no_myfm and c.startswith("myfm:"))]
    if any(c.startswith("myfm:") for c in configs):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import myfm
            print(f"myFM {myfm.__version__}")
        except ImportError:
            print("myFM is not installed (pip install 'mfcore[peers]'): its rows are skipped")
            configs = [c for c in configs if not c.startswith("myfm:")]
    data = mfcore.load_file(a.data, sep="tab", header=False)
    folds = [int(f) for f in a.folds.split(",")]
    print(f"ml-100k folds {folds}; burn-in {burn_in}, {samples} kept samples, seed {a.seed}; "
          f"RMSE of the posterior mean on each fold's test set (clipped to [1, 5] / raw)", flush=True)
    results = {c: {"rmse": [], "raw": [], "sweeps": [], "wall": [], "own": []} for c in configs}
    for fold in folds:
        train, test = grouplens_fold(data, fold)
        for c in configs:
            fn = run_myfm if c.startswith("myfm:") else run_mfcore
            arg = c.split(":", 1)[1] if c.startswith("myfm:") else c
            pred, wall, sweeps, own = fn(arg, train, test, samples, burn_in, a.seed)
            r = results[c]
            r["rmse"].append(rmse(pred, test.ratings, True))
            r["raw"].append(rmse(pred, test.ratings, False))
            r["sweeps"] += list(sweeps)
            r["wall"].append(wall)
            r["own"].append(own)
            print(f"u{fold} {c:58s} RMSE {r['rmse'][-1]:.4f} raw {r['raw'][-1]:.4f} "
                  f"{1000 * statistics.median(sweeps):6.1f} ms/sweep {wall:6.1f} s"
                  + (f" (fit's own val_rmse {own:.4f})" if own is not None else ""), flush=True)
    head = (f"{'model / features':58s} " + "".join(f"{'u' + str(f):>8s}" for f in folds)
            + f"{'mean':>8s} {'mean raw':>8s} {'ms/sweep':>9s}")
    print("\n" + head + "\n" + "-" * len(head))
    for c in configs:
        r = results[c]
        print(f"{c:58s} " + "".join(f"{v:8.4f}" for v in r["rmse"])
              + f"{np.mean(r['rmse']):8.4f} {np.mean(r['raw']):8.4f} "
              f"{1000 * statistics.median(r['sweeps']):9.1f}")


if __name__ == "__main__":
    main()
