"""One model's epoch in two source trees, alternating, with more rounds than a
pytest-benchmark row: for a row that versus.py flags but whose three rounds cannot tell a
real slow-down from the shared machine's noise.

    python benchmarks/epoch_pair.py --old /tmp/prev --new . --model linear \\
        [--optimizer sgd] [--factors 10] [--batch-size 64] [--rounds 15] [--turns 4]

Data: the synthetic MovieLens-1M-shaped set (seed 0), its seed-0 80/20 split (~800k
training ratings), as in ``benchmarks/test_bench_*.py``. Each turn runs the old tree then
the new one, each in a fresh process with that tree first on ``PYTHONPATH`` and its own
Numba cache: two warm-up calls of ``fit(epochs=1)``, then ``--rounds`` timed ones, and
prints their median. The summary gives each side's median over the turns and the median
of the turns' new / old.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile

from benchutil import tree_env

CHILD = """
import statistics, sys, time
from mfcore.data import random_split, synthetic_ratings
from mfcore.models import create_model
name, optimizer = sys.argv[1], sys.argv[2]
k, batch, rounds = (int(v) for v in sys.argv[3:6])
train, _ = random_split(synthetic_ratings(seed=0), 0.8, seed=0)
model = create_model(name, factors=k, seed=0)
def one():
    model.fit(train, epochs=1, verbose=0, progress=False, optimizer=optimizer, batch_size=batch)
one(); one()
times = []
for _ in range(rounds):
    t0 = time.perf_counter(); one(); times.append(time.perf_counter() - t0)
print(statistics.median(times))
"""


def run(tree, a):
    out = subprocess.run([sys.executable, "-c", CHILD, a.model, a.optimizer, str(a.factors),
                          str(a.batch_size), str(a.rounds)], env=tree_env(tree),
                         cwd=tempfile.gettempdir(),
                         capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"{tree}: {out.stderr.strip().splitlines()[-1]}")
    return float(out.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", required=True)
    p.add_argument("--new", default=".")
    p.add_argument("--model", required=True)
    p.add_argument("--optimizer", default="sgd")
    p.add_argument("--factors", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--turns", type=int, default=4)
    a = p.parse_args()
    olds, news = [], []
    for t in range(a.turns):
        olds.append(run(a.old, a))
        news.append(run(a.new, a))
        print(f"turn {t + 1}: old {1000 * olds[-1]:.1f} ms, new {1000 * news[-1]:.1f} ms, "
              f"new/old {news[-1] / olds[-1]:.3f}", flush=True)
    ratios = [n / o for n, o in zip(news, olds)]
    print(f"{a.model} {a.optimizer} k={a.factors} batch {a.batch_size}, median of {a.rounds} "
          f"rounds per turn: old {1000 * statistics.median(olds):.1f} ms, new "
          f"{1000 * statistics.median(news):.1f} ms; median new/old over {a.turns} turns "
          f"{statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
