"""Per-sample SGD epoch of ``mfb`` beside the bare-loop yardstick and the peers, one run.

    python benchmarks/bench_sgd.py [--factors 10] [--rounds 21] [--ratings 1000209]

Data: the synthetic MovieLens-1M-shaped set (seed 0) and its seed-0 80/20 split (about
800k training ratings). Timed side by side, round-robin (each round runs every row once),
medians over ``--rounds`` (and the median of each round's ratio to mfcore's epoch, which
a drift of the shared machine's speed during the run affects less):

* mfcore, ``mfb`` k, ``optimizer="sgd"``, ``batch_size=1``, ``shuffle="epoch"``, one
  ``fit(epochs=1)`` call per round with ``threads=1`` and ``threads=2``: "epoch" is the
  epoch as the fit's history times it (the grid's strided orders, every update, the
  divergence check), "fit(epochs=1)" the whole call (plus the per-call set-up: option
  and memory checks, the start-of-fit loss, the roll-back snapshot);
* the bare Numba loop of ``../shared/tools/probe_sgd.py`` (the same update in float32, in
  a fixed shuffled order, no shuffle, no set-up), on the same training ratings;
* Cornac's MF (one thread when seeded), when importable (``pip install 'mfcore[peers]'``):
  one ``fit`` with ``max_iter=1`` per round on the same model, which continues training
  (Cornac's per-call overhead included, as in our fit(epochs=1)); it never shuffles and
  runs the ratings in data order, grouped by user. Then, once, one fit with ``max_iter``
  = rounds, divided by the rounds, and Surprise's SVD (3 epochs, divided).
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
    p.add_argument("--rounds", type=int, default=21)
    p.add_argument("--ratings", type=int, default=1_000_209)
    p.add_argument("--probe", default=str(PROBE))
    a = p.parse_args()
    train, _ = random_split(synthetic_ratings(n_ratings=a.ratings, seed=0), 0.8, seed=0)
    k = a.factors
    runs = {}
    epoch_times = {}
    for threads in (1, 2):
        model = mfcore.create_model("mfb", factors=k, seed=0)
        kw = dict(epochs=1, optimizer="sgd", batch_size=1, lr=0.005, threads=threads,
                  verbose=0, progress=False)
        model.fit(train, **kw)
        name = f"mfcore{'' if threads == 1 else f', {threads} threads'}"
        epoch_times[name] = []

        def run(m=model, kw=kw, name=name):
            epoch_times[name].append(m.fit(train, **kw).seconds[0])
        runs[f"{name}, fit(epochs=1)"] = run
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
    have = peers.available()
    if have["cornac"]:
        runs[f"Cornac {have['cornac']} MF, fit(max_iter=1)"] = peers.cornac_mf_stepper(
            (train.users, train.items, train.ratings), k=k, lr=0.005, seed=0)
    times = {name: [] for name in runs}
    for _ in range(a.rounds):
        for name, run in runs.items():
            t0 = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t0)
    times = {**{f"{name}, epoch": t for name, t in epoch_times.items()}, **times}
    arrays = (train.users, train.items, train.ratings)
    probe_set = tuple(x[:1000] for x in arrays)
    if have["cornac"]:
        res = peers.cornac_mf(arrays, probe_set, k=k, epochs=a.rounds, lr=0.005, seed=0,
                              per_epoch=False)
        times[f"Cornac {have['cornac']} MF, one {a.rounds}-epoch fit / {a.rounds}"] = \
            [res["seconds_per_epoch_single_fit"]]
    if have["surprise"]:
        res = peers.surprise_svd(arrays, probe_set, k=k, epochs=3, seed=0)
        times[f"Surprise {have['surprise']} SVD"] = res["epoch_seconds"]
    ours = statistics.median(times["mfcore, epoch"])
    print(f"mfb k={k}, per-sample SGD, {len(train):,} training ratings; median ms per "
          f"epoch over {a.rounds} rounds")
    base = times["mfcore, epoch"]
    print(f"{'':48s} {'median ms':>10s} {'min ms':>8s} {'/ mfcore epoch':>15s} "
          f"{'per round':>10s}")
    for name, t in times.items():
        med = statistics.median(t)
        # the same round's ratio, then its median: robust to the machine's slow drifts
        paired = (f"{statistics.median(x / y for x, y in zip(t, base)):10.2f}"
                  if len(t) == len(base) else f"{'':10s}")
        print(f"{name:48s} {1000 * med:10.2f} {1000 * min(t):8.2f} {med / ours:15.2f} "
              f"{paired}")


if __name__ == "__main__":
    main()
