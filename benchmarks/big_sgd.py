"""Per-sample SGD at scale: 100M synthetic ratings, one and two threads, with peak memory.

    python benchmarks/big_sgd.py [--ratings 100000000] [--threads 1,2] [--epochs 3]

Data: ``synthetic_ratings(N, n_users=None, n_items=None)`` (users and items scaled with N
as in MovieLens-1M), its seed-0 80/20 split. Model: ``mfb``, k=10, ``optimizer="sgd"``,
``batch_size=1``. Each thread count runs in a fresh process (so that its peak resident
memory, ``ru_maxrss``, is its own): it generates the data, fits ``--epochs`` epochs and
reports the history's per-epoch wall time (the epoch's shuffles and updates plus the
validation pass over the 20% held out) of every epoch after the first (the first also
pays the grid arrangement), its median, the final validation RMSE and the peak memory.
The runs go one after the other; the machine should be otherwise idle.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time


def child(n, threads, epochs):
    import mfcore
    from mfcore.data import random_split, synthetic_ratings

    t0 = time.perf_counter()
    ratings = synthetic_ratings(n, n_users=None, n_items=None, seed=0)
    train, val = random_split(ratings, train_fraction=0.8, seed=0)
    del ratings
    setup = time.perf_counter() - t0
    model = mfcore.create_model("mfb", factors=10, seed=0)
    hist = model.fit(train, validation=val, epochs=epochs, optimizer="sgd", batch_size=1,
                     threads=threads, verbose=0)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    later = hist.seconds[1:] or hist.seconds
    print(json.dumps({"threads": threads, "train": len(train), "val": len(val),
                      "data_seconds": setup, "epoch_seconds": hist.seconds,
                      "median_epoch": statistics.median(later),
                      "val_rmse": hist.val_rmse[-1], "peak_gib": peak_kib / 2**20}))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ratings", type=int, default=100_000_000)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child is not None:
        child(a.ratings, a.child, a.epochs)
        return
    rows = []
    for t in (int(x) for x in a.threads.split(",")):
        out = subprocess.run([sys.executable, __file__, "--ratings", str(a.ratings),
                              "--epochs", str(a.epochs), "--child", str(t)],
                             capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        r = rows[-1]
        print(f"threads {t}: epochs {', '.join(f'{s:.2f}' for s in r['epoch_seconds'])} s; "
              f"median after the first {r['median_epoch']:.2f} s; val RMSE "
              f"{r['val_rmse']:.4f}; peak {r['peak_gib']:.2f} GiB "
              f"({r['train']:,} train / {r['val']:,} val ratings)", flush=True)
    if len(rows) == 2:
        print(f"ratio threads {rows[1]['threads']} / {rows[0]['threads']}: "
              f"{rows[1]['median_epoch'] / rows[0]['median_epoch']:.2f}")


if __name__ == "__main__":
    main()
