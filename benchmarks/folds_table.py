"""Test RMSE of every model on GroupLens' ml-100k folds u1..u5, beside Surprise.

    python benchmarks/folds_table.py [--folds u1,u2,u3,u4,u5] [--only svdpp,timesvdpp]
                                     [--json out.json]

Protocol: fold uK's test set is rows 20000(K-1) .. 20000K-1 of ``u.data``, the rest trains
(GroupLens' ``mku.sh``). Every mfcore model runs with its defaults, exactly as
``mfcore train --dataset ml-100k --split uK --model M [options]`` (the notebook's models:
k=10, 6 epochs of Adam 1e-3 on batches of 64; Koren's: see their docstrings); the figure
is the final epoch's test RMSE, nothing chosen on a test fold. Surprise (optional, a
benchmark extra) runs with its own defaults (SVD: k=100, SVD++: k=20; 20 epochs), RMSE
with predictions clipped to the rating range as its ``accuracy.rmse`` of ``algo.test``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

from mfcore.data import load_grouplens_fold
from mfcore.models import create_model

#: (label, model name, constructor options)
ROWS = [
    ("mf", "mf", {}), ("mfb", "mfb", {}), ("mfbs", "mfbs", {}), ("linear", "linear", {}),
    ("nn", "nn", {}), ("nn --time-features", "nn", {"time_features": True}),
    ("residual", "residual", {}),
    ("residual --time-features", "residual", {"time_features": True}),
    ("mixed-bias", "mixed-bias", {}),
    ("mixed-interaction", "mixed-interaction", {}), ("baseline", "baseline", {}),
    ("svdpp", "svdpp", {}), ("svdpp --flipped", "svdpp", {"flipped": True}),
    ("svdpp --implicit all", "svdpp", {"implicit": "all"}),
    ("timesvd", "timesvd", {}),
    ("timesvdpp", "timesvdpp", {}), ("timesvdpp --flipped", "timesvdpp", {"flipped": True}),
    ("timesvdpp --implicit all", "timesvdpp", {"implicit": "all"}),
]
PEERS = [("Surprise SVD (k=100)", "surprise_svd", {"k": 100}),
         ("Surprise SVD++ (k=20)", "surprise_svdpp", {"k": 20})]


def run_mfcore(name, params, train, test):
    model = create_model(name, **params)
    t0 = time.perf_counter()
    hist = model.fit(train, validation=test, verbose=0)
    return hist.val_rmse[-1], time.perf_counter() - t0


def run_peer(fn_name, params, train, test):
    from mfcore import peers
    fn = getattr(peers, fn_name)
    out = fn((train.users, train.items, train.ratings), (test.users, test.items, test.ratings),
             **params)
    return out["rmse"], out["seconds"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--folds", default="u1,u2,u3,u4,u5")
    p.add_argument("--only", default=None, help="comma-separated row labels (or model names: all their rows)")
    p.add_argument("--no-peers", action="store_true")
    p.add_argument("--json", default=None)
    a = p.parse_args()
    folds = [f.strip() for f in a.folds.split(",")]
    data = {f: load_grouplens_fold(f, progress=False) for f in folds}
    rows = [(label, "mfcore", name, params) for label, name, params in ROWS]
    if not a.no_peers:
        from mfcore import peers
        if peers.available().get("surprise"):
            rows += [(label, "peer", fn, params) for label, fn, params in PEERS]
    if a.only:
        keep = {v.strip() for v in a.only.split(",")}
        labels = {r[0] for r in rows}
        # a row label picks that row; any other value picks every row of that model
        rows = [r for r in rows if r[0] in keep or (r[2] in keep and r[2] not in labels)]
    results = []
    for label, kind, name, params in rows:
        per_fold, seconds = {}, []
        for f in folds:
            train, test = data[f]
            run = run_mfcore if kind == "mfcore" else run_peer
            rmse, sec = run(name, params, train, test)
            per_fold[f] = rmse
            seconds.append(sec)
        vals = list(per_fold.values())
        res = {"label": label, "folds": per_fold, "mean": statistics.fmean(vals),
               "std": statistics.stdev(vals) if len(vals) > 1 else 0.0,
               "seconds_per_fold": statistics.median(seconds)}
        results.append(res)
        print(f"{label:<28} " + " ".join(f"{per_fold[f]:.4f}" for f in folds)
              + f"  mean {res['mean']:.4f} +- {res['std']:.4f}  ({res['seconds_per_fold']:.1f} s"
              "/fold)", flush=True)
    print()
    print("| model | " + " | ".join(folds) + " | mean ± std | s/fold |")
    print("|" + " --- |" * (len(folds) + 3))
    for r in results:
        print(f"| {r['label']} | " + " | ".join(f"{r['folds'][f]:.4f}" for f in folds)
              + f" | {r['mean']:.4f} ± {r['std']:.4f} | {r['seconds_per_fold']:.1f} |")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"folds": folds, "results": results}, fh, indent=1)


if __name__ == "__main__":
    main()
