"""How far honest training stays from the divergence bound (``mfcore.engine.trainer``).

Trains the notebook's models with the notebook's settings, the Koren models with their
own defaults, and a spread of optimizers and learning rates that still train, on
MovieLens 100K (seed-0 split), and prints per run the largest epoch training loss and
validation MSE as a fraction of the bound (100 x the larger of the loss at the start and
the ratings' scale). Every fraction must be far below 1; the runs that diverge (a learning
rate far too large) are listed with what fit reported.

    MFCORE_DATA_HOME=../shared/data python benchmarks/divergence_margin.py [--quick]
"""
from __future__ import annotations

import sys

from mfcore.compare import NOTEBOOK_MODELS, notebook_model
from mfcore.data import load_dataset, random_split
from mfcore.errors import TrainingDiverged
from mfcore.models import create_model


def runs(quick):
    for name in NOTEBOOK_MODELS:
        for k in (10, 50):
            for shuffle in (("once",) if quick else ("once", "epoch")):
                yield f"{name} k={k} notebook ({shuffle})", notebook_model(name, k), \
                    dict(epochs=6, batch_size=64, optimizer="adam", lr=1e-3, shuffle=shuffle)
    yield "baseline defaults", create_model("baseline"), {}
    for name in ("svdpp", "timesvd", "timesvdpp"):
        yield f"{name} defaults", create_model(name), dict(epochs=8 if quick else None)
    for lr in (0.005, 0.01, 0.02, 0.05):
        yield f"mfb sgd b=1 lr={lr}", create_model(
            "mfb", factors=10, l2=0.02, l2_mode="per-sample", init="normal",
            init_scale=0.1), dict(epochs=20, batch_size=1, optimizer="sgd", lr=lr)
    yield "mf sgd b=1 lr=0.01", create_model("mf", factors=50, l2=0.02, l2_mode="per-sample"), \
        dict(epochs=20, batch_size=1, optimizer="sgd", lr=0.01)
    for lr in (0.1, 0.5):
        yield f"mfb sgd b=64 lr={lr}", create_model("mfb", factors=10), \
            dict(epochs=10, batch_size=64, optimizer="sgd", lr=lr)
    for lr in (1e-3, 1e-2, 5e-2):
        yield f"mfbs sparse-adam lr={lr}", create_model("mfbs", factors=10), \
            dict(epochs=6, optimizer="sparse-adam", lr=lr)
        yield f"mfb adam lr={lr}", create_model("mfb", factors=50), dict(epochs=6, lr=lr)
        yield f"nn adam lr={lr}", create_model("nn", factors=10, hidden=(15,)), \
            dict(epochs=6, lr=lr)
    yield "mfb adam-dense", create_model("mfb", factors=10), \
        dict(epochs=3, optimizer="adam-dense")
    yield "mfb init uniform 1", create_model("mfb", factors=10, init_scale=1.0), dict(epochs=6)
    yield "mfb init normal 1 k=50", create_model("mfb", factors=50, init="normal",
                                                 init_scale=1.0), dict(epochs=6)
    yield "mfb l2 keras 1e-3", create_model("mfb", factors=50, l2=1e-3), dict(epochs=6)


def main(argv):
    quick = "--quick" in argv
    train, val = random_split(load_dataset("ml-100k", progress=False), 0.8, seed=0)
    worst = 0.0
    print(f"{'run':<40} {'loss/bound':>11} {'val/bound':>10} {'start':>8} {'bound':>8}")
    for label, model, fit in runs(quick):
        fit = {k: v for k, v in fit.items() if v is not None}
        try:
            h = model.fit(train, val, verbose=0, progress=False, **fit)
        except TrainingDiverged as exc:
            print(f"{label:<40} DIVERGED: {exc}")
            continue
        b = h.settings["divergence_bound"]
        a, v = max(h.loss) / b, max(h.val_mse) / b
        worst = max(worst, a, v)
        print(f"{label:<40} {a:>11.4f} {v:>10.4f} {h.settings['start_loss']:>8.3g} {b:>8.3g}")
    print(f"largest fraction of the bound reached by a run that trained: {worst:.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])
