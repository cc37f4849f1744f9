"""Helpers shared by the benchmark files."""
import hashlib
import os
import tempfile
from pathlib import Path


def tree_env(tree):
    """The environment of a process that runs source tree ``tree``: the tree first on
    ``PYTHONPATH`` and a Numba cache of its own, named after the tree's path (stable from
    run to run, so a tree compiles its kernels once)."""
    tree = Path(tree).resolve()
    digest = hashlib.sha1(str(tree).encode()).hexdigest()[:12]
    return dict(os.environ, PYTHONPATH=str(tree),
                NUMBA_CACHE_DIR=str(Path(tempfile.gettempdir()) / f"versus-numba-{digest}"))


def epoch_benchmark(benchmark, model, train, rounds=5, **fit_kwargs):
    """Time one training epoch of ``model`` (already warmed up: compiled, parameters built)
    and record ms/epoch and ratings/s in the benchmark's extra_info."""
    def one_epoch():
        model.fit(train, epochs=1, verbose=0, progress=False, **fit_kwargs)
    one_epoch()  # compile (or load from cache) and build parameters
    benchmark.pedantic(one_epoch, rounds=rounds, iterations=1, warmup_rounds=1)
    median = benchmark.stats.stats.median
    benchmark.extra_info["ratings"] = len(train)
    benchmark.extra_info["ms_per_epoch"] = round(1000 * median, 2)
    benchmark.extra_info["ratings_per_s"] = round(len(train) / median)
    return median
