"""Does the block-wise order of per-sample SGD converge like a full shuffle?

    python benchmarks/shuffle_convergence.py [--epochs 20] [--seeds 0,1,2]

Trains ``mfb`` k=10 with per-sample SGD for ``--epochs`` epochs on MovieLens 100K (the
seed-0 80/20 split; ``MFCORE_DATA_HOME`` must hold it) and on the synthetic
MovieLens-1M-shaped set, once with ``shuffle="epoch"`` (the grid of blocks, a fresh
in-block order every epoch) and once with ``shuffle="full"`` (a uniformly random order of
all ratings every epoch), for each seed, and prints the final validation RMSE of both and
their difference. The project's bar: |difference| <= 0.002.
"""
import argparse
import statistics

import mfcore
from mfcore.data import random_split, synthetic_ratings


def final_rmse(train, val, shuffle, seed, epochs, lr, l2):
    model = mfcore.create_model("mfb", factors=10, seed=seed, l2=l2, l2_mode="per-sample",
                                init="normal", init_scale=0.1)
    h = model.fit(train, val, epochs=epochs, optimizer="sgd", batch_size=1, lr=lr,
                  shuffle=shuffle, verbose=0)
    return h.val_rmse[-1]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--seeds", default="0,1,2")
    a = p.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    sets = {"ml-100k": random_split(mfcore.load_dataset("ml-100k"), 0.8, seed=0),
            "synthetic ml-1m": random_split(synthetic_ratings(seed=0), 0.8, seed=0)}
    print(f"mfb k=10, per-sample SGD lr 0.005, per-sample L2 0.02, {a.epochs} epochs; "
          f"final validation RMSE")
    print(f"{'data':16s} {'seed':>4s} {'blocks':>8s} {'full':>8s} {'diff':>8s}")
    for name, (train, val) in sets.items():
        diffs = []
        for seed in seeds:
            blocks = final_rmse(train, val, "epoch", seed, a.epochs, 0.005, 0.02)
            full = final_rmse(train, val, "full", seed, a.epochs, 0.005, 0.02)
            diffs.append(blocks - full)
            print(f"{name:16s} {seed:>4d} {blocks:8.4f} {full:8.4f} {blocks - full:+8.4f}",
                  flush=True)
        print(f"{name:16s} mean difference {statistics.fmean(diffs):+.4f}, largest "
              f"{max(diffs, key=abs):+.4f}")


if __name__ == "__main__":
    main()
