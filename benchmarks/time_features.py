"""Do time inputs help the notebook's NN and mixed models? ``--split temporal`` on ml-100k.

    python benchmarks/time_features.py [--models nn,residual,linear,mixed-bias,mixed-interaction]
                                       [--seeds 5] [--first-seed 0] [--inner] [--bins 30]

Each model is trained with its defaults (the notebook's: k=10, 6 epochs of Adam 1e-3 on
batches of 64) with and without ``time_features=True`` (the default time input: the
rating's time bin; ``--bins`` to set their number), for seeds first..first+N-1, exactly as
``mfcore train --dataset ml-100k --split temporal --model M [--time-features] --seed S``.
The figure is the final epoch's MSE on the held-out part (each user's latest 20% of
ratings); nothing is chosen from it.

``--inner`` repeats the comparison one level down, on a temporal split of the temporal
split's *training* part: that is where the default time inputs and their number of bins
were chosen (e.g. ``--inner --bins 30`` against the default 12, on ``--first-seed 10
--seeds 20``); the outer held-out part only reports.
"""
from __future__ import annotations

import argparse
import statistics

from mfcore.data import load_dataset, make_split
from mfcore.models import create_model


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="nn,residual,linear,mixed-bias,mixed-interaction")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--inner", action="store_true")
    p.add_argument("--bins", type=int, default=None, help="time bins [default: the models']")
    a = p.parse_args()
    ratings = load_dataset("ml-100k", progress=False)
    train, held_out = make_split(ratings, "temporal")
    if a.inner:
        train, held_out = make_split(train, "temporal")
    print(f"train {len(train):,} ratings, held out {len(held_out):,} "
          f"({'inner' if a.inner else 'outer'} temporal split); MSE, final epoch")
    print("| model | without | with --time-features | difference | seeds where it helps |")
    print("| --- | --- | --- | --- | --- |")
    for name in a.models.split(","):
        runs = {}
        with_time = {"time_features": True}
        if a.bins is not None:
            with_time["time_bins"] = a.bins
        for label, kw in (("without", {}), ("with", with_time)):
            runs[label] = [create_model(name, seed=s, **kw)
                           .fit(train, validation=held_out, verbose=0).val_mse[-1]
                           for s in range(a.first_seed, a.first_seed + a.seeds)]
        w0, w1 = runs["without"], runs["with"]
        helps = sum(b < c for b, c in zip(w1, w0))
        print(f"| {name} | {statistics.fmean(w0):.4f} ± {statistics.stdev(w0):.4f} "
              f"| {statistics.fmean(w1):.4f} ± {statistics.stdev(w1):.4f} "
              f"| {statistics.fmean(w1) - statistics.fmean(w0):+.4f} | {helps} of {a.seeds} |",
              flush=True)


if __name__ == "__main__":
    main()
