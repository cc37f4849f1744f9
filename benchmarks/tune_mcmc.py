"""How the defaults of ``--optimizer mcmc`` were chosen: burn-in, kept samples, and the
feature choices of :mod:`mfcore.models.bayes`, on a validation split carved from GroupLens
fold u1's TRAINING part, never on a test fold.

    python benchmarks/tune_mcmc.py ["mfb factors=10" "timesvdpp factors=10 flipped=True" ...]
        [--sweeps 400] [--seeds 0] [--implicit-biases]

Protocol (as benchmarks/tune_koren.py): u1's 80,000 training ratings split 90/10 at random
(seed 0); each configuration runs ONE chain of ``--sweeps`` sweeps on the 90% (burn-in 0,
every sample kept), then every window "drop the first B sweeps, average the next N"
is scored by the RMSE of its posterior mean on the 10% (clipped as the model clips), so
all (B, N) pairs come from the same chain. ``--seeds 0,1,2`` repeats with other chain
seeds and averages the RMSEs (the Monte-Carlo spread between chains is printed too).

What it gave (210 sweeps, seeds 0,1; burn-in 10, 200 kept; RMSE on the 10%):
timesvdpp k=10 flipped 0.8801; without factor_drift 0.8787; without drift,factor_drift
0.8778; without drift,factor_drift,user_day 0.8834; without drift,factor_drift,item_bins
0.8786; svdpp k=10 flipped 0.8841 (sd between chains 0.0004-0.0008). Hence the README's
advice to sample timesvdpp ``--without drift,factor_drift``: the dev_u(t) terms, whose
factors an FM lets interact with every factored group, do not pay under mcmc here.

The mcmc defaults of svdpp / timesvd / timesvdpp (``--folds u1,u2,u3,u4,u5 --sweeps 210``,
seed 0; mean over the five training parts' validation splits at burn-in 10, 200 kept):
timesvdpp k=50 all terms 0.9002, k=10 0.8986, k=10 flipped 0.8863, k=10 flipped without
drift,factor_drift 0.8839 (k=20 0.8842, k=50 0.8856); svdpp k=50 0.9038, k=10 0.9024,
k=10 flipped 0.8914, k=50 flipped 0.8924; timesvd k=50 0.9025, k=10 0.9016, k=10 without
drift,factor_drift 0.8998. Hence k=10, flipped, without drift,factor_drift.
"""
import argparse
import time

import numpy as np

import mfcore
from mfcore.data import load_grouplens_fold, random_split
from mfcore.engine import gibbs
from mfcore.models import bayes

BURN_INS = (0, 5, 10, 20, 50, 100)
WINDOWS = (50, 100, 200, 300, 500)


def parse_config(text):
    name, *pairs = text.split()
    params = {}
    for pair in pairs:
        key, value = pair.split("=")
        params[key] = {"True": True, "False": False}.get(value, value)
        if isinstance(params[key], str):
            try:
                params[key] = int(value)
            except ValueError:
                params[key] = float(value) if value.replace(".", "").isdigit() else value
    return name, params


def per_sample_predictions(model, data):
    """(S, n) predictions of every kept sample on ``data`` (float64, not averaged)."""
    post = model.posterior_
    design = model._fm.design(data.users, data.items, data.timestamps)
    D = gibbs._pack(design, for_fit=False)
    V, qrow = post._scratch(D)
    out = np.empty((post.n_samples, design.n))
    for s in range(post.n_samples):
        post._sample_into(D, s, V, out[s], qrow)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("configs", nargs="*", default=["mfb factors=10", "svdpp factors=10 flipped=True",
                                                   "timesvdpp factors=10 flipped=True"])
    p.add_argument("--sweeps", type=int, default=400)
    p.add_argument("--seeds", default="0")
    p.add_argument("--folds", default="u1",
                   help="GroupLens folds whose TRAINING parts are each split 90/10 (e.g. u1,u2,u3); "
                        "the RMSEs are averaged over folds and seeds")
    p.add_argument("--implicit-biases", action="store_true",
                   help="give the implicit groups (N(u), N(i)) biases of their own (myFM's features)")
    a = p.parse_args()
    bayes.IMPLICIT_BIASES = a.implicit_biases
    folds = a.folds.split(",")
    parts = [random_split(load_grouplens_fold(f)[0], 0.9, seed=0) for f in folds]
    seeds = [int(s) for s in a.seeds.split(",")]
    print(f"training parts of {','.join(folds)}: {len(parts[0][0]):,} inner / {len(parts[0][1]):,} "
          f"validation ratings each; {a.sweeps} sweeps per chain; seeds {seeds}; "
          f"implicit biases {a.implicit_biases}")
    for text in a.configs:
        name, params = parse_config(text)
        tables, secs = [], []
        for (inner, check), seed in [(part, seed) for part in parts for seed in seeds]:
            model = mfcore.create_model(name, seed=seed, **params)
            t0 = time.perf_counter()
            h = model.fit(inner, optimizer="mcmc", samples=a.sweeps, burn_in=0, verbose=0)
            secs.append((time.perf_counter() - t0, 1000 * float(np.median(h.sweep_seconds))))
            P = per_sample_predictions(model, check)
            cs = np.cumsum(P, axis=0)
            table = {}
            for B in BURN_INS:
                for N in WINDOWS:
                    if B + N <= a.sweeps:
                        mean = (cs[B + N - 1] - (cs[B - 1] if B else 0)) / N
                        pred = bayes.finish(model, mean)
                        table[B, N] = float(np.sqrt(np.mean((pred - check.ratings) ** 2)))
            tables.append(table)
        print(f"\n{text}: {np.mean([s[0] for s in secs]):.1f} s per chain, "
              f"{np.mean([s[1] for s in secs]):.1f} ms per sweep (median); p = {model._fm.groups.size:,}")
        keys = sorted(tables[0])
        print("  burn-in \\ kept " + "".join(f"{N:>9d}" for N in WINDOWS))
        for B in BURN_INS:
            cells = []
            for N in WINDOWS:
                if (B, N) in tables[0]:
                    vals = [t[B, N] for t in tables]
                    cells.append(f"{np.mean(vals):9.4f}")
                else:
                    cells.append(f"{'':9s}")
            print(f"  {B:>14d} " + "".join(cells))
        if len(seeds) > 1:
            spread = np.mean([np.std([t[k] for t in tables[f::len(seeds)]])
                              for f in range(len(seeds)) for k in keys])
            print(f"  mean sd between chains: {spread:.4f}")
        if len(folds) > 1 and (10, 200) in tables[0]:
            per_fold = [np.mean([t[10, 200] for t in tables[i * len(seeds):(i + 1) * len(seeds)]])
                        for i in range(len(folds))]
            print("  burn-in 10, 200 kept, per fold: "
                  + " ".join(f"{f} {v:.4f}" for f, v in zip(folds, per_fold)))


if __name__ == "__main__":
    main()
