"""How the defaults of svdpp / timesvd / timesvdpp were chosen: a grid on a validation
split carved from GroupLens fold u1's TRAINING part, never on a test fold.

    python benchmarks/tune_koren.py [--model timesvdpp] [--grid 'factors=20,50 l2=0.02,0.05']

Protocol: u1's 80,000 training ratings, split 90/10 at random (seed 0); every
configuration trains on the 90% with per-sample SGD and is scored by the RMSE of the 10%
after each epoch; the table ranks configurations by their best epoch. The chosen values
(and the epoch count) become the model's defaults; the folds' test sets are then used
once, to report.
"""
import argparse
import itertools
import time

import mfcore
from mfcore.data import load_grouplens_fold, random_split


def parse_grid(text):
    out = {}
    for part in text.split():
        key, values = part.split("=")
        out[key] = [float(v) if "." in v or "e" in v else int(v) for v in values.split(",")]
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="timesvdpp")
    p.add_argument("--grid", default="factors=20,50 l2=0.02,0.05 lr=0.003,0.005")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--top", type=int, default=10)
    a = p.parse_args()
    train, _ = load_grouplens_fold("u1")
    inner, check = random_split(train, 0.9, seed=0)
    grid = parse_grid(a.grid)
    rows = []
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid, values))
        fit = {"lr": params.pop("lr")} if "lr" in params else {}
        fit_keys = {k: params.pop(k) for k in list(params) if k in ("lr_decay",)}
        if "factors" not in params and "epochs" in params:
            pass
        t0 = time.perf_counter()
        model = mfcore.create_model(a.model, seed=0, **params)
        h = model.fit(inner, check, epochs=a.epochs, verbose=0, **fit, **fit_keys)
        best = min(range(len(h.val_rmse)), key=h.val_rmse.__getitem__)
        rows.append((h.val_rmse[best], best + 1, {**params, **fit, **fit_keys},
                     time.perf_counter() - t0))
        print(f"{h.val_rmse[best]:.4f} @ {best + 1:2d}  {rows[-1][2]}", flush=True)
    print(f"\nbest {a.top} of {len(rows)} ({a.model}, inner validation of u1's training part):")
    for rmse, epoch, params, sec in sorted(rows, key=lambda r: r[0])[:a.top]:
        print(f"  {rmse:.4f} at epoch {epoch:2d}  {params}  ({sec:.1f} s)")


if __name__ == "__main__":
    main()
