"""Epoch time of the MF family per optimizer on ~800k synthetic ml-1m-shaped ratings.

    pytest benchmarks/test_bench_mf.py --benchmark-only \\
        --benchmark-columns=median,min,max --benchmark-sort=name

Targets (DESIGN.md): per-sample SGD epoch of mfb k=10 <= 12 ms; Keras-faithful Adam
(batch 64) <= 0.5 s; sparse Adam <= 50 ms. The extra_info of each row holds ms/epoch and
ratings/s. JIT compilation is timed apart, in a fresh process with an empty cache.
"""
import os
import subprocess
import sys
import textwrap

import pytest

from benchutil import epoch_benchmark
from mfcore.models import create_model

#: (optimizer, batch size): per-sample SGD is classic MF, the others the notebook's batch 64
OPTIMIZERS = [("sgd", 1), ("adam", 64), ("sparse-adam", 64)]


@pytest.mark.parametrize("k", [10, 50])
@pytest.mark.parametrize("optimizer,batch", OPTIMIZERS, ids=[o for o, _ in OPTIMIZERS])
@pytest.mark.parametrize("name", ["mf", "mfb", "mfbs"])
def test_epoch(benchmark, ml1m_like, name, optimizer, batch, k):
    train, _ = ml1m_like
    benchmark.group = f"{name} epoch"
    model = create_model(name, factors=k, seed=0)
    epoch_benchmark(benchmark, model, train, optimizer=optimizer, batch_size=batch)


def test_jit_compile_time(benchmark, tmp_path):
    """Seconds to compile the MF kernels and the epoch loop from an empty Numba cache."""
    script = textwrap.dedent("""
        import time
        import numpy as np
        from mfcore.data import Ratings
        from mfcore.models import MFB
        r = np.random.default_rng(0)
        d = Ratings.from_arrays(r.integers(0, 50, 500), r.integers(0, 40, 500),
                                r.integers(1, 6, 500))
        t = time.perf_counter()
        MFB(factors=4).fit(d, epochs=1, verbose=0)
        first = time.perf_counter() - t
        t = time.perf_counter()
        MFB(factors=4).fit(d, epochs=1, verbose=0)
        print(first - (time.perf_counter() - t))
    """)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))

    def compile_once():
        out = subprocess.run([sys.executable, "-c", script], env=env, check=True,
                             capture_output=True, text=True)
        return float(out.stdout.strip().splitlines()[-1])

    seconds = benchmark.pedantic(compile_once, rounds=1, iterations=1)
    benchmark.extra_info["compile_s"] = round(seconds, 2)
