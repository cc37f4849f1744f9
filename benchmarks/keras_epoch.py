"""Time one Keras epoch per notebook model on the synthetic ml-1m-shaped set (optional).

    python benchmarks/keras_epoch.py [--ratings 1000209] [--factors 10,50]
                                     [--models mf,mfb,mfbs,linear,nn,mixed-bias,mixed-interaction]

Needs TensorFlow (``pip install tensorflow``); without it, says so and exits 0. Keras is never
a dependency of mfcore. The Keras models are :func:`mfcore.bench.build_keras_model`'s (the
notebook's architectures for our models' hyper-parameters); each epoch is ``fit`` with
Adam(1e-3), MSE, batch 64 over the 80% training split, after a short warm-up fit that traces
the graph. Side by side with ours: ``mfcore bench --vs-keras``.
"""
import argparse
import sys

NOTEBOOK_MODELS = "mf,mfb,mfbs,linear,nn,mixed-bias,mixed-interaction"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ratings", type=int, default=1_000_209)
    p.add_argument("--factors", default="10,50")
    p.add_argument("--models", default=NOTEBOOK_MODELS)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)

    from mfcore import bench
    try:
        keras = bench.import_keras()
    except bench.KerasUnavailable:
        print("keras_epoch.py needs TensorFlow/Keras: pip install tensorflow")
        return 0
    from mfcore.models import create_model

    _, train = bench.bench_data(a.ratings, seed=a.seed)
    print(f"{bench._keras_version(keras)}; {len(train):,} training ratings "
          f"(synthetic ml-1m shape, seed {a.seed}); Adam 1e-3, batch {a.batch_size}")
    print(f"{'model':<18} {'factors':>7} {'s/epoch':>9} {'ratings/s':>11}")
    for name in a.models.split(","):
        for k in (int(x) for x in a.factors.split(",")):
            s = bench.time_keras_epoch(create_model(name, factors=k, seed=a.seed), train,
                                       batch_size=a.batch_size, keras=keras, seed=a.seed)
            print(f"{name:<18} {k:>7} {s:>9.2f} {len(train) / s:>11,.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
