"""Peer recommender libraries (Cornac, Surprise, myFM), timed and scored on plain NumPy
arrays beside mfcore (``mfcore bench --vs-peers``, the benchmarks).

The peers are an optional extra (``pip install 'mfcore[peers]'``), never a dependency:
every peer is imported inside the function that uses it, and ``import mfcore`` never
imports this module. :func:`available` says which are importable.

Inputs are plain arrays. A split is a tuple ``(users, items, ratings)`` or ``(users, items, ratings,
timestamps)``: users and items are dense int indices (0..n-1, the same numbering in train and test),
ratings float, timestamps int64 Unix seconds. Every function returns a dict with at least

    rmse            RMSE on test, predictions clipped to the train rating range (what Surprise's
                    ``algo.test``, Cornac's ``rate`` and myFM's ml-100k example report)
    rmse_unclipped  RMSE of the raw predictions
    seconds         wall seconds of the timed fit (data conversion to the peer's format not included)
    cpu_seconds     process CPU seconds over the same fit (about ``seconds`` when it ran on one thread)
    timing          how the per-epoch (per-sweep) figures were obtained

``python -m mfcore.peers --data .../ml-100k/u.data --fold 1`` prints the peers' GroupLens
fold table; ``--cornac-synthetic 800000`` Cornac MF's epoch time on uniform random pairs.
"""
from __future__ import annotations

import argparse
import importlib
import time
import warnings

import numpy as np

_PEERS = ("cornac", "surprise", "myfm")  # import names; surprise is the scikit-surprise distribution


def available():
    """Which peers import here: ``{import name: version string, or False}``."""
    out = {}
    for name in _PEERS:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # myfm 0.4 imports pkg_resources, which warns
                mod = importlib.import_module(name)
            out[name] = str(getattr(mod, "__version__", "unknown"))
        except Exception:
            out[name] = False
    return out


# ---------------------------------------------------------------------------------------------- helpers

def _split(split):
    if len(split) not in (3, 4):
        raise ValueError("a split is (users, items, ratings) or (users, items, ratings, timestamps)")
    users = np.asarray(split[0], dtype=np.int64)
    items = np.asarray(split[1], dtype=np.int64)
    ratings = np.asarray(split[2], dtype=np.float64)
    ts = None if len(split) == 3 or split[3] is None else np.asarray(split[3], dtype=np.int64)
    if not (len(users) == len(items) == len(ratings)) or (ts is not None and len(ts) != len(users)):
        raise ValueError("users, items, ratings (and timestamps) must have the same length")
    return users, items, ratings, ts


def _sizes(tr_u, tr_i, te_u, te_i):
    n_users = int(max(tr_u.max(initial=-1), te_u.max(initial=-1))) + 1
    n_items = int(max(tr_i.max(initial=-1), te_i.max(initial=-1))) + 1
    return n_users, n_items


def _scores(pred, truth, lo, hi):
    pred = np.asarray(pred, dtype=np.float64)
    if len(truth) == 0:
        return {"rmse": float("nan"), "rmse_unclipped": float("nan")}
    raw = float(np.sqrt(np.mean((pred - truth) ** 2)))
    clipped = float(np.sqrt(np.mean((np.clip(pred, lo, hi) - truth) ** 2)))
    return {"rmse": clipped, "rmse_unclipped": raw}


class _Clock:
    """Wall and process-CPU seconds of a block."""

    def __enter__(self):
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall0
        self.cpu = time.process_time() - self.cpu0
        return False


# ----------------------------------------------------------------------------------------------- Cornac

def _cornac_dataset(users, items, ratings, n_users, n_items, seed):
    """A cornac Dataset whose internal user/item indices ARE our dense indices (identity id maps covering
    every index, so train and test stay aligned and rows keep their order)."""
    from collections import OrderedDict

    from cornac.data import Dataset
    uid_map = OrderedDict((u, u) for u in range(n_users))
    iid_map = OrderedDict((i, i) for i in range(n_items))
    rows = zip(users.tolist(), items.tolist(), ratings.tolist())
    ds = Dataset.build(rows, fmt="UIR", global_uid_map=uid_map, global_iid_map=iid_map, seed=seed)
    assert ds.num_users == n_users and ds.num_items == n_items
    return ds


def cornac_mf(train, test, k=10, epochs=20, lr=0.01, lambda_reg=0.02, seed=0, use_bias=True,
              per_epoch=True):
    """Cornac's biased MF (``cornac.models.MF``, CPU/Cython SGD backend) on dense-index arrays.

    With ``seed`` set Cornac forces ``num_threads=1``, so this is single-threaded SGD over the training
    rows in the given order.

    Timing (both are wall clock, data conversion excluded):
      * ``seconds``: one ``fit`` with ``max_iter=epochs``; the model scored on test is this one.
      * ``epoch_seconds``: a second model with the same seed and ``max_iter=1``, fitted ``epochs`` times
        in a row. ``MF._init`` only initialises parameters that are still missing, so each ``fit`` call
        continues from the previous parameters and runs exactly one more pass of the same kernel; the
        chained run therefore does the same arithmetic as the single fit, which is checked
        (``per_epoch_matches_single_fit``: parameters bit-identical). Each entry includes Cornac's small
        per-call overhead (``Recommender.fit`` bookkeeping and a float32 copy of the ratings), so compare
        its median with ``seconds / epochs`` (``seconds_per_epoch_single_fit``). With ``per_epoch=False``
        the chained run is skipped and ``epoch_seconds`` is ``seconds / epochs`` repeated.
    """
    from cornac.models import MF

    tr_u, tr_i, tr_r, _ = _split(train)
    te_u, te_i, te_r, _ = _split(test)
    n_users, n_items = _sizes(tr_u, tr_i, te_u, te_i)
    ds = _cornac_dataset(tr_u, tr_i, tr_r, n_users, n_items, seed)

    def make(max_iter):
        return MF(k=k, max_iter=max_iter, learning_rate=lr, lambda_reg=lambda_reg, use_bias=use_bias,
                  early_stop=False, seed=seed, verbose=False)

    model = make(epochs)
    with _Clock() as clock:
        model.fit(ds)
    out = {"peer": "cornac", "version": available()["cornac"], "k": k, "epochs": epochs,
           "num_threads": model.num_threads, "seconds": clock.wall, "cpu_seconds": clock.cpu,
           "seconds_per_epoch_single_fit": clock.wall / epochs}

    if per_epoch:
        chained = make(1)
        epoch_seconds = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Model is already fitted. Re-fitting will overwrite ..."
            for _ in range(epochs):
                t0 = time.perf_counter()
                chained.fit(ds)
                epoch_seconds.append(time.perf_counter() - t0)
        same = all(np.array_equal(getattr(model, a), getattr(chained, a))
                   for a in ("u_factors", "i_factors", "u_biases", "i_biases"))
        out.update(epoch_seconds=epoch_seconds, per_epoch_matches_single_fit=same,
                   timing="per-epoch: chained max_iter=1 fits on one model (each continues training); "
                          "seconds: one max_iter=epochs fit")
    else:
        out.update(epoch_seconds=[clock.wall / epochs] * epochs,
                   timing="per-epoch = seconds of one max_iter=epochs fit / epochs")

    pred = np.fromiter((model.score(u, i) for u, i in zip(te_u.tolist(), te_i.tolist())),
                       dtype=np.float64, count=len(te_u))
    out.update(_scores(pred, te_r, float(tr_r.min()), float(tr_r.max())))
    return out


def cornac_mf_stepper(train, k=10, lr=0.01, lambda_reg=0.02, seed=0, use_bias=True):
    """A callable that trains Cornac's biased MF on ``train`` for one more epoch per call
    (one ``fit`` with ``max_iter=1`` on the same model: ``MF._init`` keeps the parameters
    already there), for timing epochs round-robin beside other code. Data conversion is
    done here, once; each call includes Cornac's per-call overhead."""
    from cornac.models import MF

    tr_u, tr_i, tr_r, _ = _split(train)
    n_users, n_items = _sizes(tr_u, tr_i, tr_u[:0], tr_i[:0])
    ds = _cornac_dataset(tr_u, tr_i, tr_r, n_users, n_items, seed)
    model = MF(k=k, max_iter=1, learning_rate=lr, lambda_reg=lambda_reg, use_bias=use_bias,
               early_stop=False, seed=seed, verbose=False)

    def step():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Model is already fitted. Re-fitting ..."
            model.fit(ds)
    return step


# --------------------------------------------------------------------------------------------- Surprise

def _surprise(algo_name, train, test, epochs, **params):
    import pandas as pd
    import surprise

    tr_u, tr_i, tr_r, _ = _split(train)
    te_u, te_i, te_r, _ = _split(test)
    lo, hi = float(tr_r.min()), float(tr_r.max())
    # raw ids are the dense indices as Python ints, for training and prediction alike
    df = pd.DataFrame({"user": tr_u, "item": tr_i, "rating": tr_r})
    trainset = surprise.Dataset.load_from_df(df, surprise.Reader(rating_scale=(lo, hi))).build_full_trainset()
    algo = getattr(surprise, algo_name)(n_epochs=epochs, **params)
    with _Clock() as clock:
        algo.fit(trainset)
    pred = np.fromiter((algo.predict(u, i, clip=False).est for u, i in zip(te_u.tolist(), te_i.tolist())),
                       dtype=np.float64, count=len(te_u))
    out = {"peer": "surprise", "algo": algo_name, "version": available()["surprise"], "epochs": epochs,
           "seconds": clock.wall, "cpu_seconds": clock.cpu, "epoch_seconds": [clock.wall / epochs] * epochs,
           "timing": "per-epoch = fit seconds / epochs (Surprise has no per-epoch hook)"}
    out.update(params)
    out.update(_scores(pred, te_r, lo, hi))
    return out


def surprise_svd(train, test, k=10, epochs=20, lr=0.005, reg=0.02, seed=0, biased=True):
    """Surprise's biased SVD (Funk SGD, one thread). Per-epoch seconds are the fit seconds divided by
    ``epochs``: Surprise has no per-epoch hook. Test predictions via ``algo.predict(clip=False)``
    (unknown users/items fall back to Surprise's own defaults); ``rmse`` clips to the train range as
    ``algo.test`` would."""
    return _surprise("SVD", train, test, epochs, n_factors=k, lr_all=lr, reg_all=reg,
                     random_state=seed, biased=biased)


def surprise_svdpp(train, test, k=10, epochs=20, lr=0.007, reg=0.02, seed=0):
    """Surprise's SVD++ (one thread; Surprise's own default is k=20). Timing and RMSE as
    ``surprise_svd``."""
    return _surprise("SVDpp", train, test, epochs, n_factors=k, lr_all=lr, reg_all=reg, random_state=seed)


# ------------------------------------------------------------------------------------------------- myFM

_MYFM_GROUPS = ("mf", "svdpp", "timesvdpp-flipped")


def _row_normalised(rows, cols, n_rows, n_cols):
    """CSR of the (deduplicated) pattern rows x cols, each row scaled by 1/sqrt(its number of entries)."""
    import scipy.sparse as sps
    m = sps.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_rows, n_cols))
    m.sum_duplicates()
    m.data[:] = 1.0
    counts = np.diff(m.indptr)
    m.data *= np.repeat(1.0 / np.sqrt(np.maximum(counts, 1)), counts)
    return m


def _myfm_features(groups, tr, te, n_users, n_items):
    """Build (X_train, X_rel_train, X_test, X_rel_test, group_shapes) for one feature set.

    Columns, in myFM's order (the non-relational X first, then each relation block's columns):
      mf:                user one-hot | item one-hot
      svdpp:             user one-hot, N(u) | item one-hot
      timesvdpp-flipped: day one-hot | user one-hot, N(u) | item one-hot, N(i)
    N(u) = the items u rated in TRAIN, N(i) = the users who rated i in TRAIN, each weighted 1/sqrt(size)
    (test ratings never leak in). Each column group gets its own prior (``group_shapes``). Users and
    items enter through ``myfm.RelationBlock``s: one row per distinct user (item) of the split plus the
    index of that row for each rating, so a user's N(u) is stored once, not once per rating.
    The day is ``timestamp // 86400`` (UTC date), one-hot over the days seen in TRAIN; a test rating on a
    day absent from train gets an all-zero day row.
    """
    import scipy.sparse as sps
    from myfm import RelationBlock

    (tr_u, tr_i, _, tr_t), (te_u, te_i, _, te_t) = tr, te
    use_nu = groups in ("svdpp", "timesvdpp-flipped")
    use_ni = groups == "timesvdpp-flipped"
    use_day = groups == "timesvdpp-flipped"

    user_parts, item_parts = [sps.identity(n_users, format="csr")], [sps.identity(n_items, format="csr")]
    user_shapes, item_shapes = [n_users], [n_items]
    if use_nu:
        user_parts.append(_row_normalised(tr_u, tr_i, n_users, n_items))
        user_shapes.append(n_items)
    if use_ni:
        item_parts.append(_row_normalised(tr_i, tr_u, n_items, n_users))
        item_shapes.append(n_users)
    user_table = sps.hstack(user_parts, format="csr")
    item_table = sps.hstack(item_parts, format="csr")

    def blocks(u, i):
        out = []
        for ids, table in ((u, user_table), (i, item_table)):
            uniq, inverse = np.unique(ids, return_inverse=True)
            out.append(RelationBlock(inverse.astype(np.int64), table[uniq]))
        return out

    X_tr = X_te = None
    day_shapes = []
    if use_day:
        if tr_t is None or te_t is None:
            raise ValueError("groups='timesvdpp-flipped' needs timestamps in train and test")
        days = np.unique(tr_t // 86400)

        def day_onehot(ts):
            d = ts // 86400
            pos = np.clip(np.searchsorted(days, d), 0, len(days) - 1)
            known = days[pos] == d
            rows = np.flatnonzero(known)
            return sps.csr_matrix((np.ones(len(rows)), (rows, pos[known])), shape=(len(ts), len(days)))

        X_tr, X_te = day_onehot(tr_t), day_onehot(te_t)
        day_shapes = [len(days)]
    return X_tr, blocks(tr_u, tr_i), X_te, blocks(te_u, te_i), day_shapes + user_shapes + item_shapes


def myfm_fit(train, test, groups="mf", rank=10, n_iter=200, n_kept_samples=None, seed=0):
    """Bayesian FM by Gibbs sampling (``myfm.MyFMRegressor``), the feature sets of myFM's MovieLens-100K
    example (see ``_myfm_features``): ``groups`` is "mf", "svdpp" or "timesvdpp-flipped" (the last needs
    4-tuples with timestamps).

    ``seconds`` is the wall time of ``fit`` (sampler setup included; feature construction excluded);
    ``seconds_per_sweep`` = seconds / n_iter. ``sweep_seconds`` are the gaps between myFM's per-sweep
    callbacks (the first also holds the setup). ``rmse`` is that of the posterior predictive mean,
    ``predict`` averaged over the kept samples (``n_kept_samples=None`` -> myFM's default, n_iter - 5),
    clipped to the train rating range; ``rmse_unclipped`` without the clip.
    """
    import myfm

    if groups not in _MYFM_GROUPS:
        raise ValueError(f"groups must be one of {_MYFM_GROUPS}")
    tr, te = _split(train), _split(test)
    n_users, n_items = _sizes(tr[0], tr[1], te[0], te[1])
    X_tr, rel_tr, X_te, rel_te, group_shapes = _myfm_features(groups, tr, te, n_users, n_items)

    stamps = []

    def callback(i, fm, hyper, history):
        stamps.append(time.perf_counter())
        return False, None

    fm = myfm.MyFMRegressor(rank=rank, random_seed=seed)
    with _Clock() as clock:
        fm.fit(X_tr, tr[2], X_rel=rel_tr, n_iter=n_iter, n_kept_samples=n_kept_samples,
               group_shapes=group_shapes, callback=callback)
    kept = n_kept_samples if n_kept_samples is not None else len(fm.predictor_.samples)
    pred = fm.predict(X_te, X_rel=rel_te)
    out = {"peer": "myfm", "groups": groups, "version": available()["myfm"], "rank": rank, "n_iter": n_iter,
           "n_kept_samples": kept, "n_features": int(sum(group_shapes)), "group_shapes": group_shapes,
           "seconds": clock.wall, "cpu_seconds": clock.cpu, "seconds_per_sweep": clock.wall / n_iter,
           "sweep_seconds": list(np.diff([clock.wall0] + stamps)),
           "timing": "seconds_per_sweep = fit seconds / n_iter; sweep_seconds from myFM's per-sweep callback"}
    out.update(_scores(pred, te[2], float(tr[2].min()), float(tr[2].max())))
    return out


# ------------------------------------------------------------------------------------------------- main

def load_udata(path):
    """u.data (user, item, rating, timestamp; tab separated) with raw ids mapped to dense 0-based indices
    over the whole file, rows kept in file order."""
    raw = np.loadtxt(path, dtype=np.int64, ndmin=2)
    users = np.unique(raw[:, 0], return_inverse=True)[1].astype(np.int32)
    items = np.unique(raw[:, 1], return_inverse=True)[1].astype(np.int32)
    return users, items, raw[:, 2].astype(np.float32), raw[:, 3].astype(np.int64)


def grouplens_fold(data, fold, fold_size=20_000):
    """GroupLens' u{fold}.base/u{fold}.test (its mku.sh): test = rows (fold-1)*20000 .. fold*20000-1 of
    u.data in file order, train = all other rows (file order; mku.sh then sorts both files by user and
    item, which only changes the row order)."""
    n = len(data[0])
    lo, hi = (fold - 1) * fold_size, fold * fold_size
    test_mask = np.zeros(n, dtype=bool)
    test_mask[lo:hi] = True
    return tuple(a[~test_mask] for a in data), tuple(a[test_mask] for a in data)


def synthetic(n_users=6040, n_items=3706, n_ratings=800_000, seed=0):
    """Seeded random (users, items, ratings) with distinct (user, item) pairs, for timing only."""
    rng = np.random.default_rng(seed)
    cells = rng.choice(n_users * n_items, size=n_ratings, replace=False)
    users, items = (cells // n_items).astype(np.int32), (cells % n_items).astype(np.int32)
    ratings = rng.integers(1, 6, size=n_ratings).astype(np.float32)
    return users, items, ratings


def _fold_table(path, fold):
    data = load_udata(path)
    train, test = grouplens_fold(data, fold)
    train3, test3 = train[:3], test[:3]
    have = available()
    print(f"u.data: {len(data[0])} ratings, {data[0].max() + 1} users, {data[1].max() + 1} items; "
          f"fold u{fold}: train {len(train[0])}, test {len(test[0])}")
    print("peers:", have)
    runs = []
    if have["surprise"]:
        runs += [("Surprise SVD k=10", "20 epochs", lambda: surprise_svd(train3, test3, k=10)),
                 ("Surprise SVD++ k=20 (default)", "20 epochs", lambda: surprise_svdpp(train3, test3, k=20)),
                 ("Surprise SVD++ k=10", "20 epochs", lambda: surprise_svdpp(train3, test3, k=10))]
    if have["cornac"]:
        runs += [("Cornac MF k=10", "20 epochs", lambda: cornac_mf(train3, test3, k=10))]
    if have["myfm"]:
        runs += [(f"myFM rank=10 {g}", f"{n} sweeps", lambda g=g, n=n: myfm_fit(train, test, g, 10, n))
                 for g, n in (("mf", 200), ("svdpp", 200), ("timesvdpp-flipped", 300))]
    header = f"{'peer':32s} {'budget':>10s} {'RMSE':>7s} {'RMSE raw':>9s} {'fit s':>8s} {'cpu s':>8s} " \
             f"{'ms/epoch':>9s}"
    print(header)
    print("-" * len(header))
    for name, budget, run in runs:
        r = run()
        per = r["seconds_per_sweep"] if "seconds_per_sweep" in r else float(np.median(r["epoch_seconds"]))
        per *= 1000
        print(f"{name:32s} {budget:>10s} {r['rmse']:7.4f} {r['rmse_unclipped']:9.4f} {r['seconds']:8.2f} "
              f"{r['cpu_seconds']:8.2f} {per:9.2f}", flush=True)
    print("RMSE: predictions clipped to [1, 5]; RMSE raw: unclipped. ms/epoch: Cornac median of chained "
          "1-epoch fits; Surprise fit/epochs; myFM fit/sweeps.")


def _cornac_synthetic(n_ratings, k, epochs):
    users, items, ratings = synthetic(n_ratings=n_ratings)
    train, test = (users, items, ratings), (users[:1000], items[:1000], ratings[:1000])
    r = cornac_mf(train, test, k=k, epochs=epochs)
    ms = 1000 * np.asarray(r["epoch_seconds"])
    print(f"Cornac {r['version']} MF k={k}, {n_ratings} ratings (6040 x 3706, seed 0), num_threads="
          f"{r['num_threads']}: single {epochs}-epoch fit {r['seconds']:.3f} s "
          f"({1000 * r['seconds_per_epoch_single_fit']:.1f} ms/epoch, cpu {r['cpu_seconds']:.3f} s); chained "
          f"1-epoch fits: median {np.median(ms):.1f} ms, min {ms.min():.1f}, max {ms.max():.1f}; "
          f"identical parameters: {r['per_epoch_matches_single_fit']}")


if __name__ == "__main__":
    import os
    os.environ.setdefault("TQDM_DISABLE", "1")  # myFM's progress bar
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="path to MovieLens 100K u.data")
    parser.add_argument("--fold", type=int, default=1, choices=range(1, 6))
    parser.add_argument("--cornac-synthetic", type=int, metavar="N",
                        help="also time Cornac MF per epoch on N synthetic ratings (e.g. 800000)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    if not args.data and not args.cornac_synthetic:
        parser.error("give --data and/or --cornac-synthetic")
    if args.data:
        _fold_table(args.data, args.fold)
    if args.cornac_synthetic:
        _cornac_synthetic(args.cornac_synthetic, args.k, args.epochs)
