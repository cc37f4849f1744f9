"""Do time inputs help the notebook's NN and mixed models? ``--split temporal`` on ml-100k.

    python benchmarks/time_features.py [--models nn,residual,linear,mixed-bias,mixed-interaction]
                                       [--seeds 5] [--inner]

Each model is trained with its defaults (the notebook's: k=10, 6 epochs of Adam 1e-3 on
batches of 64) with and without ``time_features=True`` (the default time input: the
rating's time bin), for seeds 0..N-1, exactly as
``mfcore train --dataset ml-100k --split temporal --model M [--time-features] --seed S``.
The figure is the final epoch's MSE on the held-out part (each user's latest 20% of
ratings); nothing is chosen from it.

``--inner`` repeats the comparison one level down, on a temporal split of the temporal
split's *training* part: that is where the default time inputs were chosen (the outer
held-out part was used once, to report).
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
    p.add_argument("--inner", action="store_true")
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
        for label, kw in (("without", {}), ("with", {"time_features": True})):
            runs[label] = [create_model(name, seed=s, **kw)
                           .fit(train, validation=held_out, verbose=0).val_mse[-1]
                           for s in range(a.seeds)]
        w0, w1 = runs["without"], runs["with"]
        helps = sum(b < c for b, c in zip(w1, w0))
        print(f"| {name} | {statistics.fmean(w0):.4f} ± {statistics.stdev(w0):.4f} "
              f"| {statistics.fmean(w1):.4f} ± {statistics.stdev(w1):.4f} "
              f"| {statistics.fmean(w1) - statistics.fmean(w0):+.4f} | {helps} of {a.seeds} |",
              flush=True)


if __name__ == "__main__":
    main()
