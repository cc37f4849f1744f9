"""SVD++ epoch speed: mfcore beside Surprise on ml-100k u1, and beside mfcore's own biased
MF on the 800k synthetic set, side by side in one run.

    python benchmarks/bench_svdpp.py [--rounds 5] [--factors 20,50] [--no-peers]

* u1 (80,000 training ratings): one per-sample SGD epoch of ``svdpp`` (``fit(epochs=1)``
  on a model fitted once before, so the kernels are compiled and N(u) is built; the
  epoch's own shuffle and every update are timed) beside one epoch of Surprise's
  ``SVDpp`` at the same k (``fit`` with ``n_epochs=3``, divided by 3: Surprise has no
  per-epoch hook). Surprise is optional (``pip install 'mfcore[peers]'``).
* synthetic MovieLens-1M shape (seed 0, its seed-0 80/20 split, ~800k training ratings):
  one epoch of ``svdpp`` beside one of ``mfb`` with the same per-sample SGD, same k, each
  at its defaults (svdpp's per-sample L2 included; mfb has none). Two figures: the epoch
  as the trainer times it (``History.seconds``: the epoch's order and every update, the
  median of a 5-epoch fit per round), and ``fit(epochs=1)``, which adds the fit's set-up
  (its start-of-fit checks predict a sample of the training ratings once).

Round-robin; the table gives medians over ``--rounds``.

The 800k ratio moves between processes more than within one (the same code gave 33-45 ms
per svdpp epoch at k=20 in eight fresh processes): ``--processes P`` also runs the 800k
comparison in P fresh processes, one after the other, and gives the median and range of
their ratios.
"""
import argparse
import json
import statistics
import subprocess
import sys
import time

import mfcore
from mfcore import peers
from mfcore.data import load_grouplens_fold, random_split, synthetic_ratings


def epoch_seconds(model, train):
    t0 = time.perf_counter()
    model.fit(train, epochs=1, verbose=0, optimizer="sgd", batch_size=1)
    return time.perf_counter() - t0


def epoch_from_history(model, train, epochs=5):
    """Median epoch time of one ``epochs``-epoch fit, as the trainer records it."""
    h = model.fit(train, epochs=epochs, verbose=0, optimizer="sgd", batch_size=1)
    return statistics.median(h.seconds)


def warm(name, k, train):
    model = mfcore.create_model(name, factors=k, seed=0)
    model.fit(train, epochs=1, verbose=0, optimizer="sgd", batch_size=1)
    return model


def synthetic_ratios(ks, rounds):
    """{k: (svdpp, mfb) median history epoch seconds} on the 800k set, in this process."""
    syn_train, _ = random_split(synthetic_ratings(), 0.8, seed=0)
    models = {(name, k): warm(name, k, syn_train) for k in ks for name in ("svdpp", "mfb")}
    epochs = {key: [] for key in models}
    for _ in range(rounds):
        for key, model in models.items():
            epochs[key].append(epoch_from_history(model, syn_train))
    return {k: (statistics.median(epochs[("svdpp", k)]), statistics.median(epochs[("mfb", k)]))
            for k in ks}


def across_processes(ks, rounds, processes):
    """The 800k comparison in ``processes`` fresh processes: per k, the ratios' median, min
    and max."""
    ratios = {k: [] for k in ks}
    for p in range(processes):
        out = subprocess.run([sys.executable, __file__, "--child", "--rounds", str(rounds),
                              "--factors", ",".join(map(str, ks))],
                             capture_output=True, text=True, check=True).stdout
        for k, (svdpp, mfb) in json.loads(out.splitlines()[-1]).items():
            ratios[int(k)].append(svdpp / mfb)
        print(f"process {p + 1}/{processes} done", flush=True)
    print()
    print("| k | 800k svdpp / mfb epoch, median over processes | min | max | processes |")
    print("| --- | --- | --- | --- | --- |")
    for k in ks:
        r = ratios[k]
        print(f"| {k} | {statistics.median(r):.2f} | {min(r):.2f} | {max(r):.2f} | {len(r)} |")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--factors", default="20,50")
    p.add_argument("--no-peers", action="store_true")
    p.add_argument("--processes", type=int, default=0,
                   help="also run the 800k comparison in this many fresh processes")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    ks = [int(v) for v in a.factors.split(",")]
    if a.child:
        print(json.dumps(synthetic_ratios(ks, a.rounds)))
        return
    use_surprise = not a.no_peers and bool(peers.available().get("surprise"))

    u1_train, _ = load_grouplens_fold("u1", progress=False)
    syn_train, _ = random_split(synthetic_ratings(), 0.8, seed=0)
    models = {}
    for k in ks:
        models[("u1", "svdpp", k)] = warm("svdpp", k, u1_train)
        models[("syn", "svdpp", k)] = warm("svdpp", k, syn_train)
        models[("syn", "mfb", k)] = warm("mfb", k, syn_train)
    times = {key: [] for key in models}
    epochs = {key: [] for key in models if key[0] == "syn"}
    if use_surprise:
        for k in ks:
            times[("u1", "surprise", k)] = []
    triple = (u1_train.users, u1_train.items, u1_train.ratings)
    for r in range(a.rounds):
        for key, model in models.items():
            times[key].append(epoch_seconds(model, u1_train if key[0] == "u1" else syn_train))
            if key in epochs:
                epochs[key].append(epoch_from_history(model, syn_train))
        if use_surprise:
            for k in ks:
                out = peers.surprise_svdpp(triple, tuple(a[:10] for a in triple), k=k,
                                           epochs=3, seed=r)
                times[("u1", "surprise", k)].append(out["seconds"] / 3)
        print(f"round {r + 1}/{a.rounds} done", flush=True)
    med = {key: statistics.median(v) * 1000 for key, v in times.items()}
    ep = {key: statistics.median(v) * 1000 for key, v in epochs.items()}
    print()
    print("| k | svdpp fit(epochs=1), u1 (ms) | Surprise SVDpp epoch, u1 (ms) | speed-up | "
          "800k: svdpp epoch (ms) | mfb epoch (ms) | svdpp / mfb | svdpp fit(epochs=1) | "
          "mfb fit(epochs=1) | svdpp / mfb |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for k in ks:
        ours, syn, mfb = med[("u1", "svdpp", k)], med[("syn", "svdpp", k)], med[("syn", "mfb", k)]
        e_syn, e_mfb = ep[("syn", "svdpp", k)], ep[("syn", "mfb", k)]
        sur = med.get(("u1", "surprise", k))
        sur_cells = (f"{sur:,.0f} | {sur / ours:.0f}x" if sur is not None else "- | -")
        print(f"| {k} | {ours:.1f} | {sur_cells} | {e_syn:.1f} | {e_mfb:.1f} | "
              f"{e_syn / e_mfb:.2f} | {syn:.1f} | {mfb:.1f} | {syn / mfb:.2f} |")
    print(f"\nmedians of {a.rounds} rounds; mfcore {mfcore.__version__}, threads=1; "
          f"peers: {peers.available()}")
    if a.processes > 0:
        across_processes(ks, a.rounds, a.processes)


if __name__ == "__main__":
    main()
