"""Parse speed of an ml-1m sized ``ratings.dat`` (``::``-separated, 1,000,209 rows).

Generates the file from the synthetic generator (seed 0) into a temp dir, then reports
median times over ``--runs`` runs:

* cold parse: ``load_file(path, cache=False)`` in this process (Numba kernels warm);
* first parse in a fresh process: ``python -c "load_file(path, cache=False)"``, import
  excluded (includes loading the Numba on-disk cache);
* cached reload: ``load_file(path)`` served from the binary ``.mfcache`` cache (its key is
  the file's XXH64, so this includes hashing the file);
* hashing alone: the cache key (``source_key``: XXH64), SHA-256 (``file_digest``, what a
  model file records of its data, computed when asked for) and BLAKE2b for comparison;
* pandas C engine on the same bytes with ``::`` replaced by a tab, for scale.

Usage::

    /work/venv/bin/python benchmarks/bench_parse.py [--runs 7] [--rows 1000209]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _median_time(fn, runs):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--rows", type=int, default=1_000_209)
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="mfcore-bench-") as tmp:
        os.environ["MFCORE_CACHE_DIR"] = str(Path(tmp) / "cache")  # keep the user cache clean
        from mfcore.data import load_file, synthetic_ratings, write_ratings_dat

        t0 = time.perf_counter()
        ratings = synthetic_ratings(args.rows, seed=0)
        t_gen = time.perf_counter() - t0
        path = Path(tmp) / "ratings.dat"
        t0 = time.perf_counter()
        write_ratings_dat(ratings, path)
        t_write = time.perf_counter() - t0
        size_mb = path.stat().st_size / 2**20

        load_file(path, cache=False)  # compile / load the Numba kernels once
        cold_med, cold_min = _median_time(lambda: load_file(path, cache=False), args.runs)

        code = ("import sys, time; from mfcore.data import load_file; t=time.perf_counter(); "
                "r=load_file(sys.argv[1], cache=False); print(time.perf_counter()-t, len(r))")
        fresh = []
        for _ in range(min(args.runs, 3)):
            out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                                 text=True, check=True, env=os.environ.copy())
            fresh.append(float(out.stdout.split()[0]))
        fresh_med = statistics.median(fresh)

        loaded = load_file(path)  # writes the cache
        assert len(loaded) == args.rows
        cached_med, cached_min = _median_time(lambda: load_file(path), args.runs)

        from mfcore.data.cache import file_digest, source_key

        def blake2b():
            h = hashlib.blake2b()
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            return h.hexdigest()
        key_med, key_min = _median_time(lambda: source_key([path]), args.runs)
        sha_med, sha_min = _median_time(lambda: file_digest(path), args.runs)
        b2_med, b2_min = _median_time(blake2b, args.runs)

        pandas_med = None
        try:
            import io

            import pandas as pd

            def with_pandas():
                data = path.read_bytes().replace(b"::", b"\t")
                pd.read_csv(io.BytesIO(data), sep="\t", header=None, engine="c",
                            names=["user", "item", "rating", "timestamp"])
            pandas_med, _ = _median_time(with_pandas, max(3, args.runs // 2))
        except ImportError:  # pragma: no cover
            pass

    print(f"ml-1m shaped ratings.dat: {args.rows:,} rows, {size_mb:.1f} MB "
          f"(generated in {t_gen:.2f} s, written in {t_write:.2f} s)")
    print(f"{'what':<46}{'median':>10}{'best':>10}")
    print(f"{'cold parse, load_file(cache=False)':<46}{cold_med * 1e3:>8.1f}ms{cold_min * 1e3:>8.1f}ms")
    print(f"{'first parse in a fresh process':<46}{fresh_med * 1e3:>8.1f}ms{min(fresh) * 1e3:>8.1f}ms")
    print(f"{'cached reload, load_file()':<46}{cached_med * 1e3:>8.1f}ms{cached_min * 1e3:>8.1f}ms")
    print(f"{'  of which hashing: xxh64 (the cache key)':<46}{key_med * 1e3:>8.1f}ms{key_min * 1e3:>8.1f}ms")
    print(f"{'  sha256 (for model files, when asked for)':<46}{sha_med * 1e3:>8.1f}ms{sha_min * 1e3:>8.1f}ms")
    print(f"{'  blake2b instead, for comparison':<46}{b2_med * 1e3:>8.1f}ms{b2_min * 1e3:>8.1f}ms")
    if pandas_med is not None:
        print(f"{'pandas C engine (:: -> tab), for scale':<46}{pandas_med * 1e3:>8.1f}ms")
    print("targets: cold <= 1000 ms, cached <= 100 ms")


if __name__ == "__main__":
    main()
