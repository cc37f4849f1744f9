"""mfcore's Bayesian FM Gibbs sampler (``mfcore.engine.gibbs``) beside myFM on GroupLens u1:
ms per sweep and test RMSE of the posterior predictive mean, on the SAME feature matrices.

Features come from ``mfcore.peers._myfm_features`` (myFM's MovieLens-100K example: "mf" =
user one-hot | item one-hot; "timesvdpp-flipped" = day one-hot | user one-hot, N(u) |
item one-hot, N(i), train-only implicit feedback), built once; myFM gets them as they are
(``RelationBlock``s), mfcore gets the same arrays converted to an ``FMDesign`` (the same
blocks, the same rows, the same groups). Both run rank 10, myFM's priors and init, and
average the samples of sweeps 5 .. n_iter-1 (myFM's default ``n_kept_samples = n_iter - 5``).

Timing: the two samplers run one after the other, alternately, ``--repeats`` times, in one
process on one thread. Per sweep: myFM = gaps between its per-sweep callbacks, mfcore =
its history's sweep seconds; the table gives the median over all sweeps of all repeats,
and fit wall seconds / n_iter (setup and sample storage included) as a second figure.
RMSE: predictions clipped to [1, 5] (myFM's example), and raw.

Needs myFM and scipy (``/work/peers-venv``)::

    PYTHONPATH=. /work/peers-venv/bin/python benchmarks/bench_gibbs.py \
        --data ../shared/data/ml-100k/u.data [--repeats 3] [--sets mf,timesvdpp-flipped]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

import numpy as np

os.environ.setdefault("TQDM_DISABLE", "1")  # myFM's progress bar

SWEEPS = {"mf": 200, "svdpp": 200, "timesvdpp-flipped": 300}


def design_from_myfm(X, blocks, y, group_shapes):
    """The FMDesign of myFM inputs: X (scipy CSR or None), myfm.RelationBlocks, targets."""
    from mfcore.engine.fm_design import CSR, FMDesign, RelationBlock
    Xc = None if X is None else CSR.from_scipy(X)
    rbs = tuple(RelationBlock(np.asarray(b.original_to_block, np.int32), CSR.from_scipy(b.data))
                for b in blocks)
    groups = np.repeat(np.arange(len(group_shapes)), group_shapes)
    return FMDesign(y, Xc, rbs, groups)


def run_myfm(X_tr, rel_tr, y_tr, X_te, rel_te, group_shapes, rank, n_iter, seed):
    import myfm
    stamps = []

    def callback(i, fm, hyper, history):
        stamps.append(time.perf_counter())
        return False, None

    fm = myfm.MyFMRegressor(rank=rank, random_seed=seed)
    t0 = time.perf_counter()
    fm.fit(X_tr, y_tr, X_rel=rel_tr, n_iter=n_iter, group_shapes=group_shapes, callback=callback)
    wall = time.perf_counter() - t0
    pred = fm.predict(X_te, X_rel=rel_te)
    return pred, wall, list(np.diff(stamps))  # the first gap (setup + sweep 0) is dropped


def run_mfcore(d_tr, d_te, rank, n_iter, seed):
    from mfcore.engine.gibbs import fit_gibbs, predict
    t0 = time.perf_counter()
    res = fit_gibbs(d_tr, rank, n_iter, burn_in=5, seed=seed)
    wall = time.perf_counter() - t0
    return predict(res, d_te), wall, res.history.seconds[1:]


def rmse(pred, y, clip=True):
    pred = np.clip(pred, 1, 5) if clip else pred
    return float(np.sqrt(np.mean((pred - y) ** 2)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="MovieLens 100K u.data")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rank", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sets", default="mf,timesvdpp-flipped")
    ap.add_argument("--sweeps", type=int, default=None, help="override the per-set sweep counts")
    args = ap.parse_args(argv)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import myfm
    from mfcore import peers
    from mfcore.engine.fm_design import feature_set
    from mfcore.engine.gibbs import fit_gibbs, fm_predict

    data = peers.load_udata(args.data)
    train, test = peers.grouplens_fold(data, 1)
    tr, te = peers._split(train), peers._split(test)
    n_users, n_items = peers._sizes(tr[0], tr[1], te[0], te[1])
    print(f"GroupLens u1: train {len(tr[0])}, test {len(te[0])}; myFM {myfm.__version__}; rank {args.rank}; "
          f"{args.repeats} alternating repeats", flush=True)
    header = (f"{'features':18s} {'sampler':7s} {'sweeps':>6s} {'ms/sweep med':>12s} {'fit s/sweep':>11s} "
              f"{'RMSE':>7s} {'RMSE raw':>8s}")
    print(header)
    print("-" * len(header))
    for name in args.sets.split(","):
        n_iter = args.sweeps or SWEEPS[name]
        X_tr, rel_tr, X_te, rel_te, shapes = peers._myfm_features(name, tr, te, n_users, n_items)
        d_tr = design_from_myfm(X_tr, rel_tr, tr[2], shapes)
        d_te = design_from_myfm(X_te, rel_te, te[2], shapes)
        # mfcore's own scipy-free builder must give the same features per rating as myFM's matrices
        own_tr, own_te = feature_set(name, tr, te, n_users, n_items)
        rng = np.random.default_rng(0)
        w0, w, V = 0.1, rng.normal(size=d_tr.p), rng.normal(size=(d_tr.p, 3))
        same = all(np.allclose(fm_predict(a, w0, w, V), fm_predict(b, w0, w, V), rtol=1e-12, atol=1e-9)
                   for a, b in ((own_tr, d_tr), (own_te, d_te)))
        fit_gibbs(d_tr, args.rank, 2, seed=args.seed)   # compile / load the Numba cache
        per = {"myFM": [], "mfcore": []}
        walls = {"myFM": [], "mfcore": []}
        preds = {}
        for _ in range(args.repeats):
            for who in ("myFM", "mfcore"):
                if who == "myFM":
                    pred, wall, sweeps = run_myfm(X_tr, rel_tr, tr[2], X_te, rel_te, shapes, args.rank,
                                                  n_iter, args.seed)
                else:
                    pred, wall, sweeps = run_mfcore(d_tr, d_te, args.rank, n_iter, args.seed)
                per[who] += sweeps
                walls[who].append(wall / n_iter)
                preds[who] = pred
        for who in ("myFM", "mfcore"):
            print(f"{name:18s} {who:7s} {n_iter:6d} {1000 * statistics.median(per[who]):12.2f} "
                  f"{1000 * statistics.median(walls[who]):11.2f} {rmse(preds[who], te[2]):7.4f} "
                  f"{rmse(preds[who], te[2], clip=False):8.4f}", flush=True)
        print(f"{'':18s} p = {d_tr.p} columns, nnz(X) = {0 if d_tr.X is None else d_tr.X.nnz}, block nnz = "
              f"{[b.table.nnz for b in d_tr.blocks]}; mfcore.engine.fm_design.feature_set gives the same "
              f"features: {same}", flush=True)


if __name__ == "__main__":
    main()
