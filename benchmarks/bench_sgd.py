"""Per-sample SGD epoch of ``mfb`` beside the bare-loop yardstick and the peers, one run.

    python benchmarks/bench_sgd.py [--factors 10] [--rounds 9] [--ratings 1000209]

Data: the synthetic MovieLens-1M-shaped set (seed 0) and its seed-0 80/20 split (about
800k training ratings). Timed side by side, round-robin, medians of ``--rounds``:

* mfcore, ``mfb`` k, ``optimizer="sgd"``, ``batch_size=1``, ``shuffle="epoch"``: one
  ``fit(epochs=1)`` call (the in-block shuffles, every update, the per-call set-up), with
  ``threads=1`` and ``threads=2``;
* the bare Numba loop of ``../shared/tools/probe_sgd.py`` (the same update in float32, in
  a fixed shuffled order, no shuffle, no set-up), on the same training ratings;
* Cornac's MF (one thread when seeded) and Surprise's SVD, when importable
  (``pip install 'mfcore[peers]'``).
"""
import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import mfcore
from mfcore import peers
from mfcore.data import random_split, synthetic_ratings

PROBE = Path(__file__).resolve().parents[2] / "shared" / "tools" / "probe_sgd.py"


def load_probe(path):
    spec = importlib.util.spec_from_file_location("probe_sgd", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # Numba's on-disk cache looks the module up by name
    spec.loader.exec_module(module)
    return module


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--factors", type=int, default=10)
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--ratings", type=int, default=1_000_209)
    p.add_argument("--probe", default=str(PROBE))
    a = p.parse_args()
    train, _ = random_split(synthetic_ratings(n_ratings=a.ratings, seed=0), 0.8, seed=0)
    k = a.factors
    runs = {}
    for threads in (1, 2):
        model = mfcore.create_model("mfb", factors=k, seed=0)
        kw = dict(epochs=1, optimizer="sgd", batch_size=1, lr=0.005, threads=threads,
                  verbose=0, progress=False)
        model.fit(train, **kw)
        runs[f"mfcore, {threads} thread{'s' if threads > 1 else ''}"] = \
            (lambda m=model, kw=kw: m.fit(train, **kw))
    if Path(a.probe).exists():
        probe = load_probe(a.probe)
        rng = np.random.default_rng(1)
        order = rng.permutation(len(train))
        u, i = train.users[order].copy(), train.items[order].copy()
        r = train.ratings[order].copy()
        P = rng.normal(0, 0.1, (train.n_users, k)).astype(np.float32)
        Q = rng.normal(0, 0.1, (train.n_items, k)).astype(np.float32)
        bu, bi = np.zeros(train.n_users, np.float32), np.zeros(train.n_items, np.float32)
        mu, lr, reg = np.float32(r.mean()), np.float32(0.005), np.float32(0.0)
        probe.sgd_epoch(u, i, r, P, Q, bu, bi, mu, lr, reg)
        runs["bare loop (probe_sgd.py)"] = lambda: probe.sgd_epoch(u, i, r, P, Q, bu, bi, mu,
                                                                   lr, reg)
    else:
        print(f"(no {a.probe}: the bare loop is not timed)", file=sys.stderr)
    times = {name: [] for name in runs}
    for _ in range(a.rounds):
        for name, run in runs.items():
            t0 = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t0)
    have = peers.available()
    arrays = (train.users, train.items, train.ratings)
    probe_set = tuple(x[:1000] for x in arrays)
    if have["cornac"]:
        res = peers.cornac_mf(arrays, probe_set, k=k, epochs=a.rounds + 1, seed=0)
        times[f"Cornac {have['cornac']} MF"] = res["epoch_seconds"][1:]
    if have["surprise"]:
        res = peers.surprise_svd(arrays, probe_set, k=k, epochs=3, seed=0)
        times[f"Surprise {have['surprise']} SVD"] = res["epoch_seconds"]
    ours = statistics.median(times["mfcore, 1 thread"])
    print(f"mfb k={k}, per-sample SGD, {len(train):,} training ratings; median ms per "
          f"epoch over {a.rounds} rounds")
    print(f"{'':34s} {'median ms':>10s} {'min ms':>8s} {'/ mfcore 1 thread':>18s}")
    for name, t in times.items():
        med = statistics.median(t)
        print(f"{name:34s} {1000 * med:10.2f} {1000 * min(t):8.2f} {med / ours:18.2f}")


if __name__ == "__main__":
    main()
