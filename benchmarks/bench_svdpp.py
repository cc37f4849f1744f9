"""SVD++ epoch speed: mfcore beside Surprise on ml-100k u1, and beside mfcore's own biased
MF on the 800k synthetic set, side by side in one run.

    python benchmarks/bench_svdpp.py [--rounds 5] [--factors 20,50] [--no-peers]

* u1 (80,000 training ratings): one per-sample SGD epoch of ``svdpp`` (``fit(epochs=1)``
  on a model fitted once before, so the kernels are compiled and N(u) is built; the
  epoch's own shuffle and every update are timed) beside one epoch of Surprise's
  ``SVDpp`` at the same k (``fit`` with ``n_epochs=3``, divided by 3: Surprise has no
  per-epoch hook). Surprise is optional (``pip install 'mfcore[peers]'``).
* synthetic MovieLens-1M shape (seed 0, its seed-0 80/20 split, ~800k training ratings):
  one epoch of ``svdpp`` beside one of ``mfb`` with the same per-sample SGD, same k.

Round-robin; the table gives medians over ``--rounds``.
"""
import argparse
import statistics
import time

import mfcore
from mfcore import peers
from mfcore.data import load_grouplens_fold, random_split, synthetic_ratings


def epoch_seconds(model, train):
    t0 = time.perf_counter()
    model.fit(train, epochs=1, verbose=0, optimizer="sgd", batch_size=1)
    return time.perf_counter() - t0


def warm(name, k, train):
    model = mfcore.create_model(name, factors=k, seed=0)
    model.fit(train, epochs=1, verbose=0, optimizer="sgd", batch_size=1)
    return model


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--factors", default="20,50")
    p.add_argument("--no-peers", action="store_true")
    a = p.parse_args()
    ks = [int(v) for v in a.factors.split(",")]
    use_surprise = not a.no_peers and bool(peers.available().get("surprise"))

    u1_train, _ = load_grouplens_fold("u1", progress=False)
    syn_train, _ = random_split(synthetic_ratings(), 0.8, seed=0)
    models = {}
    for k in ks:
        models[("u1", "svdpp", k)] = warm("svdpp", k, u1_train)
        models[("syn", "svdpp", k)] = warm("svdpp", k, syn_train)
        models[("syn", "mfb", k)] = warm("mfb", k, syn_train)
    times = {key: [] for key in models}
    if use_surprise:
        for k in ks:
            times[("u1", "surprise", k)] = []
    triple = (u1_train.users, u1_train.items, u1_train.ratings)
    for r in range(a.rounds):
        for key, model in models.items():
            times[key].append(epoch_seconds(model, u1_train if key[0] == "u1" else syn_train))
        if use_surprise:
            for k in ks:
                out = peers.surprise_svdpp(triple, tuple(a[:10] for a in triple), k=k,
                                           epochs=3, seed=r)
                times[("u1", "surprise", k)].append(out["seconds"] / 3)
        print(f"round {r + 1}/{a.rounds} done", flush=True)
    med = {key: statistics.median(v) * 1000 for key, v in times.items()}
    print()
    print("| k | svdpp epoch, u1 (ms) | Surprise SVDpp epoch, u1 (ms) | speed-up | "
          "svdpp epoch, 800k (ms) | mfb sgd epoch, 800k (ms) | svdpp / mfb |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for k in ks:
        ours, syn, mfb = med[("u1", "svdpp", k)], med[("syn", "svdpp", k)], med[("syn", "mfb", k)]
        sur = med.get(("u1", "surprise", k))
        sur_cells = (f"{sur:,.0f} | {sur / ours:.0f}x" if sur is not None else "- | -")
        print(f"| {k} | {ours:.1f} | {sur_cells} | {syn:.1f} | {mfb:.1f} | {syn / mfb:.2f} |")
    print(f"\nmedians of {a.rounds} rounds; mfcore {mfcore.__version__}, threads=1; "
          f"peers: {peers.available()}")


if __name__ == "__main__":
    main()
